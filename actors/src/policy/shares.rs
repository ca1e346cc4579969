//! The rules of shares and share codes (§2.12), as JupyterHub 6.1.1 has them: a share's
//! scopes always carry its server's filter (another filter is refused), the default is
//! access to the server, and a code lives from one minute to one year (a day unless
//! asked).

/// A code's life when none is asked for.
pub const DEFAULT_CODE_SECONDS: i64 = 86_400;
/// The shortest life a code may be asked for.
pub const MIN_CODE_SECONDS: i64 = 60;
/// The longest life a code may be asked for.
pub const MAX_CODE_SECONDS: i64 = 525_600 * 60;

/// The filter every scope of a share of `owner`'s `server` carries.
pub fn server_filter(owner: &str, server: &str) -> String {
    format!("server={owner}/{server}")
}

/// `scopes` (each with any filter or none) with the filter of `owner`'s `server`,
/// sorted, without repeats: what a share's scopes become when its server is renamed.
pub fn refiltered(scopes: &[String], owner: &str, server: &str) -> Vec<String> {
    let filter = server_filter(owner, server);
    let mut out: Vec<String> = scopes
        .iter()
        .map(|s| {
            format!(
                "{}!{filter}",
                s.split_once('!').map_or(s.as_str(), |(b, _)| b)
            )
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The scopes a share of `owner`'s `server` grants, asked as `requested` (none or empty:
/// access to the server): each with the server's filter, sorted, without repeats. A
/// scope with another filter is refused (JupyterHub's `_apply_filter`). Whether each
/// scope exists is the caller's to check.
pub fn share_scopes(
    requested: Option<&[String]>,
    owner: &str,
    server: &str,
) -> Result<Vec<String>, String> {
    let filter = server_filter(owner, server);
    let requested: Vec<String> = match requested {
        Some(r) if !r.is_empty() => r.to_vec(),
        _ => vec![format!("access:servers!{filter}")],
    };
    let mut out = Vec::with_capacity(requested.len());
    for scope in &requested {
        let (base, given) = scope.split_once('!').unwrap_or((scope.as_str(), ""));
        if !given.is_empty() && given != filter {
            return Err(format!(
                "!{given} not allowed on sharing {scope}, only !{filter}"
            ));
        }
        out.push(format!("{base}!{filter}"));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The life of a new code, asked as `expires_in` seconds: 400's message when outside
/// JupyterHub's bounds.
pub fn code_life(expires_in: Option<i64>) -> Result<i64, String> {
    match expires_in {
        None => Ok(DEFAULT_CODE_SECONDS),
        Some(n) if (MIN_CODE_SECONDS..=MAX_CODE_SECONDS).contains(&n) => Ok(n),
        Some(n) => Err(format!(
            "expires_in must be from {MIN_CODE_SECONDS} to {MAX_CODE_SECONDS} seconds, not {n}"
        )),
    }
}

/// The scopes left of a share after revoking `revoked` (all when `None`); empty: the
/// share goes.
pub fn after_revoking(scopes: &[String], revoked: Option<&[String]>) -> Vec<String> {
    match revoked {
        None => Vec::new(),
        Some(r) => scopes.iter().filter(|s| !r.contains(s)).cloned().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_of_a_share_carries_its_server_s_filter() {
        assert_eq!(
            share_scopes(None, "alice", "").unwrap(),
            vec!["access:servers!server=alice/"]
        );
        assert_eq!(
            share_scopes(Some(&[]), "alice", "nb").unwrap(),
            vec!["access:servers!server=alice/nb"]
        );
        let asked = vec![
            "read:servers".to_owned(),
            "access:servers!server=alice/nb".to_owned(),
            "read:servers!server=alice/nb".to_owned(),
        ];
        assert_eq!(
            share_scopes(Some(&asked), "alice", "nb").unwrap(),
            vec![
                "access:servers!server=alice/nb",
                "read:servers!server=alice/nb"
            ]
        );
        for bad in [
            "access:servers!user=alice",
            "access:servers!server=alice/other",
            "read:users!group=g",
        ] {
            let e = share_scopes(Some(&[bad.to_owned()]), "alice", "nb").unwrap_err();
            assert!(e.contains("not allowed on sharing"), "{bad}: {e}");
        }
    }

    #[test]
    fn codes_live_from_a_minute_to_a_year() {
        assert_eq!(code_life(None), Ok(86_400));
        assert_eq!(code_life(Some(60)), Ok(60));
        assert_eq!(code_life(Some(31_536_000)), Ok(31_536_000));
        assert!(code_life(Some(59)).is_err());
        assert!(code_life(Some(31_536_001)).is_err());
        assert!(code_life(Some(i64::MIN)).is_err());
    }

    #[test]
    fn revoking_some_scopes_keeps_the_others() {
        let scopes = vec!["a!server=x/".to_owned(), "b!server=x/".to_owned()];
        assert_eq!(
            after_revoking(&scopes, Some(&["a!server=x/".to_owned()])),
            vec!["b!server=x/"]
        );
        assert!(after_revoking(&scopes, None).is_empty());
    }
}
