//! The `galilean` processes of a run, each in its namespace or on its loopback address,
//! and the tiny servers they
//! spawn. Every process started here (and every tiny server that recorded its start) is
//! stopped when [`Nodes`] is dropped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

use crate::history::{ServerEvent, ServerEventKind};
use crate::net::Network;

/// The public port of every node (each has its own address).
pub const PUBLIC_PORT: u16 = 8000;
/// `cluster.bind`'s port (actor messages use the next one).
pub const CLUSTER_PORT: u16 = 7100;
/// The cluster secret of a run.
pub const SECRET: &str = "the-chaos-harness-cluster-secret";
/// The admin service token the clients use.
pub const ADMIN_TOKEN: &str = "chaos-admin-token-0123456789abcdef";
/// The group the clients add users to and remove them from. The config names it with no
/// members: a node adds a config group's members each time it starts, which would be a
/// membership change the history does not show.
pub const GRANT_GROUP: &str = "chaos";
/// The user whose token checks the group's grant: its role (`chaos-reader`) reads the
/// members of [`GRANT_GROUP`] (`read:users!group=chaos`), so a user's model is shown to it
/// (200) while the user is a member and hidden (404) otherwise. The config names it, so
/// every node makes it at start.
pub const READER: &str = "reader";

pub struct Nodes {
    network: Mutex<Network>,
    galilean: PathBuf,
    tiny: PathBuf,
    dir: PathBuf,
    count: u32,
    children: Mutex<BTreeMap<u32, Child>>,
    http: reqwest::Client,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Nodes {
    pub fn new(network: Network, galilean: &Path, dir: &Path, count: u32) -> anyhow::Result<Nodes> {
        let tiny = galilean.with_file_name("tiny_server");
        anyhow::ensure!(
            tiny.exists(),
            "{} is missing: build it beside galilean (cargo build --release -p galilean-node)",
            tiny.display()
        );
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(3))
            .build()?;
        let nodes = Nodes {
            network: Mutex::new(network),
            galilean: galilean.to_owned(),
            tiny,
            dir: dir.to_owned(),
            count,
            children: Mutex::new(BTreeMap::new()),
            http,
        };
        for id in 1..=count {
            nodes.write_config(id)?;
        }
        Ok(nodes)
    }

    /// The tiny server binary the nodes spawn.
    pub fn tiny(&self) -> &Path {
        &self.tiny
    }

    pub fn ids(&self) -> Vec<u32> {
        (1..=self.count).collect()
    }

    pub fn ip(&self, id: u32) -> String {
        lock(&self.network).node_ip(id)
    }

    /// `netns` or `loopback`.
    pub fn network(&self) -> &'static str {
        lock(&self.network).name()
    }

    /// Cuts node `id` off from the other nodes (a partition).
    pub fn cut(&self, id: u32) -> Result<(), String> {
        lock(&self.network).cut(id)
    }

    /// Ends node `id`'s partition.
    pub fn heal(&self, id: u32) -> Result<(), String> {
        lock(&self.network).heal(id)
    }

    pub fn url(&self, id: u32) -> String {
        format!("http://{}:{PUBLIC_PORT}", self.ip(id))
    }

    /// The tiny servers' start and exit lines.
    pub fn events_file(&self) -> PathBuf {
        self.dir.join("servers.events")
    }

    pub fn log(&self, id: u32) -> PathBuf {
        self.dir.join(format!("node{id}.log"))
    }

    fn config_path(&self, id: u32) -> PathBuf {
        self.dir.join(format!("node{id}.toml"))
    }

    fn write_config(&self, id: u32) -> anyhow::Result<()> {
        let s = |v: &str| toml::Value::String(v.to_owned()).to_string();
        let peers: Vec<String> = self
            .ids()
            .iter()
            .map(|p| {
                let ip = lock(&self.network).peer_ip(*p);
                s(&format!("{p}@{ip}:{CLUSTER_PORT}"))
            })
            .collect();
        let ip = self.ip(id);
        let data = self.dir.join(format!("node{id}"));
        let config = format!(
            "[hub]\nbind_url = \"http://{ip}:{PUBLIC_PORT}/\"\ndata_dir = {data}\n\n\
             [cluster]\nnode_id = {id}\nbind = \"{ip}:{CLUSTER_PORT}\"\npeers = [{peers}]\n\
             secret = {secret}\ninsecure = true\n\n\
             [authenticator]\nallow_all = true\n\n\
             [spawner]\ncmd = [{tiny}]\nip = \"{ip}\"\nstart_timeout = 20\nhttp_timeout = 10\n\
             stop_grace = 3\nenvironment = {{ TINY_EVENTS_FILE = {events} }}\n\n\
             [[services]]\nname = \"chaos\"\napi_token = {admin}\nadmin = true\n\n\
             [[roles]]\nname = \"chaos-reader\"\nscopes = [{scope}]\nusers = [{reader}]\n\n\
             [[groups]]\nname = {group}\n",
            data = s(&data.to_string_lossy()),
            peers = peers.join(", "),
            secret = s(SECRET),
            tiny = s(&self.tiny.to_string_lossy()),
            events = s(&self.events_file().to_string_lossy()),
            admin = s(ADMIN_TOKEN),
            scope = s(&format!("read:users!group={GRANT_GROUP}")),
            reader = s(READER),
            group = s(GRANT_GROUP),
        );
        std::fs::write(self.config_path(id), config)?;
        Ok(())
    }

    /// Starts node `id` (in its namespace, if any), its output appended to its log.
    pub fn start(&self, id: u32) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log(id))?;
        let mut command = lock(&self.network).command(id, &self.galilean);
        let child = command
            .args(["serve", "--config"])
            .arg(self.config_path(id))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        lock(&self.network).started(id, child.id());
        if let Some(mut old) = lock(&self.children).insert(id, child) {
            let _ = old.kill();
            let _ = old.wait();
        }
        Ok(())
    }

    fn pid(&self, id: u32) -> Option<Pid> {
        lock(&self.children)
            .get(&id)
            .map(|c| Pid::from_raw(c.id() as i32))
    }

    /// Sends `signal` to node `id`'s process.
    pub fn signal(&self, id: u32, signal: Signal) -> anyhow::Result<()> {
        let pid = self
            .pid(id)
            .ok_or_else(|| anyhow::anyhow!("node {id} is not running"))?;
        kill(pid, signal).map_err(|e| anyhow::anyhow!("cannot {signal} node {id}: {e}"))
    }

    /// kill -9 of node `id`, reaped.
    pub fn kill9(&self, id: u32) -> anyhow::Result<()> {
        self.signal(id, Signal::SIGKILL)?;
        if let Some(mut c) = lock(&self.children).remove(&id) {
            let _ = c.wait();
        }
        Ok(())
    }

    /// SIGTERM to node `id`, then waits (up to 20 s, then SIGKILL) for it to exit.
    pub async fn terminate(&self, id: u32) -> anyhow::Result<()> {
        self.signal(id, Signal::SIGCONT).ok();
        self.signal(id, Signal::SIGTERM)?;
        for _ in 0..200 {
            let exited = lock(&self.children)
                .get_mut(&id)
                .is_none_or(|c| c.try_wait().ok().flatten().is_some());
            if exited {
                lock(&self.children).remove(&id);
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.kill9(id)
    }

    pub fn running(&self, id: u32) -> bool {
        lock(&self.children).contains_key(&id)
    }

    pub async fn healthy(&self, id: u32) -> bool {
        self.get(id, "/hub/health").await == Ok(200)
    }

    /// The status of `GET path` on node `id`'s public port, or why there is none.
    pub async fn get(&self, id: u32, path: &str) -> Result<u16, String> {
        self.http
            .get(format!("{}{path}", self.url(id)))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .map_err(|e| e.to_string())
    }

    /// A document from node `id`'s cluster port: `status` or `state`.
    pub async fn document(&self, id: u32, name: &str) -> Option<Value> {
        let r = self
            .http
            .post(format!("http://{}:{CLUSTER_PORT}/raft/{name}", self.ip(id)))
            .header("x-galilean-cluster-secret", SECRET)
            .send()
            .await
            .ok()?;
        if !r.status().is_success() {
            return None;
        }
        r.json().await.ok()
    }

    /// The leader as the first node that answers reports it.
    pub async fn leader(&self) -> Option<u32> {
        for id in self.ids() {
            if let Some(doc) = self.document(id, "status").await {
                if let Some(l) = doc["leader"].as_u64() {
                    return Some(l as u32);
                }
            }
        }
        None
    }

    /// Stops every node process, then every tiny server that recorded a start.
    pub fn stop_all(&self) {
        let mut children = std::mem::take(&mut *lock(&self.children));
        for c in children.values_mut() {
            let _ = kill(Pid::from_raw(c.id() as i32), Signal::SIGCONT);
            let _ = c.kill();
            let _ = c.wait();
        }
        let started = recorded_events(&self.events_file())
            .into_iter()
            .filter(|e| e.event == ServerEventKind::Start);
        for e in started {
            let pid = Pid::from_raw(e.pid as i32);
            if kill(pid, None).is_ok() && is_tiny_server(pid, &self.tiny) {
                let _ = kill(pid, Signal::SIGKILL);
            }
        }
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        self.stop_all();
        lock(&self.network).remove();
    }
}

/// The `start` and `exit` lines of the tiny servers' events file, in its order (lines
/// that are neither are skipped).
pub fn recorded_events(events: &Path) -> Vec<ServerEvent> {
    let text = std::fs::read_to_string(events).unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        // the default server's name is empty: `start alice  1234`
        let parts: Vec<&str> = line.split(' ').collect();
        let [kind, user, server, pid] = parts.as_slice() else {
            continue;
        };
        let event = match *kind {
            "start" => ServerEventKind::Start,
            "exit" => ServerEventKind::Exit,
            _ => continue,
        };
        let Ok(pid) = pid.parse() else { continue };
        out.push(ServerEvent {
            event,
            user: (*user).to_owned(),
            server: (*server).to_owned(),
            pid,
        });
    }
    out
}

/// Whether `pid` still runs the tiny server (and is not a reused pid). A server started
/// before the binary was rebuilt runs a deleted file, which `/proc` names with a
/// " (deleted)" suffix: still ours.
pub fn is_tiny_server(pid: Pid, tiny: &Path) -> bool {
    std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| {
        exe == tiny || exe.as_os_str() == format!("{} (deleted)", tiny.display()).as_str()
    })
}
