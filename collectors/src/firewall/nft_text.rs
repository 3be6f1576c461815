//! Renders a rule's JSON expressions (from `nft -j list ruleset`) back into nft-like text
//! (`tcp dport { 80, 443 } accept`), so evidence shows rules the way an administrator writes
//! them. Anything it does not know is shown as compact JSON, never dropped.

use serde_json::Value;

/// The rule's expressions as one line of text.
pub fn render(exprs: &[Value]) -> String {
    exprs.iter().map(statement).collect::<Vec<_>>().join(" ")
}

fn statement(expr: &Value) -> String {
    let Some((kind, body)) = expr.as_object().and_then(|o| o.iter().next()) else {
        return expr.to_string();
    };
    match kind.as_str() {
        "match" => {
            let left = body.get("left").map(operand).unwrap_or_default();
            let right = body.get("right").map(operand).unwrap_or_default();
            match body.get("op").and_then(Value::as_str) {
                Some("==") | Some("in") | None => format!("{left} {right}"),
                Some(op) => format!("{left} {op} {right}"),
            }
        }
        "accept" | "drop" | "return" | "continue" | "counter" => kind.clone(),
        "reject" => "reject".into(),
        "jump" | "goto" => format!(
            "{kind} {}",
            body.get("target").and_then(Value::as_str).unwrap_or("?")
        ),
        "vmap" => format!(
            "{} vmap {}",
            body.get("key").map(operand).unwrap_or_default(),
            body.get("data").map(operand).unwrap_or_default()
        ),
        "xt" => format!(
            "xt {} {}",
            body.get("type").and_then(Value::as_str).unwrap_or("?"),
            body.get("name").and_then(Value::as_str).unwrap_or("?")
        ),
        "log" => "log".into(),
        _ => expr.to_string(),
    }
}

fn operand(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => format!(
            "{{ {} }}",
            items.iter().map(operand).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(o) => {
            if let Some(p) = o.get("payload") {
                let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("?");
                let field = p.get("field").and_then(Value::as_str).unwrap_or("?");
                format!("{proto} {field}")
            } else if let Some(m) = o.get("meta") {
                let key = m.get("key").and_then(Value::as_str).unwrap_or("?");
                match key {
                    "iif" | "iifname" | "oif" | "oifname" | "mark" => key.to_string(),
                    _ => format!("meta {key}"),
                }
            } else if let Some(c) = o.get("ct") {
                format!("ct {}", c.get("key").and_then(Value::as_str).unwrap_or("?"))
            } else if let Some(set) = o.get("set") {
                match set {
                    Value::Array(items) => {
                        let items: Vec<String> = items
                            .iter()
                            .map(|item| match item.as_array().map(Vec::as_slice) {
                                Some([key, verdict]) => {
                                    format!("{} : {}", operand(key), operand(verdict))
                                }
                                _ => operand(item),
                            })
                            .collect();
                        format!("{{ {} }}", items.join(", "))
                    }
                    one => operand(one),
                }
            } else if let Some(Value::Array(r)) = o.get("range") {
                format!(
                    "{}-{}",
                    r.first().map(operand).unwrap_or_default(),
                    r.get(1).map(operand).unwrap_or_default()
                )
            } else if let Some(p) = o.get("prefix") {
                format!(
                    "{}/{}",
                    p.get("addr").map(operand).unwrap_or_default(),
                    p.get("len").map(operand).unwrap_or_default()
                )
            } else if let Some(v) = o.get("elem").and_then(|e| e.get("val")) {
                operand(v)
            } else if o.len() == 1 && o.values().next().is_some_and(Value::is_null) {
                // A verdict inside a map: {"accept": null}.
                o.keys().next().cloned().unwrap_or_default()
            } else if let Some(Value::Object(j)) = o.get("jump").or_else(|| o.get("goto")) {
                let kind = if o.contains_key("jump") {
                    "jump"
                } else {
                    "goto"
                };
                format!(
                    "{kind} {}",
                    j.get("target").and_then(Value::as_str).unwrap_or("?")
                )
            } else {
                value.to_string()
            }
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(json: &str) -> String {
        let exprs: Vec<Value> = serde_json::from_str(json).expect("json");
        render(&exprs)
    }

    #[test]
    fn recorded_expressions_render_like_nft_text() {
        assert_eq!(
            rule(
                r#"[{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": {"set": [80, 443]}}}, {"accept": null}]"#
            ),
            "tcp dport { 80, 443 } accept"
        );
        assert_eq!(
            rule(
                r#"[{"vmap": {"key": {"ct": {"key": "state"}}, "data": {"set": [["invalid", {"drop": null}], ["established", {"accept": null}]]}}}]"#
            ),
            "ct state vmap { invalid : drop, established : accept }"
        );
        assert_eq!(
            rule(
                r#"[{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"prefix": {"addr": "10.0.0.0", "len": 8}}}}, {"counter": {"packets": 0, "bytes": 0}}, {"jump": {"target": "services"}}]"#
            ),
            "ip saddr 10.0.0.0/8 counter jump services"
        );
    }
}
