//! This node's status documents on its cluster port: its view of raft or of the shared
//! store's lease, the live set, drains, its serving lease, who owns how many users; and
//! its replica's state, which the chaos harness compares across nodes.

use std::collections::BTreeMap;

use galilean_actors::membership::read_live_set;
use galilean_actors::policy::placement;
use galilean_proto::node::NodeId;
use galilean_storage::raft::RaftStore;
use serde_json::{json, Value};

use crate::app::AppState;

/// This node's status document (served on `/raft/status`), on the raft store.
pub fn status_json(app: &AppState, raft: &RaftStore) -> String {
    // a copy: a borrow held while reading the replica would hold up raft's metrics
    // writer, and a second borrow (raft.members()) behind a waiting writer deadlocks
    let m = raft.raft().metrics().borrow().clone();
    let voters: Vec<u64> = m.membership_config.membership().voter_ids().collect();
    let mut doc = hub_status(app);
    doc.extend([
        ("node_id".into(), json!(m.id)),
        ("state".into(), json!(format!("{:?}", m.state))),
        ("leader".into(), json!(m.current_leader)),
        ("term".into(), json!(m.current_term)),
        ("voters".into(), json!(voters)),
        (
            "last_applied".into(),
            json!(m.last_applied.map(|id| id.index)),
        ),
        ("members".into(), json!(raft.members())),
    ]);
    Value::Object(doc).to_string()
}

/// This node's status document on a store the nodes share (FoundationDB): the leader
/// is the holder of the lease, the members are the configured peers.
pub fn shared_status_json(app: &AppState, lease: &galilean_storage::lease::StoreLease) -> String {
    let me = app.router.node_id();
    let peers = app
        .config
        .cluster
        .as_ref()
        .map(|c| c.peers.clone())
        .unwrap_or_default();
    let holder = lease.holder();
    let state = match (holder, lease.leadership()) {
        (_, Some(_)) => "Leader",
        (Some(h), None) if me == h => "Lapsed",
        _ => "Follower",
    };
    let mut doc = hub_status(app);
    doc.extend([
        ("node_id".into(), json!(me)),
        ("state".into(), json!(state)),
        ("leader".into(), json!(holder)),
        ("term".into(), json!(lease.term())),
        (
            "voters".into(),
            json!(peers.iter().map(|p| p.id).collect::<Vec<_>>()),
        ),
        ("last_applied".into(), json!(app.replica.version())),
        (
            "members".into(),
            json!(peers
                .iter()
                .map(|p| (p.id.to_string(), p.addr.clone()))
                .collect::<BTreeMap<_, _>>()),
        ),
        ("store".into(), json!(app.store.backend_name())),
    ]);
    Value::Object(doc).to_string()
}

/// This node's own replica (served on `/raft/state`): the version applied, a digest of
/// everything, and each user's token ids and servers' phases. Read locally, never
/// through an owner, so that the chaos harness can compare the nodes' replicas.
pub fn state_json(app: &AppState) -> String {
    app.replica.read(|s| {
        let mut tokens: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for rec in s.tokens.values() {
            if let galilean_proto::records::Owner::User(name) = &rec.owner {
                tokens
                    .entry(name.as_str())
                    .or_default()
                    .push(format!("a{}", rec.id));
            }
        }
        let users: BTreeMap<&str, Value> = s
            .users
            .keys()
            .map(|name| {
                let mut ids = tokens.remove(name.as_str()).unwrap_or_default();
                ids.sort_unstable();
                let servers: BTreeMap<&str, String> = s
                    .servers_of(name)
                    .map(|r| (r.name.as_str(), format!("{:?}", r.phase).to_lowercase()))
                    .collect();
                (name.as_str(), json!({"tokens": ids, "servers": servers}))
            })
            .collect();
        json!({
            "node_id": app.router.node_id(),
            "version": s.version,
            "digest": s.digest(),
            "users": users,
        })
        .to_string()
    })
}

/// What every node reports whatever its store: the live set, drains, its serving lease,
/// and who owns how many users and actors.
fn hub_status(app: &AppState) -> serde_json::Map<String, Value> {
    let live = read_live_set(&app.replica);
    let live_ids = app.router.live_members();
    // who owns how many users, by the live set this node has applied
    let owned: BTreeMap<NodeId, usize> = app.replica.read(|s| {
        let mut owned = BTreeMap::new();
        for name in s.users.keys() {
            if let Some(owner) = placement::owner(name.as_bytes(), &live_ids) {
                *owned.entry(owner).or_insert(0) += 1;
            }
        }
        owned
    });
    let (user_actors, server_actors) = app.router.actor_counts();
    serde_json::Map::from_iter([
        (
            "live".into(),
            json!(live.map(|l| json!({"epoch": l.epoch, "members": l.live}))),
        ),
        (
            "draining".into(),
            json!(galilean_actors::membership::draining(&app.replica)),
        ),
        ("serving".into(), json!(app.router.lease_valid())),
        ("owned_users".into(), json!(owned)),
        (
            "actors".into(),
            json!({"users": user_actors, "servers": server_actors}),
        ),
    ])
}
