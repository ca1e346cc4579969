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
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use galilean_proto::records::SpawnerState;
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{PollStatus, SpawnError, SpawnRequest, Spawner, Started};

/// How often `stop` looks whether the process group is gone.
const STOP_TICK: Duration = Duration::from_millis(50);
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
    ports: Arc<super::ports::Ports>,
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
            ports: Arc::new(super::ports::Ports::new()),
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
        let launch = super::launch::Launch {
            argv: &req.argv,
            env: &env,
            dir: &req.home_dir,
            output: &log,
        };
        // the check runs here, with nothing between it and the launch that waits
        let pid = super::ports::forking(|| {
            req.may_launch.check().map_err(SpawnError::NotLaunched)?;
            super::launch::spawn(&launch).map_err(|e| SpawnError::Exec {
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
            let ended = super::launch::wait(pid).await;
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

fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|h| h.trim().to_owned())
        .find(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The fields of `/proc/<pid>/stat` this module uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProcStat {
    /// Field 3: `R`, `S`, `D`, `Z` (zombie), `X` (dead), ...
    state: char,
    /// Field 5.
    pgrp: i32,
    /// Field 22: start time in clock ticks after boot.
    start_ticks: u64,
}

impl ProcStat {
    fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses `pid (comm) state ppid pgrp session ...`. `comm` may contain spaces and
/// parentheses, so the fields are counted from after the last `)`.
fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = text.get(text.rfind(')')? + 1..)?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    // fields 6 to 21 come next; field 22 is the 17th from here
    let start_ticks = fields.nth(16)?.parse().ok()?;
    Some(ProcStat {
        state,
        pgrp,
        start_ticks,
    })
}

/// The leader of a process group whose server token (`JUPYTERHUB_API_TOKEN`, unique to
/// one start, so never another hub's or another start's process) hashes to `hash`.
fn find_launched(hash: &str) -> Option<SpawnerState> {
    let prefix = format!("{}=", galilean_proto::env::API_TOKEN);
    let me = std::process::id() as i32;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Some(stat) = read_stat(pid).filter(|s| s.pgrp == pid && !s.is_dead()) else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let token = environ
            .split(|b| *b == 0)
            .find_map(|var| var.strip_prefix(prefix.as_bytes()));
        let matches = token
            .and_then(|t| std::str::from_utf8(t).ok())
            .is_some_and(|t| crate::ops::sha256_hex(t) == hash);
        if matches {
            return Some(SpawnerState {
                pid: Some(pid),
                host: host_name(),
                log_path: None,
                node: 0,
                start_ticks: Some(stat.start_ticks),
            });
        }
    }
    None
}

fn read_stat(pid: i32) -> Option<ProcStat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// What became of the process that leads a server's group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leader {
    /// Alive, and the same process (or no start time was recorded to tell).
    Running,
    /// Exited (gone, or a zombie not reaped yet).
    Gone,
    /// The pid belongs to another process now.
    Recycled,
}

fn leader(pid: i32, start_ticks: Option<u64>) -> Leader {
    match read_stat(pid) {
        None => Leader::Gone,
        Some(s) if start_ticks.is_some_and(|t| t != s.start_ticks) => Leader::Recycled,
        Some(s) if s.is_dead() => Leader::Gone,
        Some(_) => Leader::Running,
    }
}

/// Guards against pids whose process group is never a server's: 0 and 1 (`kill(0)` and
/// `kill(-1)` mean "my group" and "everyone"), and the hub's own group.
fn may_signal_group(pid: i32) -> bool {
    pid > 1 && Pid::from_raw(pid) != nix::unistd::getpgrp()
}

fn signal_group(pid: i32, signal: Signal) {
    match kill(Pid::from_raw(-pid), signal) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => tracing::warn!(pid, %signal, error = %e, "signalling a server's process group"),
    }
}

/// Whether any process of the group led by `pid` still runs (zombies do not count).
///
/// A pid is not reused while a process group of that id exists, so when the leader has
/// exited, the remaining members of group `pid` are the server's own descendants.
async fn group_alive(pid: i32, start_ticks: Option<u64>) -> bool {
    let asked = Instant::now();
    match leader(pid, start_ticks) {
        Leader::Running => return true,
        Leader::Recycled => return false,
        Leader::Gone => {}
    }
    match kill(Pid::from_raw(-pid), None) {
        // something is left, maybe only zombies no one has reaped yet
        Ok(()) => live_groups(asked).await.contains(&pid),
        Err(Errno::ESRCH) => false,
        Err(e) => {
            tracing::warn!(pid, error = %e, "probing a server's process group");
            false
        }
    }
}

/// Scans `/proc` for a live (non-zombie) process in process group `pgrp`. A zombie (an
/// exited process not yet reaped) does not count, where `kill(-pgrp, 0)` would find it.
pub fn live_member_of(pgrp: i32) -> bool {
    scan_live_groups().contains(&pgrp)
}

/// How many times `/proc` was scanned (for a test).
static SCANS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The process groups that have a live (non-zombie) member, from one scan of `/proc`:
/// a read of every process's `stat`, thousands of files with a storm's servers running.
fn scan_live_groups() -> std::collections::HashSet<i32> {
    SCANS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Default::default();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(read_stat)
        .filter(|s| !s.is_dead())
        .map(|s| s.pgrp)
        .collect()
}

/// [`scan_live_groups`] begun at `asked` or later, on a blocking thread, and shared by
/// every stop waiting meanwhile. A storm's stops each wait for their group this way
/// every [`STOP_TICK`]: a scan for each of them, on the runtime's workers, took those
/// workers for seconds (with 1,000 servers stopping on three nodes on two cores, long
/// enough for a node to miss its pings and be declared gone). A scan begun after
/// `asked` is as good as one of the caller's own: a group with no live member then
/// never gains one (only its members could start one).
async fn live_groups(asked: Instant) -> Arc<std::collections::HashSet<i32>> {
    type Scan = Option<(Instant, Arc<std::collections::HashSet<i32>>)>;
    static LAST: tokio::sync::Mutex<Scan> = tokio::sync::Mutex::const_new(None);
    let mut last = LAST.lock().await;
    if let Some((at, groups)) = last.as_ref() {
        if *at >= asked {
            return groups.clone();
        }
    }
    let at = Instant::now();
    let groups = match tokio::task::spawn_blocking(scan_live_groups).await {
        Ok(groups) => Arc::new(groups),
        // the blocking scan did not finish (it panicked, or the runtime is shutting
        // down): scan here rather than report a group gone
        Err(_) => Arc::new(scan_live_groups()),
    };
    *last = Some((at, groups.clone()));
    groups
}

async fn wait_gone(pid: i32, start_ticks: Option<u64>, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if !group_alive(pid, start_ticks).await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(STOP_TICK).await;
    }
}

/// The last `max_lines` lines of a log file written from byte `from` on (what the
/// latest start of a server wrote, not what earlier ones left), reading at most its last
/// `max_bytes` (a line cut by that limit is dropped). Empty if the file cannot be read.
/// For failure messages.
pub fn tail_log(path: &Path, from: u64, max_lines: usize, max_bytes: usize) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    // a file now shorter than `from` was cut since: all of it is new
    let from = if from > len { 0 } else { from };
    let start = len.saturating_sub(max_bytes as u64).max(from);
    if f.seek(SeekFrom::Start(start)).is_err() {
        return String::new();
    }
    let mut buf = Vec::with_capacity(max_bytes.min(len as usize));
    if f.take(max_bytes as u64).read_to_end(&mut buf).is_err() {
        return String::new();
    }
    let mut text = &buf[..];
    if start > from {
        // drop the partial first line, unless it is all there is
        if let Some(i) = text.iter().position(|&b| b == b'\n') {
            text = &text[i + 1..];
        }
    }
    let text = String::from_utf8_lossy(text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(max_lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::future::Future;
    use std::path::PathBuf;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stops_waiting_together_share_a_scan_of_proc() {
        // a group with a live member: this process's own
        let own = nix::unistd::getpgrp().as_raw();
        let before = SCANS.load(std::sync::atomic::Ordering::Relaxed);
        let asked = Instant::now();
        let answers = futures::future::join_all((0..64).map(|_| live_groups(asked))).await;
        let scans = SCANS.load(std::sync::atomic::Ordering::Relaxed) - before;
        assert!(answers.iter().all(|groups| groups.contains(&own)));
        // one scan serves them all (other tests of this binary may add a few of theirs)
        assert!(scans < 8, "{scans} scans for 64 stops waiting at once");
        // a scan begun before a question does not answer it
        let later = Instant::now();
        live_groups(later).await;
        assert!(SCANS.load(std::sync::atomic::Ordering::Relaxed) > before + scans);
    }

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

    async fn eventually<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !check().await {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `/proc/<pid>/environ` of a process just spawned. posix_spawn returns once the
    /// child's exec has replaced its memory, a moment before the kernel records where the
    /// new environment lies: until then the file reads empty.
    async fn environ_of(pid: i32) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
            if !environ.is_empty() || Instant::now() >= deadline {
                return environ;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
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

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        let rest = (7..=21)
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(" ");
        let line = format!("4242 (a) b (c)) S 1 4242 4242 {rest} 987654 23 0\n");
        let s = parse_stat(&line).unwrap();
        assert_eq!((s.state, s.pgrp, s.start_ticks), ('S', 4242, 987654));
        assert_eq!(parse_stat("12 (x) S 1 2"), None);
        assert_eq!(parse_stat("garbage"), None);
        let me = read_stat(std::process::id() as i32).unwrap();
        assert!(me.start_ticks > 0 && !me.is_dead());
    }

    #[test]
    fn never_signals_everyone_or_the_hub() {
        assert!(!may_signal_group(0));
        assert!(!may_signal_group(1));
        assert!(!may_signal_group(-5));
        assert!(!may_signal_group(nix::unistd::getpgrp().as_raw()));
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
            let hash = crate::ops::sha256_hex(&token);
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
            eventually("the exit is reported", || async move {
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
        eventually("both sleeps run", || async { members(pid).len() == 3 }).await;
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
        eventually("the trap is set", || async { members(pid).len() == 2 }).await;
        let grace = Duration::from_millis(400);
        let t0 = Instant::now();
        spawner.stop(&state, grace).await.unwrap();
        assert!(t0.elapsed() >= grace, "waited the grace");
        assert!(members(pid).is_empty());
        let spawner = &spawner;
        let state = &state;
        eventually("the reaper saw the kill", || async move {
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

    #[test]
    fn tail_log_reads_only_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, &text).unwrap();
        assert_eq!(tail_log(&path, 0, 3, 4096), "line 997\nline 998\nline 999");
        // 20 bytes hold "e 997\nline 998\nline 999\n" partly: the cut line is dropped
        assert_eq!(tail_log(&path, 0, 10, 20), "line 998\nline 999");
        assert_eq!(tail_log(&path, 0, 0, 4096), "");
        // only what was written from `from` on: a whole line starts there
        let from = text.find("line 998").unwrap() as u64;
        assert_eq!(tail_log(&path, from, 10, 4096), "line 998\nline 999");
        assert_eq!(tail_log(&path, from + 2, 10, 4096), "ne 998\nline 999");
        assert_eq!(tail_log(&path, text.len() as u64, 10, 4096), "");
        assert_eq!(
            tail_log(&path, u64::MAX, 2, 4096),
            "line 998\nline 999",
            "a file cut since is all new"
        );
        std::fs::write(&path, "short\nlog").unwrap();
        assert_eq!(tail_log(&path, 0, 5, 4096), "short\nlog");
        std::fs::write(&path, "x".repeat(100)).unwrap();
        assert_eq!(
            tail_log(&path, 0, 5, 10),
            "x".repeat(10),
            "one long line is kept"
        );
        assert_eq!(tail_log(&dir.path().join("missing"), 0, 5, 100), "");
    }
}
