//! What this host's `/proc` says about processes: the fields of a process's `stat`
//! (state, process group, start time), whether a server's leader is the same process
//! that was started, the live process groups, and a process found by the server token
//! in its environment. Linux only. Used by the `local-process` backend.

use std::sync::Arc;
use std::time::Instant;

use galilean_proto::records::SpawnerState;

/// The fields of `/proc/<pid>/stat` this module uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// Field 3: `R`, `S`, `D`, `Z` (zombie), `X` (dead), ...
    pub state: char,
    /// Field 5.
    pub pgrp: i32,
    /// Field 22: start time in clock ticks after boot.
    pub start_ticks: u64,
}

impl ProcStat {
    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses `pid (comm) state ppid pgrp session ...`. `comm` may contain spaces and
/// parentheses, so the fields are counted from after the last `)`.
pub fn parse_stat(text: &str) -> Option<ProcStat> {
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
pub fn find_launched(hash: &str) -> Option<SpawnerState> {
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
            .is_some_and(|t| crate::secrets::sha256_hex(t) == hash);
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

pub fn read_stat(pid: i32) -> Option<ProcStat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// What became of the process that leads a server's group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leader {
    /// Alive, and the same process (or no start time was recorded to tell).
    Running,
    /// Exited (gone, or a zombie not reaped yet).
    Gone,
    /// The pid belongs to another process now.
    Recycled,
}

pub fn leader(pid: i32, start_ticks: Option<u64>) -> Leader {
    match read_stat(pid) {
        None => Leader::Gone,
        Some(s) if start_ticks.is_some_and(|t| t != s.start_ticks) => Leader::Recycled,
        Some(s) if s.is_dead() => Leader::Gone,
        Some(_) => Leader::Running,
    }
}

pub fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|h| h.trim().to_owned())
        .find(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
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
/// every `groups::STOP_TICK`: a scan for each of them, on the runtime's workers, took those
/// workers for seconds (with 1,000 servers stopping on three nodes on two cores, long
/// enough for a node to miss its pings and be declared gone). A scan begun after
/// `asked` is as good as one of the caller's own: a group with no live member then
/// never gains one (only its members could start one).
pub(crate) async fn live_groups(asked: Instant) -> Arc<std::collections::HashSet<i32>> {
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

#[cfg(test)]
mod tests {
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
}
