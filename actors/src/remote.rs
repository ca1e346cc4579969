//! Operations on users and servers addressed to their owner, wherever it runs.
//!
//! [`Router::call`] runs a [`Call`] on this node's actors when this node owns the user,
//! else sends it over ractor_cluster to the owner's **node router actor**, the only
//! remotable actor (one per node, in the process group `galilean-router-<id>`), which runs
//! it on its local actors. Calls and replies cross the wire as rmp-serde bytes inside a
//! `Vec<u8>`, so a bad payload is an error value, never a panic in the transport.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use galilean_proto::models::ProgressEvent;
use galilean_proto::names::{ServerName, UserName};
use galilean_proto::records::{ServerPhase, TokenRecord, UserRecord};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::{Deserialize, Serialize};

use crate::error::OpError;
use crate::ops::NewToken;
use crate::router::{ask, Router};
use crate::server::ServerMsg;
use crate::user::UserMsg;

/// Extra time a remote call may take beyond the wait it asks for.
const REMOTE_SLACK: Duration = Duration::from_secs(10);
/// How long a call waits for its owner's node to be connected.
const CONNECT_WAIT: Duration = Duration::from_secs(3);

/// An operation on one user's actors.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// ends within [`SERVE_LEASE`] of the last moment it provably led, which a successor
    /// can bound: no later than its own election.
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
    /// Answered once this node's replica has `version` (a revocation waits for it).
    WaitApplied {
        version: u64,
    },
}

impl Call {
    /// The user whose owner runs this call; `None` for a call about the node itself,
    /// which the node it is sent to answers.
    fn user(&self) -> Option<&str> {
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

    /// How long the call may take at its owner.
    fn wait(&self) -> Duration {
        match self {
            Call::Start { wait_ms, .. } | Call::Stop { wait_ms, .. } => {
                Duration::from_millis(*wait_ms)
            }
            _ => Duration::ZERO,
        }
    }

    /// This call with `spent` taken off its wait: a call that goes again after a move
    /// still answers within the wait its caller gave (a start then answers "pending").
    fn less_wait(mut self, spent: Duration) -> Call {
        if let Call::Start { wait_ms, .. } | Call::Stop { wait_ms, .. } = &mut self {
            let spent = u64::try_from(spent.as_millis()).unwrap_or(u64::MAX);
            *wait_ms = wait_ms.saturating_sub(spent);
        }
        self
    }
}

/// A ping from a leader that does not say whether it grants a lease grants one.
fn granted() -> bool {
    true
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
#[derive(Debug, Clone, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Reply {
    User(UserRecord),
    Done,
    Token(TokenRecord, String),
    Started(StartOutcome),
    /// Whether the server stopped within the wait.
    Stopped(bool),
    Status(ServerSummary),
}

/// An [`OpError`] as it crosses the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum WireError {
    NotFound(String),
    Exists(String),
    BadRequest(String),
    Forbidden(String),
    Unavailable(String),
    Moved(String),
    Internal(String),
}

impl From<OpError> for WireError {
    fn from(e: OpError) -> WireError {
        match e {
            OpError::NotFound(m) => WireError::NotFound(m),
            OpError::Exists(m) => WireError::Exists(m),
            OpError::BadRequest(m) => WireError::BadRequest(m),
            OpError::Forbidden(m) => WireError::Forbidden(m),
            OpError::Unavailable(m) => WireError::Unavailable(m),
            OpError::Moved(m) => WireError::Moved(m),
            OpError::Store(galilean_storage::StoreError::TooLarge(what)) => {
                WireError::BadRequest(format!("{what} too large"))
            }
            OpError::Store(galilean_storage::StoreError::Unavailable(m)) => {
                WireError::Unavailable(m)
            }
            // the owner's store stayed overloaded through every retry
            OpError::Store(e) if e.is_retryable() => WireError::Unavailable(e.to_string()),
            other => WireError::Internal(other.to_string()),
        }
    }
}

impl From<WireError> for OpError {
    fn from(e: WireError) -> OpError {
        match e {
            WireError::NotFound(m) => OpError::NotFound(m),
            WireError::Exists(m) => OpError::Exists(m),
            WireError::BadRequest(m) => OpError::BadRequest(m),
            WireError::Forbidden(m) => OpError::Forbidden(m),
            WireError::Unavailable(m) => OpError::Unavailable(m),
            WireError::Moved(m) => OpError::Moved(m),
            WireError::Internal(m) => OpError::Corrupt(m),
        }
    }
}

fn server_name(s: &str) -> Result<ServerName, OpError> {
    if s.is_empty() {
        Ok(ServerName::default())
    } else {
        ServerName::parse(s).map_err(|e| OpError::BadRequest(e.to_string()))
    }
}

fn user_name(s: &str) -> Result<UserName, OpError> {
    UserName::parse(s).map_err(|e| OpError::BadRequest(e.to_string()))
}

/// Milliseconds since the Unix epoch (pings carry their send time; members' clocks are
/// assumed to agree within a fraction of `PING_TIMEOUT`, as NTP keeps them).
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// How long a call keeps following its user's actors while they move between nodes,
/// counted from the first refusal it meets: a call that waited long at the old owner (a
/// start, a stop) before the move still gets the whole of it.
const MOVE_WAIT: Duration = Duration::from_secs(3);
/// How long a call refused with "moved" waits for this node to see a new owner before
/// it goes again to the same one.
const MOVED_RETRY: Duration = Duration::from_millis(200);

/// The process group of node `id`'s router actor.
pub fn router_group(id: u64) -> String {
    format!("galilean-router-{id}")
}

impl Router {
    /// Runs `call` at the owner of its user: here, or over the cluster.
    pub async fn call(self: &Arc<Self>, call: Call) -> Result<Reply, OpError> {
        let Some(user) = call.user().map(str::to_owned) else {
            return self.call_local(call).await;
        };
        // a call that reaches a node which no longer owns the user was refused before it
        // did anything: it goes again to the owner, once this node has seen the move. A
        // call refused by a stale actor (its owner kept the user, or got it back) goes
        // again to the same owner, which replaces the actor.
        let began = tokio::time::Instant::now();
        let mut deadline = None;
        loop {
            let (owner, epoch) = self.route(&user)?;
            let attempt = call.clone().less_wait(began.elapsed());
            let answer = if owner == self.node_id() {
                self.call_local(attempt).await
            } else {
                self.call_remote(owner, epoch, &user, attempt).await
            };
            let now = tokio::time::Instant::now();
            match answer {
                Err(OpError::Moved(why)) => {
                    let deadline = *deadline.get_or_insert(now + MOVE_WAIT);
                    if now >= deadline {
                        return Err(OpError::Moved(why));
                    }
                    tracing::debug!(%user, "retrying a call that met a move: {why}");
                    let again = (now + MOVED_RETRY).min(deadline);
                    while self.owner_of(&user).ok() == Some(owner)
                        && tokio::time::Instant::now() < again
                    {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                other => return other,
            }
        }
    }

    /// Sends `call` to `owner`, which owns `user` by the live set of `epoch`.
    async fn call_remote(
        &self,
        owner: u64,
        epoch: u64,
        user: &str,
        call: Call,
    ) -> Result<Reply, OpError> {
        // a peer that is (re)connecting gets a moment before the call fails
        let deadline = tokio::time::Instant::now() + CONNECT_WAIT;
        let cell = loop {
            if let Some(cell) = ractor::pg::get_members(&router_group(owner))
                .into_iter()
                .next()
            {
                break cell;
            }
            if self.owner_of(user).ok() != Some(owner) {
                return Err(OpError::Moved(format!(
                    "node {owner} is not connected and no longer owns {user}"
                )));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(OpError::Unavailable(format!(
                    "node {owner}, which owns {user}, is not connected"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let actor: ActorRef<RouterMsg> = cell.into();
        let timeout = call.wait() + REMOTE_SLACK;
        let bytes = Routed::encode(&call, epoch)?;
        // a hung owner never answers: give up as soon as it is no longer the owner
        let moved = async {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if self.owner_of(user).ok() != Some(owner) {
                    return;
                }
            }
        };
        let answer = tokio::select! {
            a = actor.call(|port| RouterMsg::Call(bytes, port), Some(timeout)) => a,
            // the old owner refuses the call if it ever gets it (it checks ownership on
            // arrival, and its writes are fenced): safe to go to the new owner
            () = moved => {
                return Err(OpError::Moved(format!(
                    "node {owner} stopped answering and no longer owns {user}"
                )))
            }
        }
        .map_err(|e| OpError::Unavailable(format!("node {owner}: {e}")))?;
        let ractor::rpc::CallResult::Success(bytes) = answer else {
            return Err(OpError::Unavailable(format!(
                "node {owner} did not answer in time"
            )));
        };
        let (reply, version): (Result<Reply, WireError>, u64) =
            rmp_serde::from_slice(&bytes).map_err(|e| OpError::Corrupt(e.to_string()))?;
        // read-your-writes here too: wait until this node's replica has what the owner
        // had when it answered
        let caught_up =
            tokio::time::timeout(REMOTE_SLACK, self.ctx().replica.wait_for(version)).await;
        if caught_up.is_err() {
            return Err(OpError::Unavailable(format!(
                "this node's replica did not reach version {version}"
            )));
        }
        reply.map_err(OpError::from)
    }

    /// Runs `call` on this node's actors.
    pub async fn call_local(self: &Arc<Self>, call: Call) -> Result<Reply, OpError> {
        match call {
            Call::Ping {
                version,
                sent_unix_ms,
                proof_age_ms,
                grant,
            } => {
                // a ping that waited (in a socket, or while this process was stopped)
                // proves nothing about now: only a fresh one renews the lease, and the
                // lease counts from when the leader sent it
                let age = || Duration::from_millis(unix_ms().saturating_sub(sent_unix_ms));
                if age() > PING_TIMEOUT {
                    return Err(OpError::Unavailable(format!(
                        "a stale ping ({:?} old)",
                        age()
                    )));
                }
                if !grant {
                    // answering says this node is back; it serves once the leader has it
                    // in the live set again and grants a lease
                    return Ok(Reply::Done);
                }
                self.catch_up(version, PING_TIMEOUT / 2).await?;
                let age = age();
                if age > PING_TIMEOUT {
                    return Err(OpError::Unavailable(format!("a stale ping ({age:?} old)")));
                }
                self.mark_caught_up_since(age + Duration::from_millis(proof_age_ms));
                Ok(Reply::Done)
            }
            Call::WaitApplied { version } => {
                self.catch_up(version, SERVE_LEASE).await?;
                Ok(Reply::Done)
            }
            Call::CreateUser { name, admin } => {
                let actor = self.user(&user_name(&name)?).await?;
                Ok(Reply::User(
                    ask(&actor, |reply| UserMsg::Create { admin, reply }).await??,
                ))
            }
            Call::SetAdmin { name, admin } => {
                let actor = self.user(&user_name(&name)?).await?;
                Ok(Reply::User(
                    ask(&actor, |reply| UserMsg::SetAdmin { admin, reply }).await??,
                ))
            }
            Call::DeleteUser { name } => {
                let actor = self.user(&user_name(&name)?).await?;
                ask(&actor, |reply| UserMsg::Delete { reply }).await??;
                Ok(Reply::Done)
            }
            Call::CreateToken { name, spec } => {
                let actor = self.user(&user_name(&name)?).await?;
                let (rec, secret) =
                    ask(&actor, |reply| UserMsg::CreateToken { spec, reply }).await??;
                Ok(Reply::Token(rec, secret))
            }
            Call::DeleteToken { name, id } => {
                let actor = self.user(&user_name(&name)?).await?;
                ask(&actor, |reply| UserMsg::DeleteToken { id, reply }).await??;
                Ok(Reply::Done)
            }
            Call::EndSession { name, session_id } => {
                let actor = self.user(&user_name(&name)?).await?;
                ask(&actor, |reply| UserMsg::EndSession { session_id, reply }).await??;
                Ok(Reply::Done)
            }
            Call::Start {
                user,
                server,
                user_options,
                display_name,
                wait_ms,
            } => {
                let actor = self
                    .server(&user_name(&user)?, &server_name(&server)?)
                    .await?;
                let mut progress = ask(&actor, |reply| ServerMsg::Start {
                    user_options,
                    display_name,
                    reply,
                })
                .await??;
                let wait = Duration::from_millis(wait_ms);
                let outcome =
                    match tokio::time::timeout(wait, progress.wait_for(|p| p.finished())).await {
                        Ok(Ok(p)) => match p.events.last() {
                            Some(ev) if ev.ready == Some(true) => StartOutcome::Ready,
                            Some(ev) => StartOutcome::Failed(ev.message.clone()),
                            None => StartOutcome::Pending,
                        },
                        _ => StartOutcome::Pending,
                    };
                Ok(Reply::Started(outcome))
            }
            Call::Stop {
                user,
                server,
                remove,
                wait_ms,
            } => {
                let actor = self
                    .server(&user_name(&user)?, &server_name(&server)?)
                    .await?;
                let mut done = ask(&actor, |reply| ServerMsg::Stop { remove, reply }).await??;
                let wait = Duration::from_millis(wait_ms);
                let stopped = tokio::time::timeout(wait, done.wait_for(|d| *d))
                    .await
                    .is_ok();
                Ok(Reply::Stopped(stopped))
            }
            Call::Status { user, server } => {
                let actor = self
                    .server(&user_name(&user)?, &server_name(&server)?)
                    .await?;
                let status = ask(&actor, |reply| ServerMsg::Status { reply }).await?;
                let events = status.progress.borrow().events.clone();
                Ok(Reply::Status(ServerSummary {
                    phase: status.phase,
                    last_failure: status.last_failure,
                    events,
                }))
            }
        }
    }

    // typed helpers over `call`

    pub async fn create_user(
        self: &Arc<Self>,
        name: &UserName,
        admin: bool,
    ) -> Result<UserRecord, OpError> {
        match self
            .call(Call::CreateUser {
                name: name.as_str().into(),
                admin,
            })
            .await?
        {
            Reply::User(u) => Ok(u),
            other => Err(unexpected(other)),
        }
    }

    pub async fn set_admin(
        self: &Arc<Self>,
        name: &UserName,
        admin: bool,
    ) -> Result<UserRecord, OpError> {
        match self
            .call(Call::SetAdmin {
                name: name.as_str().into(),
                admin,
            })
            .await?
        {
            Reply::User(u) => Ok(u),
            other => Err(unexpected(other)),
        }
    }

    pub async fn delete_user(self: &Arc<Self>, name: &UserName) -> Result<(), OpError> {
        self.call(Call::DeleteUser {
            name: name.as_str().into(),
        })
        .await?;
        self.await_everywhere().await;
        Ok(())
    }

    pub async fn create_token(
        self: &Arc<Self>,
        name: &UserName,
        spec: NewToken,
    ) -> Result<(TokenRecord, String), OpError> {
        match self
            .call(Call::CreateToken {
                name: name.as_str().into(),
                spec,
            })
            .await?
        {
            Reply::Token(rec, secret) => Ok((rec, secret)),
            other => Err(unexpected(other)),
        }
    }

    pub async fn delete_token(self: &Arc<Self>, name: &UserName, id: u64) -> Result<(), OpError> {
        self.call(Call::DeleteToken {
            name: name.as_str().into(),
            id,
        })
        .await?;
        self.await_everywhere().await;
        Ok(())
    }

    pub async fn end_session(
        self: &Arc<Self>,
        name: &UserName,
        session_id: &str,
    ) -> Result<(), OpError> {
        self.call(Call::EndSession {
            name: name.as_str().into(),
            session_id: session_id.into(),
        })
        .await?;
        self.await_everywhere().await;
        Ok(())
    }

    /// Starts a server and waits up to `wait` for it to be ready or fail.
    pub async fn start_server(
        self: &Arc<Self>,
        user: &UserName,
        server: &ServerName,
        user_options: Option<String>,
        display_name: Option<String>,
        wait: Duration,
    ) -> Result<StartOutcome, OpError> {
        let call = Call::Start {
            user: user.as_str().into(),
            server: server.as_str().into(),
            user_options,
            display_name,
            wait_ms: wait.as_millis() as u64,
        };
        match self.call(call).await? {
            Reply::Started(o) => Ok(o),
            other => Err(unexpected(other)),
        }
    }

    /// Stops a server; `true` when it stopped within `wait`.
    pub async fn stop_server(
        self: &Arc<Self>,
        user: &UserName,
        server: &ServerName,
        remove: bool,
        wait: Duration,
    ) -> Result<bool, OpError> {
        let call = Call::Stop {
            user: user.as_str().into(),
            server: server.as_str().into(),
            remove,
            wait_ms: wait.as_millis() as u64,
        };
        match self.call(call).await? {
            Reply::Stopped(stopped) => {
                // the server's token and OAuth client are gone with it
                if stopped {
                    self.await_everywhere().await;
                }
                Ok(stopped)
            }
            other => Err(unexpected(other)),
        }
    }

    pub async fn server_status(
        self: &Arc<Self>,
        user: &UserName,
        server: &ServerName,
    ) -> Result<ServerSummary, OpError> {
        let call = Call::Status {
            user: user.as_str().into(),
            server: server.as_str().into(),
        };
        match self.call(call).await? {
            Reply::Status(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }
}

fn unexpected(reply: Reply) -> OpError {
    OpError::Corrupt(format!("unexpected reply {reply:?}"))
}

/// What a [`RouterMsg::Call`] carries: the call, and the live-set epoch the caller
/// routed it by (0: no set).
#[derive(Serialize, Deserialize)]
pub struct Routed {
    pub call: Call,
    pub epoch: u64,
}

impl Routed {
    pub fn encode(call: &Call, epoch: u64) -> Result<Vec<u8>, OpError> {
        rmp_serde::to_vec_named(&Routed {
            call: call.clone(),
            epoch,
        })
        .map_err(|e| OpError::Corrupt(e.to_string()))
    }
}

/// The node router actor's message: a [`Routed`] call in, a `Result<Reply, WireError>`
/// out.
#[derive(ractor_cluster::RactorClusterMessage)]
pub enum RouterMsg {
    #[rpc]
    Call(Vec<u8>, RpcReplyPort<Vec<u8>>),
}

/// Runs calls from other nodes on this node's actors.
pub struct NodeRouterActor;

impl Actor for NodeRouterActor {
    type Msg = RouterMsg;
    type State = Weak<Router>;
    type Arguments = Weak<Router>;

    async fn pre_start(
        &self,
        _myself: ActorRef<RouterMsg>,
        router: Weak<Router>,
    ) -> Result<Weak<Router>, ActorProcessingErr> {
        Ok(router)
    }

    async fn handle(
        &self,
        _myself: ActorRef<RouterMsg>,
        msg: RouterMsg,
        router: &mut Weak<Router>,
    ) -> Result<(), ActorProcessingErr> {
        let RouterMsg::Call(bytes, port) = msg;
        let router = router.clone();
        // every call runs in its own task: a slow start never holds up the others
        tokio::spawn(async move {
            let version = router.upgrade().map_or(0, |r| r.ctx().replica.version());
            let reply: Result<Reply, WireError> =
                match (router.upgrade(), rmp_serde::from_slice::<Routed>(&bytes)) {
                    (None, _) => Err(WireError::Unavailable("this node is shutting down".into())),
                    (_, Err(e)) => Err(WireError::BadRequest(format!("undecodable call: {e}"))),
                    (Some(router), Ok(Routed { call, epoch })) => {
                        // only the owner runs a user's call: a stale view of the membership
                        // is refused
                        let owner = call.user().map(|u| (u.to_owned(), router.owner_of(u)));
                        match owner {
                            Some((user, Ok(owner))) if owner != router.node_id() => {
                                Err(WireError::Moved(format!("{user} is owned by node {owner}")))
                            }
                            Some((_, Err(e))) => Err(e.into()),
                            // a call that arrives late (held up in a partition, or by a
                            // hung node) may have been sent again, to the owner of the
                            // time, and done there: not done again once the user may have
                            // had another owner since the caller routed it
                            Some((user, Ok(_))) if router.lapsed_since(epoch) => {
                                Err(WireError::Moved(format!(
                                    "{user} may have had another owner since the call was \
                                     routed (live set epoch {epoch})"
                                )))
                            }
                            _ => router.call_local(call).await.map_err(WireError::from),
                        }
                    }
                };
            // the version after the call, for the caller's read-your-writes
            let version = router
                .upgrade()
                .map_or(version, |r| r.ctx().replica.version());
            match rmp_serde::to_vec_named(&(reply, version)) {
                Ok(b) => {
                    let _ = port.send(b);
                }
                Err(e) => tracing::error!("cannot encode a reply: {e}"),
            }
        });
        Ok(())
    }
}

/// Where this node meets the others for actor messages.
#[derive(Debug, Clone)]
pub struct ClusterLink {
    pub node_id: u64,
    /// The address and port this node's ractor_cluster server listens on.
    pub listen: std::net::IpAddr,
    pub port: u16,
    /// The shared cookie (the cluster secret).
    pub cookie: String,
    /// Mutual TLS for every session; `None` sends actor messages in clear.
    pub tls: Option<galilean_storage::raft::tls::NodeTls>,
}

/// Node names in ractor_cluster (it adds `@<hostname>`).
fn node_name(id: u64) -> String {
    format!("galilean-{id}")
}

/// The host part ractor_cluster puts in a node's name and connection string. Not the
/// machine's host name: ractor_cluster takes a peer whose connection string (host and
/// port) equals its own for itself and drops the session, and nodes on several machines
/// commonly share both the port and, in containers, the host name.
fn host_label(id: u64) -> String {
    format!("node{id}")
}

impl Router {
    /// Joins the cluster for actor messages: starts this node's ractor_cluster server and
    /// router actor, and keeps a session to every peer with a lower id (the peers with
    /// higher ids dial this node), redialing lost ones. Returns the task that redials.
    pub async fn join_cluster(
        self: &Arc<Self>,
        link: ClusterLink,
    ) -> Result<tokio::task::JoinHandle<()>, OpError> {
        let server = ractor_cluster::NodeServer::new(
            link.port,
            link.cookie.clone(),
            node_name(link.node_id),
            host_label(link.node_id),
            link.tls
                .as_ref()
                .map(|t| ractor_cluster::IncomingEncryptionMode::Tls(t.acceptor())),
            None,
        )
        .with_listen_addr(link.listen);
        let (node, _) = Actor::spawn(None, server, ())
            .await
            .map_err(|e| OpError::Unavailable(format!("cannot start the cluster server: {e}")))?;
        let (router_actor, _) = Actor::spawn(None, NodeRouterActor, Arc::downgrade(self))
            .await
            .map_err(|e| OpError::Unavailable(format!("cannot start the router actor: {e}")))?;
        ractor::pg::join(router_group(link.node_id), vec![router_actor.get_cell()]);
        let me = Arc::downgrade(self);
        let dial = tokio::spawn(async move {
            let _keep = router_actor;
            loop {
                // the members as they are now: membership changes at runtime
                let Some(peers) = me.upgrade().map(|r| r.member_addrs()) else {
                    return;
                };
                let sessions = match node
                    .call(
                        ractor_cluster::NodeServerMessage::GetSessions,
                        Some(Duration::from_secs(5)),
                    )
                    .await
                {
                    Ok(ractor::rpc::CallResult::Success(s)) => s,
                    _ => Default::default(),
                };
                let connected: std::collections::HashSet<String> = sessions
                    .values()
                    .filter_map(|s| s.peer_name.as_ref().map(|n| n.name.clone()))
                    .collect();
                for (id, addr) in peers.iter() {
                    let name = format!("{}@{}", node_name(*id), host_label(*id));
                    if *id >= link.node_id || connected.contains(&name) {
                        continue;
                    }
                    let dialed = match &link.tls {
                        None => ractor_cluster::client_connect(&node, addr.as_str())
                            .await
                            .map_err(|e| e.to_string()),
                        Some(tls) => match galilean_storage::raft::tls::server_name(addr) {
                            Ok(name) => ractor_cluster::client_connect_enc(
                                &node,
                                addr.as_str(),
                                tls.connector(),
                                name,
                            )
                            .await
                            .map_err(|e| e.to_string()),
                            Err(e) => Err(e),
                        },
                    };
                    if let Err(e) = dialed {
                        tracing::debug!(peer = id, %addr, "cannot reach the peer's actor port: {e}");
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Ok(dial)
    }

    /// How many members this node can reach for actor messages, itself included.
    pub fn reachable_members(&self) -> usize {
        self.members()
            .iter()
            .filter(|id| {
                **id == self.node_id() || !ractor::pg::get_members(&router_group(**id)).is_empty()
            })
            .count()
    }
}

/// The members that answer, as the raft leader last recorded them (`("m", "live")`).
/// Actors are placed over this set, so every node agrees on owners at each version.
///
/// Ownership is a function of the set, so a user may leave a node and come back to it
/// (the node was cut off, or a member that outranks it for the user joined and left).
/// An actor that lived through that must not write: the owner in between may have
/// changed the user. `since` and `left_since` let a fence tell, from the current set
/// alone, whether a node's ownership of any user can have lapsed after a given epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveSet {
    /// Increases with every change.
    pub epoch: u64,
    pub live: Vec<u64>,
    /// The epoch at which each live member last joined the set; 0 for the members of
    /// the first set, which placed users as the full membership did before it (and for
    /// a set recorded before this field existed).
    #[serde(default)]
    pub since: BTreeMap<u64, u64>,
    /// The highest `since` of a member that has left the set: a member that joined
    /// after an epoch and left again may have owned, in between, users that were
    /// another node's at that epoch and are again now.
    #[serde(default)]
    pub left_since: u64,
}

/// The meta key of the live set.
pub const LIVE_KEY: &str = "live";

/// The meta key that marks member `id` as draining (`galilean cluster drain`): the
/// leader leaves it out of the live set, so its users move to the other members. It is
/// cleared when the node starts again.
pub fn draining_key(id: u64) -> String {
    format!("{DRAINING_PREFIX}{id}")
}

const DRAINING_PREFIX: &str = "draining/";

/// The members marked as draining.
pub fn draining(replica: &crate::Replica) -> std::collections::BTreeSet<u64> {
    replica.read(|s| {
        s.meta
            .keys()
            .filter_map(|k| k.strip_prefix(DRAINING_PREFIX)?.parse().ok())
            .collect()
    })
}

/// What an actor writes under: its node, and the live-set epoch its node owned the
/// actor's user at when the actor started (0 before any set was recorded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owned {
    pub node: u64,
    pub epoch: u64,
}

/// Fences an owner's write: inside the transaction, reads the live set and refuses when
/// `owned.node` does not own `user` by it, or may have lost it since `owned.epoch` (see
/// [`LiveSet::ownership_may_have_lapsed`]: an actor that outlived its user's stay
/// elsewhere is stale). Reading the key puts it in the transaction's read set, so a
/// live-set change committed meanwhile makes the write conflict and re-check: a stale
/// owner's write fails instead of overwriting the new owner's, or undoing what the new
/// owner did. Without a recorded live set (one node, or a cluster's first moments)
/// every write passes.
pub async fn fence(
    tx: &mut dyn galilean_storage::Transaction,
    user: &str,
    owned: Owned,
) -> Result<(), OpError> {
    match stored_live_set(tx).await? {
        Some(set) => set.check_owner(user, owned),
        None => Ok(()),
    }
}

/// The live set as `tx` reads it (the read joins the transaction's read set).
async fn stored_live_set(
    tx: &mut dyn galilean_storage::Transaction,
) -> Result<Option<LiveSet>, OpError> {
    match tx.get(&crate::keys::meta(LIVE_KEY)).await? {
        Some(bytes) => rmp_serde::from_slice(&bytes)
            .map(Some)
            .map_err(|e| OpError::Corrupt(e.to_string())),
        None => Ok(None),
    }
}

impl LiveSet {
    /// The set that follows `current` (`None`: no set recorded yet) when `live` answer.
    pub fn next(current: Option<&LiveSet>, mut live: Vec<u64>) -> LiveSet {
        live.sort_unstable();
        live.dedup();
        let Some(current) = current else {
            return LiveSet {
                epoch: 1,
                since: live.iter().map(|id| (*id, 0)).collect(),
                live,
                left_since: 0,
            };
        };
        let epoch = current.epoch + 1;
        let since = live
            .iter()
            .map(|id| {
                let kept = current.live.contains(id).then(|| current.joined(*id));
                (*id, kept.unwrap_or(epoch))
            })
            .collect();
        let left_since = current
            .live
            .iter()
            .filter(|id| !live.contains(id))
            .map(|id| current.joined(*id))
            .fold(current.left_since, u64::max);
        LiveSet {
            epoch,
            live,
            since,
            left_since,
        }
    }

    /// The epoch at which live member `id` joined.
    fn joined(&self, id: u64) -> u64 {
        self.since.get(&id).copied().unwrap_or(0)
    }

    /// Whether `node`, if it owns a user by this set, may not have owned it all along
    /// since `epoch`: it left the set and came back, or a member that joined after
    /// `epoch` has left since (and may have owned the user in between).
    pub fn ownership_may_have_lapsed(&self, node: u64, epoch: u64) -> bool {
        self.joined(node) > epoch || self.left_since > epoch
    }

    /// Whether an actor writing under `owned` may write for `user` by this set: its node
    /// owns the user, and has owned it all along since the actor started.
    pub fn check_owner(&self, user: &str, owned: Owned) -> Result<(), OpError> {
        match crate::placement::owner(user.as_bytes(), &self.live) {
            Some(owner) if owner != owned.node => Err(OpError::Moved(format!(
                "{user} is now owned by node {owner} (live set epoch {})",
                self.epoch
            ))),
            Some(_) if self.ownership_may_have_lapsed(owned.node, owned.epoch) => {
                Err(OpError::Moved(format!(
                    "{user} may have been owned by another node since live set epoch {} \
                     (now {}): this actor is stale",
                    owned.epoch, self.epoch
                )))
            }
            Some(_) => Ok(()),
            None => Err(OpError::Unavailable("no live members".into())),
        }
    }

    pub fn read(replica: &crate::Replica) -> Option<LiveSet> {
        replica.read(|s| {
            s.meta
                .get(LIVE_KEY)
                .and_then(|b| rmp_serde::from_slice(b).ok())
        })
    }
}

/// How often the leader pings the members, how long one ping may take, and how long a
/// member may go without answering before it is not live.
const PING_EVERY: Duration = Duration::from_millis(400);
/// How long a node answers after it last proved it was caught up with the leader. A
/// revocation is acknowledged once every live node applied it, or after this (plus a
/// ping) for a node that did not: by then that node has stopped answering.
/// It outlasts a raft election (an election timeout of at most 0.8 s, a vote, and the
/// new leader's first ping, which it sends at once), so that replacing a leader stops
/// no node from serving; and it is short, because a dead owner's users move only after
/// [`LIVE_DEADLINE`], which must be longer.
pub const SERVE_LEASE: Duration = Duration::from_millis(2000);
const PING_TIMEOUT: Duration = Duration::from_millis(800);
/// Longer than a serving lease: a member is declared not live only once the lease its
/// last answered ping gave it has surely run out, so a revocation need not wait for it.
const LIVE_DEADLINE: Duration = Duration::from_millis(2500);
/// How much of the handover (raft's vote lease) a new leader does not count on (clock
/// and scheduling slack).
const VOTE_LEASE_MARGIN: Duration = Duration::from_millis(300);
/// How often a node that does not lead checks whether it has become the leader, so
/// that a new leader renews the members' leases at once.
const LEADERSHIP_CHECK: Duration = Duration::from_millis(50);

impl Router {
    /// Sends a router-level call (ping, wait-applied) to member `id`; whether it answered
    /// within `limit`, and whether the answer was a success.
    async fn ask_member(&self, id: u64, call: &Call, limit: Duration) -> Option<bool> {
        let cell = ractor::pg::get_members(&router_group(id))
            .into_iter()
            .next()?;
        let actor: ActorRef<RouterMsg> = cell.into();
        let bytes = Routed::encode(call, 0).ok()?;
        match actor
            .call(|port| RouterMsg::Call(bytes, port), Some(limit))
            .await
        {
            Ok(ractor::rpc::CallResult::Success(b)) => Some(matches!(
                rmp_serde::from_slice::<(Result<Reply, WireError>, u64)>(&b),
                Ok((Ok(_), _))
            )),
            _ => None,
        }
    }

    /// Pings a member's router actor, granting it a lease or not: whether it answered
    /// (caught up or not), and, for a grant, a moment no earlier than the send time the
    /// member counts its lease from (the lease ends [`SERVE_LEASE`] after it at the
    /// latest).
    async fn ping(
        &self,
        id: u64,
        proof_at: tokio::time::Instant,
        grant: bool,
    ) -> (bool, Option<tokio::time::Instant>) {
        let version = self.ctx().replica.version();
        // the send time first, then the grant's moment and the proof's age: a pause in
        // between only moves the moment later or ages the proof, so the lease the member
        // counts from `sent - age` never starts late, nor after the moment recorded
        let sent_unix_ms = unix_ms();
        let granted_at = grant.then(tokio::time::Instant::now);
        let proof_age_ms = proof_at.elapsed().as_micros().div_ceil(1000) as u64;
        let answered = self
            .ask_member(
                id,
                &Call::Ping {
                    version,
                    sent_unix_ms,
                    proof_age_ms,
                    grant,
                },
                PING_TIMEOUT,
            )
            .await
            .is_some();
        (answered, granted_at)
    }

    /// While this node leads (`leadership()` gives how old its proof of leading is: its
    /// last quorum acknowledgement, or lease renewal), pings every member and records the
    /// live set when it changes; on every node, re-adopts the servers that a change moved
    /// here. `handover` is how old, at least, a predecessor's last proof is when this node
    /// starts to lead (raft's vote lease; a store lease's duration).
    pub async fn run_liveness(
        self: Arc<Self>,
        leadership: impl Fn() -> Option<Duration> + Send + 'static,
        handover: Duration,
    ) {
        let me = self.node_id();
        let start = tokio::time::Instant::now();
        let mut last_ok: std::collections::HashMap<u64, tokio::time::Instant> =
            self.members().iter().map(|id| (*id, start)).collect();
        // while leading: when the last round's answers were counted (a member answered
        // it if its `last_ok` is that moment; `None` when this node starts to lead, and
        // every member counts as answering), and when this node last granted each a lease
        let mut last_round: Option<tokio::time::Instant> = None;
        let mut last_grant: std::collections::HashMap<u64, tokio::time::Instant> =
            Default::default();
        let mut seen_epoch = LiveSet::read(&self.ctx().replica).map(|s| s.epoch);
        let mut was_leading = false;
        let mut next_round = tokio::time::Instant::now() + PING_EVERY;
        loop {
            // a new leader starts its first round at once
            while tokio::time::Instant::now() < next_round
                && (was_leading || leadership().is_none())
            {
                tokio::time::sleep(LEADERSHIP_CHECK).await;
            }
            next_round = tokio::time::Instant::now() + PING_EVERY;
            // the proof as a moment, taken at once: an age kept across a pause (this
            // process stopped or starved) would make the proof look younger than it is
            let proof_at =
                leadership().and_then(|age| tokio::time::Instant::now().checked_sub(age));
            let leads = proof_at.is_some();
            if leads && !was_leading {
                // a member is declared dead only after any lease an earlier leader gave
                // it ran out. Those leases count from that leader's last proof (see
                // `Call::Ping`), which is older than this node's leadership by at least
                // `handover`: with raft, a majority voted for this node, and a voter grants
                // no vote until it has not heard from the leader for its vote lease.
                let credit = handover.saturating_sub(VOTE_LEASE_MARGIN);
                let since = tokio::time::Instant::now()
                    .checked_sub(credit)
                    .unwrap_or_else(tokio::time::Instant::now);
                for t in last_ok.values_mut() {
                    *t = since;
                }
                last_round = None;
                last_grant.clear();
            }
            was_leading = leads;
            // the proof covers what the store had applied when it was made: the replica
            // this node answers from has to show that much before the proof counts
            let proof_at = match proof_at {
                Some(at) => {
                    let applied = self.ctx().store.committed_version();
                    let caught_up = self.catch_up(applied, PING_TIMEOUT / 2).await.is_ok();
                    caught_up.then_some(at)
                }
                None => None,
            };
            if let Some(proof_at) = proof_at {
                // writes wait only for the live set's members: outside it, this node
                // does not serve either
                let in_set = self.live_members();
                if in_set.contains(&me) {
                    self.mark_caught_up_at(proof_at.into_std());
                }
                let others: Vec<u64> = self
                    .members()
                    .iter()
                    .copied()
                    .filter(|id| *id != me)
                    .collect();
                // a lease goes only to members of the live set (writes wait for them) that
                // answered the last ping: a member that stopped answering gets no more, so
                // its last one runs out and it can be dropped
                let answers = futures::future::join_all(others.iter().map(|id| {
                    let answered_last =
                        last_round.is_none_or(|round| last_ok.get(id) == Some(&round));
                    let grant = in_set.contains(id) && answered_last;
                    self.ping(*id, proof_at, grant)
                }))
                .await;
                let now = tokio::time::Instant::now();
                last_round = Some(now);
                for (id, (ok, granted_at)) in others.iter().zip(answers) {
                    if ok {
                        last_ok.insert(*id, now);
                    }
                    if let Some(at) = granted_at {
                        last_grant.insert(*id, at);
                    }
                }
                last_ok.insert(me, now);
                // a member stays while it answers, and until the last lease granted to
                // it has run out (with a ping's interval to spare for the clocks of two
                // nodes): writes stop waiting for it only then
                let answering: Vec<u64> = self
                    .members()
                    .iter()
                    .copied()
                    .filter(|id| {
                        last_ok
                            .get(id)
                            .is_some_and(|t| now.duration_since(*t) < LIVE_DEADLINE)
                            || last_grant
                                .get(id)
                                .is_some_and(|t| now < *t + SERVE_LEASE + PING_EVERY)
                    })
                    .collect();
                // draining members own nothing, unless nobody else answers
                let draining = draining(&self.ctx().replica);
                let mut live: Vec<u64> = answering
                    .iter()
                    .copied()
                    .filter(|id| !draining.contains(id))
                    .collect();
                if live.is_empty() {
                    live = answering;
                }
                live.sort_unstable();
                let current = LiveSet::read(&self.ctx().replica);
                if current.as_ref().map(|c| &c.live) != Some(&live) {
                    match self.record_live(live).await {
                        Ok(Some(set)) => {
                            tracing::info!(epoch = set.epoch, live = ?set.live, "live members changed")
                        }
                        Ok(None) => {}
                        Err(e) => tracing::warn!("cannot record the live members: {e}"),
                    }
                }
            }
            let epoch = LiveSet::read(&self.ctx().replica).map(|s| s.epoch);
            if epoch != seen_epoch {
                seen_epoch = epoch;
                self.release_moved_actors().await;
                self.adopt_servers().await;
            }
        }
    }

    /// Waits up to `wait` for this node's replica to reach `version`.
    async fn catch_up(&self, version: u64, wait: Duration) -> Result<(), OpError> {
        tokio::time::timeout(wait, self.ctx().replica.wait_for(version))
            .await
            .map_err(|_| OpError::Unavailable(format!("not caught up to version {version}")))
    }

    /// After a write this node has applied (a revocation, or any write an answer
    /// reports): waits until every other live member has applied it too, or, for one
    /// that does not confirm, until its serving lease has surely run out. Then no node
    /// accepts what was revoked, and every serving node shows what was written.
    pub async fn await_everywhere(self: &Arc<Self>) {
        if self.caught_up.is_none() {
            return;
        }
        let version = self.ctx().replica.version();
        let me = self.node_id();
        let others: Vec<u64> = self
            .live_members()
            .into_iter()
            .filter(|id| *id != me)
            .collect();
        let limit = SERVE_LEASE + PING_EVERY;
        let until = tokio::time::Instant::now() + limit;
        let waits = others.iter().map(|id| async move {
            if !self.confirm_applied(*id, version, limit).await {
                tracing::warn!(
                    node = id,
                    version,
                    "a node did not confirm a write; waiting out its lease"
                );
                // or until it leaves the live set: a member is declared not live only
                // once its lease has run out (LIVE_DEADLINE > SERVE_LEASE)
                while tokio::time::Instant::now() < until && self.live_members().contains(id) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        });
        futures::future::join_all(waits).await;
    }

    /// Whether member `id` confirms within `limit` that it applied `version`.
    async fn confirm_applied(&self, id: u64, version: u64, limit: Duration) -> bool {
        self.ask_member(id, &Call::WaitApplied { version }, limit)
            .await
            .unwrap_or(false)
    }

    /// Records `live` as the live set, following the set the store holds (read in the
    /// same transaction: `since` and `left_since` carry over from the committed set, not
    /// from this node's possibly older copy). `None` when the store already says so.
    async fn record_live(&self, live: Vec<u64>) -> Result<Option<LiveSet>, OpError> {
        let key = crate::keys::meta(LIVE_KEY);
        let (set, v) = crate::in_txn!(self.ctx().store, |tx| {
            let current = stored_live_set(tx.as_mut()).await?;
            let set = LiveSet::next(current.as_ref(), live.clone());
            if current.is_some_and(|c| c.live == set.live) {
                None
            } else {
                let bytes =
                    rmp_serde::to_vec_named(&set).map_err(|e| OpError::Corrupt(e.to_string()))?;
                tx.set(&key, &bytes);
                Some(set)
            }
        })?;
        self.ctx().replica.wait_for(v).await;
        Ok(set)
    }

    /// The servers this node owns whose records are not stopped (with valid names).
    pub fn unstopped_local_servers(&self) -> Vec<(UserName, ServerName)> {
        let found: Vec<(String, String)> = self.ctx().replica.read(|s| {
            s.servers
                .values()
                .filter(|r| r.phase != ServerPhase::Stopped)
                .map(|r| (r.user.clone(), r.name.clone()))
                .collect()
        });
        found
            .into_iter()
            .filter(|(u, _)| self.is_local(u))
            .filter_map(|(u, s)| match (user_name(&u), server_name(&s)) {
                (Ok(user), Ok(server)) => Some((user, server)),
                _ => {
                    tracing::warn!(user = %u, server = %s, "a server record with an invalid name");
                    None
                }
            })
            .collect()
    }

    /// Checks every unstopped server this node owns and runs no actor for (at start-up,
    /// or after the live set moved it here): re-adopted if its process runs, marked
    /// stopped if not.
    pub async fn adopt_servers(self: &Arc<Self>) {
        let checks = self
            .unstopped_local_servers()
            .into_iter()
            .map(|(user, server)| {
                let router = self.clone();
                async move {
                    if router.has_server_actor(&user, &server).await {
                        return;
                    }
                    match router.server(&user, &server).await {
                        Ok(actor) => match ask(&actor, |reply| ServerMsg::Adopt { reply }).await {
                            Ok(true) => tracing::info!(%user, %server, "re-adopted a server"),
                            Ok(false) => {
                                tracing::info!(%user, %server, "a server is gone; marked stopped")
                            }
                            Err(e) => tracing::warn!(%user, %server, "cannot re-adopt: {e}"),
                        },
                        Err(e) => tracing::warn!(%user, %server, "cannot re-adopt: {e}"),
                    }
                }
            });
        futures::future::join_all(checks).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Call, LiveSet};

    #[test]
    fn a_call_that_goes_again_keeps_the_wait_its_caller_gave() {
        let start = Call::Start {
            user: "u".into(),
            server: String::new(),
            user_options: None,
            display_name: None,
            wait_ms: 10_000,
        };
        assert_eq!(
            start.clone().less_wait(Duration::from_millis(4_200)).wait(),
            Duration::from_millis(5_800)
        );
        // past the wait: answer at once (a start reports itself pending)
        assert_eq!(
            start.less_wait(Duration::from_secs(11)).wait(),
            Duration::ZERO
        );
        let stop = Call::Stop {
            user: "u".into(),
            server: String::new(),
            remove: false,
            wait_ms: 2_000,
        };
        assert_eq!(
            stop.less_wait(Duration::from_millis(500)).wait(),
            Duration::from_millis(1_500)
        );
        // calls without a wait are unchanged
        let status = Call::Status {
            user: "u".into(),
            server: String::new(),
        };
        assert!(matches!(
            status.less_wait(Duration::from_secs(1)),
            Call::Status { .. }
        ));
    }

    #[test]
    fn a_live_set_remembers_when_members_joined_and_who_came_and_went() {
        let first = LiveSet::next(None, vec![3, 1, 2]);
        assert_eq!((first.epoch, first.live.clone()), (1, vec![1, 2, 3]));
        // the first set's members count as live from the start
        assert_eq!(first.since.values().copied().collect::<Vec<_>>(), [0, 0, 0]);
        assert!(!first.ownership_may_have_lapsed(1, 0));
        // 3 leaves: it joined at the start, so it owned nothing then that 1 owns now
        let second = LiveSet::next(Some(&first), vec![1, 2]);
        assert_eq!((second.epoch, second.left_since), (2, 0));
        assert!(!second.ownership_may_have_lapsed(1, 0));
        // 3 comes back: its actors from before are stale, the others' are not
        let third = LiveSet::next(Some(&second), vec![1, 2, 3]);
        assert_eq!(third.since.get(&3), Some(&3));
        assert!(third.ownership_may_have_lapsed(3, 1));
        assert!(!third.ownership_may_have_lapsed(3, 3));
        assert!(!third.ownership_may_have_lapsed(1, 1));
        // 3 leaves again, having joined at 3: whatever it owned in between is back with
        // 1 or 2, so their actors started before epoch 3 are stale
        let fourth = LiveSet::next(Some(&third), vec![1, 2]);
        assert_eq!(fourth.left_since, 3);
        assert!(fourth.ownership_may_have_lapsed(1, 2));
        assert!(!fourth.ownership_may_have_lapsed(1, 3));
        // a set recorded before `since` existed reads as everyone live from the start
        let old: LiveSet = rmp_serde::from_slice(
            &rmp_serde::to_vec_named(&serde_json::json!({"epoch": 9, "live": [1, 2]})).unwrap(),
        )
        .unwrap();
        assert!(!old.ownership_may_have_lapsed(1, 0));
        assert_eq!(LiveSet::next(Some(&old), vec![1]).left_since, 0);
    }
}
