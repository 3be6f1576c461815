//! The right-hand values of nft JSON matches and verdict maps: single values, anonymous sets,
//! named sets (`@name`, resolved from the ruleset's sets), and their reading as strings, port
//! ranges or compact text. Used by [`super`] (`nft_ruleset`) only.

use evidence_protocol::facts::firewall::PortRange;
use serde_json::Value;

/// A match value as nft writes it: strings bare, prefixes as `addr/len`, others as JSON.
pub(super) fn compact(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Object(o) if o.contains_key("prefix") => {
            let p = &o["prefix"];
            format!(
                "{}/{}",
                p.get("addr").map(compact).unwrap_or_default(),
                p.get("len").map(compact).unwrap_or_default()
            )
        }
        other => other.to_string(),
    }
}

/// Replaces `"@name"` by the named set's elements (`{"set": [...]}`).
pub(super) fn resolve_set(right: &Value, sets: &dyn Fn(&str) -> Option<Vec<Value>>) -> Value {
    if let Some(name) = right.as_str().and_then(|s| s.strip_prefix('@')) {
        if let Some(elems) = sets(name) {
            return serde_json::json!({ "set": elems });
        }
    }
    right.clone()
}

/// One value or a set of values, each unwrapped from `{"elem": {"val": ...}}`.
pub(super) fn values(right: &Value) -> Vec<&Value> {
    let list: Vec<&Value> = match right {
        Value::Array(items) => items.iter().collect(),
        Value::Object(o) if o.contains_key("set") => match &o["set"] {
            Value::Array(items) => items.iter().collect(),
            one => vec![one],
        },
        one => vec![one],
    };
    list.into_iter()
        .map(|v| v.get("elem").and_then(|e| e.get("val")).unwrap_or(v))
        .collect()
}

/// The values as strings (numbers in decimal), or `None` when one is neither.
pub(super) fn strings(right: &Value) -> Option<Vec<String>> {
    values(right)
        .into_iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .or_else(|| v.as_u64().map(|n| n.to_string()))
        })
        .collect()
}

/// The values as port ranges (a port or `{"range": [first, last]}`), or `None` when one is not.
pub(super) fn ports(right: &Value) -> Option<Vec<PortRange>> {
    values(right)
        .into_iter()
        .map(|v| match v {
            Value::Number(n) => {
                let port = u16::try_from(n.as_u64()?).ok()?;
                Some(PortRange {
                    first: port,
                    last: port,
                })
            }
            Value::Object(o) if o.contains_key("range") => {
                let range = o["range"].as_array()?;
                let first = u16::try_from(range.first()?.as_u64()?).ok()?;
                let last = u16::try_from(range.get(1)?.as_u64()?).ok()?;
                (first <= last).then_some(PortRange { first, last })
            }
            _ => None,
        })
        .collect()
}
