//! The shard router: finds the owner of a user or server key and returns the actor to
//! talk to. On one node every key is local; actors are started lazily on first use.

use std::collections::HashMap;
use std::sync::Arc;

use galilean_proto::names::{ServerName, UserName};
use ractor::{Actor, ActorRef};
use tokio::sync::Mutex;

use crate::context::HubCtx;
use crate::error::OpError;
use crate::placement;
use crate::remote::{LiveSet, Owned};
use crate::server::{ServerActor, ServerArgs, ServerMsg};
use crate::user::{UserActor, UserArgs, UserMsg};

/// A node's actors of one kind, by key, each with the ownership its writes are fenced by.
type Actors<K, M> = Mutex<HashMap<K, (ActorRef<M>, Owned)>>;

pub struct Router {
    ctx: Arc<HubCtx>,
    /// The members (raft's membership in a cluster; updated as it changes) with the
    /// address of each one's actor port. A std lock: held only to copy, never across an
    /// await.
    members: std::sync::RwLock<Arc<Vec<(u64, String)>>>,
    servers: Actors<(String, String), ServerMsg>,
    users: Actors<String, UserMsg>,
    /// In a cluster: when this node last proved it had applied everything the leader
    /// had (see `remote::SERVE_LEASE`), as microseconds since `started` plus one (0:
    /// never). An atomic, because every request reads it. `None` on a single node, which
    /// needs no lease.
    pub(crate) caught_up: Option<std::sync::atomic::AtomicU64>,
    started: std::time::Instant,
}

impl Router {
    /// A router for a single node: every key is local, no lease.
    pub fn new(ctx: Arc<HubCtx>) -> Arc<Router> {
        let members = vec![(ctx.settings.node_id, String::new())];
        Router::build(ctx, members, false)
    }

    /// A router over a cluster's `members` (node id, actor address): a key owned by
    /// another node is reached through that node's router actor (see `remote`), and this
    /// node serves only under a lease.
    pub fn with_members(ctx: Arc<HubCtx>, members: Vec<(u64, String)>) -> Arc<Router> {
        Router::build(ctx, members, true)
    }

    fn build(ctx: Arc<HubCtx>, members: Vec<(u64, String)>, clustered: bool) -> Arc<Router> {
        Arc::new(Router {
            ctx,
            members: std::sync::RwLock::new(Arc::new(members)),
            servers: Mutex::new(HashMap::new()),
            users: Mutex::new(HashMap::new()),
            caught_up: clustered.then(|| std::sync::atomic::AtomicU64::new(0)),
            started: std::time::Instant::now(),
        })
    }

    pub fn ctx(&self) -> &Arc<HubCtx> {
        &self.ctx
    }

    /// Whether this node owns `user`'s actors.
    pub fn is_local(&self, user: &str) -> bool {
        self.check_local(user).is_ok()
    }

    /// Renews this node's serving lease from a leader's proof of leading that is `age`
    /// old (see `remote::SERVE_LEASE`).
    pub(crate) fn mark_caught_up_since(&self, age: std::time::Duration) {
        let now = std::time::Instant::now();
        self.mark_caught_up_at(now.checked_sub(age).unwrap_or(self.started));
    }

    /// Renews this node's serving lease from a proof of leading made at `proof`.
    pub(crate) fn mark_caught_up_at(&self, proof: std::time::Instant) {
        if let Some(at) = &self.caught_up {
            let proof = proof.saturating_duration_since(self.started).as_micros() as u64 + 1;
            // a proof that arrives late never moves the lease back
            at.fetch_max(proof, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Whether this node may answer from its replica: always on a single node; in a
    /// cluster, while its serving lease (renewed by the leader's pings once caught up)
    /// runs. A node cut off or behind stops answering, so it never accepts a token whose
    /// revocation was acknowledged elsewhere.
    pub fn lease_valid(&self) -> bool {
        match &self.caught_up {
            None => true,
            Some(at) => match at.load(std::sync::atomic::Ordering::Relaxed) {
                0 => false,
                proof => {
                    self.started.elapsed()
                        < std::time::Duration::from_micros(proof - 1) + crate::remote::SERVE_LEASE
                }
            },
        }
    }

    /// The members' ids, ascending.
    pub fn members(&self) -> Vec<u64> {
        self.member_addrs().iter().map(|(id, _)| *id).collect()
    }

    /// The members with their actor addresses.
    pub fn member_addrs(&self) -> Arc<Vec<(u64, String)>> {
        self.members
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the members (after a membership change); whether they changed.
    pub fn set_members(&self, mut members: Vec<(u64, String)>) -> bool {
        members.sort();
        let mut current = self.members.write().unwrap_or_else(|e| e.into_inner());
        if **current == members {
            return false;
        }
        *current = Arc::new(members);
        true
    }

    /// This node's id.
    pub fn node_id(&self) -> u64 {
        self.ctx.settings.node_id
    }

    /// The node that owns `user`'s actors.
    pub fn owner_of(&self, user: &str) -> Result<u64, OpError> {
        self.route(user).map(|(owner, _)| owner)
    }

    /// The owner of `user` and the live-set epoch (0: none recorded) it is owner by.
    pub(crate) fn route(&self, user: &str) -> Result<(u64, u64), OpError> {
        let (set, live) = self.placement();
        let owner = placement::owner(user.as_bytes(), &live)
            .ok_or_else(|| OpError::Unavailable("no live members".into()))?;
        Ok((owner, set.map_or(0, |s| s.epoch)))
    }

    /// The members that are live now: the leader's record in the store (see
    /// `remote::LiveSet`), or every member while there is none.
    pub fn live_members(&self) -> Vec<u64> {
        self.placement().1
    }

    /// The replica's live set, and the members users are placed over by it.
    fn placement(&self) -> (Option<LiveSet>, Vec<u64>) {
        let set = LiveSet::read(&self.ctx.replica);
        let live = match &set {
            Some(set) if !set.live.is_empty() => set.live.clone(),
            _ => self.members(),
        };
        (set, live)
    }

    /// Checks that this node owns `key` by the live set of its replica; the ownership a
    /// new actor of the key writes under, and the set.
    fn check_local(&self, key: &str) -> Result<(Owned, Option<LiveSet>), OpError> {
        let (set, live) = self.placement();
        match placement::owner(key.as_bytes(), &live) {
            Some(n) if n == self.ctx.settings.node_id => {
                let epoch = set.as_ref().map_or(0, |s| s.epoch);
                Ok((Owned { node: n, epoch }, set))
            }
            Some(n) => Err(OpError::Moved(format!("{key} is owned by node {n}"))),
            None => Err(OpError::Unavailable("no live members".into())),
        }
    }

    /// Whether this node's ownership of any user may have lapsed since live-set `epoch`
    /// (by the replica's set).
    pub(crate) fn lapsed_since(&self, epoch: u64) -> bool {
        self.stale(Owned {
            node: self.ctx.settings.node_id,
            epoch,
        })
    }

    /// Whether an actor that writes under `owned` is stale by the replica's live set:
    /// its user may have had another owner since it started (see `remote::fence`, which
    /// refuses its writes). Such an actor is replaced by a fresh one.
    fn stale(&self, owned: Owned) -> bool {
        stale_by(LiveSet::read(&self.ctx.replica).as_ref(), owned)
    }

    /// A cached actor that is still good to use by the live set `set`: running and not
    /// stale. A stale one is stopped (its in-flight work is refused by the fence).
    fn usable<M: ractor::Message>(
        cached: Option<&(ActorRef<M>, Owned)>,
        set: Option<&LiveSet>,
    ) -> Option<ActorRef<M>> {
        let (actor, owned) = cached?;
        if actor.get_status() != ractor::ActorStatus::Running {
            return None;
        }
        if stale_by(set, *owned) {
            actor.stop(Some(
                "its user may have had another owner since it started".into(),
            ));
            return None;
        }
        Some(actor.clone())
    }

    /// The actor of one server (started if needed). Servers are placed by their user, so
    /// a user's actors live together.
    pub async fn server(
        self: &Arc<Self>,
        user: &UserName,
        server: &ServerName,
    ) -> Result<ActorRef<ServerMsg>, OpError> {
        let (owned, set) = self.check_local(user.as_str())?;
        let key = (user.as_str().to_owned(), server.as_str().to_owned());
        let mut map = self.servers.lock().await;
        if let Some(a) = Router::usable(map.get(&key), set.as_ref()) {
            return Ok(a);
        }
        let args = ServerArgs {
            ctx: self.ctx.clone(),
            user: user.clone(),
            server: server.clone(),
            owned,
            router: Arc::downgrade(self),
        };
        let (actor, _) = Actor::spawn(None, ServerActor, args)
            .await
            .map_err(|e| OpError::Unavailable(e.to_string()))?;
        map.insert(key, (actor.clone(), owned));
        Ok(actor)
    }

    /// The actor of one user (started if needed).
    pub async fn user(self: &Arc<Self>, name: &UserName) -> Result<ActorRef<UserMsg>, OpError> {
        let (owned, set) = self.check_local(name.as_str())?;
        let mut map = self.users.lock().await;
        if let Some(a) = Router::usable(map.get(name.as_str()), set.as_ref()) {
            return Ok(a);
        }
        let args = UserArgs {
            ctx: self.ctx.clone(),
            router: Arc::downgrade(self),
            name: name.clone(),
            owned,
        };
        let (actor, _) = Actor::spawn(None, UserActor, args)
            .await
            .map_err(|e| OpError::Unavailable(e.to_string()))?;
        map.insert(name.as_str().to_owned(), (actor.clone(), owned));
        Ok(actor)
    }

    /// Whether this node already runs the actor of a server (and it is not stale).
    pub async fn has_server_actor(&self, user: &UserName, server: &ServerName) -> bool {
        let key = (user.as_str().to_owned(), server.as_str().to_owned());
        self.servers
            .lock()
            .await
            .get(&key)
            .is_some_and(|(a, owned)| {
                a.get_status() == ractor::ActorStatus::Running && !self.stale(*owned)
            })
    }

    /// How many user and server actors this node runs (`None` while a map is busy).
    pub fn actor_counts(&self) -> (Option<usize>, Option<usize>) {
        (
            self.users.try_lock().ok().map(|m| m.len()),
            self.servers.try_lock().ok().map(|m| m.len()),
        )
    }

    /// Stops the actors of users this node no longer owns (the live set moved them), or
    /// may have stopped owning since the actor started (stale, see `stale`): their
    /// servers' processes keep running, for the owner to re-adopt, and a later move back
    /// starts fresh actors from the replica instead of reusing stale ones.
    pub async fn release_moved_actors(&self) {
        let released = self.release(&self.servers, |(user, _)| user).await
            + self.release(&self.users, |user| user).await;
        if released > 0 {
            tracing::info!(released, "stopped the actors of users that moved away");
        }
    }

    /// Stops and forgets the actors in `map` whose user (`user_of` their key) this node
    /// no longer owns, or that are stale; how many.
    async fn release<K, M: ractor::Message>(
        &self,
        map: &Actors<K, M>,
        user_of: impl Fn(&K) -> &String,
    ) -> usize {
        let mut released = 0;
        // one reading of the live set for every actor (not two per actor)
        let (set, live) = self.placement();
        let me = self.ctx.settings.node_id;
        map.lock().await.retain(|key, (actor, owned)| {
            let local = placement::owner(user_of(key).as_bytes(), &live) == Some(me);
            let keep = local && !stale_by(set.as_ref(), *owned);
            if !keep {
                actor.stop(Some("moved to another node".into()));
                released += 1;
            }
            keep
        });
        released
    }

    /// Server actors currently alive on this node.
    pub async fn server_actors(&self) -> Vec<ActorRef<ServerMsg>> {
        self.servers
            .lock()
            .await
            .values()
            .map(|(actor, _)| actor.clone())
            .collect()
    }
}

/// Whether an actor that writes under `owned` is stale by the live set `set`.
fn stale_by(set: Option<&LiveSet>, owned: Owned) -> bool {
    set.is_some_and(|set| set.ownership_may_have_lapsed(owned.node, owned.epoch))
}

/// Sends `msg` built with a reply port and waits for the answer.
pub async fn ask<M, T>(
    actor: &ActorRef<M>,
    build: impl FnOnce(ractor::RpcReplyPort<T>) -> M,
) -> Result<T, OpError>
where
    M: ractor::Message,
    T: Send + 'static,
{
    match actor
        .call(build, Some(std::time::Duration::from_secs(60)))
        .await
    {
        Ok(ractor::rpc::CallResult::Success(v)) => Ok(v),
        Ok(ractor::rpc::CallResult::Timeout) => Err(OpError::Unavailable(
            "the actor did not answer in time".into(),
        )),
        // the actor stopped with the message unhandled (its user moved to another node,
        // see `release_moved_actors`): nothing was done, and the caller may go again
        Ok(ractor::rpc::CallResult::SenderError) | Err(_) => Err(OpError::Moved(
            "the actor stopped before handling the call".into(),
        )),
    }
}
