//! Timestamps as JupyterHub writes them: UTC, ISO 8601, literal `Z`, microseconds only
//! when non-zero.

use chrono::{DateTime, SecondsFormat, Utc};

/// Microseconds since the Unix epoch: how records store time.
pub type Micros = i64;

pub fn now_micros() -> Micros {
    Utc::now().timestamp_micros()
}

/// Formats like JupyterHub: `2026-11-23T00:34:04.810001Z` or `2026-11-23T00:41:00Z`.
pub fn iso(micros: Micros) -> String {
    let Some(dt) = DateTime::<Utc>::from_timestamp_micros(micros) else {
        return String::from("1970-01-01T00:00:00Z");
    };
    if micros.rem_euclid(1_000_000) == 0 {
        dt.to_rfc3339_opts(SecondsFormat::Secs, true)
    } else {
        dt.to_rfc3339_opts(SecondsFormat::Micros, true)
    }
}

/// Parses a timestamp leniently: RFC 3339 with any offset (converted to UTC), or a naive
/// `YYYY-MM-DDTHH:MM:SS[.ffffff]` taken as UTC.
pub fn parse(s: &str) -> Option<Micros> {
    let s = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc).timestamp_micros());
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
    ] {
        if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
            return Some(naive.and_utc().timestamp_micros());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_jupyterhub() {
        let t = parse("2026-11-23T00:34:04.810001Z").unwrap();
        assert_eq!(iso(t), "2026-11-23T00:34:04.810001Z");
        let t = parse("2026-11-23T00:41:00Z").unwrap();
        assert_eq!(iso(t), "2026-11-23T00:41:00Z");
    }

    #[test]
    fn offsets_become_utc_and_naive_is_utc() {
        assert_eq!(
            parse("2026-11-23T01:41:00+01:00"),
            parse("2026-11-23T00:41:00Z")
        );
        assert_eq!(parse("2026-11-23T00:41:00"), parse("2026-11-23T00:41:00Z"));
        assert_eq!(parse("yesterday"), None);
    }
}
