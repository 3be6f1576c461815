//! Time as the store keeps it (microseconds since the Unix epoch, UTC) and as the API shows it
//! (RFC 3339).

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// Now, in microseconds.
pub fn now_us() -> i64 {
    Utc::now().timestamp_micros()
}

pub fn to_us(t: &DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub fn from_us(us: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(us).single().unwrap_or_default()
}

/// RFC 3339 with microseconds, `Z`.
pub fn fmt(us: i64) -> String {
    from_us(us).to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parses an RFC 3339 time or a plain date (`2026-11-27`, meaning its end, 23:59:59.999999 UTC).
pub fn parse_at(s: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc).timestamp_micros());
    }
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some(
        d.and_hms_micro_opt(23, 59, 59, 999_999)?
            .and_utc()
            .timestamp_micros(),
    )
}

/// Serialises a microsecond time as RFC 3339 (for `#[serde(serialize_with)]`).
pub fn ser<S: serde::Serializer>(us: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&fmt(*us))
}

/// Serialises an optional microsecond time as RFC 3339 or null.
pub fn ser_opt<S: serde::Serializer>(us: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match us {
        Some(us) => s.serialize_str(&fmt(*us)),
        None => s.serialize_none(),
    }
}
