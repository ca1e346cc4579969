//! The rules for a server a request names: whether named servers are enabled, the name
//! rule for new servers, a user's limit of named servers, and the display-name rule
//! (§2.6 of the protocol reference). The API and the spawn page ask these same
//! functions, so both give the same answer.

use std::fmt;

use galilean_proto::names::{ServerName, UserName};
use galilean_proto::records::ServerPhase;

use crate::error::OpError;
use crate::policy::text::clip;
use crate::replica::State;

/// Why a request for a server is refused before it reaches the server's owner (a 400,
/// JupyterHub's message in `Display`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerRefusal {
    NamedServersDisabled,
    /// The name breaks the rule for new servers (the name as given).
    InvalidName(String),
    /// The user already has `limit` named servers and this one would be one more.
    LimitReached {
        user: String,
        limit: u64,
    },
    InvalidDisplayName,
}

impl fmt::Display for ServerRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerRefusal::NamedServersDisabled => f.write_str("Named servers are not enabled."),
            ServerRefusal::InvalidName(raw) => write!(f, "Invalid server_name: '{}'", clip(raw)),
            ServerRefusal::LimitReached { user, limit } => write!(
                f,
                "User {user} already has the maximum of {limit} named servers.  One must be \
                 deleted before a new server can be created"
            ),
            ServerRefusal::InvalidDisplayName => f.write_str("Invalid display_name"),
        }
    }
}

/// The server a start names (`""`: the default server), by the rule for new names.
pub fn requested_server(raw: &str, allow_named: bool) -> Result<ServerName, ServerRefusal> {
    if raw.is_empty() {
        return Ok(ServerName::default());
    }
    if !allow_named {
        return Err(ServerRefusal::NamedServersDisabled);
    }
    ServerName::parse(raw).map_err(|_| ServerRefusal::InvalidName(raw.to_owned()))
}

/// A display name as given (`display_name` in the body, or `?display_name=` on the
/// spawn page): trimmed, then 1–255 characters, none a control character, no double
/// spaces.
pub fn display_name(raw: &str) -> Result<String, ServerRefusal> {
    let s = raw.trim();
    if s.is_empty()
        || s.chars().count() > 255
        || s.chars().any(char::is_control)
        || s.contains("  ")
    {
        return Err(ServerRefusal::InvalidDisplayName);
    }
    Ok(s.to_owned())
}

/// Refuses starting `server` when it would be one named server more than
/// `named_server_limit_per_user` (0: no limit) allows: the user's named servers that are
/// not stopped count, and starting one that already counts is always allowed.
pub fn within_named_limit(
    state: &State,
    user: &UserName,
    server: &ServerName,
    limit: u64,
) -> Result<(), ServerRefusal> {
    if server.is_default() || limit == 0 {
        return Ok(());
    }
    let active = |r: &galilean_proto::records::ServerRecord| r.phase != ServerPhase::Stopped;
    let count = state
        .servers_of(user.as_str())
        .filter(|r| !r.name.is_empty() && active(r))
        .count();
    let exists = state
        .servers
        .get(&(user.as_str().to_owned(), server.as_str().to_owned()))
        .is_some_and(|r| active(r));
    if !exists && count as u64 >= limit {
        return Err(ServerRefusal::LimitReached {
            user: user.as_str().to_owned(),
            limit,
        });
    }
    Ok(())
}

/// The user a call that crossed the wire names (its sender validated it).
pub fn user_of_call(user: &str) -> Result<UserName, OpError> {
    UserName::parse(user).map_err(|e| OpError::BadRequest(e.to_string()))
}

/// The (user, server) a call that crossed the wire names (its sender validated them).
pub fn names_of_call(user: &str, server: &str) -> Result<(UserName, ServerName), OpError> {
    let user = user_of_call(user)?;
    let server = ServerName::parse(server).map_err(|e| OpError::BadRequest(e.to_string()))?;
    Ok((user, server))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_servers_need_enabling_and_a_valid_name() {
        assert_eq!(requested_server("", false), Ok(ServerName::default()));
        assert_eq!(
            requested_server("nb1", false),
            Err(ServerRefusal::NamedServersDisabled)
        );
        assert_eq!(requested_server("nb1", true).unwrap().as_str(), "nb1");
        let bad = requested_server("Bad_Name", true).unwrap_err();
        assert_eq!(bad.to_string(), "Invalid server_name: 'Bad_Name'");
    }

    #[test]
    fn display_names_are_trimmed_and_checked() {
        assert_eq!(display_name("  My NB 1 ").unwrap(), "My NB 1");
        for bad in ["", "   ", "a  b", "tab\there", &"x".repeat(256)] {
            assert_eq!(
                display_name(bad),
                Err(ServerRefusal::InvalidDisplayName),
                "{bad:?}"
            );
        }
        assert!(display_name(&"x".repeat(255)).is_ok());
    }
}
