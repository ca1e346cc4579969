//! JupyterHub's scopes and default roles, as data (§4 of the protocol reference).
//! Expansion, filtering and checks live in `galilean_actors::policy::scopes`.

/// Every scope and its direct sub-scopes.
pub const SCOPES: &[(&str, &[&str])] = &[
    ("admin-ui", &[]),
    (
        "admin:users",
        &[
            "admin:auth_state",
            "users",
            "read:roles:users",
            "delete:users",
        ],
    ),
    ("admin:auth_state", &[]),
    ("users", &["read:users", "list:users", "users:activity"]),
    ("delete:users", &[]),
    ("list:users", &["read:users:name"]),
    (
        "read:users",
        &[
            "read:users:name",
            "read:users:groups",
            "read:users:activity",
        ],
    ),
    ("read:users:name", &[]),
    ("read:users:groups", &[]),
    ("read:users:activity", &[]),
    (
        "read:roles",
        &[
            "read:roles:users",
            "read:roles:services",
            "read:roles:groups",
        ],
    ),
    ("read:roles:users", &[]),
    ("read:roles:services", &[]),
    ("read:roles:groups", &[]),
    ("users:activity", &["read:users:activity"]),
    ("admin:servers", &["admin:server_state", "servers"]),
    ("admin:server_state", &[]),
    (
        "servers",
        &["read:servers", "start:servers", "delete:servers"],
    ),
    ("read:servers", &["read:users:name"]),
    ("start:servers", &[]),
    ("delete:servers", &[]),
    ("tokens", &["read:tokens"]),
    ("read:tokens", &[]),
    (
        "admin:groups",
        &["groups", "read:roles:groups", "delete:groups"],
    ),
    ("groups", &["read:groups", "list:groups"]),
    ("list:groups", &["read:groups:name"]),
    ("read:groups", &["read:groups:name"]),
    ("read:groups:name", &[]),
    ("delete:groups", &[]),
    (
        "admin:services",
        &["list:services", "read:services", "read:roles:services"],
    ),
    ("list:services", &["read:services:name"]),
    ("read:services", &["read:services:name"]),
    ("read:services:name", &[]),
    ("read:hub", &[]),
    ("access:servers", &[]),
    ("access:services", &[]),
    ("users:shares", &["read:users:shares"]),
    ("read:users:shares", &[]),
    ("groups:shares", &["read:groups:shares"]),
    ("read:groups:shares", &[]),
    ("read:shares", &[]),
    (
        "shares",
        &[
            "access:servers",
            "read:shares",
            "users:shares",
            "groups:shares",
        ],
    ),
    ("proxy", &[]),
    ("shutdown", &[]),
    ("read:metrics", &[]),
];

/// The metascope for a user's own resources.
pub const SELF: &str = "self";
/// The metascope for tokens: everything the owner has.
pub const INHERIT: &str = "inherit";

/// What `self` means for a user: each of these with `!user=<name>`.
pub const SELF_SCOPES: &[&str] = &[
    "read:users",
    "read:users:name",
    "read:users:groups",
    "read:users:activity",
    "users:activity",
    "users:shares",
    "read:users:shares",
    "read:shares",
    "servers",
    "read:servers",
    "start:servers",
    "delete:servers",
    "tokens",
    "read:tokens",
    "access:servers",
];

/// The `admin` role.
pub const ADMIN_ROLE_SCOPES: &[&str] = &[
    "admin-ui",
    "admin:users",
    "admin:servers",
    "admin:services",
    "tokens",
    "admin:groups",
    "list:services",
    "read:services",
    "read:hub",
    "proxy",
    "shutdown",
    "access:services",
    "access:servers",
    "read:roles",
    "read:metrics",
    "shares",
];

/// The `user` role.
pub const USER_ROLE_SCOPES: &[&str] = &[SELF];

/// The `server` role: default scopes of a server's own token.
pub const SERVER_ROLE_SCOPES: &[&str] = &["users:activity!user", "access:servers!server"];

/// The `token` role: default scopes of new API tokens.
pub const TOKEN_ROLE_SCOPES: &[&str] = &[INHERIT];

/// Direct sub-scopes of `scope`, or `None` when it is not a known scope.
pub fn subscopes(scope: &str) -> Option<&'static [&'static str]> {
    SCOPES
        .iter()
        .find(|(s, _)| *s == scope)
        .map(|(_, sub)| *sub)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subscope_is_a_scope() {
        for (scope, subs) in SCOPES {
            for sub in *subs {
                assert!(subscopes(sub).is_some(), "{scope} -> {sub}");
            }
        }
        for s in SELF_SCOPES.iter().chain(ADMIN_ROLE_SCOPES) {
            assert!(subscopes(s).is_some(), "{s}");
        }
    }

    #[test]
    fn self_has_the_fifteen_scopes() {
        assert_eq!(SELF_SCOPES.len(), 15);
    }
}
