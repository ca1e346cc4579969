//! The systems under test, each started fresh for a workload and stopped after it:
//! Galilean (one node on the embedded store), JupyterHub 6.1.1 with
//! configurable-http-proxy 5.3.0 (from `bench/peer/install`'s prefix), and the ceiling
//! servers (a bare hyper server, and the tiny single-user server hit directly).

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::load::{once, Call};

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
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::JupyterHub => "JupyterHub 6.1.1 + CHP 5.3.0",
            Kind::Galilean => "Galilean (1 node)",
        }
    }

    pub fn short(self) -> &'static str {
        match self {
            Kind::JupyterHub => "jupyterhub",
            Kind::Galilean => "galilean",
        }
    }
}

/// Where the binaries and the peer's installation are.
#[derive(Debug, Clone)]
pub struct Paths {
    pub galilean: PathBuf,
    pub tiny: PathBuf,
    /// `bench/peer/install`'s prefix (`venv/`, `node/`).
    pub peer: PathBuf,
    /// `bench/peer/jupyterhub_config.py`.
    pub peer_config: PathBuf,
    /// This program (it serves the bare-hyper ceiling itself).
    pub me: PathBuf,
}

/// A running hub: its public address and the processes to measure and stop.
pub struct Hub {
    pub kind: Kind,
    pub addr: SocketAddr,
    /// The processes whose memory is the system's (hub, and proxy for JupyterHub).
    pub pids: Vec<u32>,
    child: Child,
    _dir: tempfile::TempDir,
}

/// A free port on 127.0.0.1 (a moment ago).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

impl Hub {
    pub async fn start(kind: Kind, paths: &Paths) -> anyhow::Result<Hub> {
        match kind {
            Kind::Galilean => Hub::galilean(paths).await,
            Kind::JupyterHub => Hub::jupyterhub(paths).await,
        }
    }

    async fn galilean(paths: &Paths) -> anyhow::Result<Hub> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        // cleanup_servers: the servers stop with the hub, as JupyterHub's do here
        let config = format!(
            "[hub]\nbind_url = \"http://127.0.0.1:{port}/\"\ndata_dir = {data}\n\
             cleanup_servers = true\n\n\
             [authenticator]\nclass = \"dummy\"\nallow_all = true\npassword = {password}\n\n\
             [spawner]\ncmd = [{tiny}]\nstart_timeout = 60\nhttp_timeout = 60\n\
             home_dir_template = {home}\n\n\
             [[services]]\nname = \"bench\"\napi_token = {token}\nadmin = true\n",
            data = toml_str(&dir.path().join("data").to_string_lossy()),
            password = toml_str(PASSWORD),
            tiny = toml_str(&paths.tiny.to_string_lossy()),
            home = toml_str(&dir.path().join("home/{username}").to_string_lossy()),
            token = toml_str(BOOTSTRAP_TOKEN),
        );
        let config_path = dir.path().join("galilean.toml");
        std::fs::write(&config_path, config)?;
        let log = std::fs::File::create(dir.path().join("galilean.log"))?;
        let child = Command::new(&paths.galilean)
            .args(["serve", "--config"])
            .arg(&config_path)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", paths.galilean.display()))?;
        let pid = child.id();
        let mut hub = Hub {
            kind: Kind::Galilean,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            pids: vec![pid],
            child,
            _dir: dir,
        };
        hub.wait_ready().await?;
        Ok(hub)
    }

    async fn jupyterhub(paths: &Paths) -> anyhow::Result<Hub> {
        let dir = tempfile::tempdir()?;
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
        let log = std::fs::File::create(dir.path().join("jupyterhub.log"))?;
        let venv_bin = paths.peer.join("venv/bin");
        let path = format!(
            "{}:{}",
            venv_bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
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
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", jupyterhub.display()))?;
        let pid = child.id();
        let mut hub = Hub {
            kind: Kind::JupyterHub,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            pids: vec![pid],
            child,
            _dir: dir,
        };
        hub.wait_ready().await?;
        // the proxy: the hub's child node process
        hub.pids.extend(children_of(pid));
        Ok(hub)
    }

    /// Waits until the hub answers its API with the bootstrap token.
    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let call = Call::get("/hub/api/user").token(BOOTSTRAP_TOKEN);
        loop {
            match once(self.addr, &call).await {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() > deadline => {
                    anyhow::bail!("{} did not come up: {e}", self.kind.name())
                }
                Err(_) => {}
            }
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("{} exited at start ({status})", self.kind.name());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The resident memory of the system's processes, in MiB.
    pub fn rss_mib(&self) -> f64 {
        self.pids.iter().map(|p| rss_kib(*p)).sum::<u64>() as f64 / 1024.0
    }

    /// Stops the hub (and, for JupyterHub, its proxy and servers: its process group).
    pub async fn stop(mut self) {
        let pid = self.child.id() as i32;
        let target = match self.kind {
            Kind::JupyterHub => Pid::from_raw(-pid),
            Kind::Galilean => Pid::from_raw(pid),
        };
        let _ = kill(target, Signal::SIGTERM);
        for _ in 0..100 {
            if self.child.try_wait().ok().flatten().is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = kill(target, Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let pid = self.child.id() as i32;
            let _ = kill(Pid::from_raw(-pid), Signal::SIGKILL);
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A process's resident set, in KiB (0 when it is gone).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The pids whose parent is `pid`.
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| {
                s.rsplit_once(") ")
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                    .and_then(|pp| pp.parse::<u32>().ok())
                    == Some(pid)
            })
        })
        .collect()
}

/// A process the bench started for a ceiling (killed when dropped).
pub struct Ceiling {
    pub addr: SocketAddr,
    child: Child,
}

impl Ceiling {
    /// This program's bare hyper server answering a fixed body.
    pub async fn hyper(paths: &Paths) -> anyhow::Result<Ceiling> {
        let port = free_port()?;
        let child = Command::new(&paths.me)
            .args(["ceiling-server", "--port", &port.to_string()])
            .stdin(Stdio::null())
            .spawn()?;
        Ceiling::wait(child, port, "/").await
    }

    /// The tiny single-user server, alone, under the prefix `prefix`.
    pub async fn tiny(paths: &Paths, prefix: &str) -> anyhow::Result<Ceiling> {
        let port = free_port()?;
        let child = Command::new(&paths.tiny)
            .env(
                "JUPYTERHUB_SERVICE_URL",
                format!("http://127.0.0.1:{port}{prefix}"),
            )
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ceiling::wait(child, port, &format!("{prefix}api")).await
    }

    async fn wait(child: Child, port: u16, probe: &str) -> anyhow::Result<Ceiling> {
        let c = Ceiling {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child,
        };
        for _ in 0..100 {
            if once(c.addr, &Call::get(probe)).await.is_ok() {
                return Ok(c);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("the ceiling server on port {port} did not come up")
    }
}

impl Drop for Ceiling {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bare hyper server of [`Ceiling::hyper`]: `GET` anything answers a fixed 2-byte
/// JSON body, on a multi-threaded runtime.
pub async fn serve_ceiling(port: u16) -> anyhow::Result<()> {
    use http_body_util::Full;
    use hyper::service::service_fn;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(|_req| async {
                Ok::<_, std::convert::Infallible>(
                    http::Response::builder()
                        .header("content-type", "application/json")
                        .body(Full::new(bytes::Bytes::from_static(b"{}")))
                        .unwrap_or_default(),
                )
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The repository's root (this crate's parent).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}
