//! Server lifecycle through real actors, a real store and real processes: start until
//! ready, stop (the process group is gone), the failure contract, and the spawn queue.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use galilean_actors::policy::placement::{node_ids, LiveSetRules};
use galilean_actors::router::ask;
use galilean_actors::secrets;
use galilean_actors::server::{Progress, ServerMsg};
use galilean_actors::spawner::local::LocalProcessSpawner;
use galilean_actors::spawner::{
    readiness::probe_client, PollStatus, SpawnError, SpawnRequest, Spawner, Started,
};
use galilean_actors::store::{tokens, users};
use galilean_actors::user::UserMsg;
use galilean_actors::{HubCtx, Replica, Router, SpawnSettings};
use galilean_proto::live::LiveSet;
use galilean_proto::names::{ServerName, UserName};
use galilean_proto::node::NodeId;
use galilean_proto::records::ServerPhase;
use galilean_proto::wire::NewToken;
use galilean_storage::testing::eventually;
use galilean_storage::MemoryStore;
use tokio::sync::watch;

/// A tiny HTTP server on the port of `JUPYTERHUB_SERVICE_URL`.
const HTTP_SERVER: &str = r#"p=${JUPYTERHUB_SERVICE_URL#http://127.0.0.1:}; p=${p%%/*}; exec python3 -m http.server --bind 127.0.0.1 "$p""#;

async fn hub(cmd: &[&str], limit: usize) -> (Arc<Router>, tempfile::TempDir) {
    hub_with(cmd, limit, |_, _| Arc::new(LocalProcessSpawner::new())).await
}

/// As [`hub`], with the spawner `spawner` makes from the hub's store and replica.
async fn hub_with(
    cmd: &[&str],
    limit: usize,
    spawner: impl FnOnce(Arc<dyn galilean_storage::Store>, Arc<Replica>) -> Arc<dyn Spawner>,
) -> (Arc<Router>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn galilean_storage::Store> = Arc::new(MemoryStore::new());
    let replica = Replica::start(store.clone()).await.unwrap();
    let spawner = spawner(store.clone(), replica.clone());
    let mut hub_env = BTreeMap::new();
    hub_env.insert("PATH".to_owned(), std::env::var("PATH").unwrap_or_default());
    let settings = SpawnSettings {
        base_url: "/".into(),
        hub_api_url: "http://127.0.0.1:1/hub/api".into(),
        public_host: String::new(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        args: vec![],
        environment: BTreeMap::new(),
        home_dir_template: dir
            .path()
            .join("home/{username}")
            .to_string_lossy()
            .into_owned(),
        start_timeout: Duration::from_secs(20),
        http_timeout: Duration::from_secs(20),
        stop_grace: Duration::from_secs(5),
        default_url: None,
        log_dir: dir.path().join("logs"),
        node_id: 1,
        hub_env,
    };
    let ctx = Arc::new(HubCtx {
        store,
        replica,
        spawner,
        settings,
        spawn_slots: Arc::new(tokio::sync::Semaphore::new(limit)),
        spawning_now: Default::default(),
        spawning_peak: Default::default(),
        probe: probe_client(),
        timings: Default::default(),
    });
    (Router::new(ctx), dir)
}

/// `user` (created if missing) and its default server's actor.
async fn server_actor(router: &Arc<Router>, user: &str) -> ractor::ActorRef<ServerMsg> {
    users::ensure_user(router.ctx().store.as_ref(), user, None)
        .await
        .unwrap();
    router
        .server(&UserName::parse(user).unwrap(), &ServerName::default())
        .await
        .unwrap()
}

/// Asks `actor` to start its server; its answer.
async fn ask_start(
    actor: &ractor::ActorRef<ServerMsg>,
) -> Result<watch::Receiver<Arc<Progress>>, galilean_actors::OpError> {
    ask(actor, |reply| ServerMsg::Start {
        user_options: None,
        display_name: None,
        reply,
    })
    .await
    .unwrap()
}

/// Asks `actor` to start its server; the progress of the spawn it began.
async fn request_start(actor: &ractor::ActorRef<ServerMsg>) -> watch::Receiver<Arc<Progress>> {
    ask_start(actor).await.unwrap()
}

async fn start(router: &Arc<Router>, user: &str, server: &str) -> Arc<Progress> {
    let u = UserName::parse(user).unwrap();
    users::ensure_user(router.ctx().store.as_ref(), user, None)
        .await
        .unwrap();
    let actor = router
        .server(&u, &ServerName::parse(server).unwrap())
        .await
        .unwrap();
    let mut rx = request_start(&actor).await;
    let out = tokio::time::timeout(Duration::from_secs(60), rx.wait_for(|p| p.finished()))
        .await
        .expect("spawn finished")
        .unwrap()
        .clone();
    out
}

async fn stop(router: &Arc<Router>, user: &str) {
    let actor = router
        .server(&UserName::parse(user).unwrap(), &ServerName::default())
        .await
        .unwrap();
    let mut done = ask(&actor, |reply| ServerMsg::Stop {
        remove: false,
        reply,
    })
    .await
    .unwrap()
    .unwrap();
    done.wait_for(|d| *d).await.unwrap();
}

fn group_alive(pgid: i32) -> bool {
    galilean_actors::spawner::procfs::live_member_of(pgid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_until_ready_then_stop_kills_the_group() {
    let (router, _dir) = hub(&["sh", "-c", HTTP_SERVER], 5).await;
    let p = start(&router, "alice", "").await;
    let last = p.events.last().unwrap();
    assert_eq!(last.ready, Some(true), "{:?}", p.events);
    assert_eq!(p.events[0].message, "Server requested");
    let rec = router
        .ctx()
        .replica
        .read(|s| s.servers.get(&("alice".into(), String::new())).cloned())
        .unwrap();
    assert_eq!(rec.phase, ServerPhase::Running);
    let pid = rec.spawner.pid.unwrap();
    let target = rec.target.clone().unwrap();
    assert!(reqwest::get(format!("{target}/"))
        .await
        .unwrap()
        .status()
        .is_success());
    // the server token and OAuth client exist while it runs
    assert!(router
        .ctx()
        .replica
        .read(|s| s.clients.contains_key("jupyterhub-user-alice")));
    let token_id = rec.token_id.unwrap();
    assert!(router
        .ctx()
        .replica
        .read(|s| s.token_ids.contains_key(&token_id)));

    stop(&router, "alice").await;
    assert!(!group_alive(pid), "process group {pid} survived the stop");
    let rec = router
        .ctx()
        .replica
        .read(|s| s.servers.get(&("alice".into(), String::new())).cloned())
        .unwrap();
    assert_eq!(rec.phase, ServerPhase::Stopped);
    assert!(rec.target.is_none() && rec.started.is_none());
    assert!(!router
        .ctx()
        .replica
        .read(|s| s.token_ids.contains_key(&token_id)));
    assert!(!router
        .ctx()
        .replica
        .read(|s| s.clients.contains_key("jupyterhub-user-alice")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_exits_fails_with_its_log() {
    let (router, _dir) = hub(&["sh", "-c", "echo something broke >&2; exit 3"], 5).await;
    let p = start(&router, "bob", "").await;
    let last = p.events.last().unwrap();
    assert_eq!(last.failed, Some(true), "{:?}", p.events);
    assert_eq!(last.progress, 100);
    assert!(last.message.contains("status 3"), "{}", last.message);
    assert!(last.message.contains("something broke"), "{}", last.message);
    let rec = router
        .ctx()
        .replica
        .read(|s| s.servers.get(&("bob".into(), String::new())).cloned())
        .unwrap();
    assert_eq!(rec.phase, ServerPhase::Stopped);
    assert!(rec.last_failure.is_some());
    // the user can start again (and it fails again, the same way, without a stuck state)
    let again = start(&router, "bob", "").await;
    let last = again.events.last().unwrap();
    assert_eq!(last.failed, Some(true));
    // the log is appended to, but the message shows only what this start wrote
    assert_eq!(
        last.message.matches("something broke").count(),
        1,
        "{}",
        last.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_times_out() {
    let (router, _dir) = hub(&["sleep", "600"], 5).await;
    // shorten the timeouts for this test
    let ctx = router.ctx().clone();
    assert_eq!(ctx.settings.http_timeout, Duration::from_secs(20));
    let p = start(&router, "carol", "").await;
    let last = p.events.last().unwrap();
    assert_eq!(last.failed, Some(true));
    assert!(last.message.contains("did not answer"), "{}", last.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawn_storm_queues_within_the_limit() {
    let (router, _dir) = hub(&["sh", "-c", HTTP_SERVER], 3).await;
    let mut tasks = Vec::new();
    for i in 0..9 {
        let r = router.clone();
        tasks.push(tokio::spawn(async move {
            start(&r, &format!("u{i}"), "").await
        }));
    }
    for t in tasks {
        let p = t.await.unwrap();
        assert_eq!(p.events.last().unwrap().ready, Some(true), "{:?}", p.events);
    }
    let peak = router.ctx().spawning_peak.load(Ordering::SeqCst);
    assert!(peak <= 3, "{peak} spawns at once with a limit of 3");
    // clean up
    for i in 0..9 {
        stop(&router, &format!("u{i}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_owner_cannot_write() {
    let (router, dir) = hub(&["sh", "-c", HTTP_SERVER], 5).await;
    let ctx = router.ctx().clone();
    users::ensure_user(ctx.store.as_ref(), "alice", None)
        .await
        .unwrap();
    // this node (1) holds alice's actor ...
    let alice = UserName::parse("alice").unwrap();
    let actor = router.server(&alice, &ServerName::default()).await.unwrap();
    let user = router.user(&alice).await.unwrap();
    let spec = || NewToken {
        owner: galilean_proto::records::Owner::User("alice".into()),
        scopes: vec!["inherit".into()],
        note: "t".into(),
        expires_in: None,
        session_id: None,
        client_id: "jupyterhub".into(),
    };
    let (kept, _) = ask(&user, |reply| UserMsg::CreateToken {
        spec: spec(),
        reply,
    })
    .await
    .unwrap()
    .unwrap();
    // ... when the live set moves her to node 2
    record_live(&ctx, LiveSet::next(None, node_ids(&[2]))).await;
    // the old owner's start is refused inside its transaction: nothing written, nothing run
    let r = ask_start(&actor).await;
    let Err(err) = r else {
        panic!("a stale owner started a server");
    };
    assert!(err.to_string().contains("owned by node 2"), "{err}");
    // nor can its user actor create the user (were it deleted), a token, or revoke one
    let r = ask_create(&user).await;
    assert!(
        matches!(&r, Err(e) if e.to_string().contains("owned by node 2")),
        "{r:?}"
    );
    let tokens = || ctx.replica.read(|s| s.tokens.len());
    let before = tokens();
    let r = ask(&user, |reply| UserMsg::CreateToken {
        spec: spec(),
        reply,
    })
    .await
    .unwrap();
    assert!(
        matches!(&r, Err(e) if e.to_string().contains("owned by node 2")),
        "{r:?}"
    );
    let r = ask(&user, |reply| UserMsg::DeleteToken { id: kept.id, reply })
        .await
        .unwrap();
    assert!(
        matches!(&r, Err(e) if e.to_string().contains("owned by node 2")),
        "{r:?}"
    );
    assert_eq!(tokens(), before, "a stale owner changed the tokens");
    assert!(
        ctx.replica.read(|s| s.servers.is_empty()),
        "a record was written"
    );
    assert!(
        std::fs::read_dir(dir.path().join("logs"))
            .map(|d| d.count() == 0)
            .unwrap_or(true),
        "a process was launched"
    );
}

/// Asks a user actor to create its user; its answer.
async fn ask_create(
    actor: &ractor::ActorRef<UserMsg>,
) -> Result<galilean_proto::records::UserRecord, galilean_actors::OpError> {
    ask(actor, |reply| UserMsg::Create {
        admin: false,
        reply,
    })
    .await
    .unwrap()
}

/// Whether `r` is the refusal of a write by a stale actor.
fn refused_as_stale<T>(r: &Result<T, galilean_actors::OpError>) -> bool {
    matches!(r, Err(galilean_actors::OpError::Moved(m)) if m.contains("stale"))
}

/// Records `set` as the live set (as the cluster's leader does) and waits for the replica.
async fn record_live(ctx: &HubCtx, set: LiveSet) -> LiveSet {
    let key = galilean_actors::keys::meta(galilean_actors::keys::LIVE_KEY);
    let bytes = rmp_serde::to_vec_named(&set).unwrap();
    let mut tx = ctx.store.begin().await.unwrap();
    tx.set(&key, &bytes);
    let v = tx.commit().await.unwrap();
    ctx.replica.wait_for(v).await;
    set
}

/// A user's owner can lose the user and get it back (it was cut off from the cluster,
/// then healed). An actor it started before must not write afterwards: the owner in
/// between may have changed the user. The chaos harness saw it: a partitioned node's
/// create of a user waited out the partition, and after healing, its conflict retry
/// created the user again after the other owner's acknowledged delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actor_from_before_its_user_left_and_came_back_cannot_write() {
    let (router, _dir) = hub(&["sh", "-c", HTTP_SERVER], 5).await;
    let ctx = router.ctx().clone();
    let alice = UserName::parse("alice").unwrap();
    let live = record_live(&ctx, LiveSet::next(None, node_ids(&[1]))).await;
    // node 1 owns alice, and its actors for her are started
    let old_user = router.user(&alice).await.unwrap();
    let old_server = router.server(&alice, &ServerName::default()).await.unwrap();
    // node 1 drops out of the live set, and comes back
    let live = record_live(&ctx, LiveSet::next(Some(&live), node_ids(&[2]))).await;
    let live = record_live(&ctx, LiveSet::next(Some(&live), node_ids(&[1]))).await;
    assert_eq!(router.owner_of("alice").unwrap(), 1);
    // the old actors' writes are refused: nothing is created, nothing started
    let r = ask_create(&old_user).await;
    assert!(refused_as_stale(&r), "{r:?}");
    assert!(!ctx.replica.read(|s| s.users.contains_key("alice")));
    users::ensure_user(ctx.store.as_ref(), "alice", None)
        .await
        .unwrap();
    let r = ask_start(&old_server).await;
    assert!(refused_as_stale(&r), "{:?}", r.map(|_| ()));
    assert!(
        ctx.replica.read(|s| s.servers.is_empty()),
        "a record was written"
    );
    // the router hands out fresh actors instead, which may write; and it stops the old
    // ones when the live set changes
    let mut tx = ctx.store.begin().await.unwrap();
    tx.clear(&galilean_actors::keys::user("alice"));
    ctx.replica.wait_for(tx.commit().await.unwrap()).await;
    let fresh = router.user(&alice).await.unwrap();
    assert_ne!(fresh.get_id(), old_user.get_id());
    ask_create(&fresh).await.unwrap();
    router.release_moved_actors().await;
    eventually(
        "the stale server actor stopped",
        Duration::from_secs(5),
        || async { old_server.get_status() == ractor::ActorStatus::Stopped },
    )
    .await;
    assert_eq!(live.since.get(&1), Some(&3));
}

/// A member that joined after an actor started and left again may have owned the
/// actor's user in between, though the actor's node owns it before and after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actor_from_before_a_member_came_and_went_cannot_write() {
    let (router, _dir) = hub(&["sh", "-c", HTTP_SERVER], 5).await;
    let ctx = router.ctx().clone();
    // a user that node 2 outranks node 1 for
    let name = (0..)
        .map(|i| format!("u{i}"))
        .find(|n| {
            galilean_actors::policy::placement::owner(n.as_bytes(), &node_ids(&[1, 2]))
                == Some(NodeId(2))
        })
        .unwrap();
    let user = UserName::parse(&name).unwrap();
    let live = record_live(&ctx, LiveSet::next(None, node_ids(&[1]))).await;
    let old = router.user(&user).await.unwrap();
    let live = record_live(&ctx, LiveSet::next(Some(&live), node_ids(&[1, 2]))).await;
    assert_eq!(router.owner_of(&name).unwrap(), 2);
    let live = record_live(&ctx, LiveSet::next(Some(&live), node_ids(&[1]))).await;
    assert_eq!(live.left_since, 2);
    let r = ask_create(&old).await;
    assert!(refused_as_stale(&r), "{r:?}");
    assert!(!ctx.replica.read(|s| s.users.contains_key(&name)));
    // through the router, the call reaches a fresh actor
    let created = router
        .call(galilean_proto::wire::Call::CreateUser {
            name: name.clone(),
            admin: false,
        })
        .await;
    assert!(created.is_ok(), "{created:?}");
    assert!(ctx.replica.read(|s| s.users.contains_key(&name)));
}

/// A call from another node that arrives late (held in a partition, or by a node that
/// hung) may have been sent again meanwhile, to the owner of the time, and done there.
/// The node it reaches does not do it again once the user may have had another owner
/// since the caller routed it, even with a fresh actor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_routed_before_its_user_left_and_came_back_is_refused() {
    use galilean_actors::router::{NodeRouterActor, RouterMsg};
    use galilean_proto::wire::{Call, Routed};
    let (router, _dir) = hub(&["sh", "-c", HTTP_SERVER], 5).await;
    let ctx = router.ctx().clone();
    let (node, _) = ractor::Actor::spawn(None, NodeRouterActor, Arc::downgrade(&router))
        .await
        .unwrap();
    let live = record_live(&ctx, LiveSet::next(None, node_ids(&[1]))).await;
    let create = Call::CreateUser {
        name: "alice".into(),
        admin: false,
    };
    let late = Routed::encode(&create, live.epoch).unwrap();
    let live = record_live(&ctx, LiveSet::next(Some(&live), node_ids(&[2]))).await;
    let live = record_live(&ctx, LiveSet::next(Some(&live), node_ids(&[1]))).await;
    let answer = |bytes: Vec<u8>| {
        let node = node.clone();
        async move {
            let reply = node
                .call(
                    |port| RouterMsg::Call(bytes, port),
                    Some(Duration::from_secs(10)),
                )
                .await
                .unwrap()
                .unwrap();
            let (r, _): (Result<galilean_proto::wire::Reply, serde_json::Value>, u64) =
                rmp_serde::from_slice(&reply).unwrap();
            r
        }
    };
    let r = answer(late).await;
    assert!(
        format!("{r:?}").contains("another owner since the call was routed"),
        "{r:?}"
    );
    assert!(!ctx.replica.read(|s| s.users.contains_key("alice")));
    // routed by the current set, it is done
    let r = answer(Routed::encode(&create, live.epoch).unwrap()).await;
    assert!(r.is_ok(), "{r:?}");
    assert!(ctx.replica.read(|s| s.users.contains_key("alice")));
    node.stop(None);
}

/// Around a live-set change, a user's new owner may load its server actor before its
/// replica shows the start an earlier owner just made. Its start must then be refused
/// by the store, not make a second process (the chaos harness saw two acknowledged starts
/// of one server through two nodes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_over_a_server_another_owner_started_is_refused() {
    let (router, dir) = hub(&["sh", "-c", HTTP_SERVER], 5).await;
    let ctx = router.ctx().clone();
    users::ensure_user(ctx.store.as_ref(), "alice", None)
        .await
        .unwrap();
    let alice = UserName::parse("alice").unwrap();
    // the actor loads while the record says stopped ...
    let actor = router.server(&alice, &ServerName::default()).await.unwrap();
    // ... then another owner's start lands in the store
    another_owners_start(&router, "alice", 1, None).await;
    let r = ask_start(&actor).await;
    let Err(err) = r else {
        panic!("a second start of a starting server was accepted");
    };
    assert!(err.to_string().contains("pending start"), "{err}");
    let instance = ctx.replica.read(|s| {
        s.servers
            .get(&("alice".to_owned(), String::new()))
            .map(|r| (r.phase, r.instance))
    });
    assert_eq!(
        instance,
        Some((ServerPhase::Starting, 1)),
        "the record was rewritten"
    );
    assert!(
        std::fs::read_dir(dir.path().join("logs"))
            .map(|d| d.count() == 0)
            .unwrap_or(true),
        "a process was launched"
    );
}

/// The other owner's process (`foreign`) was ended, and the start whose `progress` this
/// is ran a spawn of its own (instance 2) that became ready.
async fn started_afresh(
    router: &Arc<Router>,
    user: &str,
    mut progress: watch::Receiver<Arc<Progress>>,
    mut foreign: Foreign,
) {
    let p = tokio::time::timeout(Duration::from_secs(30), progress.wait_for(|p| p.finished()))
        .await
        .expect("the start never finished: it waited on a spawn nobody runs")
        .unwrap()
        .clone();
    assert_eq!(
        p.events.last().and_then(|e| e.ready),
        Some(true),
        "{:?}",
        p.events
    );
    foreign.reap();
    assert!(
        !group_alive(foreign.pid()),
        "the other owner's process survived"
    );
    let rec = wait_record(router, user, |r| r.phase == ServerPhase::Running).await;
    assert_eq!(rec.instance, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_at_a_new_owner_first_judges_the_spawn_it_inherited() {
    // an earlier owner's spawn is under way (its process runs, not ready) when the user
    // moves here, and the start the move redirected reaches this node before its
    // adoption of moved servers does
    let (router, _dir) = hub(&["sh", "-c", HTTP_SERVER], 5).await;
    let foreign = foreign_server().leads_its_group().await;
    users::ensure_user(router.ctx().store.as_ref(), "kim", None)
        .await
        .unwrap();
    another_owners_start(&router, "kim", 1, Some(foreign.pid())).await;
    let actor = server_actor(&router, "kim").await;
    // the earlier process is ended, and this owner's own spawn becomes ready
    started_afresh(&router, "kim", request_start(&actor).await, foreign).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_refusing_a_start_over_another_owners_the_actor_judges_it() {
    let (router, _dir) = hub(&["sh", "-c", HTTP_SERVER], 5).await;
    // the actor loads while the record says stopped, then another owner's start lands
    let actor = server_actor(&router, "lou").await;
    let foreign = foreign_server().leads_its_group().await;
    another_owners_start(&router, "lou", 1, Some(foreign.pid())).await;
    let refused = ask_start(&actor).await;
    assert!(refused.is_err());
    // the next start finds that spawn judged (its process ended) and starts afresh
    let again = ask_start(&actor)
        .await
        .expect("the second start was refused too");
    started_afresh(&router, "lou", again, foreign).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_actor_stopped_mid_spawn_stops_the_process_it_launched() {
    // a server that never answers: its spawn stays in progress
    let (router, _dir) = hub(&["sleep", "600"], 5).await;
    let ctx = router.ctx().clone();
    let actor = server_actor(&router, "dora").await;
    let _progress = request_start(&actor).await;
    // the launch is recorded as soon as the process exists
    let pid = eventually(
        "the launched process is recorded",
        Duration::from_secs(10),
        || async {
            ctx.replica.read(|s| {
                s.servers
                    .get(&("dora".into(), String::new()))
                    .and_then(|r| r.spawner.pid)
            })
        },
    )
    .await;
    assert!(group_alive(pid));
    // the process can be found by its start's server token, had it not been recorded
    let hash = ctx.replica.read(|s| {
        let id = s.servers[&("dora".to_owned(), String::new())]
            .token_id
            .unwrap();
        s.token_ids[&id].clone()
    });
    let found = ctx.spawner.find_unrecorded(&hash).await;
    assert_eq!(found.and_then(|s| s.pid), Some(pid));
    let other = secrets::sha256_hex("another token");
    assert!(ctx.spawner.find_unrecorded(&other).await.is_none());
    // the actor goes (as when its user moves to another node) while still waiting
    actor
        .stop_and_wait(None, Some(Duration::from_secs(30)))
        .await
        .unwrap();
    assert!(
        !group_alive(pid),
        "process group {pid} outlived the actor that launched it"
    );
}

/// Polls the replica until `user`'s default server record satisfies `f` (20 s at most).
async fn wait_record(
    router: &Arc<Router>,
    user: &str,
    f: impl Fn(&galilean_proto::records::ServerRecord) -> bool,
) -> galilean_proto::records::ServerRecord {
    let what = format!("{user}'s server record gets there");
    eventually(what, Duration::from_secs(20), || async {
        let rec = router.ctx().replica.read(|s| {
            s.servers
                .get(&(user.to_owned(), String::new()))
                .map(|r| (**r).clone())
        });
        rec.filter(|r| f(r))
    })
    .await
}

/// Writes a record of instance `instance`, Starting, whose process is `pid`: what an
/// earlier owner's start leaves in the store.
async fn another_owners_start(router: &Arc<Router>, user: &str, instance: u64, pid: Option<i32>) {
    let ctx = router.ctx();
    let record = galilean_proto::records::ServerRecord {
        v: 1,
        user: user.into(),
        name: String::new(),
        display_name: String::new(),
        phase: ServerPhase::Starting,
        instance,
        started: None,
        last_activity: None,
        user_options: "null".into(),
        target: None,
        spawner: galilean_proto::records::SpawnerState {
            pid,
            ..Default::default()
        },
        token_id: None,
        last_failure: None,
    };
    let mut tx = ctx.store.begin().await.unwrap();
    tx.set(
        &galilean_actors::keys::server(user, ""),
        &galilean_proto::codec::encode(&record).unwrap(),
    );
    let v = tx.commit().await.unwrap();
    ctx.replica.wait_for(v).await;
}

/// A process leading its own process group, as a spawned server does; killed when
/// dropped (also when the test fails).
struct Foreign(std::process::Child);

impl Foreign {
    fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    /// Waits until `setsid` has made it the leader of its own process group, as a
    /// spawner's process is from its exec on (before that, nothing finds it by group).
    async fn leads_its_group(self) -> Foreign {
        let pid = nix::unistd::Pid::from_raw(self.pid());
        let what = format!("{pid} leads its own process group");
        eventually(what, Duration::from_secs(5), || async {
            nix::unistd::getpgid(Some(pid)) == Ok(pid)
        })
        .await;
        self
    }

    /// Reaps it if it has exited (a zombie still counts as a group member).
    fn reap(&mut self) {
        let _ = self.0.try_wait();
    }
}

impl Drop for Foreign {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn foreign_server() -> Foreign {
    Foreign(
        std::process::Command::new("setsid")
            .args(["sleep", "600"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_spawn_never_marks_another_instance_stopped() {
    // this owner's spawn fails two seconds after its launch was recorded; meanwhile the
    // store shows an instance an earlier owner started (this node's replica had lagged)
    let (router, _dir) = hub(&["sh", "-c", "sleep 2; exit 3"], 5).await;
    let actor = server_actor(&router, "erin").await;
    let mut progress = request_start(&actor).await;
    let own = wait_record(&router, "erin", |r| r.spawner.pid.is_some()).await;
    let mut foreign = foreign_server();
    let pid = foreign.pid();
    another_owners_start(&router, "erin", own.instance + 1, Some(pid)).await;
    tokio::time::timeout(Duration::from_secs(30), progress.wait_for(|p| p.finished()))
        .await
        .unwrap()
        .unwrap();
    // never "stopped" while the other instance's process runs: either it was adopted
    // and still runs, or it was stopped and so recorded
    let rec = wait_record(&router, "erin", |r| r.phase != ServerPhase::Starting).await;
    foreign.reap();
    assert_eq!(rec.phase, ServerPhase::Stopped, "{rec:?}");
    assert!(
        !group_alive(pid),
        "the record says stopped while process {pid} of instance {} runs",
        own.instance + 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_ends_the_instance_the_store_shows_and_the_one_it_launched() {
    let (router, _dir) = hub(&["sleep", "600"], 5).await;
    let actor = server_actor(&router, "fay").await;
    let _progress = request_start(&actor).await;
    let own = wait_record(&router, "fay", |r| r.spawner.pid.is_some()).await;
    let own_pid = own.spawner.pid.unwrap();
    let mut foreign = foreign_server();
    let pid = foreign.pid();
    another_owners_start(&router, "fay", own.instance + 1, Some(pid)).await;
    stop(&router, "fay").await;
    foreign.reap();
    assert!(
        !group_alive(pid),
        "the recorded instance's process survived"
    );
    assert!(!group_alive(own_pid), "the launched process survived");
    let rec = wait_record(&router, "fay", |r| r.phase == ServerPhase::Stopped).await;
    assert_eq!(rec.instance, own.instance + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adoption_stops_a_process_whose_launch_was_never_recorded() {
    // a launch cut off between starting the process and recording it: the store shows
    // instance 3 starting with its server token and no process, and the process runs
    let (router, _dir) = hub(&["sleep", "600"], 5).await;
    let ctx = router.ctx().clone();
    users::ensure_user(ctx.store.as_ref(), "gus", None)
        .await
        .unwrap();
    let launched = |token: &str| {
        Foreign(
            std::process::Command::new("setsid")
                .args(["sleep", "600"])
                .env(galilean_proto::env::API_TOKEN, token)
                .spawn()
                .unwrap(),
        )
    };
    let secret = secrets::new_token_secret();
    let mut orphan = launched(&secret).leads_its_group().await;
    // another start's process (or another hub's) is not this record's to stop
    let mut other = launched(&secrets::new_token_secret())
        .leads_its_group()
        .await;
    another_owners_start(&router, "gus", 3, None).await;
    let key = galilean_actors::keys::server("gus", "");
    let mut tx = ctx.store.begin().await.unwrap();
    let token = tokens::insert_token(
        ctx.store.as_ref(),
        tx.as_mut(),
        &secret,
        &NewToken {
            owner: galilean_proto::records::Owner::User("gus".into()),
            scopes: vec!["access:servers!server".into()],
            note: "Server at /user/gus/".into(),
            expires_in: None,
            session_id: None,
            client_id: "jupyterhub".into(),
        },
    )
    .await
    .unwrap();
    let mut rec: galilean_proto::records::ServerRecord =
        galilean_proto::codec::decode(&tx.get(&key).await.unwrap().unwrap()).unwrap();
    rec.spawner = Default::default();
    rec.token_id = Some(token.id);
    tx.set(&key, &galilean_proto::codec::encode(&rec).unwrap());
    let v = tx.commit().await.unwrap();
    ctx.replica.wait_for(v).await;

    let actor = server_actor(&router, "gus").await;
    let adopted = ask(&actor, |reply| ServerMsg::Adopt { reply })
        .await
        .unwrap();
    assert!(!adopted);
    orphan.reap();
    other.reap();
    assert!(
        !group_alive(orphan.pid()),
        "the unrecorded process of the record's start survived adoption"
    );
    assert!(
        group_alive(other.pid()),
        "another start's process was stopped"
    );
    let rec = wait_record(&router, "gus", |r| r.phase == ServerPhase::Stopped).await;
    assert_eq!(rec.instance, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawn_that_waited_launches_nothing_once_its_start_was_superseded() {
    // one spawn slot, held by a server that never answers
    let (router, dir) = hub(&["sleep", "600"], 1).await;
    let holder = server_actor(&router, "hal").await;
    let _holding = request_start(&holder).await;
    wait_record(&router, "hal", |r| r.spawner.pid.is_some()).await;
    // ivy's spawn waits for the slot; meanwhile another owner starts ivy (what a node
    // stopped while its spawn waited finds when it resumes)
    let actor = server_actor(&router, "ivy").await;
    let mut progress = request_start(&actor).await;
    let own = wait_record(&router, "ivy", |r| r.phase == ServerPhase::Starting).await;
    let _other = foreign_server();
    another_owners_start(&router, "ivy", own.instance + 1, Some(_other.pid())).await;
    // the slot frees; ivy's waiting spawn must not launch
    stop(&router, "hal").await;
    tokio::time::timeout(Duration::from_secs(30), progress.wait_for(|p| p.finished()))
        .await
        .unwrap()
        .unwrap();
    let logs: Vec<String> = std::fs::read_dir(dir.path().join("logs"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        !logs.iter().any(|l| l.starts_with("ivy")),
        "the superseded spawn launched a process: {logs:?}"
    );
}

/// A spawner whose node loses the server right as the launch begins (what a node
/// stopped after the actor's last check finds when it resumes: another owner started
/// the server meanwhile); it records what its local spawner answered.
struct LosesItAtLaunch {
    local: LocalProcessSpawner,
    store: Arc<dyn galilean_storage::Store>,
    replica: Arc<Replica>,
    answers: Arc<std::sync::Mutex<Vec<Result<(), String>>>>,
}

#[async_trait::async_trait]
impl Spawner for LosesItAtLaunch {
    async fn start(&self, req: SpawnRequest) -> Result<Started, SpawnError> {
        let key = galilean_actors::keys::server(&req.user, &req.server);
        let mut tx = self.store.begin().await.unwrap();
        let mut rec: galilean_proto::records::ServerRecord =
            galilean_proto::codec::decode(&tx.get(&key).await.unwrap().unwrap()).unwrap();
        rec.instance += 1;
        rec.spawner = Default::default();
        tx.set(&key, &galilean_proto::codec::encode(&rec).unwrap());
        let v = tx.commit().await.unwrap();
        self.replica.wait_for(v).await;
        let answer = self.local.start(req).await;
        let mut answers = self.answers.lock().unwrap();
        answers.push(answer.as_ref().map(|_| ()).map_err(|e| e.to_string()));
        answer
    }

    async fn poll(&self, state: &galilean_proto::records::SpawnerState) -> PollStatus {
        self.local.poll(state).await
    }

    async fn stop(
        &self,
        state: &galilean_proto::records::SpawnerState,
        grace: Duration,
    ) -> Result<(), SpawnError> {
        self.local.stop(state, grace).await
    }
}

/// The spawner asks the actor's question again at the moment of the launch: a node
/// stopped between the actor's check and the launch must not launch a second process
/// when it resumes (a chaos run saw one, started 4.8 s late, while the new owner's ran).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawn_whose_server_moved_on_at_the_launch_launches_nothing() {
    let answers = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (router, _dir) = hub_with(&["sleep", "600"], 5, |store, replica| {
        Arc::new(LosesItAtLaunch {
            local: LocalProcessSpawner::new(),
            store,
            replica,
            answers: answers.clone(),
        })
    })
    .await;
    let actor = server_actor(&router, "jo").await;
    let mut progress = request_start(&actor).await;
    let done = tokio::time::timeout(Duration::from_secs(30), progress.wait_for(|p| p.finished()))
        .await
        .unwrap()
        .unwrap()
        .clone();
    assert_ne!(
        done.events.last().unwrap().ready,
        Some(true),
        "{:?}",
        done.events
    );
    let answers = answers.lock().unwrap().clone();
    assert_eq!(answers.len(), 1, "{answers:?}");
    let refusal = answers[0].as_ref().unwrap_err();
    assert!(
        refusal.contains("not launched") && refusal.contains("record changed"),
        "{refusal}"
    );
}
