//! Raft traffic between nodes over HTTP/1.1: openraft's RPCs (append, vote, snapshot
//! chunks) and writes forwarded from followers to the leader. Bodies are rmp-serde; every
//! request carries the cluster secret, compared in constant time.
//!
//! With [`NodeTls`] it is HTTPS with mutual TLS; without, plain HTTP, which the node's
//! config allows only on loopback or with `cluster.insecure`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Raft};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::TcpListener;

use super::membership::{MembershipChange, MembershipError};
use super::tls::NodeTls;
use super::{Command, CommandResult, CommitResult, NodeId, TypeConfig};

/// Header carrying the cluster secret.
pub const SECRET_HEADER: &str = "x-galilean-cluster-secret";
/// Header naming the node a raft RPC is meant for. Two `cluster.peers` entries that lead
/// to one node (the same port written two ways) would otherwise have it answer for a
/// node it is not: a leader sent its own appends breaks openraft's invariants.
pub const TARGET_HEADER: &str = "x-galilean-raft-target";
/// How long a follower waits for the leader to answer a forwarded write. A leader that
/// hangs this long is being replaced; the write's outcome is then unknown (503).
const FORWARD_TIMEOUT: Duration = Duration::from_secs(3);
/// Largest RPC body accepted (snapshot chunks are smaller).
const MAX_BODY: usize = 64 << 20;

/// Where a follower's forwarded write failed.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, thiserror::Error)]
pub enum ForwardError {
    #[error("no leader is known")]
    NoLeader,
    #[error("the node asked is not the leader (leader: {0:?})")]
    NotLeader(Option<NodeId>),
    #[error("raft failed: {0}")]
    Raft(String),
    /// The leader's raft stopped or its storage failed while it held the write (a node
    /// shutting down): the write may have reached its log, and its request id makes
    /// sending it again safe.
    #[error("the leader's raft failed: {0}")]
    LeaderFailed(String),
    /// The write never left this node (the leader refused the connection): safe to
    /// send again.
    #[error("cannot connect to the leader: {0}")]
    NotSent(String),
    /// Sent, with no answer: the write's outcome is unknown.
    #[error("cannot reach the leader: {0}")]
    Unreachable(String),
}

/// Why a request to a peer failed.
enum PostError {
    /// No connection was made: the request was not delivered.
    NotSent(String),
    /// The peer answered with another status than 200 (a wrong secret: 403).
    Refused(StatusCode, String),
    /// Sent, and no usable answer came in time: timed out, connection lost, bad body.
    Failed(String),
}

impl std::fmt::Display for PostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PostError::NotSent(m) | PostError::Refused(_, m) | PostError::Failed(m) => {
                f.write_str(m)
            }
        }
    }
}

/// `e` followed by its sources (reqwest's own text omits the cause: a timeout reads
/// "error sending request").
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Clients for every peer, sharing one connection pool.
#[derive(Clone)]
pub struct HttpNetwork {
    client: reqwest::Client,
    secret: Arc<str>,
    scheme: &'static str,
}

impl HttpNetwork {
    pub fn new(secret: &str, tls: Option<&NodeTls>) -> HttpNetwork {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(2))
            .pool_idle_timeout(Duration::from_secs(30));
        if let Some(tls) = tls {
            builder = builder.use_preconfigured_tls((*tls.client).clone());
        }
        let client = builder
            .build()
            .expect("a reqwest client with fixed settings builds");
        HttpNetwork {
            client,
            secret: secret.into(),
            scheme: if tls.is_some() { "https" } else { "http" },
        }
    }

    /// Posts `body` to `path` at `addr`; `target`, when given, is the node the request is
    /// meant for, which refuses it if it is another.
    async fn post<Q: Serialize, A: DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        body: &Q,
        timeout: Duration,
        target: Option<NodeId>,
    ) -> Result<A, PostError> {
        let failed = |e: &dyn std::error::Error| PostError::Failed(chain(e));
        let bytes = rmp_serde::to_vec_named(body).map_err(|e| failed(&e))?;
        let mut request = self
            .client
            .post(format!("{}://{addr}{path}", self.scheme))
            .header(SECRET_HEADER, &*self.secret);
        if let Some(target) = target {
            request = request.header(TARGET_HEADER, target.to_string());
        }
        let r = request
            .timeout(timeout)
            .body(bytes)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    PostError::NotSent(format!("{addr}: {}", chain(&e)))
                } else {
                    failed(&e)
                }
            })?;
        if r.status() != StatusCode::OK {
            return Err(PostError::Refused(
                r.status(),
                format!("{addr}{path} answered {}", r.status()),
            ));
        }
        let body = r.bytes().await.map_err(|e| failed(&e))?;
        rmp_serde::from_slice(&body).map_err(|e| failed(&e))
    }

    /// Asks the node at `addr` (which must lead) for a membership change; see
    /// [`super::membership::change`].
    pub async fn change_members(
        &self,
        addr: &str,
        change: &MembershipChange,
    ) -> Result<BTreeMap<NodeId, String>, MembershipError> {
        self.post::<_, Result<BTreeMap<NodeId, String>, MembershipError>>(
            addr,
            "/raft/members",
            change,
            Duration::from_secs(120),
            None,
        )
        .await
        .map_err(|e| MembershipError::Refused(format!("cannot ask {addr}: {e}")))?
    }

    /// The status document of the node whose raft port is `addr`.
    pub async fn status(&self, addr: &str) -> Result<String, String> {
        self.document(addr, Document::Status).await
    }

    /// A document about the node whose raft port is `addr`.
    pub async fn document(&self, addr: &str, document: Document) -> Result<String, String> {
        let path = match document {
            Document::Status => "/raft/status",
            Document::State => "/raft/state",
        };
        let r = self
            .client
            .post(format!("{}://{addr}{path}", self.scheme))
            .header(SECRET_HEADER, &*self.secret)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if r.status() != StatusCode::OK {
            return Err(format!("{addr} answered {}", r.status()));
        }
        r.text().await.map_err(|e| e.to_string())
    }

    /// Sends a write to the leader at `addr`.
    pub async fn forward_write(
        &self,
        addr: &str,
        command: &Command,
    ) -> Result<CommandResult, ForwardError> {
        self.post::<_, Result<CommandResult, ForwardError>>(
            addr,
            "/raft/write",
            command,
            FORWARD_TIMEOUT,
            None,
        )
        .await
        .map_err(|e| match e {
            PostError::NotSent(m) => ForwardError::NotSent(m),
            PostError::Refused(_, m) | PostError::Failed(m) => ForwardError::Unreachable(m),
        })?
    }
}

/// A connection to one peer.
pub struct PeerClient {
    net: HttpNetwork,
    target: NodeId,
    addr: String,
}

impl RaftNetworkFactory<TypeConfig> for HttpNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        PeerClient {
            net: self.clone(),
            target,
            addr: node.addr.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Transport(String);

impl PeerClient {
    async fn rpc<Q: Serialize, A: DeserializeOwned, E: std::error::Error + DeserializeOwned>(
        &self,
        path: &str,
        req: &Q,
        option: &RPCOption,
    ) -> Result<A, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>> {
        let answer: Result<A, RaftError<NodeId, E>> = self
            .net
            .post(&self.addr, path, req, option.hard_ttl(), Some(self.target))
            .await
            .map_err(|e| match e {
                // down or refusing us: openraft backs off (500 ms) before trying again
                PostError::NotSent(m) => RPCError::Unreachable(Unreachable::new(&Transport(m))),
                PostError::Refused(code, m) => {
                    let why = match code {
                        StatusCode::FORBIDDEN => Some(
                            "the peer refused us: our cluster.secret differs from the cluster's",
                        ),
                        StatusCode::MISDIRECTED_REQUEST => Some(
                            "another node answers at this peer's address: two cluster.peers \
                             entries lead to the same node",
                        ),
                        _ => None,
                    };
                    if let Some(why) = why {
                        tracing::error!(peer = self.target, addr = %self.addr, "{why}");
                    }
                    RPCError::Unreachable(Unreachable::new(&Transport(m)))
                }
                // it is there but slow (an append's deadline is one heartbeat): the next
                // heartbeat tries again. A back-off here starved busy followers of
                // heartbeats until they called elections.
                PostError::Failed(m) => RPCError::Network(NetworkError::new(&Transport(m))),
            })?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.rpc("/raft/append", &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.rpc("/raft/snapshot", &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.rpc("/raft/vote", &rpc, &option).await
    }
}

/// The node's documents, set by the node once it runs: `Status` on `/raft/status`, and
/// `State` on `/raft/state` (JSON).
pub type StatusSource = Arc<std::sync::OnceLock<Box<dyn Fn(Document) -> String + Send + Sync>>>;

/// The documents a node's cluster port serves about the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    /// Its view of the cluster: leader, members, liveness, what it owns.
    Status,
    /// Its own replica of the hub's state, with the version it applied and a digest
    /// (for the chaos harness, which compares nodes' local states).
    State,
}

/// What a node's cluster port serves besides its status.
#[derive(Clone)]
pub enum Served {
    /// The raft store's node: raft RPCs, writes forwarded by followers, membership
    /// changes.
    Raft(Raft<TypeConfig>),
    /// A node of a store the nodes share (FoundationDB), which needs no raft: the port
    /// answers status requests, and applies the blind writes `galilean cluster` sends
    /// (a drain mark) to the store itself.
    Shared(Arc<dyn crate::Store>),
}

/// Serves raft RPCs, forwarded writes and the node's status on `listener` (over TLS
/// when `tls` is given) until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    raft: Served,
    secret: Arc<str>,
    status: StatusSource,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let raft = raft.clone();
        let secret = secret.clone();
        let status = status.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let served = raft.clone();
                let secret = secret.clone();
                let status = status.clone();
                async move { Ok::<_, Infallible>(handle(req, served, &secret, &status).await) }
            });
            let http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            match tls {
                None => {
                    let _ = http.serve_connection(TokioIo::new(stream), service).await;
                }
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(5), acceptor.accept(stream)).await;
                    match handshake {
                        Ok(Ok(stream)) => {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                        Ok(Err(e)) => {
                            tracing::warn!(%peer, "refused a raft connection: TLS handshake failed: {e}")
                        }
                        Err(_) => {
                            tracing::warn!(%peer, "refused a raft connection: no TLS handshake in 5 s")
                        }
                    }
                }
            }
        });
    }
}

fn reply<T: Serialize>(value: &T) -> Response<Full<Bytes>> {
    match rmp_serde::to_vec_named(value) {
        Ok(b) => Response::new(Full::new(Bytes::from(b))),
        Err(e) => status(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

fn status(code: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(text.to_owned())));
    *r.status_mut() = code;
    r
}

async fn handle(
    req: Request<Incoming>,
    served: Served,
    secret: &str,
    status_source: &StatusSource,
) -> Response<Full<Bytes>> {
    let given = req
        .headers()
        .get(SECRET_HEADER)
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_default();
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        given.as_slice(),
        secret.as_bytes(),
    )) {
        tracing::warn!("refused a raft request with a wrong cluster secret");
        return status(StatusCode::FORBIDDEN, "wrong cluster secret");
    }
    let path = req.uri().path().to_owned();
    let target = match req.headers().get(TARGET_HEADER) {
        None => None,
        Some(v) => match v.to_str().ok().and_then(|v| v.parse::<NodeId>().ok()) {
            Some(id) => Some(id),
            None => return status(StatusCode::BAD_REQUEST, "the raft target is not a node id"),
        },
    };
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return status(StatusCode::PAYLOAD_TOO_LARGE, "body too large"),
    };
    macro_rules! decode {
        ($t:ty) => {
            match rmp_serde::from_slice::<$t>(&body) {
                Ok(v) => v,
                Err(e) => return status(StatusCode::BAD_REQUEST, &e.to_string()),
            }
        };
    }
    let document = match path.as_str() {
        "/raft/status" => Some(Document::Status),
        "/raft/state" => Some(Document::State),
        _ => None,
    };
    if let Some(document) = document {
        let body = status_source
            .get()
            .map_or_else(|| "{}".to_owned(), |f| f(document));
        return Response::new(Full::new(Bytes::from(body)));
    }
    let raft = match served {
        Served::Raft(raft) => raft,
        Served::Shared(store) => {
            return match path.as_str() {
                "/raft/write" => reply(&blind_write(store.as_ref(), decode!(Command)).await),
                "/raft/members" => reply(&Err::<BTreeMap<NodeId, String>, _>(
                    MembershipError::Refused(format!(
                        "the members of a cluster on a shared {} store are its \
                         cluster.peers: change them in every node's config and restart \
                         the nodes one at a time",
                        store.backend_name()
                    )),
                )),
                _ => status(
                    StatusCode::NOT_FOUND,
                    "this node runs no raft (its store is shared)",
                ),
            };
        }
    };
    // only raft's RPCs name a target
    if let Some(target) = target {
        let me = raft.metrics().borrow().id;
        if target != me {
            tracing::warn!(
                me,
                target,
                "refused a raft request meant for another node: two cluster.peers entries \
                 lead to this node"
            );
            return status(
                StatusCode::MISDIRECTED_REQUEST,
                &format!("this is node {me}, not node {target}"),
            );
        }
    }
    match path.as_str() {
        "/raft/append" => reply(
            &raft
                .append_entries(decode!(AppendEntriesRequest<TypeConfig>))
                .await,
        ),
        "/raft/vote" => reply(&raft.vote(decode!(VoteRequest<NodeId>)).await),
        "/raft/snapshot" => reply(
            &raft
                .install_snapshot(decode!(InstallSnapshotRequest<TypeConfig>))
                .await,
        ),
        "/raft/write" => {
            let command = decode!(Command);
            let answer: Result<CommandResult, ForwardError> = match raft.client_write(command).await
            {
                Ok(r) => Ok(r.data),
                Err(RaftError::Fatal(f)) => Err(ForwardError::LeaderFailed(f.to_string())),
                Err(e) => Err(match e.forward_to_leader() {
                    Some(f) => ForwardError::NotLeader(f.leader_id),
                    None => ForwardError::Raft(e.to_string()),
                }),
            };
            reply(&answer)
        }
        "/raft/members" => {
            let change = decode!(MembershipChange);
            tracing::info!(?change, "changing the membership");
            let answer = super::membership::change(&raft, change).await;
            match &answer {
                Ok(members) => tracing::info!(?members, "membership changed"),
                Err(e) => tracing::warn!("membership change refused: {e}"),
            }
            reply(&answer)
        }
        _ => status(StatusCode::NOT_FOUND, "no such raft endpoint"),
    }
}

/// A forwarded commit applied to a shared store: only blind writes (no reads to check),
/// which is all `galilean cluster` sends; a batch's commits one after the other.
async fn blind_write(
    store: &dyn crate::Store,
    command: Command,
) -> Result<CommandResult, ForwardError> {
    if command.commits().iter().any(|c| !c.reads.is_empty()) {
        return Err(ForwardError::Raft(
            "a shared store takes only writes that read nothing".into(),
        ));
    }
    let failed = |e: crate::StoreError| ForwardError::Raft(e.to_string());
    let mut results = Vec::new();
    for commit in command.commits() {
        let mut tx = store.begin().await.map_err(failed)?;
        for m in &commit.mutations {
            match m {
                crate::Mutation::Set { key, value } => tx.set(key, value),
                crate::Mutation::Clear { key } => tx.clear(key),
                crate::Mutation::ClearRange { begin, end } => tx.clear_range(begin, end),
            }
        }
        let version = tx.commit().await.map_err(failed)?;
        results.push(CommitResult {
            version,
            conflict: false,
        });
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemoryStore, Mutation, Store};

    /// The cluster port of a node on a shared store: its status, the blind writes of
    /// `galilean cluster drain`, and a clear refusal of raft's requests.
    #[tokio::test]
    async fn a_shared_store_s_port_serves_status_and_blind_writes_and_refuses_raft() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let status = StatusSource::default();
        let _ = status.set(Box::new(|d| match d {
            Document::Status => r#"{"node_id":7}"#.to_owned(),
            Document::State => r#"{"version":3}"#.to_owned(),
        }));
        let server = tokio::spawn(serve(
            listener,
            Served::Shared(store.clone()),
            "s3cret".into(),
            status,
            None,
        ));
        let net = HttpNetwork::new("s3cret", None);
        assert_eq!(net.status(&addr).await.unwrap(), r#"{"node_id":7}"#);
        let state = net.document(&addr, Document::State).await.unwrap();
        assert_eq!(state, r#"{"version":3}"#);

        let write = |mutations, reads| {
            Command::Commit(crate::raft::Commit {
                read_version: 0,
                reads,
                mutations,
                request: crate::raft::new_request_id(),
            })
        };
        let set = vec![Mutation::Set {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
        }];
        let done = net.forward_write(&addr, &write(set.clone(), vec![])).await;
        assert!(done.unwrap()[0].version > 0);
        let mut tx = store.begin().await.unwrap();
        assert_eq!(tx.get(b"k").await.unwrap().as_deref(), Some(&b"v"[..]));
        // a write that read something cannot be checked here: refused, and not applied
        let guarded = write(
            vec![Mutation::Clear { key: b"k".to_vec() }],
            vec![(b"a".to_vec(), b"z".to_vec())],
        );
        assert!(matches!(
            net.forward_write(&addr, &guarded).await,
            Err(ForwardError::Raft(m)) if m.contains("read nothing")
        ));
        let mut tx = store.begin().await.unwrap();
        assert!(tx.get(b"k").await.unwrap().is_some());

        let change = MembershipChange::Remove { id: 2 };
        match net.change_members(&addr, &change).await {
            Err(MembershipError::Refused(m)) => assert!(m.contains("cluster.peers"), "{m}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        // a wrong secret is refused as on a raft node
        let stranger = HttpNetwork::new("not the secret", None);
        assert!(stranger.status(&addr).await.unwrap_err().contains("403"));
        server.abort();
    }

    /// A peer that is down, or refuses us, is backed off (openraft waits 500 ms before
    /// sending to it again); one that is merely slow is not: a late heartbeat answer is
    /// a network error, and the next heartbeat goes out on time. Backing off slow
    /// followers starved them of heartbeats until they called elections.
    #[tokio::test]
    async fn only_an_absent_or_refusing_peer_is_backed_off_not_a_slow_one() {
        let mut net = HttpNetwork::new("s3cret", None);
        let vote = || VoteRequest::new(openraft::Vote::new(1, 1), None);
        let option = || RPCOption::new(Duration::from_millis(100));
        let peer = |addr: String| BasicNode { addr };

        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = closed.local_addr().unwrap().to_string();
        drop(closed);
        let mut client = net.new_client(2, &peer(addr)).await;
        let e = client.vote(vote(), option()).await.unwrap_err();
        assert!(matches!(e, RPCError::Unreachable(_)), "{e}");

        // accepts, never answers
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap().to_string();
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((stream, _)) = silent.accept().await {
                open.push(stream);
            }
        });
        let mut client = net.new_client(3, &peer(addr)).await;
        let e = client.vote(vote(), option()).await.unwrap_err();
        assert!(matches!(e, RPCError::Network(_)), "{e}");
        assert!(e.to_string().contains("timed out"), "{e}");
        held.abort();

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(serve(
            listener,
            Served::Shared(Arc::new(MemoryStore::new())),
            "another secret".into(),
            StatusSource::default(),
            None,
        ));
        let mut client = net.new_client(4, &peer(addr)).await;
        let e = client.vote(vote(), option()).await.unwrap_err();
        assert!(matches!(e, RPCError::Unreachable(_)), "{e}");
        assert!(e.to_string().contains("403"), "{e}");
        server.abort();
    }
}
