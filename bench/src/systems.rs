//! The systems under test, started for each round of a run and stopped after it:
//! Galilean (one node on the embedded store, the same from a baseline binary in an A/B
//! run, and three nodes on loopback replicating through raft) and JupyterHub 6.1.1 with
//! configurable-http-proxy 5.3.0 (from `bench/peer/install`'s prefix). The ceiling
//! servers are in `ceilings.rs`, what `/proc` tells of a process in `procfs.rs`.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::load::{once, Call};
use crate::ports::{free_port, free_port_pair};
use crate::procfs::{children_of, cpu_time_of, processes_under, rss_kib};

/// The admin service token each hub is configured with: used only to create users and
/// to have the hub generate the tokens the workloads use.
pub const BOOTSTRAP_TOKEN: &str = "bench-bootstrap-token-0123456789abcdef0123";
/// The password of every user (form logins).
pub const PASSWORD: &str = "bench-password";

/// Which system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    JupyterHub,
    Galilean,
    /// One node like [`Kind::Galilean`], started from another `galilean` binary
    /// (`--baseline`): the build an A/B run compares the current one with.
    GalileanBaseline,
    /// Three nodes on loopback, state replicated by raft; the load spread across them.
    GalileanCluster,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::JupyterHub => "JupyterHub 6.1.1 + CHP 5.3.0",
            Kind::Galilean => "Galilean (1 node)",
            Kind::GalileanBaseline => "Galilean baseline (1 node)",
            Kind::GalileanCluster => "Galilean (3 nodes)",
        }
    }

    pub fn short(self) -> &'static str {
        match self {
            Kind::JupyterHub => "jupyterhub",
            Kind::Galilean => "galilean",
            Kind::GalileanBaseline => "galilean-baseline",
            Kind::GalileanCluster => "galilean-3",
        }
    }

    /// Every system.
    pub const ALL: [Kind; 4] = [
        Kind::JupyterHub,
        Kind::Galilean,
        Kind::GalileanBaseline,
        Kind::GalileanCluster,
    ];

    pub fn is_galilean(self) -> bool {
        self != Kind::JupyterHub
    }

    /// "1 node", "3 nodes" (JupyterHub is one hub process and its proxy).
    pub fn nodes(self) -> &'static str {
        match self {
            Kind::GalileanCluster => "3 nodes",
            Kind::JupyterHub | Kind::Galilean | Kind::GalileanBaseline => "1 node",
        }
    }

    /// One Galilean node on the embedded store (either build).
    pub fn is_single_galilean(self) -> bool {
        matches!(self, Kind::Galilean | Kind::GalileanBaseline)
    }
}

/// Nodes in the [`Kind::GalileanCluster`].
pub const CLUSTER_NODES: usize = 3;
/// The secret the cluster's nodes share (loopback only).
const CLUSTER_SECRET: &str = "bench-cluster-secret-0123456789";

/// Where the binaries and the peer's installation are.
#[derive(Debug, Clone)]
pub struct Paths {
    pub galilean: PathBuf,
    /// The `galilean` binary of [`Kind::GalileanBaseline`] (`--baseline`), if any.
    pub baseline: Option<PathBuf>,
    pub tiny: PathBuf,
    /// `bench/peer/install`'s prefix (`venv/`, `node/`).
    pub peer: PathBuf,
    /// `bench/peer/jupyterhub_config.py`.
    pub peer_config: PathBuf,
    /// This program (it serves the bare-hyper ceiling itself).
    pub me: PathBuf,
}

/// A running hub: its public addresses and the processes to measure and stop.
pub struct Hub {
    pub kind: Kind,
    /// The first node's public address: set-up calls go there.
    pub addr: SocketAddr,
    /// Every node's public address (one but for the cluster); load is spread across
    /// them, connection `i` to node `i % n`.
    pub addrs: Vec<SocketAddr>,
    /// The processes whose memory is the system's (every node; hub and proxy for
    /// JupyterHub).
    pub pids: Vec<u32>,
    /// Whether it has the RBAC workloads' roles and groups ([`crate::rbac`]).
    pub rbac: bool,
    children: Vec<Process>,
    dir: tempfile::TempDir,
}

/// A process the hub is made of, and the file its stdout and stderr go to.
struct Process {
    child: Child,
    log: PathBuf,
}

/// The last lines of the log at `path` (the run's directory goes with the hub).
fn log_tail(path: &Path) -> String {
    const LINES: usize = 40;
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| format!("(unreadable: {e})"));
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LINES)..].join("\n")
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

impl Hub {
    /// Starts a `kind` hub; with `rbac`, configured with the RBAC workloads' roles and
    /// groups (left out otherwise, so that a baseline binary from before roles and groups
    /// still starts for the other workloads).
    pub async fn start(kind: Kind, paths: &Paths, rbac: bool) -> anyhow::Result<Hub> {
        match kind {
            Kind::Galilean | Kind::GalileanBaseline => Hub::galilean(kind, paths, rbac).await,
            Kind::JupyterHub => Hub::jupyterhub(paths, rbac).await,
            Kind::GalileanCluster => Hub::galilean_cluster(paths, rbac).await,
        }
    }

    /// The configuration every Galilean of the bench shares, `[cluster]` aside.
    fn galilean_config(paths: &Paths, dir: &Path, port: u16, node: &str, rbac: bool) -> String {
        let roles = if rbac {
            crate::rbac::galilean_toml()
        } else {
            String::new()
        };
        // cleanup_servers: the servers stop with the hub, as JupyterHub's do here
        format!(
            "[hub]\nbind_url = \"http://127.0.0.1:{port}/\"\ndata_dir = {data}\n\
             cleanup_servers = true\n\n\
             [authenticator]\nclass = \"dummy\"\nallow_all = true\npassword = {password}\n\n\
             [spawner]\ncmd = [{tiny}]\nstart_timeout = 60\nhttp_timeout = 60\n\
             home_dir_template = {home}\n\n\
             [[services]]\nname = \"bench\"\napi_token = {token}\nadmin = true\n{roles}",
            data = toml_str(&dir.join(format!("data{node}")).to_string_lossy()),
            password = toml_str(PASSWORD),
            tiny = toml_str(&paths.tiny.to_string_lossy()),
            home = toml_str(&dir.join("home/{username}").to_string_lossy()),
            token = toml_str(BOOTSTRAP_TOKEN),
        )
    }

    /// Starts `<binary> serve --config <dir>/<name>.toml` logging to `<name>.log`, at
    /// level `warn` unless `GALILEAN_BENCH_LOG` gives the nodes another `RUST_LOG` (to
    /// look into a run with `GALILEAN_BENCH_KEEP`).
    fn galilean_process(
        binary: &Path,
        dir: &Path,
        name: &str,
        config: String,
    ) -> anyhow::Result<Process> {
        let config_path = dir.join(format!("{name}.toml"));
        std::fs::write(&config_path, config)?;
        let log_path = dir.join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new(binary)
            .args(["serve", "--config"])
            .arg(&config_path)
            .env(
                "RUST_LOG",
                std::env::var("GALILEAN_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(Process {
            child,
            log: log_path,
        })
    }

    /// One node, from the current binary or (for [`Kind::GalileanBaseline`]) the
    /// baseline's, with the same settings and the same `tiny_server` either way.
    async fn galilean(kind: Kind, paths: &Paths, rbac: bool) -> anyhow::Result<Hub> {
        let binary = match kind {
            Kind::GalileanBaseline => paths
                .baseline
                .as_deref()
                .context("the baseline system needs --baseline PATH")?,
            _ => &paths.galilean,
        };
        let dir = hub_dir()?;
        let port = free_port()?;
        let config = Hub::galilean_config(paths, dir.path(), port, "", rbac);
        let process = Hub::galilean_process(binary, dir.path(), "galilean", config)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut hub = Hub {
            kind,
            addr,
            addrs: vec![addr],
            pids: vec![process.child.id()],
            rbac,
            children: vec![process],
            dir,
        };
        hub.wait_ready().await?;
        Ok(hub)
    }

    /// [`CLUSTER_NODES`] nodes on 127.0.0.1, each with its public port and its cluster
    /// port (the actor port after it), formed from the same peer list.
    async fn galilean_cluster(paths: &Paths, rbac: bool) -> anyhow::Result<Hub> {
        let dir = hub_dir()?;
        let mut ports = Vec::new();
        for _ in 0..CLUSTER_NODES {
            ports.push((free_port()?, free_port_pair()?));
        }
        let peers: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, cluster))| toml_str(&format!("{}@127.0.0.1:{cluster}", i + 1)))
            .collect();
        let mut hub = Hub {
            kind: Kind::GalileanCluster,
            addr: SocketAddr::from(([127, 0, 0, 1], ports[0].0)),
            addrs: Vec::new(),
            pids: Vec::new(),
            rbac,
            children: Vec::new(),
            dir,
        };
        for (i, (public, cluster)) in ports.iter().enumerate() {
            let id = i + 1;
            let config = format!(
                "{}\n[cluster]\nnode_id = {id}\nbind = \"127.0.0.1:{cluster}\"\n\
                 peers = [{peers}]\nsecret = {secret}\n",
                Hub::galilean_config(paths, hub.dir.path(), *public, &id.to_string(), rbac),
                peers = peers.join(", "),
                secret = toml_str(CLUSTER_SECRET),
            );
            let process = Hub::galilean_process(
                &paths.galilean,
                hub.dir.path(),
                &format!("node{id}"),
                config,
            )?;
            hub.addrs.push(SocketAddr::from(([127, 0, 0, 1], *public)));
            hub.pids.push(process.child.id());
            hub.children.push(process);
        }
        hub.wait_ready().await?;
        Ok(hub)
    }

    async fn jupyterhub(paths: &Paths, rbac: bool) -> anyhow::Result<Hub> {
        let dir = hub_dir()?;
        let port = free_port()?;
        let jupyterhub = paths.peer.join("venv/bin/jupyterhub");
        let chp = paths
            .peer
            .join("node/node_modules/.bin/configurable-http-proxy");
        anyhow::ensure!(
            jupyterhub.exists() && chp.exists(),
            "JupyterHub or configurable-http-proxy is missing under {}: run bench/peer/install",
            paths.peer.display()
        );
        let log_path = dir.path().join("jupyterhub.log");
        let log = std::fs::File::create(&log_path)?;
        let venv_bin = paths.peer.join("venv/bin");
        let path = format!(
            "{}:{}",
            venv_bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let (roles, groups) = if rbac {
            crate::rbac::jupyterhub_json()
        } else {
            ("[]".to_owned(), "{}".to_owned())
        };
        let child = Command::new(&jupyterhub)
            .arg("-f")
            .arg(&paths.peer_config)
            .current_dir(dir.path())
            .env("PATH", path)
            .env("BENCH_PORT", port.to_string())
            .env("BENCH_HUB_PORT", free_port()?.to_string())
            .env("BENCH_API_PORT", free_port()?.to_string())
            .env("BENCH_STATE_DIR", dir.path())
            .env("BENCH_TINY_SERVER", &paths.tiny)
            .env("BENCH_CHP", &chp)
            .env("BENCH_SERVICE_TOKEN", BOOTSTRAP_TOKEN)
            .env("BENCH_PASSWORD", PASSWORD)
            .env("BENCH_PROXY_TOKEN", "bench-proxy-token-0123456789abcdef")
            .env("BENCH_ROLES", roles)
            .env("BENCH_GROUPS", groups)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", jupyterhub.display()))?;
        let pid = child.id();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut hub = Hub {
            kind: Kind::JupyterHub,
            addr,
            addrs: vec![addr],
            pids: vec![pid],
            rbac,
            children: vec![Process {
                child,
                log: log_path,
            }],
            dir,
        };
        hub.wait_ready().await?;
        // the proxy: the hub's child node process
        hub.pids.extend(children_of(pid));
        Ok(hub)
    }

    /// Waits until every node answers its API with the bootstrap token.
    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let call = Call::get("/hub/api/user").token(BOOTSTRAP_TOKEN);
        for i in 0..self.addrs.len() {
            loop {
                match once(self.addrs[i], &call).await {
                    Ok(_) => break,
                    Err(e) if Instant::now() > deadline => {
                        anyhow::bail!("{} did not come up: {e}", self.kind.name())
                    }
                    Err(_) => {}
                }
                for p in &mut self.children {
                    if let Some(status) = p.child.try_wait()? {
                        anyhow::bail!(
                            "{} exited at start ({status}); the end of {}:\n{}",
                            self.kind.name(),
                            p.log.display(),
                            log_tail(&p.log)
                        );
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    /// Waits until `call` succeeds on every node (a change made through one node has
    /// reached the others' replicas, which follow by milliseconds).
    pub async fn settle(&self, call: &Call) -> anyhow::Result<()> {
        self.settle_until(call, |_| true).await
    }

    /// Waits until `call` succeeds on every node with a body that `ok` accepts.
    pub async fn settle_until(
        &self,
        call: &Call,
        ok: impl Fn(&[u8]) -> bool,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        for addr in &self.addrs {
            loop {
                let e = match once(*addr, call).await {
                    Ok(body) if ok(&body) => break,
                    Ok(body) => format!(
                        "an unexpected answer: {}",
                        String::from_utf8_lossy(&body[..body.len().min(300)])
                    ),
                    Err(e) => e,
                };
                if Instant::now() > deadline {
                    anyhow::bail!("{}: {addr} never answered: {e}", self.kind.name());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(())
    }

    /// The resident memory of the system's processes, in MiB.
    pub fn rss_mib(&self) -> f64 {
        self.pids.iter().map(|p| rss_kib(*p)).sum::<u64>() as f64 / 1024.0
    }

    /// CPU time (user and system) the hub's processes have used so far.
    pub fn cpu_time(&self) -> Duration {
        cpu_time_of(&self.pids)
    }

    /// The signal target of `child`: JupyterHub's process group (its proxy and servers
    /// with it), a Galilean node itself (it stops its servers).
    fn target(&self, child: &Child) -> Pid {
        let pid = child.id() as i32;
        match self.kind {
            Kind::JupyterHub => Pid::from_raw(-pid),
            Kind::Galilean | Kind::GalileanBaseline | Kind::GalileanCluster => Pid::from_raw(pid),
        }
    }

    /// Stops the hub: every node at once, each given 10 s before SIGKILL. Servers that
    /// outlive their hub are killed and counted on stderr: a whole cluster shutting down
    /// at once can leave one, and so can a storm cut short (spawns queued when it ended
    /// launch while the hub stops). The bench must not leave processes behind: a server
    /// is any process working in the hub's directory (both hubs put homes there).
    pub async fn stop(mut self) {
        for p in &self.children {
            let _ = kill(self.target(&p.child), Signal::SIGTERM);
        }
        for _ in 0..100 {
            if self
                .children
                .iter_mut()
                .all(|p| p.child.try_wait().ok().flatten().is_some())
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let children = std::mem::take(&mut self.children);
        for mut p in children {
            let _ = kill(self.target(&p.child), Signal::SIGKILL);
            let _ = p.child.wait();
        }
        let left = processes_under(self.dir.path());
        if !left.is_empty() {
            eprintln!(
                "  {}: {} server process(es) outlived the hub; killed",
                self.kind.name(),
                left.len()
            );
            for p in left {
                // a server leads its own process group
                let _ = kill(Pid::from_raw(-(p as i32)), Signal::SIGKILL);
                let _ = kill(Pid::from_raw(p as i32), Signal::SIGKILL);
            }
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        for Process { child: c, .. } in &mut self.children {
            if c.try_wait().ok().flatten().is_none() {
                let pid = c.id() as i32;
                let _ = kill(Pid::from_raw(-pid), Signal::SIGKILL);
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// A hub's directory (configs, data, logs): removed with the hub, unless
/// `GALILEAN_BENCH_KEEP` is set, for looking into a failed run's logs afterwards.
pub fn hub_dir() -> anyhow::Result<tempfile::TempDir> {
    let mut dir = tempfile::Builder::new()
        .prefix("galilean-bench-")
        .tempdir()?;
    if std::env::var_os("GALILEAN_BENCH_KEEP").is_some() {
        dir.disable_cleanup(true);
        eprintln!("  keeping {}", dir.path().display());
    }
    Ok(dir)
}

/// The repository's root (this crate's parent).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}
