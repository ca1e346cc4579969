//! User and server names: normalisation, validation and URL escaping as JupyterHub does
//! them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest user name accepted. JupyterHub has no hard limit; a bound keeps keys, logs and
/// URLs sane.
pub const MAX_USER_NAME: usize = 255;
/// Longest server name (JupyterHub 6.x rule).
pub const MAX_SERVER_NAME: usize = 30;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("username must not be empty")]
    Empty,
    #[error("username is too long ({len} characters, at most {MAX_USER_NAME})")]
    TooLong { len: usize },
    #[error("username must not contain '/'")]
    Slash,
    #[error("username must not consist only of dots")]
    OnlyDots,
    #[error("username must not contain control characters")]
    Control,
    #[error("username must not start or end with whitespace")]
    Whitespace,
    #[error("server name must be 1-30 characters of lowercase letters, digits and single hyphens, starting with a letter and ending with a letter or digit")]
    BadServerName,
}

/// A normalised, validated user name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserName(String);

impl UserName {
    /// Normalises (trims surrounding whitespace, lower-cases, as JupyterHub's default
    /// authenticator does) and validates.
    pub fn normalize(raw: &str) -> Result<UserName, NameError> {
        let lowered = raw.trim().to_lowercase();
        Self::validate(&lowered)?;
        Ok(UserName(lowered))
    }

    /// Validates an already-normalised name (e.g. from a URL path) without changing it.
    pub fn parse(name: &str) -> Result<UserName, NameError> {
        Self::validate(name)?;
        Ok(UserName(name.to_owned()))
    }

    fn validate(name: &str) -> Result<(), NameError> {
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        let len = name.chars().count();
        if len > MAX_USER_NAME {
            return Err(NameError::TooLong { len });
        }
        if name.contains('/') {
            return Err(NameError::Slash);
        }
        if name.chars().all(|c| c == '.') {
            return Err(NameError::OnlyDots);
        }
        if name.chars().any(char::is_control) {
            return Err(NameError::Control);
        }
        if name.trim() != name {
            return Err(NameError::Whitespace);
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name escaped for URLs: Python's `quote(name, safe="@~")`.
    pub fn escaped(&self) -> String {
        quote(&self.0, b"@~")
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A server name; `""` is the default server.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct ServerName(String);

impl ServerName {
    pub fn default_server() -> ServerName {
        ServerName(String::new())
    }

    /// Validates a name for a new named server (JupyterHub 6.x rule); `""` is the default.
    pub fn parse(name: &str) -> Result<ServerName, NameError> {
        if name.is_empty() {
            return Ok(ServerName(String::new()));
        }
        let bytes = name.as_bytes();
        let ok = bytes.len() <= MAX_SERVER_NAME
            && bytes[0].is_ascii_lowercase()
            && (bytes[bytes.len() - 1].is_ascii_lowercase()
                || bytes[bytes.len() - 1].is_ascii_digit())
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
            && !name.contains("--");
        if ok {
            Ok(ServerName(name.to_owned()))
        } else {
            Err(NameError::BadServerName)
        }
    }

    pub fn is_default(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn escaped(&self) -> String {
        quote(&self.0, b"@~")
    }
}

impl fmt::Display for ServerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Python's `urllib.parse.quote(s, safe=...)`: ASCII letters, digits and `_.-~` plus the
/// bytes in `safe` stay literal; everything else is percent-encoded as UTF-8.
pub fn quote(s: &str, safe: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"_.-~".contains(&b) || safe.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A user's server URL path under `base_url` (`P`): `P/user/<esc u>/[<esc s>/]`.
pub fn server_prefix(base_url: &str, user: &UserName, server: &ServerName) -> String {
    if server.is_default() {
        format!("{base_url}user/{}/", user.escaped())
    } else {
        format!("{base_url}user/{}/{}/", user.escaped(), server.escaped())
    }
}

/// The OAuth client id of a user's server: `jupyterhub-user-<quote(u)>[-<quote(s)>]`,
/// quoted with `/` safe (Python's default), because it doubles as a cookie name.
pub fn server_client_id(user: &UserName, server: &ServerName) -> String {
    if server.is_default() {
        format!("jupyterhub-user-{}", quote(user.as_str(), b"/"))
    } else {
        format!(
            "jupyterhub-user-{}-{}",
            quote(user.as_str(), b"/"),
            quote(server.as_str(), b"/")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_normalise_like_jupyterhub() {
        assert_eq!(
            UserName::normalize(" Bad Name ").unwrap().as_str(),
            "bad name"
        );
        assert_eq!(UserName::normalize("").unwrap_err(), NameError::Empty);
        assert_eq!(UserName::normalize("a/b").unwrap_err(), NameError::Slash);
        assert_eq!(UserName::normalize("..").unwrap_err(), NameError::OnlyDots);
        assert_eq!(UserName::normalize("a\nb").unwrap_err(), NameError::Control);
        let long = "x".repeat(MAX_USER_NAME + 1);
        assert!(matches!(
            UserName::normalize(&long),
            Err(NameError::TooLong { .. })
        ));
        assert!(UserName::normalize("alice@example.org").is_ok());
    }

    #[test]
    fn server_names_follow_the_6x_rule() {
        assert!(ServerName::parse("").unwrap().is_default());
        for ok in ["nb1", "a", "my-server", "x9"] {
            assert!(ServerName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["Bad_Name", "1abc", "a--b", "abc-", &"a".repeat(31), "a b"] {
            assert!(ServerName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn escaping_matches_python_quote() {
        let u = UserName::normalize("a b@c/d").unwrap_err();
        assert_eq!(u, NameError::Slash);
        let u = UserName::normalize("Ann Lee@x.org").unwrap();
        assert_eq!(u.escaped(), "ann%20lee@x.org");
        assert_eq!(
            server_client_id(&u, &ServerName::default()),
            "jupyterhub-user-ann%20lee%40x.org"
        );
        let nb = ServerName::parse("nb1").unwrap();
        assert_eq!(server_prefix("/", &u, &nb), "/user/ann%20lee@x.org/nb1/");
        assert_eq!(quote("é", b""), "%C3%A9");
    }
}
