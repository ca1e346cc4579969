//! The `local-process` spawner: runs the server as the hub's own OS user, in its own
//! session and process group, detached from the hub (stdin from /dev/null, output to a
//! per-server log file, no parent-death signal), so that it outlives a hub restart.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use galilean_proto::records::SpawnerState;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{PollStatus, SpawnError, SpawnRequest, Spawner, Started};

#[derive(Default)]
pub struct LocalProcessSpawner {
    /// Exit codes of the children this process started, recorded by their reapers.
    exits: Arc<Mutex<HashMap<i32, Option<i32>>>>,
}

impl LocalProcessSpawner {
    pub fn new() -> LocalProcessSpawner {
        LocalProcessSpawner::default()
    }
}

/// Field 22 (start time) and field 3 (state) of `/proc/<pid>/stat`.
fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

fn alive(state: &SpawnerState) -> bool {
    let Some(pid) = state.pid else { return false };
    match proc_stat(pid) {
        Some((s, start)) => s != 'Z' && s != 'X' && state.start_ticks.is_none_or(|t| t == start),
        None => false,
    }
}

fn free_port() -> Result<u16, SpawnError> {
    let l =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| SpawnError::Io(e.to_string()))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| SpawnError::Io(e.to_string()))
}

#[async_trait]
impl Spawner for LocalProcessSpawner {
    async fn start(&self, req: SpawnRequest) -> Result<Started, SpawnError> {
        let argv0 = req.argv.first().cloned().ok_or(SpawnError::NoCommand)?;
        let port = free_port()?;
        let url = format!("http://127.0.0.1:{port}");
        std::fs::create_dir_all(&req.home_dir)
            .map_err(|e| SpawnError::Io(format!("{}: {e}", req.home_dir.display())))?;
        if let Some(dir) = req.log_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| SpawnError::Io(e.to_string()))?;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&req.log_path)
            .map_err(|e| SpawnError::Io(format!("{}: {e}", req.log_path.display())))?;
        let log2 = log.try_clone().map_err(|e| SpawnError::Io(e.to_string()))?;
        let mut cmd = tokio::process::Command::new(&argv0);
        cmd.args(&req.argv[1..])
            .env_clear()
            .envs(&req.env)
            .env("JUPYTERHUB_SERVICE_URL", format!("{url}{}", req.prefix))
            .current_dir(&req.home_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .kill_on_drop(false);
        #[allow(unsafe_code)]
        // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                nix::unistd::setsid()
                    .map(|_| ())
                    .map_err(std::io::Error::from)
            });
        }
        let mut child = cmd.spawn().map_err(|e| SpawnError::Exec {
            argv0: argv0.clone(),
            reason: e.to_string(),
        })?;
        let pid = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .ok_or_else(|| SpawnError::Io("the process has no pid".into()))?;
        let start_ticks = proc_stat(pid).map(|(_, t)| t);
        let exits = self.exits.clone();
        tokio::spawn(async move {
            let code = child.wait().await.ok().and_then(|s| s.code());
            if let Ok(mut m) = exits.lock() {
                m.insert(pid, code);
            }
        });
        tracing::info!(user = %req.user, server = %req.server, pid, %url, "started server process");
        Ok(Started {
            url,
            state: SpawnerState {
                pid: Some(pid),
                host: std::fs::read_to_string("/etc/hostname")
                    .map(|h| h.trim().to_owned())
                    .unwrap_or_else(|_| "localhost".into()),
                log_path: Some(req.log_path.to_string_lossy().into_owned()),
                node: req.node,
                start_ticks,
            },
        })
    }

    async fn poll(&self, state: &SpawnerState) -> PollStatus {
        if let Some(pid) = state.pid {
            if let Some(code) = self.exits.lock().ok().and_then(|m| m.get(&pid).copied()) {
                return PollStatus::Exited(code);
            }
        }
        if alive(state) {
            PollStatus::Running
        } else {
            PollStatus::Exited(None)
        }
    }

    async fn stop(&self, state: &SpawnerState, grace: Duration) -> Result<(), SpawnError> {
        let Some(pid) = state.pid else { return Ok(()) };
        if !alive(state) && group_gone(pid) {
            return Ok(());
        }
        let group = Pid::from_raw(-pid);
        let _ = kill(group, Signal::SIGTERM);
        if wait_gone(pid, grace).await {
            return Ok(());
        }
        tracing::warn!(pid, "server ignored SIGTERM; sending SIGKILL");
        let _ = kill(group, Signal::SIGKILL);
        wait_gone(pid, Duration::from_secs(5)).await;
        Ok(())
    }
}

fn group_gone(pid: i32) -> bool {
    // only zombies may remain of a group once its members have exited
    let members_alive = std::fs::read_dir("/proc").ok().is_some_and(|dir| {
        dir.flatten().any(|e| {
            let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                return false;
            };
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .is_some_and(|t| {
                    let Some(i) = t.rfind(')') else { return false };
                    let f: Vec<&str> = t[i + 1..].split_whitespace().collect();
                    f.get(2).and_then(|g| g.parse::<i32>().ok()) == Some(pid)
                        && f.first() != Some(&"Z")
                })
        })
    });
    !members_alive
}

async fn wait_gone(pid: i32, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if group_gone(pid) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The last lines of a log file (at most `max_bytes` from its end), for failure
/// messages.
pub fn tail_log(path: &Path, max_lines: usize, max_bytes: usize) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(max_bytes as u64);
    if f.seek(SeekFrom::Start(start)).is_err() {
        return String::new();
    }
    let mut buf = Vec::new();
    let _ = f.take(max_bytes as u64).read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(max_lines)..].join("\n")
}
