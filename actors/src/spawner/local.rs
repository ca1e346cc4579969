//! The `local-process` spawner: runs each single-user server as the hub's own OS user,
//! as the leader of a new session and process group, detached from the hub: stdin from
//! `/dev/null`, stdout and stderr appended to a per-server log file, no parent-death
//! signal and no pipe the server depends on. A server therefore outlives the hub, and a
//! restarted hub (or another node on the same host) polls, re-adopts and stops it from
//! the persisted [`SpawnerState`] alone.
//!
//! The processes this hub started are reaped by a background task each, which records
//! the exit status: zombies never accumulate and `poll` reports the exit code at once.
//! A pid is only trusted together with its start time (`/proc/<pid>/stat` field 22), so
//! a recycled pid is never reported as the server nor signalled.
//!
//! Only processes on this host are seen: `poll` reads this host's `/proc`, and `stop`
//! refuses a state recorded on another host (by its host name).
//!
//! Linux only: liveness and start times come from `/proc`.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use galilean_proto::records::SpawnerState;
use nix::sys::signal::Signal;

use crate::spawner::groups::{group_alive, may_signal_group, signal_group, wait_gone};
use crate::spawner::launch::{self, Launch};
use crate::spawner::ports::{self, Ports};
use crate::spawner::procfs::{find_launched, host_name, leader, read_stat, Leader};
use crate::spawner::{PollStatus, SpawnError, SpawnRequest, Spawner, Started};

/// How long `stop` waits for the group to vanish after SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// How long the exit status of a reaped child is remembered for `poll`; after that
/// `poll` still reports the exit, without its code.
const EXIT_MEMORY: Duration = Duration::from_secs(600);
/// How long `poll` waits for the reaper when it finds its own child a zombie, so that
/// the exit code is reported rather than `None`.
const REAP_WAIT: Duration = Duration::from_millis(200);

/// Runs servers as local processes; see the module documentation.
#[derive(Debug)]
pub struct LocalProcessSpawner {
    /// Children this process started, by pid, as their reapers last saw them.
    children: Arc<Mutex<HashMap<i32, Child>>>,
    /// The address servers listen on and are reached at.
    ip: std::net::IpAddr,
    /// Where their ports come from.
    ports: Arc<Ports>,
}

impl Default for LocalProcessSpawner {
    fn default() -> LocalProcessSpawner {
        LocalProcessSpawner::listening_on(std::net::Ipv4Addr::LOCALHOST.into())
    }
}

#[derive(Debug, Clone, Copy)]
struct Child {
    start_ticks: Option<u64>,
    exit: Option<Exit>,
}

#[derive(Debug, Clone, Copy)]
struct Exit {
    code: Option<i32>,
    at: Instant,
}

impl LocalProcessSpawner {
    /// Servers on loopback.
    pub fn new() -> LocalProcessSpawner {
        LocalProcessSpawner::default()
    }

    /// Servers listening on `ip` (one of this host's addresses).
    pub fn listening_on(ip: std::net::IpAddr) -> LocalProcessSpawner {
        LocalProcessSpawner {
            children: Arc::default(),
            ip,
            ports: Arc::new(Ports::new()),
        }
    }

    fn children(&self) -> MutexGuard<'_, HashMap<i32, Child>> {
        lock(&self.children)
    }

    /// What the reaper knows of the process described by `state`, if it is our child.
    fn child(&self, state: &SpawnerState) -> Option<Child> {
        let pid = state.pid?;
        let child = *self.children().get(&pid)?;
        let same = state.start_ticks.is_none() || child.start_ticks == state.start_ticks;
        same.then_some(child)
    }

    /// Waits (briefly) until the reaper has recorded the exit of `state`'s process.
    async fn reaped_exit(&self, state: &SpawnerState) -> Option<Exit> {
        let deadline = Instant::now() + REAP_WAIT;
        loop {
            if let Some(exit) = self.child(state)?.exit {
                return Some(exit);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // the map stays consistent even if a holder panicked: every update is one insert
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[async_trait]
impl Spawner for LocalProcessSpawner {
    async fn start(&self, req: SpawnRequest) -> Result<Started, SpawnError> {
        let argv0 = req.argv.first().cloned().ok_or(SpawnError::NoCommand)?;
        let port = self
            .ports
            .pick(self.ip)
            .map_err(|e| SpawnError::Io(format!("choosing a port: {e}")))?;
        let url = match self.ip {
            std::net::IpAddr::V4(ip) => format!("http://{ip}:{port}"),
            std::net::IpAddr::V6(ip) => format!("http://[{ip}]:{port}"),
        };
        std::fs::create_dir_all(&req.home_dir)
            .map_err(|e| SpawnError::Io(format!("creating {}: {e}", req.home_dir.display())))?;
        if let Some(dir) = req.log_path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| SpawnError::Io(format!("creating {}: {e}", dir.display())))?;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&req.log_path)
            .map_err(|e| SpawnError::Io(format!("opening {}: {e}", req.log_path.display())))?;

        let mut env = req.env.clone();
        env.insert(
            "JUPYTERHUB_SERVICE_URL".into(),
            format!("{url}{}", req.prefix),
        );
        let launch = Launch {
            argv: &req.argv,
            env: &env,
            dir: &req.home_dir,
            output: &log,
        };
        // the check runs here, with nothing between it and the launch that waits
        let pid = ports::forking(|| {
            req.may_launch.check().map_err(SpawnError::NotLaunched)?;
            launch::spawn(&launch).map_err(|e| SpawnError::Exec {
                reason: exec_failure(&argv0, &e),
                argv0: argv0.clone(),
            })
        })?;
        // The child cannot be reaped before `wait` below runs, so its /proc entry exists
        // now (at worst as a zombie).
        let start_ticks = read_stat(pid).map(|s| s.start_ticks);
        {
            let mut children = self.children();
            children.retain(|_, c| c.exit.is_none_or(|e| e.at.elapsed() < EXIT_MEMORY));
            // a remembered exit under a recycled pid is replaced here
            children.insert(
                pid,
                Child {
                    start_ticks,
                    exit: None,
                },
            );
        }
        let children = self.children.clone();
        let (user, server) = (req.user.clone(), req.server.clone());
        tokio::spawn(async move {
            let ended = launch::wait(pid).await;
            let code = ended.as_ref().ok().and_then(|e| e.code);
            match &ended {
                Ok(e) => {
                    tracing::info!(%user, %server, pid, code, signal = e.signal, "server process exited");
                }
                Err(e) => {
                    tracing::warn!(%user, %server, pid, error = %e, "waiting for a server process")
                }
            }
            lock(&children).insert(
                pid,
                Child {
                    start_ticks,
                    exit: Some(Exit {
                        code,
                        at: Instant::now(),
                    }),
                },
            );
        });
        tracing::info!(user = %req.user, server = %req.server, pid, %url, "started server process");
        let state = SpawnerState {
            pid: Some(pid),
            host: host_name(),
            log_path: Some(req.log_path.to_string_lossy().into_owned()),
            node: req.node,
            start_ticks,
        };
        // this node may have been stopped between the check and the launch
        if let Err(why) = req.may_launch.check() {
            tracing::warn!(user = %req.user, server = %req.server, pid, "stopping a server launched just as this node lost it: {why}");
            if let Err(e) = self.stop(&state, Duration::ZERO).await {
                tracing::error!(pid, "stopping a server launched too late: {e}");
            }
            return Err(SpawnError::NotLaunched(why));
        }
        Ok(Started { url, state })
    }

    async fn poll(&self, state: &SpawnerState) -> PollStatus {
        let Some(pid) = state.pid else {
            return PollStatus::Exited(None);
        };
        if let Some(exit) = self.child(state).and_then(|c| c.exit) {
            return PollStatus::Exited(exit.code);
        }
        match leader(pid, state.start_ticks) {
            Leader::Running => PollStatus::Running,
            Leader::Recycled => PollStatus::Exited(None),
            Leader::Gone => PollStatus::Exited(self.reaped_exit(state).await.and_then(|e| e.code)),
        }
    }

    /// Scans this host's processes for a process group leader whose
    /// `JUPYTERHUB_API_TOKEN` hashes to `token_hash`.
    async fn find_unrecorded(&self, token_hash: &str) -> Option<SpawnerState> {
        let hash = token_hash.to_owned();
        tokio::task::spawn_blocking(move || find_launched(&hash))
            .await
            .ok()
            .flatten()
    }

    async fn stop(&self, state: &SpawnerState, grace: Duration) -> Result<(), SpawnError> {
        let Some(pid) = state.pid else { return Ok(()) };
        let here = host_name();
        if !state.host.is_empty() && state.host != here {
            // its pid means nothing here: never signal a local process for it
            return Err(SpawnError::Io(format!(
                "the server runs on host {:?}, not on this one ({here:?})",
                state.host
            )));
        }
        if !may_signal_group(pid) {
            tracing::warn!(pid, "refusing to signal this process group: not a server's");
            return Ok(());
        }
        let ticks = state.start_ticks;
        match leader(pid, ticks) {
            Leader::Recycled => {
                tracing::info!(
                    pid,
                    "the server's pid now belongs to another process; nothing to stop"
                );
                return Ok(());
            }
            Leader::Gone if !group_alive(pid, ticks).await => return Ok(()),
            Leader::Gone | Leader::Running => {}
        }
        signal_group(pid, Signal::SIGTERM);
        if wait_gone(pid, ticks, grace).await {
            tracing::info!(pid, "server process group stopped");
            return Ok(());
        }
        tracing::warn!(
            pid,
            grace_ms = grace.as_millis() as u64,
            "server still running after SIGTERM; sending SIGKILL"
        );
        signal_group(pid, Signal::SIGKILL);
        if wait_gone(pid, ticks, KILL_WAIT).await {
            return Ok(());
        }
        Err(SpawnError::Io(format!(
            "process group {pid} still present {} s after SIGKILL",
            KILL_WAIT.as_secs()
        )))
    }
}

fn exec_failure(argv0: &str, e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound if !argv0.contains('/') => {
            format!("command not found on the server's PATH ({e})")
        }
        io::ErrorKind::NotFound => format!("no such file ({e})"),
        io::ErrorKind::PermissionDenied => format!("permission denied, not executable? ({e})"),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    use galilean_storage::testing::eventually;

    use super::*;
    use crate::spawner::logs::tail_log;

    fn request(dir: &Path, argv: &[&str]) -> SpawnRequest {
        let env: BTreeMap<String, String> = [
            ("PATH", "/usr/local/bin:/usr/bin:/bin"),
            ("JUPYTERHUB_USER", "alice"),
            ("WITH SPACE", "a b\nc"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        SpawnRequest {
            user: "alice".into(),
            server: String::new(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env,
            prefix: "/user/alice/".into(),
            home_dir: dir.join("home/alice"),
            log_path: dir.join("logs/alice/server.log"),
            node: 7,
            may_launch: Default::default(),
        }
    }

    /// How long the tests wait for a process to get somewhere.
    const WAIT: Duration = Duration::from_secs(10);

    /// `/proc/<pid>/environ` of a process just spawned. posix_spawn returns once the
    /// child's exec has replaced its memory, a moment before the kernel records where the
    /// new environment lies: until then the file reads empty.
    async fn environ_of(pid: i32) -> Vec<u8> {
        let what = format!("process {pid} shows its environment");
        eventually(what, Duration::from_secs(5), || async {
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
            (!environ.is_empty()).then_some(environ)
        })
        .await
    }

    /// Fields 4 to 6 of `/proc/<pid>/stat`: ppid, pgrp, session.
    fn family(pid: i32) -> (i32, i32, i32) {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let f: Vec<i32> = text[text.rfind(')').unwrap() + 1..]
            .split_whitespace()
            .skip(1)
            .take(3)
            .map(|x| x.parse().unwrap())
            .collect();
        (f[0], f[1], f[2])
    }

    /// Live processes of process group `pgrp`.
    fn members(pgrp: i32) -> Vec<i32> {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&p| read_stat(p).is_some_and(|s| s.pgrp == pgrp && !s.is_dead()))
            .collect()
    }

    fn state_of(started: &Started) -> (i32, SpawnerState) {
        (started.state.pid.unwrap(), started.state.clone())
    }

    /// The request's check is asked just before the launch and just after: refused
    /// before, nothing runs; refused after (the node was stopped during the launch), the
    /// process is stopped before `start` returns.
    #[tokio::test]
    async fn a_launch_the_check_refuses_leaves_nothing_running() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let dir = tempfile::tempdir().unwrap();
        for refused_at in [1, 2] {
            let spawner = LocalProcessSpawner::new();
            let token = format!("launch-check-{}-{refused_at}", std::process::id());
            let asked = Arc::new(AtomicUsize::new(0));
            let mut req = request(dir.path(), &["sleep", "600"]);
            req.env
                .insert(galilean_proto::env::API_TOKEN.to_owned(), token.clone());
            req.may_launch = crate::spawner::LaunchCheck::new({
                let asked = asked.clone();
                move || {
                    if asked.fetch_add(1, Ordering::SeqCst) + 1 >= refused_at {
                        Err("lost the server".into())
                    } else {
                        Ok(())
                    }
                }
            });
            match spawner.start(req).await {
                Err(SpawnError::NotLaunched(why)) => assert_eq!(why, "lost the server"),
                other => panic!("refused at check {refused_at}: {other:?}"),
            }
            assert_eq!(asked.load(Ordering::SeqCst), refused_at);
            // refused before the launch: no process was ever started
            assert_eq!(spawner.children().is_empty(), refused_at == 1);
            let hash = crate::secrets::sha256_hex(&token);
            assert_eq!(
                find_launched(&hash),
                None,
                "refused at check {refused_at}: a process runs"
            );
        }
    }

    #[tokio::test]
    async fn a_server_gets_exactly_its_environment_its_home_and_its_own_session() {
        let dir = tempfile::tempdir().unwrap();
        let spawner = LocalProcessSpawner::new();
        let req = request(dir.path(), &["sleep", "30"]);
        let started = spawner.start(req.clone()).await.unwrap();
        let (pid, state) = state_of(&started);

        assert!(started.url.starts_with("http://127.0.0.1:"));
        assert_eq!(state.node, 7);
        assert_eq!(state.host, host_name());
        assert_eq!(
            state.log_path.as_deref(),
            Some(req.log_path.to_str().unwrap())
        );
        assert_eq!(state.start_ticks, Some(read_stat(pid).unwrap().start_ticks));

        let environ = environ_of(pid).await;
        let mut got: Vec<&[u8]> = environ
            .split(|&b| b == 0)
            .filter(|v| !v.is_empty())
            .collect();
        got.sort();
        let service_url = format!("JUPYTERHUB_SERVICE_URL={}/user/alice/", started.url);
        let mut want: Vec<String> = req.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        want.push(service_url);
        want.sort();
        let want: Vec<&[u8]> = want.iter().map(|s| s.as_bytes()).collect();
        assert_eq!(got, want);

        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
        assert_eq!(cwd, req.home_dir.canonicalize().unwrap());
        let fd = |n: u32| std::fs::read_link(format!("/proc/{pid}/fd/{n}")).unwrap();
        assert_eq!(fd(0), PathBuf::from("/dev/null"));
        assert_eq!(fd(1), req.log_path.canonicalize().unwrap());
        assert_eq!(fd(2), req.log_path.canonicalize().unwrap());
        let (_, pgrp, session) = family(pid);
        assert_eq!(
            (pgrp, session),
            (pid, pid),
            "leads its own group and session"
        );

        assert_eq!(spawner.poll(&state).await, PollStatus::Running);
        spawner.stop(&state, Duration::from_secs(5)).await.unwrap();
        assert!(matches!(spawner.poll(&state).await, PollStatus::Exited(_)));
    }

    /// The hub runs with transparent huge pages off (node's main); its servers must not.
    #[tokio::test]
    async fn a_server_gets_transparent_huge_pages_back() {
        let thp = |pid: u32| {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .unwrap()
                .lines()
                .find_map(|l| l.strip_prefix("THP_enabled:").map(|v| v.trim().to_owned()))
                .unwrap()
        };
        nix::sys::prctl::set_thp_disable(true).unwrap();
        assert_eq!(thp(std::process::id()), "0");
        let dir = tempfile::tempdir().unwrap();
        let spawner = LocalProcessSpawner::new();
        let started = spawner
            .start(request(dir.path(), &["sleep", "30"]))
            .await
            .unwrap();
        let (pid, state) = state_of(&started);
        let child = thp(pid as u32);
        spawner.stop(&state, Duration::from_secs(5)).await.unwrap();
        assert_eq!(child, "1");
    }

    #[tokio::test]
    async fn a_server_listens_on_the_spawner_s_address() {
        let dir = tempfile::tempdir().unwrap();
        let spawner = LocalProcessSpawner::listening_on("127.0.0.2".parse().unwrap());
        let started = spawner
            .start(request(dir.path(), &["sleep", "30"]))
            .await
            .unwrap();
        let (pid, state) = state_of(&started);
        assert!(
            started.url.starts_with("http://127.0.0.2:"),
            "{}",
            started.url
        );
        let environ = String::from_utf8_lossy(&environ_of(pid).await).into_owned();
        assert!(environ.contains(&format!("JUPYTERHUB_SERVICE_URL={}/", started.url)));
        spawner.stop(&state, Duration::from_secs(5)).await.unwrap();
    }

    #[tokio::test]
    async fn output_is_appended_to_the_log_and_the_exit_code_reported() {
        let dir = tempfile::tempdir().unwrap();
        let spawner = LocalProcessSpawner::new();
        let log = dir.path().join("logs/alice/server.log");
        let mut second_from = 0;
        for round in 0..2 {
            second_from = std::fs::metadata(&log).map_or(0, |m| m.len());
            let script = format!("echo out {round}; echo err {round} >&2; exit 3");
            let req = request(dir.path(), &["sh", "-c", &script]);
            let (_, state) = state_of(&spawner.start(req).await.unwrap());
            let spawner = &spawner;
            let state = &state;
            eventually("the exit is reported", WAIT, || async move {
                spawner.poll(state).await == PollStatus::Exited(Some(3))
            })
            .await;
            // stopping an exited server is fine
            spawner.stop(state, Duration::from_secs(1)).await.unwrap();
        }
        assert_eq!(
            tail_log(&log, 0, 10, 4096),
            "out 0\nerr 0\nout 1\nerr 1",
            "both rounds, stdout and stderr"
        );
        assert_eq!(tail_log(&log, second_from, 10, 4096), "out 1\nerr 1");
    }

    #[tokio::test]
    async fn exec_failures_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let spawner = LocalProcessSpawner::new();
        let start = |argv: &[&str]| spawner.start(request(dir.path(), argv));
        match start(&["galilean-no-such-command"]).await.unwrap_err() {
            SpawnError::Exec { argv0, reason } => {
                assert_eq!(argv0, "galilean-no-such-command");
                assert!(reason.contains("command not found"), "{reason}");
            }
            e => panic!("{e:?}"),
        }
        let plain = dir.path().join("plain.txt");
        std::fs::write(&plain, "x").unwrap();
        match start(&[plain.to_str().unwrap()]).await.unwrap_err() {
            SpawnError::Exec { reason, .. } => assert!(reason.contains("permission"), "{reason}"),
            e => panic!("{e:?}"),
        }
        assert!(matches!(
            start(&[]).await.unwrap_err(),
            SpawnError::NoCommand
        ));
    }

    #[tokio::test]
    async fn stop_ends_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let spawner = LocalProcessSpawner::new();
        let req = request(dir.path(), &["sh", "-c", "sleep 1000 & sleep 1000"]);
        let (pid, state) = state_of(&spawner.start(req).await.unwrap());
        eventually("both sleeps run", WAIT, || async {
            members(pid).len() == 3
        })
        .await;
        let group = members(pid);
        let t0 = Instant::now();
        spawner.stop(&state, Duration::from_secs(10)).await.unwrap();
        assert!(t0.elapsed() < Duration::from_secs(5), "SIGTERM sufficed");
        assert!(members(pid).is_empty());
        for p in group {
            assert!(leader(p, None) != Leader::Running, "{p} survived");
        }
        assert!(matches!(spawner.poll(&state).await, PollStatus::Exited(_)));
    }

    #[tokio::test]
    async fn a_server_that_ignores_sigterm_is_killed_after_the_grace() {
        let dir = tempfile::tempdir().unwrap();
        let spawner = LocalProcessSpawner::new();
        let req = request(dir.path(), &["sh", "-c", "trap '' TERM; sleep 1000"]);
        let (pid, state) = state_of(&spawner.start(req).await.unwrap());
        // the sleep starts after the trap is set
        eventually("the trap is set", WAIT, || async {
            members(pid).len() == 2
        })
        .await;
        let grace = Duration::from_millis(400);
        let t0 = Instant::now();
        spawner.stop(&state, grace).await.unwrap();
        assert!(t0.elapsed() >= grace, "waited the grace");
        assert!(members(pid).is_empty());
        let spawner = &spawner;
        let state = &state;
        eventually("the reaper saw the kill", WAIT, || async move {
            spawner.poll(state).await == PollStatus::Exited(None)
        })
        .await;
    }

    #[tokio::test]
    async fn a_recycled_pid_is_neither_polled_nor_signalled() {
        let dir = tempfile::tempdir().unwrap();
        let spawner = LocalProcessSpawner::new();
        let req = request(dir.path(), &["sleep", "30"]);
        let (pid, state) = state_of(&spawner.start(req).await.unwrap());
        let other = SpawnerState {
            start_ticks: state.start_ticks.map(|t| t + 1),
            ..state.clone()
        };
        assert_eq!(spawner.poll(&other).await, PollStatus::Exited(None));
        assert_eq!(
            LocalProcessSpawner::new().poll(&other).await,
            PollStatus::Exited(None)
        );
        spawner
            .stop(&other, Duration::from_millis(100))
            .await
            .unwrap();
        assert_eq!(
            leader(pid, state.start_ticks),
            Leader::Running,
            "not signalled"
        );
        // without a recorded start time any live pid is accepted
        let legacy = SpawnerState {
            start_ticks: None,
            ..state.clone()
        };
        assert_eq!(spawner.poll(&legacy).await, PollStatus::Running);
        spawner.stop(&state, Duration::from_secs(5)).await.unwrap();
        assert_eq!(
            spawner.poll(&SpawnerState::default()).await,
            PollStatus::Exited(None)
        );
        spawner
            .stop(&SpawnerState::default(), Duration::ZERO)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_server_on_another_host_is_never_signalled() {
        let dir = tempfile::tempdir().unwrap();
        let spawner = LocalProcessSpawner::new();
        let req = request(dir.path(), &["sleep", "30"]);
        let (pid, state) = state_of(&spawner.start(req).await.unwrap());
        let elsewhere = SpawnerState {
            host: format!("not-{}", state.host),
            ..state.clone()
        };
        let err = spawner.stop(&elsewhere, Duration::ZERO).await.unwrap_err();
        assert!(err.to_string().contains("runs on host"), "{err}");
        assert_eq!(leader(pid, state.start_ticks), Leader::Running);
        spawner.stop(&state, Duration::from_secs(5)).await.unwrap();
    }

    /// Environment variable naming the directory of [`helper_hub_that_exits`].
    const HELPER_DIR: &str = "GALILEAN_TEST_EXITING_HUB_DIR";

    /// Plays a hub that starts a server and exits; run by
    /// [`a_server_outlives_the_hub_that_started_it`] in a process of its own.
    #[tokio::test]
    #[ignore = "a helper process of a_server_outlives_the_hub_that_started_it"]
    async fn helper_hub_that_exits() {
        let Some(dir) = std::env::var_os(HELPER_DIR) else {
            return;
        };
        let dir = PathBuf::from(dir);
        let started = LocalProcessSpawner::new()
            .start(request(&dir, &["sleep", "60"]))
            .await
            .unwrap();
        let (pid, state) = state_of(&started);
        let line = format!("{pid} {}", state.start_ticks.unwrap());
        std::fs::write(dir.join("state"), line).unwrap();
    }

    #[tokio::test]
    async fn a_server_outlives_the_hub_that_started_it() {
        let dir = tempfile::tempdir().unwrap();
        let test = module_path!().split_once("::").unwrap().1;
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", &format!("{test}::helper_hub_that_exits")])
            .args(["--ignored", "--nocapture", "--test-threads=1"])
            .env(HELPER_DIR, dir.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        // like the spawner's own forks: none while a port is probed (another test's)
        let hub = crate::spawner::ports::forking(|| cmd.spawn())
            .unwrap()
            .wait_with_output()
            .unwrap();
        assert!(hub.status.success(), "{hub:?}");
        let saved = std::fs::read_to_string(dir.path().join("state")).unwrap();
        let (pid, ticks) = saved.split_once(' ').unwrap();
        let state = SpawnerState {
            pid: Some(pid.parse().unwrap()),
            start_ticks: Some(ticks.parse().unwrap()),
            ..SpawnerState::default()
        };
        let pid = state.pid.unwrap();

        // the hub is gone; a new one (this process) finds the server running
        let spawner = LocalProcessSpawner::new();
        assert_eq!(spawner.poll(&state).await, PollStatus::Running);
        let (ppid, pgrp, _) = family(pid);
        assert_ne!(ppid, std::process::id() as i32);
        assert_eq!(pgrp, pid);
        // and stops it although it is not its child
        spawner.stop(&state, Duration::from_secs(5)).await.unwrap();
        assert_eq!(spawner.poll(&state).await, PollStatus::Exited(None));
        assert!(members(pid).is_empty());
    }
}
