//! What crosses between hub nodes: a [`Call`] on one user's actors, routed to the node
//! that owns the user, and its [`Reply`] (or a [`WireError`]). They travel as rmp-serde
//! bytes with named fields inside ractor_cluster messages, so a node can decode what a
//! node of an earlier build sent: fields added later take `#[serde(default)]`, and the
//! golden-bytes tests below pin each encoding.

use serde::{Deserialize, Serialize};

use crate::codec::{encode, CodecError};
use crate::models::ProgressEvent;
use crate::records::{Owner, ServerPhase, TokenRecord, UserRecord};

/// An operation on one user's actors, or (pings, waits) on a node itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Call {
    CreateUser {
        name: String,
        admin: bool,
    },
    SetAdmin {
        name: String,
        admin: bool,
    },
    DeleteUser {
        name: String,
    },
    CreateToken {
        name: String,
        spec: NewToken,
    },
    DeleteToken {
        name: String,
        id: u64,
    },
    EndSession {
        name: String,
        session_id: String,
    },
    Start {
        user: String,
        server: String,
        user_options: Option<String>,
        display_name: Option<String>,
        wait_ms: u64,
    },
    Stop {
        user: String,
        server: String,
        remove: bool,
        wait_ms: u64,
    },
    Status {
        user: String,
        server: String,
    },
    /// Liveness, from the leader: answered by the node router itself once its replica
    /// has `version` (the leader's), which renews its serving lease.
    ///
    /// The lease counts from when the leader last proved it led: `proof_age_ms` before
    /// `sent_unix_ms` (its last quorum acknowledgement). So every lease a leader grants
    /// ends within the serving lease's length of the last moment it provably led, which
    /// a successor can bound: no later than its own election.
    ///
    /// Only a ping with `grant` renews the lease: the leader grants to members of the
    /// live set that answered its previous ping, and drops a member from the set only
    /// once the last lease it granted it has run out. A member outside the set is pinged
    /// to learn whether it answers again, but writes do not wait for it, so it must not
    /// serve until it is back in the set.
    Ping {
        version: u64,
        sent_unix_ms: u64,
        #[serde(default)]
        proof_age_ms: u64,
        #[serde(default = "granted")]
        grant: bool,
    },
    /// Answered once the receiving node's replica has `version` (a revocation waits
    /// for it).
    WaitApplied {
        version: u64,
    },
}

/// A ping from a leader that does not say whether it grants a lease grants one.
fn granted() -> bool {
    true
}

impl Call {
    /// The user whose owner runs this call; `None` for a call about the node itself,
    /// which the node it is sent to answers.
    pub fn user(&self) -> Option<&str> {
        Some(match self {
            Call::CreateUser { name, .. }
            | Call::SetAdmin { name, .. }
            | Call::DeleteUser { name }
            | Call::CreateToken { name, .. }
            | Call::DeleteToken { name, .. }
            | Call::EndSession { name, .. } => name,
            Call::Start { user, .. } | Call::Stop { user, .. } | Call::Status { user, .. } => user,
            Call::Ping { .. } | Call::WaitApplied { .. } => return None,
        })
    }

    /// How long the call may take at its owner, in milliseconds (0: no wait).
    pub fn wait_ms(&self) -> u64 {
        match self {
            Call::Start { wait_ms, .. } | Call::Stop { wait_ms, .. } => *wait_ms,
            _ => 0,
        }
    }
}

/// What a new token should be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewToken {
    pub owner: Owner,
    pub scopes: Vec<String>,
    pub note: String,
    pub expires_in: Option<u64>,
    pub session_id: Option<String>,
    pub client_id: String,
}

/// How a start ended within the wait.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StartOutcome {
    Ready,
    /// The spawn failed; the message carries the reason.
    Failed(String),
    /// Still starting when the wait ended.
    Pending,
}

/// A server's state as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerSummary {
    pub phase: ServerPhase,
    /// The last start failed (and nothing has been started since).
    pub last_failure: Option<String>,
    /// Progress events of the current (or last failed) start.
    pub events: Vec<ProgressEvent>,
}

impl ServerSummary {
    /// Whether the progress ended (ready or failed).
    pub fn finished(&self) -> bool {
        self.events.last().is_some_and(ProgressEvent::is_terminal)
    }
}

/// The answer to a [`Call`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    User(UserRecord),
    Done,
    Token(TokenRecord, String),
    Started(StartOutcome),
    /// Whether the server stopped within the wait.
    Stopped(bool),
    Status(ServerSummary),
}

/// A failed call as it crosses the wire: the kinds of error a caller acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireError {
    NotFound(String),
    Exists(String),
    BadRequest(String),
    Forbidden(String),
    Unavailable(String),
    /// The user's actors moved to another node: nothing was done.
    Moved(String),
    Internal(String),
}

/// What a node router actor is sent: the call, and the live-set epoch the caller routed
/// it by (0: no set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routed {
    pub call: Call,
    pub epoch: u64,
}

impl Routed {
    /// The bytes of `call` routed by `epoch`.
    pub fn encode(call: &Call, epoch: u64) -> Result<Vec<u8>, CodecError> {
        encode(&Routed {
            call: call.clone(),
            epoch,
        })
    }
}

/// What a node router actor answers: the call's result, and the version of the
/// answering node's replica after the call (the caller waits until its own replica has
/// it, for read-your-writes).
pub type Answer = (Result<Reply, WireError>, u64);

#[cfg(test)]
mod tests;
