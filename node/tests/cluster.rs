//! Three `galilean` processes on loopback with `[cluster]` and the raft store: they form
//! the cluster by themselves, replicate state to every node, proxy every route on every
//! node, and refuse a node whose cluster secret differs.
//!
//! Actors are placed by rendezvous hash over the members; any node answers for any user by
//! calling the owner's router actor over ractor_cluster, and a server runs once.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::ADMIN_TOKEN;
use galilean_storage::testing::{eventually, eventually_blocking, Lazy};
use serde_json::Value;

const SECRET: &str = "a-cluster-secret-for-tests";

/// The tests of this file run one at a time: three hub processes each are enough load for
/// a 2-core machine, and leases are timing-sensitive.
static SERIAL: std::sync::LazyLock<tokio::sync::Mutex<()>> =
    std::sync::LazyLock::new(|| tokio::sync::Mutex::new(()));

/// A test's temporary directory: the server processes started under it are killed when
/// it goes, also when the test fails half-way.
struct TestDir(tempfile::TempDir);

impl TestDir {
    fn new() -> TestDir {
        TestDir(tempfile::tempdir().unwrap())
    }

    fn path(&self) -> &std::path::Path {
        self.0.path()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        common::kill_processes_under(self.0.path());
    }
}

/// A port `p` with `p + 1` free too: raft uses `cluster.bind`'s port, actor messages the
/// next one. Both come from below the kernel's ephemeral range. A port inside it could be
/// taken, between this probe and the node's bind, as the local port of an outgoing
/// connection (a node's or this test's), and the node would fail to start with "Address
/// already in use"; the port after one handed out by a bind to port 0 is exactly the
/// parity Linux gives outgoing connections. No port is handed out twice in a run: a
/// port is only probed, not held, until its node binds it, and two nodes of a cluster
/// drawn onto one port (once seen in CI) would make one cluster of two.
fn free_pair() -> u16 {
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let range =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let low: u16 = range
        .split_whitespace()
        .next()
        .and_then(|l| l.parse().ok())
        .unwrap_or(32768);
    let free = |p: u16| std::net::TcpListener::bind(("0.0.0.0", p)).is_ok();
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let p = rand::Rng::gen_range(&mut rand::thread_rng(), 10_000..low.max(10_002) - 1);
        if [p, p + 1]
            .iter()
            .all(|p| !handed_out.contains(p) && free(*p))
        {
            handed_out.extend([p, p + 1]);
            return p;
        }
    }
}

struct ClusterNode {
    id: u64,
    url: String,
    log: std::path::PathBuf,
    child: Child,
}

impl Drop for ClusterNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ClusterNode {
    /// Sends `sig` (`-STOP`, `-CONT`) to the node's process.
    fn signal(&self, sig: &str) {
        Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits up to `timeout` for the process to exit; fails with `what` (the condition
    /// waited for) and its log.
    async fn exit_within(&mut self, timeout: Duration, what: &str) -> std::process::ExitStatus {
        let log = self.log.clone();
        let with_log = Lazy(|| {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            format!("{what}; its log:\n{text}")
        });
        let child = &mut self.child;
        eventually(with_log, timeout, || {
            std::future::ready(child.try_wait().unwrap())
        })
        .await
    }
}

/// Starts node `id` of a cluster whose peers are `peers` (`(id, cluster port)`).
fn start_node(dir: &std::path::Path, id: u64, peers: &[(u64, u16)], secret: &str) -> ClusterNode {
    start_node_with(dir, id, peers, secret, |c| c, &[])
}

/// As [`start_node`], with the config text passed through `tweak` and more CLI `args`.
fn start_node_with(
    dir: &std::path::Path,
    id: u64,
    peers: &[(u64, u16)],
    secret: &str,
    tweak: impl Fn(String) -> String,
    args: &[&str],
) -> ClusterNode {
    let peers: Vec<(u64, String, u16)> = peers
        .iter()
        .map(|(p, port)| (*p, "127.0.0.1".to_owned(), *port))
        .collect();
    start_node_at(dir, id, &peers, secret, tweak, args, None)
}

/// Starts node `id` of the cluster `peers` (`(id, host, cluster port)`), listening on its
/// peer entry's host, in network namespace `netns` when given.
fn start_node_at(
    dir: &std::path::Path,
    id: u64,
    peers: &[(u64, String, u16)],
    secret: &str,
    tweak: impl Fn(String) -> String,
    args: &[&str],
    netns: Option<&str>,
) -> ClusterNode {
    let (_, host, cluster_port) = peers.iter().find(|(p, _, _)| *p == id).unwrap().clone();
    let peer_list: Vec<String> = peers
        .iter()
        .map(|(p, h, port)| format!("\"{p}@{h}:{port}\""))
        .collect();
    let data = dir.join(format!("node{id}"));
    let config = dir.join(format!("node{id}.toml"));
    let loopback = host.starts_with("127.");
    std::fs::write(
        &config,
        tweak(format!(
            "[hub]\nbind_url = \"http://{host}:0/\"\ndata_dir = {data}\n\n\
             [cluster]\nnode_id = {id}\nbind = \"{host}:{cluster_port}\"\npeers = [{peers}]\nsecret = \"{secret}\"\n{insecure}\n\
             [authenticator]\nallow_all = true\n\n\
             [spawner]\ncmd = [{tiny}]\nstart_timeout = 20\nhttp_timeout = 20\nstop_grace = 2\n\n\
             [[services]]\nname = \"test-admin\"\napi_token = \"{ADMIN_TOKEN}\"\nadmin = true\n",
            data = common::toml_str(&data.to_string_lossy()),
            peers = peer_list.join(", "),
            tiny = common::toml_str(common::tiny_server_bin()),
            insecure = if loopback { "" } else { "insecure = true\n" },
        )),
    )
    .unwrap();
    let log = dir.join(format!("node{id}.log"));
    let out = std::fs::File::create(&log).unwrap();
    let mut command = match netns {
        None => Command::new(common::galilean_bin()),
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, common::galilean_bin()]);
            c
        }
    };
    let child = command
        .args(["serve", "--config"])
        .arg(&config)
        .args(args)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    // the public port is the OS's choice: read it from the log
    let what = format!("node {id} listens");
    let url = eventually_blocking(what, Duration::from_secs(30), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        match text.split("listening on ").nth(1) {
            Some(rest) => {
                let url = rest.split_whitespace().next().unwrap_or("");
                Ok(url.trim_end_matches('/').to_owned())
            }
            None => Err(format!("its log:\n{text}")),
        }
    });
    ClusterNode {
        id,
        url,
        log,
        child,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap()
}

async fn health(url: &str) -> u16 {
    match client().get(format!("{url}/hub/health")).send().await {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    }
}

/// Waits up to `timeout` until every node of `nodes` answers its health check with 200.
async fn wait_healthy(nodes: &[&ClusterNode], timeout: Duration) {
    let ids: Vec<u64> = nodes.iter().map(|n| n.id).collect();
    let what = format!("nodes {ids:?} are healthy");
    eventually(what, timeout, || async {
        for n in nodes {
            let status = health(&n.url).await;
            if status != 200 {
                // the log is read only if the wait fails
                return Err(Lazy(move || {
                    format!(
                        "node {} answered {status}; its log:\n{}",
                        n.id,
                        n.log_text()
                    )
                }));
            }
        }
        Ok(())
    })
    .await
}

async fn call(url: &str, method: reqwest::Method, path: &str) -> (u16, Value) {
    let r = client()
        .request(method, format!("{url}/hub/api{path}"))
        .header("Authorization", format!("token {ADMIN_TOKEN}"))
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (
        s,
        serde_json::from_str(&r.text().await.unwrap()).unwrap_or(Value::Null),
    )
}

/// A new token of `user`'s made through `url`: (secret, id).
async fn new_token(url: &str, user: &str) -> (String, String) {
    let (s, tok) = call(url, reqwest::Method::POST, &format!("/users/{user}/tokens")).await;
    assert_eq!(s, 201, "{tok}");
    (
        tok["token"].as_str().unwrap().to_owned(),
        tok["id"].as_str().unwrap().to_owned(),
    )
}

/// Revokes token `id` of `user` through `url`: the status.
async fn revoke(url: &str, user: &str, id: &str) -> u16 {
    call(
        url,
        reqwest::Method::DELETE,
        &format!("/users/{user}/tokens/{id}"),
    )
    .await
    .0
}

/// The status of `GET /hub/api/user` at `url` with `token`; 0 without an answer.
async fn whoami_status(url: &str, token: &str) -> u16 {
    client()
        .get(format!("{url}/hub/api/user"))
        .header("Authorization", format!("token {token}"))
        .send()
        .await
        .map_or(0, |r| r.status().as_u16())
}

/// Runs `galilean cluster status` with node `id`'s config: (exit code, output).
fn cluster_status(dir: &std::path::Path, id: u64) -> (Option<i32>, String) {
    let out = Command::new(common::galilean_bin())
        .args(["cluster", "status", "--config"])
        .arg(dir.join(format!("node{id}.toml")))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Three nodes on fresh ports, healthy.
async fn three_nodes(dir: &std::path::Path) -> Vec<ClusterNode> {
    three_nodes_with(dir, |c| c).await
}

/// As [`three_nodes`], with each config passed through `tweak`.
async fn three_nodes_with(
    dir: &std::path::Path,
    tweak: impl Fn(String) -> String,
) -> Vec<ClusterNode> {
    let peers: Vec<(u64, u16)> = (1..=3).map(|id| (id, free_pair())).collect();
    let nodes: Vec<ClusterNode> = peers
        .iter()
        .map(|(id, _)| start_node_with(dir, *id, &peers, SECRET, &tweak, &[]))
        .collect();
    let refs: Vec<&ClusterNode> = nodes.iter().collect();
    wait_healthy(&refs, Duration::from_secs(30)).await;
    nodes
}

/// Waits until `user`'s default server is ready, as `url` reports it.
async fn wait_server_ready(url: &str, user: &str) {
    let what = format!("{user}'s server is ready");
    eventually(what, Duration::from_secs(20), || async {
        call(url, reqwest::Method::GET, &format!("/users/{user}"))
            .await
            .1["servers"][""]["ready"]
            == true
    })
    .await;
}

/// Nodes on separate addresses commonly use the same ports (deploy/three-nodes does):
/// ractor_cluster took a peer with the same host label and port for itself and dropped
/// every session, so no user owned by another node could be served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_on_several_addresses_with_the_same_ports_form_a_cluster() {
    let _serial = SERIAL.lock().await;
    let dir = TestDir::new();
    let hosts = ["127.0.0.1", "127.0.0.2", "127.0.0.3"];
    let port = loop {
        let p = free_pair();
        let free = |h: &str, p: u16| std::net::TcpListener::bind((h, p)).is_ok();
        if hosts[1..].iter().all(|h| free(h, p) && free(h, p + 1)) {
            break p;
        }
    };
    let peers: Vec<(u64, String, u16)> = (1..=3)
        .map(|id| (id, hosts[id as usize - 1].to_owned(), port))
        .collect();
    let nodes: Vec<ClusterNode> = (1..=3)
        .map(|id| start_node_at(dir.path(), id, &peers, SECRET, |c| c, &[], None))
        .collect();
    let refs: Vec<&ClusterNode> = nodes.iter().collect();
    wait_healthy(&refs, Duration::from_secs(30)).await;
    // a user of each node, each created and given a token through another node: the
    // call travels to the owner over ractor_cluster
    for owner in 1..=3u64 {
        let user = (0..)
            .map(|i| format!("p{i}"))
            .find(|u| {
                galilean_actors::policy::placement::owner_of_ids(u.as_bytes(), &[1, 2, 3])
                    == Some(owner)
            })
            .unwrap();
        let via = &nodes[(owner % 3) as usize];
        let (s, body) = call(&via.url, reqwest::Method::POST, &format!("/users/{user}")).await;
        assert_eq!(s, 201, "{user} through node {}: {body}", via.id);
        new_token(&via.url, &user).await;
    }
    assert!(
        !nodes
            .iter()
            .any(|n| n.log_text().contains("connection to self")),
        "a node took a peer for itself"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_form_a_cluster_and_share_state_and_routes() {
    let _serial = SERIAL.lock().await;
    let dir = TestDir::new();
    let formed = Instant::now();
    let nodes = three_nodes(dir.path()).await;
    eprintln!(
        "three nodes started and healthy after {:?}",
        formed.elapsed()
    );

    // any node answers for alice: a node that does not own her creates her through
    // her owner, and every node reads her from its own replica at once
    let owner_id = galilean_actors::policy::placement::owner_of_ids(b"alice", &[1, 2, 3]).unwrap();
    let owner = &nodes[(owner_id - 1) as usize];
    let others: Vec<&ClusterNode> = nodes.iter().filter(|n| n.id != owner_id).collect();
    let (s, body) = call(&others[0].url, reqwest::Method::POST, "/users/alice").await;
    assert_eq!(s, 201, "{body}");
    assert_eq!(
        body["name"], "alice",
        "the 201 carries the model: the caller's replica has her"
    );
    for n in &nodes {
        let (s, _) = call(&n.url, reqwest::Method::GET, "/users/alice").await;
        assert_eq!(s, 200, "node {}", n.id);
    }

    // a start through another non-owner runs on the owner, once
    let (s, _) = call(&others[1].url, reqwest::Method::POST, "/users/alice/server").await;
    assert!(s == 201 || s == 202, "{s}");
    wait_server_ready(&others[1].url, "alice").await;
    let ready = Instant::now();
    for n in &nodes {
        eventually(
            format!("node {} routes alice", n.id),
            Duration::from_secs(1),
            || whoami_pid(&n.url, "alice"),
        )
        .await;
    }
    eprintln!("route on all nodes {:?} after ready", ready.elapsed());
    // starting again through any node changes nothing: still one process
    let (_, model) = call(&owner.url, reqwest::Method::GET, "/users/alice").await;
    let pid = model["servers"][""]["state"]["pid"].clone();
    for n in &nodes {
        let (s, _) = call(&n.url, reqwest::Method::POST, "/users/alice/server").await;
        assert!(s == 201 || s == 400, "node {}: {s}", n.id);
    }
    for n in &nodes {
        assert_eq!(
            whoami_pid(&n.url, "alice").await,
            pid.as_i64(),
            "node {}",
            n.id
        );
    }
    // the progress stream answers through a non-owner too
    let r = client()
        .get(format!(
            "{}/hub/api/users/alice/server/progress",
            others[0].url
        ))
        .header("Authorization", format!("token {ADMIN_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains("\"ready\":true"), "{text}");

    // a token made through one node works on the others; deleted, it is refused there
    let (token, id) = new_token(&owner.url, "alice").await;
    for n in &nodes {
        eventually(
            format!("node {} accepts the token", n.id),
            Duration::from_secs(2),
            || async { whoami_status(&n.url, &token).await == 200 },
        )
        .await;
    }
    // revoked through a node that does not own alice: once the 204 arrives, every node
    // refuses the token at once
    assert_eq!(revoke(&others[1].url, "alice", &id).await, 204);
    for n in &nodes {
        assert_eq!(
            whoami_status(&n.url, &token).await,
            403,
            "node {} after the 204",
            n.id
        );
    }

    // the status command sees every member, one leader, and who owns alice
    let (code, out) = cluster_status(dir.path(), 1);
    assert_eq!(code, Some(0), "{out}");
    let rows: Vec<&str> = out.lines().filter(|l| l.contains(" yes ")).collect();
    assert_eq!(rows.len(), 3, "{out}");
    assert!(out.contains("members: 3, reachable: 3, leader: "), "{out}");
    assert!(!out.contains("disputed"), "{out}");

    // stopped through a non-owner: the process group is gone
    let (s, _) = call(
        &others[0].url,
        reqwest::Method::DELETE,
        "/users/alice/server",
    )
    .await;
    assert!(s == 204 || s == 202, "{s}");
    let pid = pid.as_i64().unwrap() as i32;
    eventually(
        "the server's process group is gone",
        Duration::from_secs(10),
        || async { !common::group_alive(pid) },
    )
    .await;
}

/// A whole cluster stopped at once: every node exits promptly, though the last to flush
/// its activity finds no majority left to commit it (such a node waited on its leader's
/// write forever: raft's leader waits for followers as long as it leads).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_cluster_stopped_at_once_exits_promptly() {
    let dir = TestDir::new();
    let peers: Vec<(u64, u16)> = (1..=3).map(|id| (id, free_pair())).collect();
    for round in 0..2 {
        // the second time from the files the first stop left
        let mut nodes: Vec<ClusterNode> = peers
            .iter()
            .map(|(id, _)| start_node(dir.path(), *id, &peers, SECRET))
            .collect();
        let refs: Vec<&ClusterNode> = nodes.iter().collect();
        wait_healthy(&refs, Duration::from_secs(30)).await;
        // activity on every node, for each to flush as it stops
        for n in &nodes {
            assert_eq!(whoami_status(&n.url, ADMIN_TOKEN).await, 200);
        }
        for n in &nodes {
            n.signal("-TERM");
        }
        for n in &mut nodes {
            let what = format!("node {} exits after SIGTERM", n.id);
            let status = n.exit_within(Duration::from_secs(8), &what).await;
            assert!(status.success(), "round {round}, node {}: {status}", n.id);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_another_secret_is_refused() {
    let _serial = SERIAL.lock().await;
    let dir = TestDir::new();
    let peers: Vec<(u64, u16)> = (1..=3).map(|id| (id, free_pair())).collect();
    let good1 = start_node(dir.path(), 1, &peers, SECRET);
    let good2 = start_node(dir.path(), 2, &peers, SECRET);
    let bad = start_node(dir.path(), 3, &peers, "some-other-secret-entirely");
    // two of three agree: they form the cluster without the third
    wait_healthy(&[&good1, &good2], Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        health(&bad.url).await,
        503,
        "a node with the wrong secret serves"
    );
    let log = bad.log_text();
    assert!(
        log.contains("cluster.secret differs"),
        "the refused node does not say why:\n{log}"
    );
    let log = good1.log_text() + &good2.log_text();
    assert!(log.contains("wrong cluster secret"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_settings_differ_is_refused_with_the_keys() {
    let _serial = SERIAL.lock().await;
    let dir = TestDir::new();
    let peers: Vec<(u64, u16)> = (1..=3).map(|id| (id, free_pair())).collect();
    let n1 = start_node(dir.path(), 1, &peers, SECRET);
    let n2 = start_node(dir.path(), 2, &peers, SECRET);
    wait_healthy(&[&n1, &n2], Duration::from_secs(30)).await;
    let differ = |c: String| {
        c.replace("start_timeout = 20", "start_timeout = 25")
            .replace("allow_all = true", "allow_all = false")
    };
    let mut n3 = start_node_with(dir.path(), 3, &peers, SECRET, differ, &[]);
    let status = n3
        .exit_within(Duration::from_secs(30), "node 3 is refused and exits")
        .await;
    assert_eq!(status.code(), Some(2));
    let log = n3.log_text();
    assert!(
        log.contains("spawner.start_timeout") && log.contains("authenticator.allow_all"),
        "{log}"
    );
    assert!(
        !log.contains("spawner.cmd"),
        "a key that agrees is named: {log}"
    );
    drop(n3);
    // told to, it makes its settings the cluster's
    let n3 = start_node_with(
        dir.path(),
        3,
        &peers,
        SECRET,
        differ,
        &["--update-cluster-settings"],
    );
    wait_healthy(&[&n3], Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_owner_s_users_move_and_their_servers_are_readopted() {
    let _serial = SERIAL.lock().await;
    let dir = TestDir::new();
    let mut nodes = three_nodes(dir.path()).await;
    let owner_id = galilean_actors::policy::placement::owner_of_ids(b"alice", &[1, 2, 3]).unwrap();
    let survivor = nodes.iter().find(|n| n.id != owner_id).unwrap().url.clone();
    let (s, _) = call(&survivor, reqwest::Method::POST, "/users/alice").await;
    assert_eq!(s, 201);
    call(&survivor, reqwest::Method::POST, "/users/alice/server").await;
    wait_server_ready(&survivor, "alice").await;
    let pid = whoami_pid(&survivor, "alice")
        .await
        .expect("alice's server answers");

    // kill -9 her owner
    let killed = Instant::now();
    let victim = nodes.iter_mut().find(|n| n.id == owner_id).unwrap();
    victim.child.kill().unwrap();
    victim.child.wait().unwrap();
    // a survivor answers for alice again: a call that needs her owner's actors works
    // (her new owner has re-adopted the running server: starting it is "already running")
    let moving = Instant::now();
    eventually(
        "alice's owner has moved",
        Duration::from_secs(15),
        || async {
            let (s, body) = call(&survivor, reqwest::Method::POST, "/users/alice/server").await;
            s == 400
                && body["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("already running"))
        },
    )
    .await;
    let took = moving.elapsed();
    eprintln!(
        "failover: owner killed -> a survivor acts for alice after {:?}",
        killed.elapsed()
    );
    assert!(took < Duration::from_secs(5), "failover took {took:?}");
    // the same process is still hers, reachable through the survivors
    assert_eq!(
        whoami_pid(&survivor, "alice").await,
        Some(pid),
        "the server was not re-adopted"
    );
    for n in nodes.iter().filter(|n| n.id != owner_id) {
        assert_eq!(
            whoami_pid(&n.url, "alice").await,
            Some(pid),
            "node {}",
            n.id
        );
    }
    let (_, model) = call(&survivor, reqwest::Method::GET, "/users/alice").await;
    assert_eq!(model["servers"][""]["ready"], true, "{model}");
    // the status command shows the killed member unreachable, and a majority
    let other = nodes.iter().find(|n| n.id != owner_id).unwrap().id;
    let (code, out) = cluster_status(dir.path(), other);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("members: 3, reachable: 2"), "{out}");
    let dead_row = out
        .lines()
        .find(|l| l.starts_with(&format!("{owner_id} ")))
        .unwrap();
    assert!(dead_row.contains(" no"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_node_is_detected_and_rejoins_when_it_resumes() {
    let _serial = SERIAL.lock().await;
    let dir = TestDir::new();
    let nodes = three_nodes(dir.path()).await;
    let owner_id = galilean_actors::policy::placement::owner_of_ids(b"bob", &[1, 2, 3]).unwrap();
    let hung = nodes.iter().find(|n| n.id == owner_id).unwrap();
    let survivor = nodes.iter().find(|n| n.id != owner_id).unwrap().url.clone();
    let (s, _) = call(&survivor, reqwest::Method::POST, "/users/bob").await;
    assert_eq!(s, 201);

    // SIGSTOP bob's owner: the others notice and take bob over
    // carol is owned by a node that keeps running; her token exists before the hang
    let carol = (0..100)
        .map(|i| format!("carol{i}"))
        .find(|n| {
            galilean_actors::policy::placement::owner_of_ids(n.as_bytes(), &[1, 2, 3])
                != Some(owner_id)
        })
        .unwrap();
    call(&survivor, reqwest::Method::POST, &format!("/users/{carol}")).await;
    let (s, ctok) = call(
        &survivor,
        reqwest::Method::POST,
        &format!("/users/{carol}/tokens"),
    )
    .await;
    assert_eq!(s, 201);
    let carol_token = ctok["token"].as_str().unwrap().to_owned();
    let carol_path = format!("/users/{carol}/tokens/{}", ctok["id"].as_str().unwrap());

    let stopped = Instant::now();
    hung.signal("-STOP");
    // revoked at once, while the hung node still counts as live: the acknowledgement
    // waits until its serving lease has run out
    // (if the hung node leads, writes answer 503 until another is elected: try again)
    let s = eventually(
        "the revocation is answered other than 503",
        Duration::from_secs(15),
        || async {
            let (s, _) = call(&survivor, reqwest::Method::DELETE, &carol_path).await;
            (s != 503).then_some(s)
        },
    )
    .await;
    assert!(s == 204 || s == 404, "{s}");
    eprintln!(
        "revocation right after the hang acknowledged after {:?}",
        stopped.elapsed()
    );
    let moving = Instant::now();
    eventually("bob's owner has moved", Duration::from_secs(15), || async {
        call(&survivor, reqwest::Method::POST, "/users/bob/tokens")
            .await
            .0
            == 201
    })
    .await;
    let took = moving.elapsed();
    eprintln!("hung owner: a survivor acts for bob after {took:?}");
    assert!(stopped.elapsed() < Duration::from_secs(10));

    // a token revoked while the node hangs is never accepted by it after it resumes
    let (token, id) = new_token(&survivor, "bob").await;
    let revoking = Instant::now();
    assert_eq!(revoke(&survivor, "bob", &id).await, 204);
    eprintln!(
        "revocation with a node hung acknowledged after {:?}",
        revoking.elapsed()
    );

    // SIGCONT: it catches up and rejoins without an operator
    hung.signal("-CONT");
    let whoami = || whoami_status(&hung.url, &token);
    let resumed = Instant::now();
    while resumed.elapsed() < Duration::from_secs(3) {
        let s = whoami().await;
        assert_ne!(s, 200, "the resumed node accepted a revoked token");
        let r = whoami_status(&hung.url, &carol_token).await;
        assert_ne!(r, 200, "the resumed node accepted carol's revoked token");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_healthy(&[hung], Duration::from_secs(15)).await;
    eventually(
        "the resumed node acts for bob",
        Duration::from_secs(15),
        || async {
            call(&hung.url, reqwest::Method::POST, "/users/bob/tokens")
                .await
                .0
                == 201
        },
    )
    .await;
    let (s, model) = call(&hung.url, reqwest::Method::GET, "/users/bob").await;
    assert_eq!((s, model["name"].as_str()), (200, Some("bob")));
}

/// A raft leader that hangs (SIGSTOP) is deposed; when it resumes, it serves nothing from
/// its replica of before the hang. Its metrics still showed the quorum acknowledgement of
/// just before the hang as young, and the node once took that for a fresh proof of
/// leading: it renewed its own lease and, for up to two seconds, accepted a token revoked
/// while it hung.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_leader_that_resumes_accepts_no_token_revoked_meanwhile() {
    let _serial = SERIAL.lock().await;
    let dir = TestDir::new();
    let nodes = three_nodes(dir.path()).await;
    let leader = wait_leader(dir.path()).await;
    let hung = nodes.iter().find(|n| n.id == leader).unwrap();
    let via = nodes.iter().find(|n| n.id != leader).unwrap().url.clone();
    assert_eq!(
        call(&via, reqwest::Method::POST, "/users/dora").await.0,
        201
    );
    let (token, id) = new_token(&via, "dora").await;
    eventually(
        "the leader accepts the token",
        Duration::from_secs(5),
        || async { whoami_status(&hung.url, &token).await == 200 },
    )
    .await;

    hung.signal("-STOP");
    // writes answer 503 until another leader is elected
    let stopped = Instant::now();
    let s = eventually(
        "the revocation is answered other than 503",
        Duration::from_secs(15),
        || async {
            let s = revoke(&via, "dora", &id).await;
            (s != 503).then_some(s)
        },
    )
    .await;
    assert!(s == 204 || s == 404, "{s}");
    eprintln!("revoked {:?} after the hang", stopped.elapsed());
    assert_eq!(whoami_status(&via, &token).await, 403);
    hung.signal("-CONT");
    let resumed = Instant::now();
    let mut answers = std::collections::BTreeMap::new();
    while resumed.elapsed() < Duration::from_secs(3) {
        let s = whoami_status(&hung.url, &token).await;
        assert_ne!(
            s,
            200,
            "{:?} after it resumed, the old leader accepted a token revoked while it hung",
            resumed.elapsed()
        );
        *answers.entry(s).or_insert(0) += 1;
    }
    eprintln!("the resumed leader answered {answers:?}");
    wait_healthy(&[hung], Duration::from_secs(15)).await;
    assert_eq!(whoami_status(&hung.url, &token).await, 403);
}

/// A call already waiting when its user's owner hangs follows the user to the new owner,
/// however long it had waited before the move. Here a start waits for a server that is
/// slow to be ready; its owner (not the raft leader) is SIGSTOPped 1.5 s in, so the move
/// comes more than 3 s after the call began. The start goes again to the new owner (which
/// ends the unready process the hung owner launched, and launches its own) and is
/// answered within the start's wait; it is not refused with "moved".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_meets_a_move_late_follows_its_user_to_the_new_owner() {
    let _serial = SERIAL.lock().await;
    let dir = TestDir::new();
    let nodes = three_nodes_with(dir.path(), |c| {
        c + "[spawner.environment]\nTINY_DELAY_READY_MS = \"6000\"\n"
    })
    .await;
    let leader = wait_leader(dir.path()).await;
    let (user, owner) = (0..100)
        .map(|i| format!("late{i}"))
        .find_map(|n| {
            let owner = galilean_actors::policy::placement::owner_of_ids(n.as_bytes(), &[1, 2, 3])?;
            (owner != leader).then_some((n, owner))
        })
        .unwrap();
    let hung = nodes.iter().find(|n| n.id == owner).unwrap();
    let via = nodes.iter().find(|n| n.id != owner).unwrap().url.clone();
    let (s, _) = call(&via, reqwest::Method::POST, &format!("/users/{user}")).await;
    assert_eq!(s, 201);

    let began = Instant::now();
    let start = tokio::spawn({
        let (via, user) = (via.clone(), user.clone());
        async move {
            let (s, body) = call(
                &via,
                reqwest::Method::POST,
                &format!("/users/{user}/server"),
            )
            .await;
            (s, body, began.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    hung.signal("-STOP");
    let (s, body, took) = start.await.unwrap();
    eprintln!("the start was answered {s} after {took:?}");
    assert!(
        s == 201 || s == 202,
        "the start met the move and was not followed: {s} {body}"
    );
    // the move came late in the call: this is the case the test is about
    assert!(took > Duration::from_millis(3500), "{took:?}");
    // the new owner's server becomes ready while the old owner still hangs (resumed
    // earlier, the old owner takes its user back and ends the start under way)
    wait_server_ready(&via, &user).await;
    hung.signal("-CONT");
}

/// `JUPYTERHUB_API_TOKEN` of a running server process: the secret of its OAuth client.
fn server_token(pid: i64) -> String {
    let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    env.split(|b| *b == 0)
        .filter_map(|kv| std::str::from_utf8(kv).ok())
        .find_map(|kv| kv.strip_prefix("JUPYTERHUB_API_TOKEN="))
        .expect("the server has its API token")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_in_on_one_node_browse_and_redeem_oauth_codes_on_others() {
    let _serial = SERIAL.lock().await;
    let dir = TestDir::new();
    let nodes = three_nodes(dir.path()).await;
    let (a, b, c) = (&nodes[0].url, &nodes[1].url, &nodes[2].url);

    // log in through node 1
    let browser = common::Browser::new(a);
    assert_eq!(browser.login("carol", "pw", None).await.0, 302);
    call(a, reqwest::Method::POST, "/users/carol/server").await;
    wait_server_ready(a, "carol").await;
    let (_, model) = call(b, reqwest::Method::GET, "/users/carol").await;
    let secret = server_token(model["servers"][""]["state"]["pid"].as_i64().unwrap());

    // the same cookies work on node 3: one cookie secret for the cluster
    let cookies: Vec<String> = browser
        .cookies("/hub/")
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let on = |url: &str, path: &str| {
        client()
            .get(format!("{url}{path}"))
            .header("Cookie", cookies.join("; "))
            .send()
    };
    let r = on(c, "/hub/home").await.unwrap();
    assert_eq!(
        r.status(),
        200,
        "the login from node 1 is not valid on node 3"
    );
    assert!(r.text().await.unwrap().contains("carol"));

    // an OAuth code issued by node 3 is redeemed at node 2, once
    let r = on(
        c,
        "/hub/api/oauth2/authorize?client_id=jupyterhub-user-carol&response_type=code&state=s",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 302);
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    let code = loc
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let redeem = |url: String| {
        let form = [
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.clone()),
            ("client_id", "jupyterhub-user-carol".to_owned()),
            ("client_secret", secret.clone()),
        ];
        async move {
            client()
                .post(format!("{url}/hub/api/oauth2/token"))
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    let r = redeem(b.clone()).await;
    assert_eq!(r.status(), 200);
    let token: Value = r.json().await.unwrap();
    let access = token["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        redeem(a.clone()).await.status(),
        400,
        "a code was redeemed twice"
    );
    // the token identifies carol on every node
    for n in &nodes {
        eventually(
            format!("node {} accepts the OAuth token", n.id),
            Duration::from_secs(2),
            || async {
                let r = client()
                    .get(format!("{}/hub/api/user", n.url))
                    .header("Authorization", format!("Bearer {access}"))
                    .send()
                    .await
                    .unwrap();
                r.status() == 200
            },
        )
        .await;
    }
}

/// Runs `galilean cluster certs` into `out` for nodes 1-3 on 127.0.0.1.
fn make_certs(out: &std::path::Path) {
    let status = Command::new(common::galilean_bin())
        .args(["cluster", "certs", "--out"])
        .arg(out)
        .args(["--node", "1=127.0.0.1", "--node", "2=127.0.0.1"])
        .args(["--node", "3=127.0.0.1,localhost"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
}

/// A config tweak adding `[cluster.tls]` with node `id`'s files from `certs`.
fn with_tls(certs: &std::path::Path, id: u64) -> impl Fn(String) -> String {
    let path = |name: String| common::toml_str(&certs.join(name).to_string_lossy());
    let table = format!(
        "\n[cluster.tls]\ncert = {}\nkey = {}\nca = {}\n",
        path(format!("node{id}.pem")),
        path(format!("node{id}-key.pem")),
        path("ca.pem".into()),
    );
    move |c: String| c + &table
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_the_cluster_works_and_a_stranger_s_certificate_is_refused() {
    let _serial = SERIAL.lock().await;
    let dir = TestDir::new();
    let certs = dir.path().join("certs");
    let strangers = dir.path().join("strangers");
    make_certs(&certs);
    make_certs(&strangers);
    let peers: Vec<(u64, u16)> = (1..=3).map(|id| (id, free_pair())).collect();
    let start = |id: u64, certs: &std::path::Path| {
        start_node_with(dir.path(), id, &peers, SECRET, with_tls(certs, id), &[])
    };
    let n1 = start(1, &certs);
    let n2 = start(2, &certs);
    // the right secret, but a certificate from another CA: refused
    let n3 = start(3, &strangers);
    wait_healthy(&[&n1, &n2], Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(health(&n3.url).await, 503, "a stranger's node serves");
    let logs = n1.log_text() + &n2.log_text();
    assert!(logs.contains("TLS handshake failed"), "{logs}");
    drop(n3);

    // raft's port speaks TLS only: a request in clear gets no HTTP answer
    use std::io::{Read, Write};
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", peers[0].1)).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // the TLS side may hang up before all of it is written (a broken pipe): no answer
    // in clear either way
    let _ = write!(
        raw,
        "POST /raft/status HTTP/1.1\r\nhost: x\r\nx-galilean-cluster-secret: {SECRET}\r\ncontent-length: 0\r\n\r\n"
    );
    let mut answer = Vec::new();
    let _ = raw.read_to_end(&mut answer);
    assert!(
        !String::from_utf8_lossy(&answer).contains("HTTP/1.1"),
        "raft answered in clear: {}",
        String::from_utf8_lossy(&answer)
    );

    // with its own certificate node 3 joins, and every path between nodes works: forwarded
    // writes, actor calls to the owner, replication, revocation, routes
    let n3 = start(3, &certs);
    let nodes = [n1, n2, n3];
    wait_healthy(&nodes.iter().collect::<Vec<_>>(), Duration::from_secs(30)).await;
    let owner_id = galilean_actors::policy::placement::owner_of_ids(b"alice", &[1, 2, 3]).unwrap();
    let other = nodes.iter().find(|n| n.id != owner_id).unwrap();
    let (s, body) = call(&other.url, reqwest::Method::POST, "/users/alice").await;
    assert_eq!(s, 201, "{body}");
    for n in &nodes {
        assert_eq!(
            call(&n.url, reqwest::Method::GET, "/users/alice").await.0,
            200
        );
    }
    let (token, id) = new_token(&other.url, "alice").await;
    assert_eq!(revoke(&other.url, "alice", &id).await, 204);
    for n in &nodes {
        let s = whoami_status(&n.url, &token).await;
        assert_eq!(s, 403, "node {} accepts a revoked token", n.id);
    }
    call(&other.url, reqwest::Method::POST, "/users/alice/server").await;
    wait_server_ready(&other.url, "alice").await;
    for n in &nodes {
        eventually(
            format!("node {} routes alice", n.id),
            Duration::from_secs(1),
            || whoami_pid(&n.url, "alice"),
        )
        .await;
    }
    // `cluster status` asks over TLS too
    let (code, out) = cluster_status(dir.path(), 1);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("reachable: 3"), "{out}");
    call(&other.url, reqwest::Method::DELETE, "/users/alice/server").await;

    // a missing or foreign file is a config error naming its key
    std::fs::remove_file(certs.join("node2-key.pem")).unwrap();
    let out = Command::new(common::galilean_bin())
        .args(["config", "check", "--config"])
        .arg(dir.path().join("node2.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cluster.tls.key"), "{err}");
}

/// Runs `galilean cluster <args...> --config <node id's config>`: (exit code, stdout+stderr).
fn cluster_cli(dir: &std::path::Path, id: u64, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(common::galilean_bin())
        .arg("cluster")
        .args(args)
        .arg("--config")
        .arg(dir.join(format!("node{id}.toml")))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// The pid that answers `/user/{user}/whoami` through `url`, if any.
async fn whoami_pid(url: &str, user: &str) -> Option<i64> {
    let r = client()
        .get(format!("{url}/user/{user}/whoami"))
        .send()
        .await
        .ok()?;
    if r.status() != 200 {
        return None;
    }
    r.json::<Value>().await.ok()?["pid"].as_i64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_added_at_runtime_catches_up_and_takes_users_and_a_removed_one_leaves() {
    let _serial = SERIAL.lock().await;
    let dir = TestDir::new();
    let mut peers: Vec<(u64, u16)> = (1..=3).map(|id| (id, free_pair())).collect();
    let nodes: Vec<ClusterNode> = peers
        .iter()
        .map(|(id, _)| start_node(dir.path(), *id, &peers, SECRET))
        .collect();
    wait_healthy(&nodes.iter().collect::<Vec<_>>(), Duration::from_secs(30)).await;
    let names: Vec<String> = (0..40).map(|i| format!("u{i}")).collect();
    let r = client()
        .post(format!("{}/hub/api/users", nodes[0].url))
        .header("Authorization", format!("token {ADMIN_TOKEN}"))
        .json(&serde_json::json!({ "usernames": names }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // node 4, started with the members and itself as peers, waits to be added
    let p4 = free_pair();
    peers.push((4, p4));
    let n4 = start_node(dir.path(), 4, &peers, SECRET);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        health(&n4.url).await,
        503,
        "a node that was not added serves"
    );
    let (code, out) = cluster_cli(dir.path(), 1, &["add", &format!("4@127.0.0.1:{p4}")]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(&format!("4@127.0.0.1:{p4}")), "{out}");
    wait_healthy(&[&n4], Duration::from_secs(30)).await;
    assert!(
        n4.log_text()
            .contains("installing a snapshot from the leader"),
        "the newcomer did not catch up by snapshot:\n{}",
        n4.log_text()
    );
    // it has everything, and owns its share of the users
    for name in &names {
        assert_eq!(
            call(&n4.url, reqwest::Method::GET, &format!("/users/{name}"))
                .await
                .0,
            200
        );
    }
    let (code, out) = cluster_status(dir.path(), 2);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("members: 4, reachable: 4"), "{out}");
    let mine: Vec<&String> = names
        .iter()
        .filter(|n| {
            galilean_actors::policy::placement::owner_of_ids(n.as_bytes(), &[1, 2, 3, 4]) == Some(4)
        })
        .collect();
    assert!(!mine.is_empty());
    let user = mine[0].clone();
    eventually(
        "node 4 is in the live set",
        Duration::from_secs(10),
        || async {
            let (_, out) = cluster_status(dir.path(), 1);
            out.lines()
                .any(|l| l.starts_with("4 ") && l.split_whitespace().nth(7) != Some("0"))
        },
    )
    .await;
    // a server of a user node 4 owns, started through node 1, runs on node 4 and is
    // routed everywhere
    let (s, _) = call(
        &nodes[0].url,
        reqwest::Method::POST,
        &format!("/users/{user}/server"),
    )
    .await;
    assert!(s == 201 || s == 202, "{s}");
    wait_server_ready(&nodes[0].url, &user).await;
    let pid = whoami_pid(&n4.url, &user).await.expect("routed on node 4");
    let log4 = std::fs::read_dir(dir.path().join("node4/logs"))
        .unwrap()
        .count();
    assert_eq!(log4, 1, "node 4 did not launch it");

    // drained, node 4 owns nothing: its server is re-adopted (same process) elsewhere
    let (code, out) = cluster_cli(dir.path(), 3, &["drain", "4"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        health(&n4.url).await,
        503,
        "a draining node says it is healthy"
    );
    for n in &nodes {
        assert_eq!(whoami_pid(&n.url, &user).await, Some(pid), "node {}", n.id);
    }
    let (_, model) = call(
        &nodes[1].url,
        reqwest::Method::GET,
        &format!("/users/{user}"),
    )
    .await;
    assert_eq!(model["servers"][""]["ready"], true, "{model}");

    // removed, it is no member; the others go on
    let (code, out) = cluster_cli(dir.path(), 2, &["remove", "4"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains(&format!("4@127.0.0.1:{p4}")), "{out}");
    drop(n4);
    let (code, out) = cluster_status(dir.path(), 1);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("members: 3, reachable: 3"), "{out}");
    let (s, _) = call(&nodes[2].url, reqwest::Method::POST, "/users/after-removal").await;
    assert_eq!(s, 201);
    for n in &nodes {
        assert_eq!(whoami_pid(&n.url, &user).await, Some(pid), "node {}", n.id);
    }
    call(
        &nodes[0].url,
        reqwest::Method::DELETE,
        &format!("/users/{user}/server"),
    )
    .await;
}

/// What the load of the rolling-restart test saw.
#[derive(Default)]
struct LoadTally {
    ok: u64,
    failures: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_under_load_fails_no_request() {
    let _serial = SERIAL.lock().await;
    let dir = TestDir::new();
    let peers: Vec<(u64, u16)> = (1..=3).map(|id| (id, free_pair())).collect();
    let mut nodes: Vec<ClusterNode> = peers
        .iter()
        .map(|(id, _)| start_node(dir.path(), *id, &peers, SECRET))
        .collect();
    wait_healthy(&nodes.iter().collect::<Vec<_>>(), Duration::from_secs(30)).await;
    // users spread over the nodes, each with a token; three with a running server
    let users: Vec<String> = (0..9).map(|i| format!("r{i}")).collect();
    let mut tokens = Vec::new();
    for u in &users {
        assert_eq!(
            call(&nodes[0].url, reqwest::Method::POST, &format!("/users/{u}"))
                .await
                .0,
            201
        );
        let (s, t) = call(
            &nodes[1].url,
            reqwest::Method::POST,
            &format!("/users/{u}/tokens"),
        )
        .await;
        assert_eq!(s, 201, "{t}");
        tokens.push(t["token"].as_str().unwrap().to_owned());
    }
    let with_server: Vec<String> = users[..3].to_vec();
    for u in &with_server {
        call(
            &nodes[2].url,
            reqwest::Method::POST,
            &format!("/users/{u}/server"),
        )
        .await;
    }
    let mut pids = std::collections::BTreeMap::new();
    for u in &with_server {
        let what = format!("{u}'s server answers");
        let pid = eventually(what, Duration::from_secs(20), || {
            whoami_pid(&nodes[0].url, u)
        })
        .await;
        pids.insert(u.clone(), pid);
    }

    // the load: like a load balancer, it sends only to the nodes in `pool`
    let pool: std::sync::Arc<std::sync::Mutex<Vec<String>>> = std::sync::Arc::new(
        std::sync::Mutex::new(nodes.iter().map(|n| n.url.clone()).collect()),
    );
    let tally = std::sync::Arc::new(std::sync::Mutex::new(LoadTally::default()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..4usize {
        let (pool, tally, stop) = (pool.clone(), tally.clone(), stop.clone());
        let (users, tokens, with_server) = (users.clone(), tokens.clone(), with_server.clone());
        workers.push(tokio::spawn(async move {
            let http = client();
            let mut i = w;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let url = {
                    let pool = pool.lock().unwrap();
                    pool[i % pool.len()].clone()
                };
                let u = i % users.len();
                // reads from the replica, proxied requests, and writes through the owner
                let (what, request) = match i % 4 {
                    0 => (
                        "whoami",
                        http.get(format!("{url}/hub/api/user"))
                            .header("Authorization", format!("token {}", tokens[u])),
                    ),
                    1 => (
                        "get user",
                        http.get(format!("{url}/hub/api/users/{}", users[u]))
                            .header("Authorization", format!("token {ADMIN_TOKEN}")),
                    ),
                    2 => (
                        "proxy",
                        http.get(format!(
                            "{url}/user/{}/whoami",
                            with_server[u % with_server.len()]
                        )),
                    ),
                    _ => (
                        "new token",
                        http.post(format!("{url}/hub/api/users/{}/tokens", users[u]))
                            .header("Authorization", format!("token {ADMIN_TOKEN}")),
                    ),
                };
                let failure = match request.send().await {
                    Ok(r) if r.status().is_success() => None,
                    Ok(r) => Some(format!(
                        "{what} at {url}: {} {}",
                        r.status(),
                        r.text().await.unwrap_or_default()
                    )),
                    Err(e) => Some(format!("{what} at {url}: {e}")),
                };
                {
                    let mut t = tally.lock().unwrap();
                    match failure {
                        None => t.ok += 1,
                        Some(f) => t.failures.push(f),
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }

    // restart every node in turn: out of the pool, drained, stopped, started, back in
    for node in nodes.iter_mut() {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let id = node.id;
        let url = node.url.clone();
        pool.lock().unwrap().retain(|u| *u != url);
        let (code, out) = cluster_cli(dir.path(), id % 3 + 1, &["drain", &id.to_string()]);
        assert_eq!(code, Some(0), "draining node {id}: {out}");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(node.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let status = node.child.wait().unwrap();
        assert!(status.success(), "node {id} exited with {status}");
        *node = start_node(dir.path(), id, &peers, SECRET);
        wait_healthy(&[&*node], Duration::from_secs(30)).await;
        pool.lock().unwrap().push(node.url.clone());
        eprintln!("node {id} restarted");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let t = std::mem::take(&mut *tally.lock().unwrap());
    eprintln!(
        "rolling restart: {} requests ok, {} failed",
        t.ok,
        t.failures.len()
    );
    assert!(
        t.failures.is_empty(),
        "{} of {} requests failed, first: {:?}",
        t.failures.len(),
        t.ok + t.failures.len() as u64,
        &t.failures[..t.failures.len().min(10)]
    );
    assert!(t.ok > 500, "too little load to show anything: {}", t.ok);
    // every server is still the process it was: none restarted, none doubled
    for n in &nodes {
        for (u, pid) in &pids {
            assert_eq!(
                whoami_pid(&n.url, u).await,
                Some(*pid),
                "{u} via node {}",
                n.id
            );
        }
    }
    for u in &with_server {
        call(
            &nodes[0].url,
            reqwest::Method::DELETE,
            &format!("/users/{u}/server"),
        )
        .await;
    }
}

/// A network namespace joined to this one by a veth pair: `host_ip` on this side,
/// `ns_ip` inside. Removed on drop.
struct NetNs {
    name: String,
    link: String,
    host_ip: String,
    ns_ip: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl NetNs {
    /// Creates the namespace, or says why it cannot (the partition test needs root and
    /// iproute2; it fails rather than pretending).
    fn create() -> Result<NetNs, String> {
        let k = std::process::id() % 200 + 20;
        let ns = NetNs {
            name: format!("galilean-test-{}", std::process::id()),
            link: format!("gt{}a", std::process::id()),
            host_ip: format!("10.211.{k}.1"),
            ns_ip: format!("10.211.{k}.2"),
        };
        let peer = format!("gt{}b", std::process::id());
        ip(&["netns", "add", &ns.name])?;
        ip(&[
            "link", "add", &ns.link, "type", "veth", "peer", "name", &peer,
        ])?;
        ip(&["link", "set", &peer, "netns", &ns.name])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/24", ns.host_ip),
            "dev",
            &ns.link,
        ])?;
        ip(&["link", "set", &ns.link, "up"])?;
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &ns.name, "ip"];
            all.extend_from_slice(args);
            ip(&all)
        };
        inside(&["addr", "add", &format!("{}/24", ns.ns_ip), "dev", &peer])?;
        inside(&["link", "set", &peer, "up"])?;
        inside(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Cuts (`false`) or restores (`true`) the link: a partition made by the kernel.
    fn link_up(&self, up: bool) {
        ip(&["link", "set", &self.link, if up { "up" } else { "down" }]).unwrap();
    }

    /// The HTTP status of GET `url` asked from inside the namespace (with `token`).
    fn status_inside(&self, url: &str, token: &str) -> u16 {
        let script = "import sys, urllib.request, urllib.error\n\
            r = urllib.request.Request(sys.argv[1], headers={'Authorization': 'token ' + sys.argv[2]})\n\
            try:\n    print(urllib.request.urlopen(r, timeout=5).status)\n\
            except urllib.error.HTTPError as e:\n    print(e.code)\n\
            except Exception:\n    print(0)\n";
        let out = Command::new("ip")
            .args([
                "netns", "exec", &self.name, "python3", "-c", script, url, token,
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = ip(&["netns", "delete", &self.name]);
        let _ = ip(&["link", "delete", &self.link]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_node_stops_serving_and_rejoins_when_healed() {
    let _serial = SERIAL.lock().await;
    let ns = NetNs::create().unwrap_or_else(|e| {
        panic!("this test partitions a node with a network namespace (root and iproute2): {e}")
    });
    let dir = TestDir::new();
    // nodes 1 and 2 on this side of the link, node 3 inside the namespace
    let peers: Vec<(u64, String, u16)> = vec![
        (1, ns.host_ip.clone(), free_pair()),
        (2, ns.host_ip.clone(), free_pair()),
        (3, ns.ns_ip.clone(), free_pair()),
    ];
    let start = |id: u64| {
        let netns = (id == 3).then_some(ns.name.as_str());
        start_node_at(dir.path(), id, &peers, SECRET, |c| c, &[], netns)
    };
    let n1 = start(1);
    let n2 = start(2);
    let n3 = start(3);
    wait_healthy(&[&n1, &n2, &n3], Duration::from_secs(30)).await;
    assert_eq!(
        call(&n1.url, reqwest::Method::POST, "/users/alice").await.0,
        201
    );
    let (token, token_id) = new_token(&n2.url, "alice").await;
    let whoami = format!("{}/hub/api/user", n3.url);
    assert_eq!(ns.status_inside(&whoami, &token), 200);

    // cut node 3 off: within its lease it stops answering, even from its own replica
    ns.link_up(false);
    let cut = Instant::now();
    eventually(
        "node 3 stops serving after the partition",
        Duration::from_secs(6),
        || async {
            let s = ns.status_inside(&whoami, &token);
            if s != 503 {
                assert_eq!(s, 200, "node 3 answered {s} while cut off");
            }
            s == 503
        },
    )
    .await;
    let stopped_after = cut.elapsed();
    assert_eq!(ns.status_inside(&format!("{}/hub/health", n3.url), ""), 503);

    // the majority goes on: a revocation is acknowledged (node 3 cannot confirm it, so
    // its lease is waited out) and holds everywhere; new users can be made
    let revoked = Instant::now();
    assert_eq!(revoke(&n1.url, "alice", &token_id).await, 204);
    let revoke_took = revoked.elapsed();
    for n in [&n1, &n2] {
        assert_eq!(whoami_status(&n.url, &token).await, 403, "node {}", n.id);
    }
    assert_eq!(ns.status_inside(&whoami, &token), 503, "node 3 answered");
    assert_eq!(
        call(&n2.url, reqwest::Method::POST, "/users/bob").await.0,
        201
    );

    // healed, node 3 catches up and rejoins by itself: it knows bob, refuses the token
    ns.link_up(true);
    let healed = Instant::now();
    wait_healthy(&[&n3], Duration::from_secs(30)).await;
    let rejoin_took = healed.elapsed();
    assert_eq!(
        call(&n3.url, reqwest::Method::GET, "/users/bob").await.0,
        200
    );
    assert_eq!(ns.status_inside(&whoami, &token), 403);
    eprintln!(
        "partition: node 3 stopped serving {stopped_after:?} after the cut; the revocation \
         took {revoke_took:?}; healthy again {rejoin_took:?} after healing"
    );
    drop((n1, n2, n3));
}

/// The raft leader as `galilean cluster status` with node `via`'s config reports it.
fn leader_by_status(dir: &std::path::Path, via: u64) -> Option<u64> {
    let (_, out) = cluster_status(dir, via);
    out.lines()
        .find_map(|l| l.split("leader: ").nth(1))
        .and_then(|l| l.trim().parse().ok())
}

/// The raft leader as node 1 reports it, once there is one (within 10 s).
async fn wait_leader(dir: &std::path::Path) -> u64 {
    eventually(
        "node 1 reports a leader",
        Duration::from_secs(10),
        || async { leader_by_status(dir, 1) },
    )
    .await
}

/// Kills -9 a node (the leader, or another node) while clients write and read through
/// the survivors; checks that a user it owned is served again within 5 s, that its
/// server is re-adopted, and that no acknowledged write is lost. The nodes' configs pass
/// through `tweak` (another store).
async fn kill_under_load(kill_the_leader: bool, tweak: impl Fn(String) -> String) {
    let dir = TestDir::new();
    let mut nodes = three_nodes_with(dir.path(), tweak).await;
    let leader = leader_by_status(dir.path(), 1).expect("a leader");
    let victim_id = if kill_the_leader {
        leader
    } else {
        (1..=3).find(|id| *id != leader).unwrap()
    };
    // a user the victim owns, with a running server
    let user = (0..)
        .map(|i| format!("k{i}"))
        .find(|u| {
            galilean_actors::policy::placement::owner_of_ids(u.as_bytes(), &[1, 2, 3])
                == Some(victim_id)
        })
        .unwrap();
    let survivors: Vec<String> = nodes
        .iter()
        .filter(|n| n.id != victim_id)
        .map(|n| n.url.clone())
        .collect();
    let users: Vec<String> = (0..6)
        .map(|i| format!("w{i}"))
        .chain([user.clone()])
        .collect();
    for u in &users {
        assert_eq!(
            call(&survivors[0], reqwest::Method::POST, &format!("/users/{u}"))
                .await
                .0,
            201
        );
    }
    call(
        &survivors[1],
        reqwest::Method::POST,
        &format!("/users/{user}/server"),
    )
    .await;
    let what = format!("{user}'s server answers");
    let pid = eventually(what, Duration::from_secs(20), || {
        whoami_pid(&survivors[0], &user)
    })
    .await;

    // clients write (tokens, through each user's owner and the raft leader) and read
    // through the survivors; every acknowledged token is remembered
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
    let failed = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..3usize {
        let (acked, failed, stop) = (acked.clone(), failed.clone(), stop.clone());
        let (users, survivors) = (users.clone(), survivors.clone());
        workers.push(tokio::spawn(async move {
            let mut i = w;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let url = &survivors[i % survivors.len()];
                let u = &users[i % users.len()];
                let (s, body) =
                    call(url, reqwest::Method::POST, &format!("/users/{u}/tokens")).await;
                if s == 201 {
                    let id = body["id"].as_str().unwrap_or_default().to_owned();
                    acked.lock().unwrap().push((u.clone(), id));
                } else {
                    failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    let killed = Instant::now();
    let victim = nodes.iter_mut().find(|n| n.id == victim_id).unwrap();
    victim.child.kill().unwrap();
    victim.child.wait().unwrap();
    let via = nodes.iter().find(|n| n.id != victim_id).unwrap().id;
    // two watchers at once: when a survivor leads, and when the victim's user is served
    let status_dir = dir.path().to_owned();
    let election = tokio::task::spawn_blocking(move || {
        let leader = eventually_blocking("a survivor leads", Duration::from_secs(15), || {
            leader_by_status(&status_dir, via).filter(|l| *l != victim_id)
        });
        (leader, killed.elapsed())
    });
    let failover = {
        let (acked, url, user) = (acked.clone(), survivors[0].clone(), user.clone());
        tokio::spawn(async move {
            let what = "the victim's user is served";
            let id = eventually(what, Duration::from_secs(15), || async {
                // a call that needs the user's owner: a new token
                let (s, body) = call(
                    &url,
                    reqwest::Method::POST,
                    &format!("/users/{user}/tokens"),
                )
                .await;
                (s == 201).then(|| body["id"].as_str().unwrap_or_default().to_owned())
            })
            .await;
            acked.lock().unwrap().push((user.clone(), id));
            killed.elapsed()
        })
    };
    let (new_leader, election) = election.await.unwrap();
    let failover = failover.await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    eprintln!(
        "kill -9 of node {victim_id} (leader: {kill_the_leader}): a survivor leads (node \
         {new_leader}) after {election:?}; the victim's user is served after {failover:?}; \
         {} writes acknowledged, {} refused during the failover",
        acked.len(),
        failed.load(std::sync::atomic::Ordering::Relaxed)
    );
    // a bound, not the figure (README: about 3.5 s when the leader dies): the whole
    // suite on two cores once took past 5 s, its debug nodes sharing them with the load
    assert!(
        failover < Duration::from_secs(8),
        "the victim's user was served again only after {failover:?}"
    );
    if kill_the_leader {
        assert_ne!(new_leader, victim_id);
    } else {
        assert_eq!(
            new_leader, leader,
            "a non-leader's death changed the leader"
        );
    }
    // no acknowledged write is lost: every survivor's replica has every token
    assert!(acked.len() > 20, "too few writes: {}", acked.len());
    for url in &survivors {
        for (u, id) in &acked {
            let (s, _) = call(
                url,
                reqwest::Method::GET,
                &format!("/users/{u}/tokens/{id}"),
            )
            .await;
            assert_eq!(s, 200, "token {id} of {u} lost at {url}");
        }
    }
    // the server was re-adopted by the user's new owner: the same process, routed
    for url in &survivors {
        assert_eq!(whoami_pid(url, &user).await, Some(pid), "at {url}");
    }
    let (_, model) = call(
        &survivors[0],
        reqwest::Method::GET,
        &format!("/users/{user}"),
    )
    .await;
    assert_eq!(model["servers"][""]["ready"], true, "{model}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_raft_leader_under_load_loses_nothing() {
    let _serial = SERIAL.lock().await;
    kill_under_load(true, |c| c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_a_non_leader_owner_under_load_loses_nothing() {
    let _serial = SERIAL.lock().await;
    kill_under_load(false, |c| c).await;
}

/// With `FDB_CLUSTER_FILE` set (and a galilean built with `--features fdb`): a config
/// tweak that puts the nodes on a fresh root of that FoundationDB. The root is left
/// behind (its name says which run made it).
#[cfg(feature = "fdb")]
fn on_fdb() -> Option<impl Fn(String) -> String> {
    let file = std::env::var("FDB_CLUSTER_FILE").ok()?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let root = format!("galilean-test-{}-{nanos}", std::process::id());
    Some(move |config: String| {
        format!(
            "{config}\n[storage]\nbackend = \"fdb\"\nfdb_cluster_file = {file}\nfdb_root = \"{root}\"\n",
            file = common::toml_str(&file),
        )
    })
}

/// The kill -9 tests with the nodes on FoundationDB, where a lease kept in it elects
/// the leader: runs where `FDB_CLUSTER_FILE` names a cluster (`cargo test -p
/// galilean-node --features fdb --test cluster on_foundationdb`); CI has no
/// FoundationDB and only compiles it.
#[cfg(feature = "fdb")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_foundationdb_kill_9_of_the_lease_holder_and_of_another_node_loses_nothing() {
    let _serial = SERIAL.lock().await;
    if on_fdb().is_none() {
        eprintln!("FDB_CLUSTER_FILE is not set: not run");
        return;
    }
    kill_under_load(true, on_fdb().unwrap()).await;
    kill_under_load(false, on_fdb().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_is_answered_only_when_every_serving_node_shows_it() {
    let _serial = SERIAL.lock().await;
    let dir = TestDir::new();
    let nodes = three_nodes(dir.path()).await;
    // node 3 hangs: it has not applied what comes next, and its lease still runs
    let pid = nix::unistd::Pid::from_raw(nodes[2].child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    // a user node 3 does not own: the write itself needs no answer from it
    let carol = (0..)
        .map(|i| format!("carol{i}"))
        .find(|u| {
            galilean_actors::policy::placement::owner_of_ids(u.as_bytes(), &[1, 2, 3]) != Some(3)
        })
        .unwrap();
    let asked = Instant::now();
    let (s, _) = call(
        &nodes[0].url,
        reqwest::Method::POST,
        &format!("/users/{carol}"),
    )
    .await;
    assert_eq!(s, 201);
    let took = asked.elapsed();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    // the 201 came once node 3 could no longer answer from its old state: from the
    // moment it resumes it shows carol or refuses, never "no such user"
    let mut seen = Vec::new();
    let resumed = Instant::now();
    while resumed.elapsed() < Duration::from_secs(3) {
        let (s, _) = call(
            &nodes[2].url,
            reqwest::Method::GET,
            &format!("/users/{carol}"),
        )
        .await;
        seen.push(s);
        if s == 200 {
            break;
        }
    }
    let count = |code: u16| seen.iter().filter(|s| **s == code).count();
    eprintln!(
        "the 201 took {took:?} with node 3 hung; node 3 then answered 503 {} times, 404 {} times, then {:?}",
        count(503),
        count(404),
        seen.last()
    );
    assert_eq!(count(404), 0, "node 3 denied a created user");
    assert_eq!(seen.last(), Some(&200), "node 3 did not come back");
}

/// `cleanup_servers` holds when a node shuts down after its majority left (the whole
/// cluster stopped at once, the others first): stopping a server through its actor needs
/// a store write that cannot commit, and the process must stop anyway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_servers_stops_a_node_s_servers_even_after_its_majority_left() {
    let _serial = SERIAL.lock().await;
    let dir = TestDir::new();
    let mut nodes = three_nodes_with(dir.path(), |c| {
        c.replacen("[hub]\n", "[hub]\ncleanup_servers = true\n", 1)
    })
    .await;
    let last = 3;
    let dave = (0..)
        .map(|i| format!("dave{i}"))
        .find(|u| {
            galilean_actors::policy::placement::owner_of_ids(u.as_bytes(), &[1, 2, 3]) == Some(last)
        })
        .unwrap();
    let url = nodes[0].url.clone();
    let (s, _) = call(&url, reqwest::Method::POST, &format!("/users/{dave}")).await;
    assert_eq!(s, 201);
    call(
        &url,
        reqwest::Method::POST,
        &format!("/users/{dave}/server"),
    )
    .await;
    wait_server_ready(&url, &dave).await;
    let pid = whoami_pid(&url, &dave)
        .await
        .expect("dave's server answers") as i32;

    // the other two go first, at once: node 3 is left without a majority
    for n in nodes.iter_mut().filter(|n| n.id != last) {
        n.child.kill().unwrap();
        n.child.wait().unwrap();
    }
    let node = nodes.iter_mut().find(|n| n.id == last).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(node.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let asked = Instant::now();
    let status = node
        .exit_within(Duration::from_secs(40), &format!("node {last} exits"))
        .await;
    assert!(status.success(), "node {last} exited with {status}");
    // it gave up on the store once its serving lease (2 s) ran out, not at the store's
    // deadline (10 s): a service manager's stop timeout is not outlasted
    let took = asked.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "the node took {took:?} to stop"
    );
    assert!(
        !common::group_alive(pid),
        "node {last} left {dave}'s server running:\n{}",
        node.log_text()
    );
}

/// Removing a user from a group is acknowledged only when every node enforces it: a
/// member's token loses the group's role, and a token filtered to the group loses the
/// removed member, on every node at the answer, whichever node made the change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_membership_removed_through_one_node_is_refused_by_every_node_at_the_answer() {
    let _serial = SERIAL.lock().await;
    let dir = TestDir::new();
    let roles = "\n[[roles]]\nname = \"physics-reader\"\nscopes = [\"read:users!group=physics\"]\ngroups = [\"readers\"]\n\n\
                 [[groups]]\nname = \"physics\"\nusers = [\"alice\", \"carol\"]\n\n\
                 [[groups]]\nname = \"readers\"\nusers = [\"tom\"]\n";
    let nodes = three_nodes_with(dir.path(), |c| format!("{c}{roles}")).await;
    let (tom, _) = new_token(&nodes[0].url, "tom").await;
    let sees = |url: String, user: &'static str| {
        let tom = tom.clone();
        async move {
            client()
                .get(format!("{url}/hub/api/users/{user}"))
                .header("Authorization", format!("token {tom}"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    for n in &nodes {
        assert_eq!(sees(n.url.clone(), "carol").await, 200, "node {}", n.id);
        assert_eq!(sees(n.url.clone(), "alice").await, 200, "node {}", n.id);
    }
    let remove = |url: &str, group: &str, user: &str| {
        client()
            .delete(format!("{url}/hub/api/groups/{group}/users"))
            .header("Authorization", format!("token {ADMIN_TOKEN}"))
            .json(&serde_json::json!({ "users": [user] }))
            .send()
    };
    // carol leaves physics through node 2: no node shows her to tom from the answer on
    let r = remove(&nodes[1].url, "physics", "carol").await.unwrap();
    assert_eq!(r.status(), 200);
    for n in &nodes {
        assert_eq!(sees(n.url.clone(), "carol").await, 404, "node {}", n.id);
        assert_eq!(sees(n.url.clone(), "alice").await, 200, "node {}", n.id);
    }
    // tom leaves readers through node 3: his token loses the role everywhere at once
    let r = remove(&nodes[2].url, "readers", "tom").await.unwrap();
    assert_eq!(r.status(), 200);
    for n in &nodes {
        assert_eq!(sees(n.url.clone(), "alice").await, 404, "node {}", n.id);
    }
}

/// A share revoked, or a share code deleted, through one node is refused by every node
/// at the answer: the recipient's scopes lose the server on each node, and no node's
/// accept-share page takes the deleted code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_or_code_revoked_through_one_node_is_refused_by_every_node_at_the_answer() {
    let _serial = SERIAL.lock().await;
    let dir = TestDir::new();
    let role = "\n[[roles]]\nname = \"sharer\"\nscopes = [\"shares!user\", \"read:users:name\"]\nusers = [\"alice\"]\n";
    let nodes = three_nodes_with(dir.path(), |c| format!("{c}{role}")).await;
    for u in ["bob", "carol"] {
        assert_eq!(
            call(&nodes[0].url, reqwest::Method::POST, &format!("/users/{u}"))
                .await
                .0,
            201
        );
    }
    let (alice, _) = new_token(&nodes[0].url, "alice").await;
    let (bob, _) = new_token(&nodes[0].url, "bob").await;
    let send = |url: &str, m: reqwest::Method, path: &str, token: &str, body: Option<Value>| {
        let mut r = client()
            .request(m, format!("{url}/hub/api{path}"))
            .header("Authorization", format!("token {token}"));
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send()
    };
    let access = "access:servers!server=alice/";
    let holds = |url: String| {
        let bob = bob.clone();
        async move {
            let me: Value = client()
                .get(format!("{url}/hub/api/user"))
                .header("Authorization", format!("token {bob}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            me["scopes"].as_array().unwrap().iter().any(|s| s == access)
        }
    };
    let r = send(
        &nodes[0].url,
        reqwest::Method::POST,
        "/shares/alice/",
        &alice,
        Some(serde_json::json!({"user": "bob"})),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    for n in &nodes {
        assert!(
            holds(n.url.clone()).await,
            "node {} does not show the share",
            n.id
        );
    }
    let r = send(
        &nodes[1].url,
        reqwest::Method::PATCH,
        "/shares/alice/",
        &alice,
        Some(serde_json::json!({"user": "bob"})),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    for n in &nodes {
        assert!(
            !holds(n.url.clone()).await,
            "node {} honours a revoked share",
            n.id
        );
    }

    // a code made through node 1, deleted through node 3: no node takes it after the 204
    let made: Value = send(
        &nodes[0].url,
        reqwest::Method::POST,
        "/share-codes/alice/",
        &alice,
        None,
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let accept = made["accept_url"].as_str().unwrap().to_owned();
    let mut carol = Vec::new();
    for n in &nodes {
        let b = common::Browser::new(&n.url);
        assert_eq!(b.login("carol", "x", None).await.0, 302);
        assert_eq!(b.get(&accept).await.status(), 200, "node {}", n.id);
        carol.push(b);
    }
    let r = send(
        &nodes[2].url,
        reqwest::Method::DELETE,
        "/share-codes/alice/",
        &alice,
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 204);
    for (n, b) in nodes.iter().zip(&carol) {
        assert_eq!(
            b.get(&accept).await.status(),
            404,
            "node {} takes a deleted code",
            n.id
        );
    }
}
