//! The `Router`: this node's registry of local actors, one per user and per server of
//! the users it owns, started on first use and stopped when their user moves away; and
//! where each user is placed, by the live set this node's replica shows.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use galilean_proto::live::LiveSet;
use galilean_proto::names::{ServerName, UserName};
use galilean_proto::node::NodeId;
use ractor::{Actor, ActorRef};
use tokio::sync::Mutex;

use crate::context::HubCtx;
use crate::error::OpError;
use crate::membership::lease::ServeLease;
use crate::membership::live_set::read_live_set;
use crate::policy::placement::{owner, stale_by, Owned};
use crate::server::actor::{ServerActor, ServerArgs};
use crate::server::messages::ServerMsg;
use crate::user::{UserActor, UserArgs, UserMsg};

/// A node's actors of one kind, by key, each with the ownership its writes are fenced by.
type Actors<K, M> = Mutex<HashMap<K, (ActorRef<M>, Owned)>>;

pub struct Router {
    ctx: Arc<HubCtx>,
    /// The members (raft's membership in a cluster; updated as it changes) with the
    /// address of each one's actor port. A std lock: held only to copy, never across an
    /// await.
    members: std::sync::RwLock<Arc<Vec<(NodeId, String)>>>,
    servers: Actors<(String, String), ServerMsg>,
    users: Actors<String, UserMsg>,
    /// Whether this node may answer from its replica (renewed by the leader's pings in
    /// a cluster; always on a single node).
    lease: Arc<ServeLease>,
}

impl Router {
    /// A router for a single node: every key is local, no lease.
    pub fn new(ctx: Arc<HubCtx>) -> Arc<Router> {
        let members = vec![(NodeId(ctx.settings.node_id), String::new())];
        Router::build(ctx, members, ServeLease::single())
    }

    /// A router over a cluster's `members` (node id, actor address): a key owned by
    /// another node is reached through that node's router actor, and this node serves
    /// only under a lease.
    pub fn with_members(ctx: Arc<HubCtx>, members: Vec<(u64, String)>) -> Arc<Router> {
        let members = members.into_iter().map(|(id, a)| (NodeId(id), a)).collect();
        Router::build(ctx, members, ServeLease::clustered())
    }

    fn build(ctx: Arc<HubCtx>, members: Vec<(NodeId, String)>, lease: ServeLease) -> Arc<Router> {
        Arc::new(Router {
            ctx,
            members: std::sync::RwLock::new(Arc::new(members)),
            servers: Mutex::new(HashMap::new()),
            users: Mutex::new(HashMap::new()),
            lease: Arc::new(lease),
        })
    }

    pub fn ctx(&self) -> &Arc<HubCtx> {
        &self.ctx
    }

    /// This node's serving lease.
    pub fn lease(&self) -> &Arc<ServeLease> {
        &self.lease
    }

    /// Whether this node may answer from its replica: always on a single node; in a
    /// cluster, while its serving lease (renewed by the leader's pings once caught up)
    /// runs.
    pub fn lease_valid(&self) -> bool {
        self.lease.valid()
    }

    /// Whether this node owns `user`'s actors.
    pub fn is_local(&self, user: &str) -> bool {
        self.check_local(user).is_ok()
    }

    /// The members' ids, ascending.
    pub fn members(&self) -> Vec<NodeId> {
        self.member_addrs().iter().map(|(id, _)| *id).collect()
    }

    /// The members with their actor addresses.
    pub fn member_addrs(&self) -> Arc<Vec<(NodeId, String)>> {
        self.members
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the members (after a membership change); whether they changed.
    pub fn set_members(&self, members: Vec<(u64, String)>) -> bool {
        let mut members: Vec<(NodeId, String)> =
            members.into_iter().map(|(id, a)| (NodeId(id), a)).collect();
        members.sort();
        let mut current = self.members.write().unwrap_or_else(|e| e.into_inner());
        if **current == members {
            return false;
        }
        *current = Arc::new(members);
        true
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        NodeId(self.ctx.settings.node_id)
    }

    /// The node that owns `user`'s actors.
    pub fn owner_of(&self, user: &str) -> Result<NodeId, OpError> {
        self.route(user).map(|(owner, _)| owner)
    }

    /// The owner of `user` and the live-set epoch (0: none recorded) it is owner by.
    pub fn route(&self, user: &str) -> Result<(NodeId, u64), OpError> {
        let (set, live) = self.placement();
        let owner = owner(user.as_bytes(), &live)
            .ok_or_else(|| OpError::Unavailable("no live members".into()))?;
        Ok((owner, set.map_or(0, |s| s.epoch)))
    }

    /// The members that are live now: the leader's record in the store (see
    /// `galilean_proto::live`), or every member while there is none.
    pub fn live_members(&self) -> Vec<NodeId> {
        self.placement().1
    }

    /// The replica's live set, and the members users are placed over by it.
    fn placement(&self) -> (Option<LiveSet>, Vec<NodeId>) {
        let set = read_live_set(&self.ctx.replica);
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
        match owner(key.as_bytes(), &live) {
            Some(n) if n == self.node_id() => {
                let epoch = set.as_ref().map_or(0, |s| s.epoch);
                Ok((Owned { node: n, epoch }, set))
            }
            Some(n) => Err(OpError::Moved(format!("{key} is owned by node {n}"))),
            None => Err(OpError::Unavailable("no live members".into())),
        }
    }

    /// Whether this node's ownership of any user may have lapsed since live-set `epoch`
    /// (by the replica's set).
    pub fn lapsed_since(&self, epoch: u64) -> bool {
        self.stale(Owned {
            node: self.node_id(),
            epoch,
        })
    }

    /// Whether an actor that writes under `owned` is stale by the replica's live set:
    /// its user may have had another owner since it started (the fence refuses its
    /// writes). Such an actor is replaced by a fresh one.
    fn stale(&self, owned: Owned) -> bool {
        stale_by(read_live_set(&self.ctx.replica).as_ref(), owned)
    }

    /// Waits up to `wait` for this node's replica to reach `version`.
    pub async fn catch_up(&self, version: u64, wait: Duration) -> Result<(), OpError> {
        tokio::time::timeout(wait, self.ctx.replica.wait_for(version))
            .await
            .map_err(|_| OpError::Unavailable(format!("not caught up to version {version}")))
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
            lease: Arc::downgrade(&self.lease),
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
    /// may have stopped owning since the actor started (stale): their servers'
    /// processes keep running, for the owner to re-adopt, and a later move back starts
    /// fresh actors from the replica instead of reusing stale ones.
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
        let me = self.node_id();
        map.lock().await.retain(|key, (actor, owned)| {
            let local = owner(user_of(key).as_bytes(), &live) == Some(me);
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
