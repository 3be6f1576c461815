//! The OpenAPI 3.1 document of the API, served at `GET /v1/openapi.json` (no token needed).
//! Hand-written: one entry per route in `api/mod.rs` (a test checks they match).

use serde_json::{json, Value};

/// (method, path, summary, auth) of every route.
pub const ROUTES: &[(&str, &str, &str, &str)] = &[
    ("post", "/v1/enroll", "Enroll a host: secret + public key + identity, signed with the new key", "agent signature"),
    ("post", "/v1/reports", "Submit a signed report (body = exact signed bytes); returns a signed receipt", "agent signature"),
    ("post", "/v1/keys/rotate", "Rotate a host's key: signed by the current key and by the new key", "agent signature"),
    ("get", "/v1/hosts", "List hosts with last seen and stale flag", "reader"),
    ("get", "/v1/hosts/{host_id}", "One host: latest facts, findings with evidence, control status, history", "reader"),
    ("get", "/v1/reports/{log_index}", "One stored report's verbatim signed bytes", "reader"),
    ("get", "/v1/controls", "ISO/IEC 27002:2022 controls with crosswalks and the checks that evidence them", "reader"),
    ("get", "/v1/controls/{control_id}", "One control: status across the fleet, failing hosts with evidence", "reader"),
    ("get", "/v1/snapshot", "Fleet snapshot per control (share passing, failing hosts with reason); ?at= for any past date", "reader"),
    ("get", "/v1/admin/policy", "The policy and Statement of Applicability in force", "reader"),
    ("put", "/v1/admin/policy", "Replace the policy; re-evaluates stored facts", "admin"),
    ("post", "/v1/admin/enrollment-secrets", "Create an enrollment secret (expiring, optionally single-use; with host_id, re-keys that one host)", "admin"),
    ("get", "/v1/admin/enrollment-secrets", "List enrollment secrets (never their values)", "admin"),
    ("delete", "/v1/admin/enrollment-secrets/{id}", "Revoke an enrollment secret", "admin"),
    ("post", "/v1/admin/tokens", "Create an API token (role admin or reader)", "admin"),
    ("get", "/v1/admin/tokens", "List API tokens (never their values)", "admin"),
    ("delete", "/v1/admin/tokens/{id}", "Revoke an API token", "admin"),
    ("post", "/v1/admin/hosts/{host_id}/revoke", "Revoke a host: its reports and enrollments are refused", "admin"),
    ("post", "/v1/admin/hosts/{host_id}/approve-key", "Approve a pending key of a known host", "admin"),
    ("get", "/v1/admin/audit", "The audit trail of admin and policy changes, newest first (?limit=)", "admin"),
    ("get", "/v1/admin/log/verify", "Verify the evidence log's hash chain end to end", "admin"),
    ("get", "/v1/openapi.json", "This document", "none"),
    ("get", "/healthz", "Liveness", "none"),
    ("get", "/metrics", "Prometheus metrics", "reader"),
];

pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for (method, path, summary, auth) in ROUTES {
        let security = match *auth {
            "reader" | "admin" => json!([{ "bearer": [] }]),
            _ => json!([]),
        };
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        let mut op = json!({
            "summary": summary,
            "description": format!("Authentication: {auth}."),
            "security": security,
            "parameters": params,
            "responses": {
                "200": { "description": "OK" },
                "4XX": { "description": "Refused", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ApiError" } } } }
            }
        });
        if *path == "/v1/reports" {
            op["parameters"] = json!([
                { "name": "X-Evidence-Signature", "in": "header", "required": true, "schema": { "type": "string" }, "description": "base64 Ed25519 signature over the exact body" },
                { "name": "X-Evidence-Key-Id", "in": "header", "required": true, "schema": { "type": "string" } }
            ]);
        }
        if *path == "/v1/snapshot" {
            op["parameters"] = json!([
                { "name": "at", "in": "query", "required": false, "schema": { "type": "string" }, "description": "RFC 3339 time or YYYY-MM-DD" },
                { "name": "limit", "in": "query", "required": false, "schema": { "type": "integer" } }
            ]);
        }
        paths.entry(path.to_string()).or_insert_with(|| json!({}))[*method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": "evidence-server", "version": env!("CARGO_PKG_VERSION") },
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": { "ApiError": { "type": "object", "required": ["error", "message"],
                "properties": { "error": { "type": "string" }, "message": { "type": "string" } } } }
        }
    })
}
