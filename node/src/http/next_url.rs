//! Validation of `next` (§8.3): open-redirect protection. A `next` may only lead to a
//! path on this hub.

/// Returns the safe local target for `next`, or `None` when it must be discarded.
/// `own_origins` are the hub's own `scheme://host` values (from `public_url` or the
/// request), whose prefix is stripped.
pub fn validate(next: &str, own_origins: &[String]) -> Option<String> {
    if next.is_empty() {
        return None;
    }
    // backslashes are treated as slashes by browsers: encode them
    let mut n = next.replace('\\', "%5C");
    // a leading run of three or more slashes collapses to two
    if n.starts_with("///") {
        let trimmed = n.trim_start_matches('/');
        n = format!("//{trimmed}");
    }
    for origin in own_origins {
        if let Some(rest) = n.strip_prefix(origin.as_str()) {
            if rest.starts_with('/') && !rest.starts_with("//") {
                n = rest.to_owned();
                break;
            }
            if rest.is_empty() {
                n = "/".to_owned();
                break;
            }
        }
    }
    let lower = n.to_ascii_lowercase();
    let has_scheme = lower.split_once(':').is_some_and(|(scheme, _)| {
        !scheme.is_empty() && !scheme.contains('/') && !scheme.contains('?')
    });
    if !n.starts_with('/') || n.starts_with("//") || has_scheme {
        return None;
    }
    if n.chars().any(|c| c.is_control()) {
        return None;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::validate;

    fn origins() -> Vec<String> {
        vec!["http://127.0.0.1:8000".into(), "//127.0.0.1:8000".into()]
    }

    #[test]
    fn local_paths_pass() {
        assert_eq!(
            validate("/user/alice/lab", &origins()).as_deref(),
            Some("/user/alice/lab")
        );
        assert_eq!(
            validate("http://127.0.0.1:8000/user/alice/x?y=1", &origins()).as_deref(),
            Some("/user/alice/x?y=1")
        );
    }

    #[test]
    fn everything_off_hub_is_discarded() {
        for bad in [
            "//evil.com/x",
            "///evil.com/x",
            "////evil.com",
            "\\\\evil.com",
            "/\\evil.com",
            "https://evil.com/x",
            "http://127.0.0.1:8000//evil.com",
            "http://127.0.0.1:8000.evil.com/",
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "user/alice",
            "",
            "/x\r\nSet-Cookie: a=b",
        ] {
            let got = validate(bad, &origins());
            assert!(
                got.as_deref().is_none_or(|g| g.starts_with('/')
                    && !g.starts_with("//")
                    && !g.contains('\\')),
                "{bad:?} -> {got:?}"
            );
            if let Some(g) = &got {
                assert!(
                    !g.contains("evil.com") || g.starts_with("/%5C"),
                    "{bad:?} -> {g:?}"
                );
            }
        }
    }
}
