//! Three raft stores on loopback in one process: writes through any node (followers
//! forward to the leader), replication to every state machine, conflicts across nodes,
//! leader failover, and the cluster secret.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use galilean_storage::raft::tls::{Authority, NodeTls};
use galilean_storage::raft::{self, net::HttpNetwork, Command, Commit, RaftStore};
use galilean_storage::testing::eventually;
use galilean_storage::{Store, StoreError};
use openraft::BasicNode;

const SECRET: &str = "cluster-test-secret";

struct Node {
    store: Arc<RaftStore>,
    server: tokio::task::JoinHandle<()>,
    addr: String,
}

async fn cluster(dir: &std::path::Path) -> Vec<Node> {
    cluster_with(dir, None).await
}

/// Three nodes; with `tls`, each has a certificate from that authority.
async fn cluster_with(dir: &std::path::Path, tls: Option<&Authority>) -> Vec<Node> {
    let mut nodes = Vec::new();
    for id in 1..=3u64 {
        let tls = tls.map(|ca| node_tls(ca, &format!("node{id}")));
        nodes.push(start(dir, id, "127.0.0.1:0", tls.as_ref()).await.unwrap());
    }
    let members: BTreeMap<u64, BasicNode> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                i as u64 + 1,
                BasicNode {
                    addr: n.addr.clone(),
                },
            )
        })
        .collect();
    nodes[0].store.raft().initialize(members).await.unwrap();
    leader(&nodes, Duration::from_secs(10)).await;
    nodes
}

/// Starts node `id` over its file in `dir`, serving raft on `addr`.
async fn start(
    dir: &std::path::Path,
    id: u64,
    addr: &str,
    tls: Option<&NodeTls>,
) -> Result<Node, String> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener
        .local_addr()
        .map_err(|e| e.to_string())?
        .to_string();
    let (store, server) = raft::start_node(
        id,
        &dir.join(format!("node{id}.redb")),
        listener,
        SECRET,
        tls,
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(Node {
        store: Arc::new(store),
        server,
        addr,
    })
}

/// Waits until the live nodes agree on a leader; returns its index in `nodes`.
async fn leader(nodes: &[Node], timeout: Duration) -> usize {
    eventually("the live nodes agree on a leader", timeout, || async {
        let leaders: Vec<Option<u64>> = nodes
            .iter()
            .filter(|n| !n.server.is_finished())
            .map(|n| n.store.raft().metrics().borrow().current_leader)
            .collect();
        match leaders.first() {
            Some(Some(l)) if leaders.iter().all(|x| *x == Some(*l)) => Ok((*l - 1) as usize),
            _ => Err(format!("leaders {leaders:?}")),
        }
    })
    .await
}

async fn put(store: &RaftStore, key: &[u8], value: &[u8]) -> Result<u64, StoreError> {
    let mut tx = store.begin().await?;
    tx.set(key, value);
    tx.commit().await
}

async fn get(store: &RaftStore, key: &[u8]) -> Option<Vec<u8>> {
    store.begin().await.unwrap().get(key).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_any_node_reach_every_replica() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = cluster(dir.path()).await;
    let l = leader(&nodes, Duration::from_secs(5)).await;

    // through every node, leader and followers alike; each reads its own write at once
    let mut last = 0;
    for (i, n) in nodes.iter().enumerate() {
        let key = format!("from-{i}");
        let v = put(&n.store, key.as_bytes(), b"x").await.unwrap();
        assert!(v > last, "versions increase across nodes");
        last = v;
        assert_eq!(
            get(&n.store, key.as_bytes()).await,
            Some(b"x".to_vec()),
            "node {i} (leader {l})"
        );
    }
    // every replica applies every write, with the same versions on its feed
    for n in &nodes {
        n.store.state_machine().wait_applied(last).await;
        for i in 0..3 {
            assert_eq!(
                get(&n.store, format!("from-{i}").as_bytes()).await,
                Some(b"x".to_vec())
            );
        }
        assert_eq!(n.store.committed_version(), last);
    }

    // a conflict is decided the same everywhere: a follower's transaction that read a key
    // another node wrote since loses
    let follower = (l + 1) % 3;
    let other = (l + 2) % 3;
    let mut tx = nodes[follower].store.begin().await.unwrap();
    assert_eq!(tx.get(b"contended").await.unwrap(), None);
    put(&nodes[other].store, b"contended", b"theirs")
        .await
        .unwrap();
    tx.set(b"contended", b"mine");
    assert_eq!(tx.commit().await, Err(StoreError::Conflict));
    assert_eq!(
        get(&nodes[follower].store, b"contended").await,
        Some(b"theirs".to_vec())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_takes_over_and_nothing_acknowledged_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = cluster(dir.path()).await;
    let l = leader(&nodes, Duration::from_secs(5)).await;
    let mut acked = Vec::new();
    for i in 0..20 {
        let key = format!("k{i:02}");
        put(&nodes[(l + 1) % 3].store, key.as_bytes(), b"v")
            .await
            .unwrap();
        acked.push(key);
    }
    // the leader goes away: its raft stops and its endpoint closes
    let killed = Instant::now();
    nodes[l].store.raft().shutdown().await.unwrap();
    nodes[l].server.abort();
    let survivor = &nodes[(l + 1) % 3];
    // a write through a survivor succeeds once the others have elected a new leader
    let v = eventually(
        "a write through a survivor succeeds after the failover",
        Duration::from_secs(20),
        || async {
            match put(&survivor.store, b"after-failover", b"v").await {
                Ok(v) => Ok(v),
                Err(e @ StoreError::Unavailable(_)) => Err(e),
                Err(e) => panic!("no write after failover: {e}"),
            }
        },
    )
    .await;
    let took = killed.elapsed();
    eprintln!("raft failover: leader stopped -> first acknowledged write after {took:?}");
    assert!(took < Duration::from_secs(10), "failover took {took:?}");
    for n in nodes.iter().filter(|n| !n.server.is_finished()) {
        n.store.state_machine().wait_applied(v).await;
        for key in &acked {
            assert_eq!(
                get(&n.store, key.as_bytes()).await,
                Some(b"v".to_vec()),
                "{key} lost"
            );
        }
    }
}

/// A leader whose raft stops while its endpoint still answers (a node shutting down)
/// fails the writes forwarded to it; the followers send them again to the next leader,
/// so no write through a follower fails, and every acknowledged one is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_forwarded_to_a_leader_that_stops_go_to_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = Arc::new(cluster(dir.path()).await);
    let l = leader(&nodes, Duration::from_secs(5)).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for f in [(l + 1) % 3, (l + 2) % 3] {
        let (nodes, stop) = (nodes.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut written = Vec::new();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let key = format!("w{f}-{i:04}");
                match put(&nodes[f].store, key.as_bytes(), b"v").await {
                    Ok(version) => written.push(version),
                    Err(e) => return Err(format!("{key} through node {f}: {e}")),
                }
                i += 1;
            }
            Ok(written)
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // the raft stops; the endpoint stays up and answers forwarded writes with the failure
    nodes[l].store.raft().shutdown().await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut all = Vec::new();
    for w in writers {
        all.extend(w.await.unwrap().unwrap());
    }
    assert!(
        all.len() > 20,
        "too few writes to show anything: {}",
        all.len()
    );
    let survivor = &nodes[(l + 1) % 3].store;
    survivor
        .state_machine()
        .wait_applied(*all.iter().max().unwrap())
        .await;
    let count = survivor
        .begin()
        .await
        .unwrap()
        .get_range(b"w", b"x", 100_000, false)
        .await
        .unwrap()
        .len();
    assert_eq!(count, all.len(), "every write acknowledged is there, once");
}

/// A leader whose followers are gone cannot commit: a write through it fails as
/// unavailable within the commit deadline instead of waiting for a majority that may
/// never come back (a node stopping with the rest of its cluster waited forever on its
/// last flush of activity).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_without_its_majority_gives_up_on_a_write() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = cluster(dir.path()).await;
    let l = leader(&nodes, Duration::from_secs(5)).await;
    put(&nodes[l].store, b"before", b"v").await.unwrap();
    for (i, n) in nodes.iter().enumerate() {
        if i != l {
            n.store.raft().shutdown().await.unwrap();
            n.server.abort();
        }
    }
    let asked = Instant::now();
    let answer = tokio::time::timeout(
        Duration::from_secs(30),
        put(&nodes[l].store, b"after", b"v"),
    )
    .await
    .expect("a write on a leader without followers never came back");
    assert!(
        matches!(answer, Err(StoreError::Unavailable(_))),
        "{answer:?}"
    );
    eprintln!("gave up after {:?}", asked.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_cluster_secret_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = cluster(dir.path()).await;
    let l = leader(&nodes, Duration::from_secs(5)).await;
    let intruder = HttpNetwork::new("not-the-secret", None);
    let command = Command::Commit(Commit {
        read_version: 0,
        reads: vec![],
        mutations: vec![galilean_storage::Mutation::Set {
            key: b"evil".to_vec(),
            value: b"1".to_vec(),
        }],
        request: 0,
    });
    let err = intruder
        .forward_write(&nodes[l].addr, &command)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    assert_eq!(get(&nodes[l].store, b"evil").await, None);
}

fn node_tls(ca: &Authority, name: &str) -> NodeTls {
    let issued = ca.issue(name, &["127.0.0.1".into()]).unwrap();
    NodeTls::from_pem(
        issued.cert_pem.as_bytes(),
        issued.key_pem.as_bytes(),
        ca.cert_pem().as_bytes(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_only_holders_of_the_clusters_certificates_get_in() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Authority::new("test cluster CA").unwrap();
    let nodes = cluster_with(dir.path(), Some(&ca)).await;
    let l = leader(&nodes, Duration::from_secs(5)).await;
    // the cluster replicates over TLS
    let follower = (l + 1) % 3;
    let v = put(&nodes[follower].store, b"k", b"v").await.unwrap();
    for n in &nodes {
        n.store.state_machine().wait_applied(v).await;
        assert_eq!(get(&n.store, b"k").await.as_deref(), Some(&b"v"[..]));
    }
    let command = |key: &[u8]| {
        Command::Commit(Commit {
            read_version: 0,
            reads: vec![],
            mutations: vec![galilean_storage::Mutation::Set {
                key: key.to_vec(),
                value: b"1".to_vec(),
            }],
            request: 0,
        })
    };
    // a client with the secret and a certificate of this CA is let in ...
    let member = HttpNetwork::new(SECRET, Some(&node_tls(&ca, "node4")));
    member
        .forward_write(&nodes[l].addr, &command(b"member"))
        .await
        .unwrap();
    // ... one with the secret but a certificate from another CA is not, nor one in clear
    let other_ca = Authority::new("another CA").unwrap();
    let stranger = HttpNetwork::new(SECRET, Some(&node_tls(&other_ca, "node4")));
    let clear = HttpNetwork::new(SECRET, None);
    for (client, key) in [(stranger, &b"stranger"[..]), (clear, &b"clear"[..])] {
        let err = client
            .forward_write(&nodes[l].addr, &command(key))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                raft::net::ForwardError::NotSent(_) | raft::net::ForwardError::Unreachable(_)
            ),
            "{err}"
        );
    }
    let v = put(&nodes[l].store, b"after", b"1").await.unwrap();
    nodes[l].store.state_machine().wait_applied(v).await;
    assert!(get(&nodes[l].store, b"member").await.is_some());
    assert_eq!(get(&nodes[l].store, b"stranger").await, None);
    assert_eq!(get(&nodes[l].store, b"clear").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_node_catches_up_by_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = cluster(dir.path()).await;
    let l = leader(&nodes, Duration::from_secs(5)).await;
    let lead = nodes[l].store.clone();
    let mut last = 0;
    for i in 0..30 {
        last = put(&lead, format!("k{i:02}").as_bytes(), b"v")
            .await
            .unwrap();
    }
    // snapshot, then drop the log it covers: a newcomer can only catch up by snapshot
    lead.raft().trigger().snapshot().await.unwrap();
    let snap = eventually(
        "a snapshot of the last write is built",
        Duration::from_secs(10),
        || async {
            lead.raft()
                .metrics()
                .borrow()
                .snapshot
                .filter(|s| s.index >= last)
        },
    )
    .await;
    lead.raft().trigger().purge_log(snap.index).await.unwrap();
    eventually("the log is purged", Duration::from_secs(10), || async {
        lead.raft()
            .metrics()
            .borrow()
            .purged
            .is_some_and(|p| p.index >= snap.index)
    })
    .await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (newcomer, _server) =
        raft::start_node(4, &dir.path().join("node4.redb"), listener, SECRET, None)
            .await
            .unwrap();
    let mut feed = newcomer.subscribe();
    lead.raft()
        .add_learner(4, BasicNode { addr }, true)
        .await
        .unwrap();
    newcomer.state_machine().wait_applied(last).await;
    for i in 0..30 {
        assert_eq!(
            get(&newcomer, format!("k{i:02}").as_bytes()).await,
            Some(b"v".to_vec())
        );
    }
    assert_eq!(newcomer.committed_version(), last);
    // the feed could not describe the jump: its followers are told to reload
    assert!(matches!(
        feed.try_recv(),
        Err(tokio::sync::broadcast::error::TryRecvError::Closed)
    ));
    // and later writes reach the newcomer as usual
    let v = put(&lead, b"later", b"v").await.unwrap();
    newcomer.state_machine().wait_applied(v).await;
    assert_eq!(get(&newcomer, b"later").await, Some(b"v".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposal_sent_again_is_applied_once() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = cluster(dir.path()).await;
    let l = leader(&nodes, Duration::from_secs(5)).await;
    let net = HttpNetwork::new(SECRET, None);
    let set = |value: &[u8], request: u128| {
        Command::Commit(Commit {
            read_version: 0,
            reads: vec![],
            mutations: vec![galilean_storage::Mutation::Set {
                key: b"k".to_vec(),
                value: value.to_vec(),
            }],
            request,
        })
    };
    let first = set(b"first", raft::new_request_id());
    let v1 = net.forward_write(&nodes[l].addr, &first).await.unwrap()[0];
    assert!(!v1.conflict);
    let later = put(&nodes[l].store, b"k", b"later").await.unwrap();
    assert!(later > v1.version);
    // the same proposal again (a retry after a lost answer): the first answer, no write
    let again = net.forward_write(&nodes[l].addr, &first).await.unwrap()[0];
    assert_eq!(again.version, v1.version);
    let v = put(&nodes[l].store, b"other", b"1").await.unwrap();
    for n in &nodes {
        n.store.state_machine().wait_applied(v).await;
        assert_eq!(get(&n.store, b"k").await.as_deref(), Some(&b"later"[..]));
    }
    // without a request id, sending twice writes twice
    let plain = set(b"plain", 0);
    let a = net.forward_write(&nodes[l].addr, &plain).await.unwrap()[0];
    let b = net.forward_write(&nodes[l].addr, &plain).await.unwrap()[0];
    assert!(b.version > a.version);
}

/// Commits that meet a proposal under way wait and go together in one log entry (one
/// sync of the log on each node for all of them), on the leader and on a follower that
/// forwards them; each is decided as if alone, and each reads its own write at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_share_log_entries() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = cluster(dir.path()).await;
    let l = leader(&nodes, Duration::from_secs(5)).await;
    let follower = (l + 1) % 3;
    let entries_before = nodes[l].store.raft().metrics().borrow().last_log_index;
    const EACH: usize = 200;
    let mut writes = tokio::task::JoinSet::new();
    for node in [l, follower] {
        for i in 0..EACH {
            let store = nodes[node].store.clone();
            writes.spawn(async move {
                let key = format!("n{node}-{i}");
                let v = put(&store, key.as_bytes(), b"x").await.unwrap();
                // read-your-writes holds for every commit of a batch
                assert_eq!(
                    get(&store, key.as_bytes()).await.as_deref(),
                    Some(&b"x"[..])
                );
                v
            });
        }
    }
    let mut versions = Vec::new();
    while let Some(v) = writes.join_next().await {
        versions.push(v.unwrap());
    }
    let entries = nodes[l]
        .store
        .raft()
        .metrics()
        .borrow()
        .last_log_index
        .unwrap()
        - entries_before.unwrap();
    // one entry per commit before batches: 400
    assert!(
        (entries as usize) < EACH,
        "{} commits took {entries} log entries",
        2 * EACH
    );
    versions.sort_unstable();
    versions.dedup();
    assert!(versions.len() as u64 <= entries, "a version is an entry");
    let last = *versions.last().unwrap();
    for n in &nodes {
        n.store.state_machine().wait_applied(last).await;
        for node in [l, follower] {
            for i in (0..EACH).step_by(37) {
                let key = format!("n{node}-{i}");
                assert_eq!(
                    get(&n.store, key.as_bytes()).await.as_deref(),
                    Some(&b"x"[..])
                );
            }
        }
    }
}

/// The commits of one entry are decided in order, each as it would be alone: one that
/// read what an earlier one of the entry wrote is refused, the others apply, and all
/// share the entry's version. A batch sent again (a lost answer) gets its first answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_s_commits_are_decided_in_order_and_share_its_version() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = cluster(dir.path()).await;
    let l = leader(&nodes, Duration::from_secs(5)).await;
    let before = put(&nodes[l].store, b"seen", b"1").await.unwrap();
    let set = |key: &[u8], reads: &[&[u8]]| Commit {
        read_version: before,
        reads: reads
            .iter()
            .map(|k| (k.to_vec(), [*k, &[0]].concat()))
            .collect(),
        mutations: vec![galilean_storage::Mutation::Set {
            key: key.to_vec(),
            value: b"1".to_vec(),
        }],
        request: raft::new_request_id(),
    };
    let batch = Command::Batch(vec![
        set(b"x", &[b"seen"]),
        // read x before the commit above wrote it
        set(b"y", &[b"x"]),
        set(b"z", &[b"seen", b"y"]),
    ]);
    let net = HttpNetwork::new(SECRET, None);
    let results = net.forward_write(&nodes[l].addr, &batch).await.unwrap();
    assert_eq!(results.len(), 3);
    let version = results[0].version;
    assert!(version > before);
    assert!(!results[0].conflict && results[1].conflict && !results[2].conflict);
    assert_eq!(results[2].version, version);
    // sent again: the first answers, nothing written twice
    let again = net.forward_write(&nodes[l].addr, &batch).await.unwrap();
    assert_eq!(again[0], results[0]);
    assert_eq!(again[2], results[2]);
    let after = put(&nodes[l].store, b"after", b"1").await.unwrap();
    for n in &nodes {
        n.store.state_machine().wait_applied(after).await;
        assert_eq!(get(&n.store, b"x").await.as_deref(), Some(&b"1"[..]));
        assert_eq!(get(&n.store, b"y").await, None);
        assert_eq!(get(&n.store, b"z").await.as_deref(), Some(&b"1"[..]));
    }
    // a transaction that read z before the entry conflicts with it
    let stale = Command::Commit(Commit {
        read_version: version - 1,
        ..set(b"w", &[b"z"])
    });
    let refused = net.forward_write(&nodes[l].addr, &stale).await.unwrap();
    assert!(refused[0].conflict);
}

/// Starts node `id` again over its file, on the address the membership holds for it
/// (retried while the old node's file and port are still being let go).
async fn restart(dir: &std::path::Path, id: u64, addr: &str) -> Node {
    let what = format!("node {id} starts again");
    eventually(what, Duration::from_secs(10), || async {
        let started = start(dir, id, addr, None).await;
        if let Err(e) = &started {
            eprintln!("node {id} not started again yet: {e}");
        }
        started
    })
    .await
}

/// The commit index is not kept on disk (raft's volatile state): a whole cluster stopped
/// and started again over its files elects a leader, which commits everything its log
/// holds, and every node applies it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_cluster_started_again_keeps_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = cluster(dir.path()).await;
    let mut last = 0;
    for i in 0..30 {
        let key = format!("k{i:02}");
        last = put(&nodes[i % 3].store, key.as_bytes(), b"v")
            .await
            .unwrap();
    }
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();
    for n in nodes {
        n.store.raft().shutdown().await.unwrap();
        n.server.abort();
        let _ = n.server.await;
    }

    let mut nodes = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        nodes.push(restart(dir.path(), i as u64 + 1, addr).await);
    }
    leader(&nodes, Duration::from_secs(20)).await;
    for (i, n) in nodes.iter().enumerate() {
        // a write through each node: answered once that node applied it and all before
        let what = format!("node {} writes", i + 1);
        let barrier = eventually(what, Duration::from_secs(20), || async {
            match put(&n.store, format!("barrier{i}").as_bytes(), b"1").await {
                Ok(v) => Ok(v),
                Err(StoreError::Unavailable(e)) => {
                    eprintln!("node {} not writing yet: {e}", i + 1);
                    Err(e)
                }
                Err(e) => panic!("node {}: {e}", i + 1),
            }
        })
        .await;
        assert!(barrier > last, "node {}: {barrier} after {last}", i + 1);
        for k in 0..30 {
            let key = format!("k{k:02}");
            assert_eq!(
                get(&n.store, key.as_bytes()).await,
                Some(b"v".to_vec()),
                "node {}: {key} lost",
                i + 1
            );
        }
    }
}
