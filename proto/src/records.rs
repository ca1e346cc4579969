//! Records as they are persisted in the store. Every record carries a format version
//! `v`; fields added later take `#[serde(default)]` so old records still decode. The
//! golden-bytes tests below pin the current encoding.

use serde::{Deserialize, Serialize};

use crate::time::Micros;

/// Current format version of every record in this module.
pub const FORMAT: u8 = 1;

fn format() -> u8 {
    FORMAT
}

/// A user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    #[serde(default = "format")]
    pub v: u8,
    pub id: u64,
    pub name: String,
    pub admin: bool,
    pub created: Micros,
    pub last_activity: Option<Micros>,
    /// The random id wrapped in this user's login cookies; changing it logs every
    /// browser out.
    pub cookie_id: String,
}

/// Where a server is in its life. `Stopped` servers keep their record (named servers
/// persist; the default server's record is kept for its `user_options`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerPhase {
    Stopped,
    Starting,
    Running,
    Stopping,
}

/// What a spawner persisted about a running process, so that a later owner (or the same
/// node after a restart) can poll, re-adopt or stop it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SpawnerState {
    /// Process id (also the process-group and session id: the server leads both).
    pub pid: Option<i32>,
    /// Host the process runs on (the spawning node's host name).
    pub host: String,
    /// Per-server log file of the process's output.
    pub log_path: Option<String>,
    /// The node that started the process.
    pub node: u64,
    /// The process's start time in clock ticks since boot (`/proc/<pid>/stat` field 22),
    /// so that a recycled pid is never mistaken for the server.
    #[serde(default)]
    pub start_ticks: Option<u64>,
}

/// One (user, server name) and its lifecycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerRecord {
    #[serde(default = "format")]
    pub v: u8,
    pub user: String,
    pub name: String,
    pub display_name: String,
    pub phase: ServerPhase,
    /// Increases at every start: tells two launches of the same server apart.
    pub instance: u64,
    pub started: Option<Micros>,
    pub last_activity: Option<Micros>,
    /// JSON text of the persisted `user_options` (`null` when none).
    pub user_options: String,
    /// Where the server listens, e.g. `http://127.0.0.1:41123`, once known.
    pub target: Option<String>,
    pub spawner: SpawnerState,
    /// Id of the server's own API token while it runs.
    pub token_id: Option<u64>,
    /// Why the last start failed, if it did (cleared by the next start).
    pub last_failure: Option<String>,
}

/// Who owns a token.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Owner {
    User(String),
    Service(String),
}

impl Owner {
    pub fn name(&self) -> &str {
        match self {
            Owner::User(n) | Owner::Service(n) => n,
        }
    }
}

/// An API token, stored under the SHA-256 of its secret; the secret itself is never
/// stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    #[serde(default = "format")]
    pub v: u8,
    pub id: u64,
    /// First four characters of the secret (JupyterHub keeps this too; shown nowhere).
    pub prefix: String,
    pub owner: Owner,
    /// Raw scopes as requested (`inherit`, `read:users!user`, ...), expanded at use.
    pub scopes: Vec<String>,
    pub note: String,
    pub created: Micros,
    pub last_activity: Option<Micros>,
    pub expires_at: Option<Micros>,
    /// Browser session the token was issued under (OAuth tokens).
    pub session_id: Option<String>,
    /// Issuing OAuth client id; `jupyterhub` for API and server tokens.
    pub client_id: String,
}

/// An OAuth client (a user's server, or a service).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthClientRecord {
    #[serde(default = "format")]
    pub v: u8,
    pub client_id: String,
    /// Hex SHA-256 of the client secret (the server's API token).
    pub secret_hash: String,
    pub redirect_uri: String,
    pub description: String,
    pub allowed_scopes: Vec<String>,
    /// The server this client belongs to, as `(user, server name)`.
    pub server: Option<(String, String)>,
    /// The service this client belongs to.
    pub service: Option<String>,
}

/// An authorization code, stored under the SHA-256 of the code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthCodeRecord {
    #[serde(default = "format")]
    pub v: u8,
    pub client_id: String,
    pub user: String,
    pub scopes: Vec<String>,
    pub redirect_uri: String,
    pub session_id: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub expires_at: Micros,
}

/// A group of users (JupyterHub's groups, §2.9). Its members are keys of their own in
/// the store, so adding one does not rewrite the group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    #[serde(default = "format")]
    pub v: u8,
    pub id: u64,
    pub name: String,
    /// JSON text of the group's `properties` object.
    pub properties: String,
    pub created: Micros,
}

/// Whom a share grants access to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ShareWith {
    User(String),
    Group(String),
}

impl ShareWith {
    /// `"user"` or `"group"`, as the share model's `kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            ShareWith::User(_) => "user",
            ShareWith::Group(_) => "group",
        }
    }

    pub fn name(&self) -> &str {
        match self {
            ShareWith::User(n) | ShareWith::Group(n) => n,
        }
    }
}

/// A share (§2.12): access to one server of `owner`, granted to a user or a group, with
/// scopes that always carry the filter `!server=<owner>/<server>`. One per (server,
/// recipient): granting again adds scopes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareRecord {
    #[serde(default = "format")]
    pub v: u8,
    pub owner: String,
    pub server: String,
    pub with: ShareWith,
    /// Sorted, each with the server's filter.
    pub scopes: Vec<String>,
    pub created: Micros,
}

/// A share code (§2.12): exchanged by whoever holds the code for a share of their own.
/// Stored under the SHA-256 of the code; the code itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareCodeRecord {
    #[serde(default = "format")]
    pub v: u8,
    /// `sc_<id>` in the model.
    pub id: u64,
    pub owner: String,
    pub server: String,
    pub scopes: Vec<String>,
    pub created: Micros,
    pub expires_at: Micros,
    pub exchange_count: u64,
    pub last_exchanged_at: Option<Micros>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode, encode};

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn user() -> UserRecord {
        UserRecord {
            v: FORMAT,
            id: 7,
            name: "alice".into(),
            admin: false,
            created: 1_700_000_000_000_000,
            last_activity: None,
            cookie_id: "c1".into(),
        }
    }

    fn token() -> TokenRecord {
        TokenRecord {
            v: FORMAT,
            id: 3,
            prefix: "abcd".into(),
            owner: Owner::User("alice".into()),
            scopes: vec!["inherit".into()],
            note: "n".into(),
            created: 1,
            last_activity: None,
            expires_at: Some(2),
            session_id: None,
            client_id: "jupyterhub".into(),
        }
    }

    #[test]
    fn golden_user_record() {
        let bytes = encode(&user()).unwrap();
        assert_eq!(hex(&bytes), GOLDEN_USER);
        assert_eq!(decode::<UserRecord>(&bytes).unwrap(), user());
    }

    #[test]
    fn golden_token_record() {
        let bytes = encode(&token()).unwrap();
        assert_eq!(hex(&bytes), GOLDEN_TOKEN);
        assert_eq!(decode::<TokenRecord>(&bytes).unwrap(), token());
    }

    #[test]
    fn server_record_round_trips() {
        let s = ServerRecord {
            v: FORMAT,
            user: "alice".into(),
            name: String::new(),
            display_name: String::new(),
            phase: ServerPhase::Running,
            instance: 2,
            started: Some(5),
            last_activity: Some(6),
            user_options: "null".into(),
            target: Some("http://127.0.0.1:1".into()),
            spawner: SpawnerState {
                pid: Some(42),
                host: "h".into(),
                log_path: None,
                node: 1,
                start_ticks: Some(77),
            },
            token_id: Some(9),
            last_failure: None,
        };
        let bytes = encode(&s).unwrap();
        assert_eq!(hex(&bytes), GOLDEN_SERVER);
        assert_eq!(decode::<ServerRecord>(&bytes).unwrap(), s);
    }

    #[test]
    fn golden_group_record() {
        let g = GroupRecord {
            v: FORMAT,
            id: 4,
            name: "physics".into(),
            properties: r#"{"course":"PHY101"}"#.into(),
            created: 9,
        };
        let bytes = encode(&g).unwrap();
        assert_eq!(hex(&bytes), GOLDEN_GROUP);
        assert_eq!(decode::<GroupRecord>(&bytes).unwrap(), g);
    }

    #[test]
    fn golden_share_records() {
        let share = ShareRecord {
            v: FORMAT,
            owner: "alice".into(),
            server: String::new(),
            with: ShareWith::Group("physics".into()),
            scopes: vec!["access:servers!server=alice/".into()],
            created: 5,
        };
        let bytes = encode(&share).unwrap();
        assert_eq!(hex(&bytes), GOLDEN_SHARE);
        assert_eq!(decode::<ShareRecord>(&bytes).unwrap(), share);
        let code = ShareCodeRecord {
            v: FORMAT,
            id: 2,
            owner: "alice".into(),
            server: "nb".into(),
            scopes: vec!["access:servers!server=alice/nb".into()],
            created: 5,
            expires_at: 6,
            exchange_count: 1,
            last_exchanged_at: None,
        };
        let bytes = encode(&code).unwrap();
        assert_eq!(hex(&bytes), GOLDEN_SHARE_CODE);
        assert_eq!(decode::<ShareCodeRecord>(&bytes).unwrap(), code);
    }

    const GOLDEN_SHARE: &str = "86a17601a56f776e6572a5616c696365a6736572766572a0a47769746881a547726f7570a770687973696373a673636f70657391bc6163636573733a73657276657273217365727665723d616c6963652fa76372656174656405";
    const GOLDEN_SHARE_CODE: &str = "89a17601a2696402a56f776e6572a5616c696365a6736572766572a26e62a673636f70657391be6163636573733a73657276657273217365727665723d616c6963652f6e62a76372656174656405aa657870697265735f617406ae65786368616e67655f636f756e7401b16c6173745f65786368616e6765645f6174c0";
    const GOLDEN_GROUP: &str = "85a17601a2696404a46e616d65a770687973696373aa70726f70657274696573b37b22636f75727365223a22504859313031227da76372656174656409";
    const GOLDEN_USER: &str =
        "87a17601a2696407a46e616d65a5616c696365a561646d696ec2a763726561746564cf00060a24181e4000ad6c6173745f6163746976697479c0a9636f6f6b69655f6964a26331";
    const GOLDEN_TOKEN: &str =
        "8ba17601a2696403a6707265666978a461626364a56f776e657281a455736572a5616c696365a673636f70657391a7696e6865726974a46e6f7465a16ea76372656174656401ad6c6173745f6163746976697479c0aa657870697265735f617402aa73657373696f6e5f6964c0a9636c69656e745f6964aa6a757079746572687562";
    const GOLDEN_SERVER: &str =
        "8da17601a475736572a5616c696365a46e616d65a0ac646973706c61795f6e616d65a0a57068617365a752756e6e696e67a8696e7374616e636502a77374617274656405ad6c6173745f616374697669747906ac757365725f6f7074696f6e73a46e756c6ca6746172676574b2687474703a2f2f3132372e302e302e313a31a7737061776e657285a37069642aa4686f7374a168a86c6f675f70617468c0a46e6f646501ab73746172745f7469636b734da8746f6b656e5f696409ac6c6173745f6661696c757265c0";
}
