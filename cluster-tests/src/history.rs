//! The recorded history of a chaos run: one JSON object per line (JSONL), in the order
//! the harness learned of each entry. Times are milliseconds since the run started, on
//! the harness's monotonic clock.
//!
//! A history is self-contained: the checker needs nothing else. It holds the run's
//! parameters, every operation with its invocation and completion times and outcome,
//! every fault, the tiny servers' start and exit events (from their append-only file,
//! in its order), each node's own state after healing, and whether every running server
//! was reachable through every node.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// One line of a history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Entry {
    Run(RunInfo),
    Op(Op),
    Fault(Fault),
    ServerEvent(ServerEvent),
    NodeState(NodeState),
    Reach(Reach),
}

/// The run's parameters, first in every history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub seed: u64,
    pub nodes: u32,
    pub profile: String,
    /// The fault kinds the schedule drew from.
    pub faults: Vec<FaultKind>,
    pub duration_ms: u64,
    /// The run fails below this many completed operations per second (the checker would
    /// have nothing to judge).
    pub min_ops_per_sec: f64,
    /// The run fails when more than this share of outcomes are unknown.
    pub max_unknown_share: f64,
    /// Whether more than a minority of nodes may be faulty at once (then unavailability
    /// is expected; wrong answers never are).
    pub majority_faults: bool,
    /// `netns` (namespaces, partitions in the kernel) or `loopback` (the harness's relay);
    /// empty in histories recorded before it was noted.
    #[serde(default)]
    pub network: String,
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A 2xx answer (or, for a proxied WebSocket, a complete echo).
    Ok,
    /// A definite error answer (4xx or 5xx) or a refused connection. A 5xx may still
    /// have been applied (a write whose forward was lost answers 503), so the checker
    /// never assumes a failed write did not happen.
    Failed,
    /// No answer in time: the operation may or may not have happened.
    Unknown,
}

/// One client operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    pub id: u64,
    pub client: u32,
    /// The node the request was sent to.
    pub node: u32,
    pub invoke_ms: u64,
    pub complete_ms: u64,
    pub outcome: Outcome,
    /// The HTTP status, when one arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(flatten)]
    pub kind: OpKind,
    /// The error message or an excerpt of the answer, for the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What an operation did, with what it returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum OpKind {
    /// `POST /hub/api/users/{user}`.
    CreateUser { user: String },
    /// `DELETE /hub/api/users/{user}`.
    DeleteUser { user: String },
    /// `GET /hub/api/users/{user}`: `found` when it answered 200 (true) or 404 (false).
    ReadUser {
        user: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        found: Option<bool>,
    },
    /// `POST /hub/api/users/{user}/tokens`: the new token's id and secret when ok.
    CreateToken {
        user: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<String>,
    },
    /// `DELETE /hub/api/users/{user}/tokens/{token_id}`.
    RevokeToken { user: String, token_id: String },
    /// `GET /hub/api/user` with the token: `accepted` when it answered 200 (true) or
    /// 401/403 (false).
    CheckToken {
        user: String,
        token_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        accepted: Option<bool>,
    },
    /// `POST /hub/api/users/{user}/server`.
    StartServer { user: String },
    /// `DELETE /hub/api/users/{user}/server`.
    StopServer { user: String },
    /// `GET /user/{user}/whoami` through the node's proxy: the server's pid when ok.
    ProxyHttp {
        user: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pid: Option<u32>,
    },
    /// A WebSocket to `/user/{user}/echo` through the node's proxy, one message echoed.
    ProxyWs { user: String },
    /// `POST /hub/api/groups/{group}/users` with `{"users": [user]}`.
    AddToGroup { group: String, user: String },
    /// `DELETE /hub/api/groups/{group}/users` with `{"users": [user]}`.
    RemoveFromGroup { group: String, user: String },
    /// `GET /hub/api/users/{user}` with the reader's token, whose role reads the members
    /// of `group` (`read:users!group=...`) and no one else but the reader: `honoured`
    /// when it answered 200 (true) or 404 (false).
    CheckGrant {
        group: String,
        user: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        honoured: Option<bool>,
    },
}

impl OpKind {
    /// The operation's name, as in the history (`create_user`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            OpKind::CreateUser { .. } => "create_user",
            OpKind::DeleteUser { .. } => "delete_user",
            OpKind::ReadUser { .. } => "read_user",
            OpKind::CreateToken { .. } => "create_token",
            OpKind::RevokeToken { .. } => "revoke_token",
            OpKind::CheckToken { .. } => "check_token",
            OpKind::StartServer { .. } => "start_server",
            OpKind::StopServer { .. } => "stop_server",
            OpKind::ProxyHttp { .. } => "proxy_http",
            OpKind::ProxyWs { .. } => "proxy_ws",
            OpKind::AddToGroup { .. } => "add_to_group",
            OpKind::RemoveFromGroup { .. } => "remove_from_group",
            OpKind::CheckGrant { .. } => "check_grant",
        }
    }

    pub fn user(&self) -> &str {
        match self {
            OpKind::CreateUser { user }
            | OpKind::DeleteUser { user }
            | OpKind::ReadUser { user, .. }
            | OpKind::CreateToken { user, .. }
            | OpKind::RevokeToken { user, .. }
            | OpKind::CheckToken { user, .. }
            | OpKind::StartServer { user }
            | OpKind::StopServer { user }
            | OpKind::ProxyHttp { user, .. }
            | OpKind::ProxyWs { user }
            | OpKind::AddToGroup { user, .. }
            | OpKind::RemoveFromGroup { user, .. }
            | OpKind::CheckGrant { user, .. } => user,
        }
    }
}

/// The kinds of fault the harness injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// kill -9, then a restart when the fault ends.
    Kill,
    /// SIGSTOP, then SIGCONT.
    Hang,
    /// The raft leader (or lease holder) hung: SIGSTOP, then SIGCONT.
    LeaderHang,
    /// One node cut off from every other node and from the clients.
    Partition,
    /// The raft leader (or lease holder) cut off.
    LeaderIsolation,
    /// One node's link going down and up repeatedly.
    Flap,
    /// A clean restart: SIGTERM, then start again.
    Restart,
}

impl FaultKind {
    pub const ALL: [FaultKind; 7] = [
        FaultKind::Kill,
        FaultKind::Hang,
        FaultKind::LeaderHang,
        FaultKind::Partition,
        FaultKind::LeaderIsolation,
        FaultKind::Flap,
        FaultKind::Restart,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Hang => "hang",
            FaultKind::LeaderHang => "leader_hang",
            FaultKind::Partition => "partition",
            FaultKind::LeaderIsolation => "leader_isolation",
            FaultKind::Flap => "flap",
            FaultKind::Restart => "restart",
        }
    }

    /// Parses a `--faults` item: the names above, `leader` for leader isolation,
    /// `leader-hang` for a hang of the leader.
    pub fn parse(s: &str) -> Option<FaultKind> {
        match s {
            "leader" => Some(FaultKind::LeaderIsolation),
            "leader-hang" => Some(FaultKind::LeaderHang),
            _ => FaultKind::ALL.into_iter().find(|k| k.name() == s),
        }
    }
}

/// One injected fault, from when it was applied until it was healed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    pub id: u64,
    pub kind: FaultKind,
    pub nodes: Vec<u32>,
    pub start_ms: u64,
    pub end_ms: u64,
}

/// What a tiny server's events file says, in the file's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerEventKind {
    Start,
    Exit,
    /// Recorded by the harness at the end: no `exit` line, and the process is gone (it
    /// was killed with SIGKILL at an unknown time).
    Vanished,
    /// Recorded by the harness at the end: no `exit` line, and the process still runs.
    AliveAtEnd,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerEvent {
    pub event: ServerEventKind,
    pub user: String,
    /// `""` for the default server.
    pub server: String,
    pub pid: u32,
}

/// A node's own state after healing, read from its local replica (not through the API,
/// which may ask another node).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeState {
    pub node: u32,
    /// The store version the node had applied.
    pub version: u64,
    /// A digest of the whole replica at that version.
    pub digest: String,
    pub users: BTreeMap<String, UserState>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserState {
    /// Token ids.
    pub tokens: Vec<String>,
    /// Server name (`""` for the default) to its phase (`running`, `stopped`, ...).
    pub servers: BTreeMap<String, String>,
}

/// Whether a running server answered through a node's proxy after healing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reach {
    pub node: u32,
    pub user: String,
    pub server: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Writes entries as JSONL.
pub fn write(path: &Path, entries: &[Entry]) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for e in entries {
        serde_json::to_writer(&mut out, e)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// Reads a JSONL history; an error names the line.
pub fn read(path: &Path) -> Result<Vec<Entry>, String> {
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut entries = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let entry = serde_json::from_str(&line)
            .map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?;
        entries.push(entry);
    }
    Ok(entries)
}
