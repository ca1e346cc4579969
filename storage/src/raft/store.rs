//! [`RaftStore`]: the `Store` trait over openraft (backend name `raft`).
//!
//! Transactions read this node's state machine (a consistent redb snapshot at the applied
//! log index, which is the version). A commit goes into a log entry ([`Command`]) with
//! the other commits that wait for a proposal (`batch.rs`), proposed through this node
//! when it leads, else sent to the leader; the state machine of every replica decides
//! each commit the same way (conflict or applied). The commit returns once the entry is
//! committed by a quorum and applied on this node, so the caller reads its own write
//! next.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use openraft::Raft;
use tokio::sync::broadcast;

use super::batch::{Batcher, Slot, Waiting};
use super::net::{ForwardError, HttpNetwork};
use super::{Command, CommandResult, Commit, StateMachine, TypeConfig};
use crate::occ::{CommitRequest, Committer, OccTransaction};
use crate::redb_store::Table;
use crate::{ChangeBatch, Counters, Store, StoreError, Transaction, Version};

/// FoundationDB's transaction age limit, as the other backends.
const MAX_TRANSACTION_AGE: Duration = Duration::from_secs(5);
/// How long a leader keeps serving without hearing from a quorum.
const LEADER_LEASE: Duration = Duration::from_millis(1000);
/// How long a commit may wait for the leader before it is `Unavailable`.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a leader records when a quorum last acknowledged it.
const PROVE_EVERY: Duration = Duration::from_millis(50);

/// The raft-replicated store of one node.
pub struct RaftStore {
    inner: Arc<Inner>,
    ids: crate::ids::IdBlocks,
}

struct Inner {
    raft: Raft<TypeConfig>,
    sm: StateMachine,
    net: HttpNetwork,
    status: super::net::StatusSource,
    counters: Counters,
    runtime: tokio::runtime::Handle,
    proof: Arc<LeadProof>,
    prover: tokio::task::AbortHandle,
    batcher: Batcher,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.prover.abort();
    }
}

/// When this node, leading, last had a quorum acknowledge it, kept as a time so that it
/// only ages. openraft keeps that moment (the send time of the heartbeats a quorum
/// answered) but reports it as an age, `millis_since_quorum_ack`, worked out when it last
/// reported its metrics. Read later, after this process did not run for a while (stopped,
/// or starved), that age looks as young as it was then, and a deposed leader took itself
/// for a leader with a fresh proof and served from a stale replica.
struct LeadProof {
    base: Instant,
    /// Microseconds from `base` to the proof, plus one; 0 before the first.
    at: std::sync::atomic::AtomicU64,
}

impl LeadProof {
    fn record(&self, at: Instant) {
        let at = at.saturating_duration_since(self.base).as_micros() as u64 + 1;
        // a look that began earlier and ended later never moves the proof back
        self.at.fetch_max(at, std::sync::atomic::Ordering::Relaxed);
    }

    /// How old the last proof is; `None` before the first.
    fn age(&self) -> Option<Duration> {
        match self.at.load(std::sync::atomic::Ordering::Relaxed) {
            0 => None,
            at => Some(
                self.base
                    .elapsed()
                    .saturating_sub(Duration::from_micros(at - 1)),
            ),
        }
    }
}

/// Whether `raft` takes itself for the leader (by its last metrics report).
fn leads(raft: &Raft<TypeConfig>) -> bool {
    let metrics = raft.metrics();
    let m = metrics.borrow();
    m.current_leader == Some(m.id)
}

/// While this node takes itself for the leader, records every [`PROVE_EVERY`] when a
/// quorum last acknowledged it. It asks at `asked`, sends a message through openraft's
/// core and takes the first metrics report after the answer: the core made it after it
/// handled the message, so after `asked`, and its age counted back from `asked` gives a
/// moment no later than the true one. Nothing goes over the network (openraft's own
/// heartbeats are the quorum rounds), and a node that was stopped sees its proof as old
/// as it is.
async fn prove_leadership(raft: Raft<TypeConfig>, proof: Arc<LeadProof>) {
    let mut reports = raft.metrics();
    loop {
        tokio::time::sleep(PROVE_EVERY).await;
        if !leads(&raft) {
            continue;
        }
        let asked = Instant::now();
        if raft.with_raft_state(|_| ()).await.is_err() {
            return; // the core stopped
        }
        reports.borrow_and_update();
        match tokio::time::timeout(LEADER_LEASE, reports.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return,
            Err(_) => continue,
        }
        let age = {
            let m = reports.borrow_and_update();
            (m.current_leader == Some(m.id))
                .then_some(m.millis_since_quorum_ack)
                .flatten()
        };
        if let Some(at) = age.and_then(|ms| asked.checked_sub(Duration::from_millis(ms))) {
            proof.record(at);
        }
    }
}

impl RaftStore {
    /// A store over a started `raft` whose state machine is `sm`; `net` reaches the
    /// leader for forwarded writes. Call from within a tokio runtime.
    pub fn new(
        raft: Raft<TypeConfig>,
        sm: StateMachine,
        net: HttpNetwork,
        status: super::net::StatusSource,
    ) -> RaftStore {
        let proof = Arc::new(LeadProof {
            base: Instant::now(),
            at: Default::default(),
        });
        let prover = tokio::spawn(prove_leadership(raft.clone(), proof.clone())).abort_handle();
        RaftStore {
            ids: Default::default(),
            inner: Arc::new(Inner {
                raft,
                sm,
                net,
                status,
                counters: Counters::default(),
                runtime: tokio::runtime::Handle::current(),
                proof,
                prover,
                batcher: Batcher::default(),
            }),
        }
    }

    pub fn raft(&self) -> &Raft<TypeConfig> {
        &self.inner.raft
    }

    pub fn state_machine(&self) -> &StateMachine {
        &self.inner.sm
    }

    /// Where this node's `/raft/status` document comes from (set once by the node).
    pub fn status_source(&self) -> &super::net::StatusSource {
        &self.inner.status
    }

    /// The members (voters and learners) by the raft state: id → `cluster.bind` address.
    pub fn members(&self) -> std::collections::BTreeMap<super::NodeId, String> {
        super::membership::members(&self.inner.raft)
    }

    /// Whether this node has a membership (was initialized, or added and caught up).
    pub fn has_membership(&self) -> bool {
        self.inner
            .raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .next()
            .is_some()
    }
}

impl Inner {
    /// Proposes `command` here or at the leader; retries while a leader is being elected.
    async fn propose(&self, command: Command) -> Result<CommandResult, StoreError> {
        let deadline = Instant::now() + COMMIT_TIMEOUT;
        loop {
            // openraft's leader waits for its majority as long as it leads, which a
            // leader cut off from every follower does until one comes back
            let left = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(100));
            let written = tokio::time::timeout(left, self.raft.client_write(command.clone()))
                .await
                .map_err(|_| {
                    StoreError::Unavailable(format!(
                        "raft: no majority acknowledged the write within {COMMIT_TIMEOUT:?} \
                         (it may yet commit)"
                    ))
                })?;
            let attempt = match written {
                Ok(r) => Ok(r.data),
                Err(e) => match e.forward_to_leader() {
                    Some(f) => match &f.leader_node {
                        Some(node) => self.net.forward_write(&node.addr, &command).await,
                        None => Err(ForwardError::NoLeader),
                    },
                    None => return Err(StoreError::Unavailable(format!("raft: {e}"))),
                },
            };
            match attempt {
                Ok(r) => return Ok(r),
                // not applied, or applied once at most whatever happens next: the command
                // carries a request id that the state machine applies only once
                Err(
                    ForwardError::NoLeader
                    | ForwardError::NotLeader(_)
                    | ForwardError::NotSent(_)
                    | ForwardError::Unreachable(_)
                    | ForwardError::LeaderFailed(_),
                ) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(StoreError::Unavailable(e.to_string())),
            }
        }
    }
}

impl Committer for Inner {
    type Snapshot = Table;
    const BLOCKING: bool = true;

    fn counters(&self) -> &Counters {
        &self.counters
    }

    fn max_age(&self) -> Duration {
        MAX_TRANSACTION_AGE
    }

    fn commit(self: &Arc<Self>, request: CommitRequest) -> Result<Version, StoreError> {
        // a blocking thread of the runtime (see OccTransaction::commit)
        self.runtime.block_on(self.commit_async(request))
    }

    /// The commit runs as a task: a proposal waiting for its raft round holds no thread
    /// (a storm's commits held one blocking thread each, hundreds at once).
    fn enqueue(
        self: &Arc<Self>,
        request: CommitRequest,
    ) -> Result<crate::occ::Answer, CommitRequest> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let inner = self.clone();
        self.runtime.spawn(async move {
            // a dropped receiver: its transaction stopped waiting, the commit stands
            let _ = answer.send(inner.commit_async(request).await);
        });
        Ok(answered)
    }
}

impl Inner {
    /// Queues `commit` to be proposed with the others that wait, and waits for what it
    /// came to.
    async fn submit(self: &Arc<Self>, commit: Commit) -> Result<super::CommitResult, StoreError> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        if let Some(batch) = self.batcher.add(Waiting { commit, answer }) {
            let inner = self.clone();
            self.runtime
                .spawn(async move { inner.propose_batches(batch).await });
        }
        answered
            .await
            .map_err(|_| StoreError::Io("the proposal was dropped".into()))?
    }

    /// Proposes `batch`, tells each of its commits what it came to, and goes on with the
    /// batches that waited meanwhile until none does.
    async fn propose_batches(&self, mut batch: Vec<Waiting>) {
        let mut slot = Slot::new(&self.batcher);
        loop {
            let (commits, answers): (Vec<Commit>, Vec<_>) =
                batch.into_iter().map(|w| (w.commit, w.answer)).unzip();
            let count = commits.len();
            let command = match <[Commit; 1]>::try_from(commits) {
                Ok([commit]) => Command::Commit(commit),
                Err(commits) => Command::Batch(commits),
            };
            let results = match self.propose(command).await {
                Ok(results) if results.len() == count => results.into_iter().map(Ok).collect(),
                Ok(results) => {
                    let e = StoreError::Io(format!(
                        "an entry of {count} commits was answered for {}",
                        results.len()
                    ));
                    vec![Err(e); count]
                }
                Err(e) => vec![Err(e); count],
            };
            for (answer, result) in answers.into_iter().zip(results) {
                // a dropped receiver: its transaction stopped waiting, the commit stands
                let _ = answer.send(result);
            }
            match slot.next() {
                Some(next) => batch = next,
                None => return,
            }
        }
    }

    async fn commit_async(self: &Arc<Self>, request: CommitRequest) -> Result<Version, StoreError> {
        let CommitRequest {
            read_version,
            reads,
            mutations,
        } = request;
        let count = mutations.len() as u64;
        let result = self
            .submit(Commit {
                read_version,
                reads: reads.into_ranges(),
                mutations,
                request: super::new_request_id(),
            })
            .await?;
        if result.conflict {
            self.counters
                .conflicts
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Err(StoreError::Conflict);
        }
        // read-your-writes: this node's replica has it before we return
        self.sm.wait_applied(result.version).await;
        self.counters
            .write_commits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.counters
            .mutations
            .fetch_add(count, std::sync::atomic::Ordering::Relaxed);
        Ok(result.version)
    }
}

#[async_trait]
impl Store for RaftStore {
    async fn begin(&self) -> Result<Box<dyn Transaction>, StoreError> {
        let started = Instant::now();
        let (table, version) = self.inner.sm.read_view()?;
        Ok(Box::new(OccTransaction::new(
            self.inner.clone(),
            Arc::new(table),
            version,
            started,
        )))
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<ChangeBatch>> {
        self.inner.sm.subscribe()
    }

    fn committed_version(&self) -> Version {
        self.inner.sm.version()
    }

    fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    fn backend_name(&self) -> &'static str {
        "raft"
    }

    fn id_blocks(&self) -> &crate::ids::IdBlocks {
        &self.ids
    }

    /// A follower: while it knows a leader (it forgets it an election timeout after the
    /// leader goes quiet). The leader: while its proof of leading is younger than the
    /// lease, so a leader cut off from the majority stops serving too.
    fn ready(&self) -> bool {
        let (leader, me) = {
            let metrics = self.inner.raft.metrics();
            let m = metrics.borrow();
            (m.current_leader, m.id)
        };
        match leader {
            Some(leader) if leader == me => self.leadership().is_some(),
            leader => leader.is_some(),
        }
    }

    fn leadership(&self) -> Option<Duration> {
        if !leads(&self.inner.raft) {
            return None;
        }
        self.inner.proof.age().filter(|age| *age < LEADER_LEASE)
    }

    fn leads(&self) -> bool {
        leads(&self.inner.raft)
    }
}
