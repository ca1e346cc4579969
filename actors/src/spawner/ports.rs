//! Ports for local servers. A port is chosen here and bound later by the server, so it
//! must stay free in between. A port the kernel picked for `bind(0)` comes from the
//! ephemeral range, which every outgoing connection on the host also draws from: during
//! a storm of spawns (a thousand clients, the hub's readiness probes) one of them takes
//! the port before the server binds it, and the server dies with "address in use".
//! So ports come from below the ephemeral range, walked in order from a random start
//! (this node does not hand the same port twice in a row), skipping those handed out in
//! the last minute and those bound now.
//!
//! Several hub nodes may run on one host (a cluster on loopback, or a test). Each walks
//! the same range, so a port one node just handed to a server that has not bound it yet
//! looks free to the others. The nodes of one user on one host therefore also claim
//! each port in a shared directory ([`HostClaims`]): a port claimed by any of them in the
//! last minute is skipped by all.
//!
//! A port is probed by binding it for a moment. A child being forked meanwhile would
//! carry that socket until it execs, long enough for the server handed the port to fail
//! to bind it; so probes (and claims, whose file locks would be carried the same way)
//! never overlap a fork of this process ([`forking`]).

use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use rand::Rng;

/// The lowest port handed out.
const LOW: u16 = 20_000;
/// A port handed out is not handed again for this long (the server binds it by then,
/// or has failed).
const HELD: Duration = Duration::from_secs(60);

/// Port probes and forks of this process exclude each other (see [`forking`]).
static FORK_GATE: RwLock<()> = RwLock::new(());

/// Runs `spawn`, which starts a child of this process that execs, while no port is
/// being probed or claimed. Until it execs a child holds a copy of every descriptor of
/// the hub: a probe's listening socket (a server handed that port and started meanwhile
/// could not bind it) and a claim file with its lock (the other nodes would pass over
/// the port). posix_spawn(3) (`launch.rs`), like `std`'s spawn, returns only once the
/// child has exec'd, so holding this across it covers the whole window. Spawns run side
/// by side; a probe or claim waits for those under way.
pub(crate) fn forking<T>(spawn: impl FnOnce() -> T) -> T {
    let _no_probe = FORK_GATE.read().unwrap_or_else(|e| e.into_inner());
    spawn()
}

/// Held while a descriptor no child may inherit is open: no fork starts meanwhile.
fn no_forks() -> std::sync::RwLockWriteGuard<'static, ()> {
    FORK_GATE.write().unwrap_or_else(|e| e.into_inner())
}

/// Whether `port` of `ip` can be bound now, by binding and closing it.
fn probe(ip: IpAddr, port: u16) -> bool {
    let _no_forks = no_forks();
    let bound = std::net::TcpListener::bind((ip, port));
    bound.is_ok()
}

/// The lowest port of the kernel's ephemeral range (32768 if it cannot be read).
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768)
}

#[derive(Debug)]
pub(crate) struct Ports {
    /// `[low, high)`: empty when the ephemeral range leaves no room below it.
    low: u16,
    high: u16,
    state: Mutex<State>,
    /// `None` when the shared directory cannot be used: this node's own record only.
    host: Option<HostClaims>,
}

#[derive(Debug)]
struct State {
    next: u16,
    handed: HashMap<u16, Instant>,
}

impl Ports {
    /// Ports below the kernel's ephemeral range (as `/proc/sys/net/ipv4/ip_local_port_range`
    /// says; 32768 if it cannot be read).
    pub(crate) fn new() -> Ports {
        let host = HostClaims::shared();
        if host.is_none() {
            tracing::warn!(
                "cannot use a shared directory for port claims: hub nodes on this host \
                 may hand one port to two servers"
            );
        }
        Ports::between(LOW, ephemeral_low(), host)
    }

    fn between(low: u16, high: u16, host: Option<HostClaims>) -> Ports {
        let start = if high > low {
            rand::thread_rng().gen_range(low..high)
        } else {
            low
        };
        Ports {
            low,
            high,
            state: Mutex::new(State {
                next: start,
                handed: HashMap::new(),
            }),
            host,
        }
    }

    /// A port of `ip` that is free now and was not handed out in the last minute.
    pub(crate) fn pick(&self, ip: IpAddr) -> std::io::Result<u16> {
        if self.high <= self.low {
            // no room below the ephemeral range: let the kernel choose
            return std::net::TcpListener::bind((ip, 0))?
                .local_addr()
                .map(|a| a.port());
        }
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        st.handed.retain(|_, at| now.duration_since(*at) < HELD);
        let span = self.high - self.low;
        for _ in 0..span {
            let port = st.next;
            st.next = if port + 1 >= self.high {
                self.low
            } else {
                port + 1
            };
            if st.handed.contains_key(&port) {
                continue;
            }
            // claimed before it is probed: another node's probe, a listening socket for
            // a moment, must not meet a server starting on a port this node handed out
            if let Some(host) = &self.host {
                match host.claim(port) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    // the claim could not be read or written: this node's own record
                    // still keeps it from handing the port twice
                    Err(e) => tracing::warn!(port, "cannot claim the port on this host: {e}"),
                }
            }
            if !probe(ip, port) {
                continue;
            }
            st.handed.insert(port, now);
            return Ok(port);
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!(
                "every port from {} to {} is in use or was just handed out",
                self.low,
                self.high - 1
            ),
        ))
    }
}

/// Port claims shared by the processes of one user on this host: a file per claimed
/// port, in a directory only that user can enter, holding when it was claimed and by
/// which process. A claim older than [`HELD`] is void; its file is simply written again.
#[derive(Debug)]
struct HostClaims {
    dir: PathBuf,
}

impl HostClaims {
    /// The directory `galilean-ports-<uid>` in the system's temporary directory.
    fn shared() -> Option<HostClaims> {
        let uid = nix::unistd::getuid().as_raw();
        HostClaims::at(&std::env::temp_dir().join(format!("galilean-ports-{uid}"))).ok()
    }

    /// Claims in `dir`, made if missing. Refused unless it is a real directory of this
    /// user that nobody else may write: another user's files must not steer the ports.
    fn at(dir: &Path) -> std::io::Result<HostClaims> {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt};
        match std::fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let meta = std::fs::symlink_metadata(dir)?;
        let uid = nix::unistd::getuid().as_raw();
        if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o022 != 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "{} is not a directory of this user that only it may write",
                    dir.display()
                ),
            ));
        }
        Ok(HostClaims {
            dir: dir.to_owned(),
        })
    }

    /// Claims `port` unless a process of this user claimed it in the last [`HELD`].
    /// The port's file is locked while it is read and written, so two processes never
    /// both take it; one that finds it locked (another is claiming it this moment)
    /// leaves the port, and nobody ever waits for the lock (a node stopped with SIGSTOP
    /// while it held one would hold up the others' spawns).
    fn claim(&self, port: u16) -> std::io::Result<bool> {
        use std::io::{Read, Seek};
        let _no_forks = no_forks();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(self.dir.join(port.to_string()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(false),
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let mut text = String::new();
        file.read_to_string(&mut text)?;
        // "<claimed at, unix ms> <pid>"; an empty or unreadable file claims nothing
        let claimed = text
            .split_whitespace()
            .next()
            .and_then(|ms| ms.parse::<u64>().ok())
            .map(Duration::from_millis);
        if let Some(at) = claimed {
            // a claim up to HELD in the future (the clock was set back a little) counts
            // as fresh; one further ahead is void, not a port lost for that long
            let fresh = match now.checked_sub(at) {
                Some(age) => age < HELD,
                None => at - now < HELD,
            };
            if fresh {
                return Ok(false);
            }
        }
        file.set_len(0)?;
        file.rewind()?;
        writeln!(file, "{} {}", now.as_millis(), std::process::id())?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn ports_stay_below_the_ephemeral_range_and_are_not_handed_twice() {
        let dir = tempfile::tempdir().unwrap();
        let claims = HostClaims::at(dir.path()).ok();
        let ports = Ports::between(LOW, ephemeral_low(), claims);
        let ephemeral_low = ports.high;
        let ip = IpAddr::from(Ipv4Addr::LOCALHOST);
        let mut seen = HashSet::new();
        for _ in 0..500 {
            let p = ports.pick(ip).unwrap();
            assert!((LOW..ephemeral_low).contains(&p), "{p}");
            assert!(seen.insert(p), "{p} handed out twice");
        }
    }

    #[test]
    fn a_bound_port_is_skipped_and_a_full_range_is_an_error() {
        let ip = IpAddr::from(Ipv4Addr::LOCALHOST);
        // a range of one port, taken by someone else
        let taken = std::net::TcpListener::bind((ip, 0)).unwrap();
        let t = taken.local_addr().unwrap().port();
        let ports = Ports::between(t, t.saturating_add(1), None);
        assert_eq!(
            ports.pick(ip).unwrap_err().kind(),
            std::io::ErrorKind::AddrInUse
        );
        drop(taken);
        assert_eq!(ports.pick(ip).unwrap(), t);
        // handed out a moment ago: not again, though nobody bound it
        assert!(ports.pick(ip).is_err());
    }

    /// Two nodes on one host, each with its own allocator walking the same ports from
    /// the same place: the claims keep them from handing out one port twice.
    #[test]
    fn nodes_sharing_a_host_never_hand_out_the_same_port() {
        let ip = IpAddr::from(Ipv4Addr::LOCALHOST);
        let dir = tempfile::tempdir().unwrap();
        let claims = dir.path().join("claims");
        let free: Vec<u16> = (LOW..LOW + 2_000)
            .filter(|p| std::net::TcpListener::bind((ip, *p)).is_ok())
            .take(10)
            .collect();
        let (low, high) = (free[0], free[9] + 1);
        let node = || {
            let ports = Ports::between(low, high, Some(HostClaims::at(&claims).unwrap()));
            ports.state.lock().unwrap().next = low;
            ports
        };
        let (one, two) = (node(), node());
        let mut seen = HashSet::new();
        for _ in 0..5 {
            for ports in [&one, &two] {
                let p = ports.pick(ip).unwrap();
                assert!(seen.insert(p), "{p} handed out twice");
            }
        }
        // a third node gets only the ports nobody claimed, then none
        let three = node();
        let mut rest = 0;
        while let Ok(p) = three.pick(ip) {
            assert!(seen.insert(p), "{p} handed out twice");
            rest += 1;
            assert!(rest <= high - low);
        }
    }

    /// Writes a claim of `port` made `ago` before now (negative: in the future).
    fn claimed(dir: &Path, port: u16, ago: i64) {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        std::fs::write(dir.join(port.to_string()), format!("{} 1\n", now - ago)).unwrap();
    }

    #[test]
    fn an_old_claim_is_void_and_so_is_one_far_in_the_future() {
        let dir = tempfile::tempdir().unwrap();
        let claims = HostClaims::at(dir.path()).unwrap();
        assert!(claims.claim(20_001).unwrap());
        assert!(!claims.claim(20_001).unwrap());
        let held = HELD.as_millis() as i64;
        claimed(dir.path(), 20_001, held + 1_000);
        assert!(claims.claim(20_001).unwrap(), "an old claim held");
        claimed(dir.path(), 20_001, -10_000);
        assert!(
            !claims.claim(20_001).unwrap(),
            "a claim a moment ahead lapsed"
        );
        claimed(dir.path(), 20_001, -10 * held);
        assert!(claims.claim(20_001).unwrap(), "a claim far ahead held");
        // an empty or garbled file (a claim cut short) claims nothing
        std::fs::write(dir.path().join("20001"), "").unwrap();
        assert!(claims.claim(20_001).unwrap());
        std::fs::write(dir.path().join("20001"), "x").unwrap();
        assert!(claims.claim(20_001).unwrap());
    }

    #[test]
    fn a_port_another_process_is_claiming_is_left_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let claims = HostClaims::at(dir.path()).unwrap();
        let busy = std::fs::File::create(dir.path().join("20002")).unwrap();
        busy.lock().unwrap();
        let began = Instant::now();
        assert!(!claims.claim(20_002).unwrap());
        assert!(began.elapsed() < Duration::from_millis(100));
        drop(busy);
        assert!(claims.claim(20_002).unwrap());
    }

    /// A child forked while a port was being probed would hold the probe's listening
    /// socket until it execs: a server handed that port in the meantime could not bind
    /// it (a three-node storm of 1,000 spawns lost one or two servers so). Here a thread
    /// forks without pause, each child taking 3 ms to exec, while ports are handed out
    /// and bound at once.
    #[test]
    #[allow(unsafe_code)]
    fn a_child_being_forked_never_holds_a_port_being_handed_out() {
        use std::os::unix::process::CommandExt;
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;

        let ip = IpAddr::from(Ipv4Addr::LOCALHOST);
        let stop = Arc::new(AtomicBool::new(false));
        let forker = std::thread::spawn({
            let stop = stop.clone();
            move || {
                let mut forks = 0;
                while !stop.load(Ordering::Relaxed) {
                    let mut cmd = std::process::Command::new("true");
                    // SAFETY: the closure only sleeps (nanosleep(2)); it allocates nothing
                    unsafe {
                        cmd.pre_exec(|| {
                            std::thread::sleep(Duration::from_millis(3));
                            Ok(())
                        });
                    }
                    forking(|| cmd.spawn()).unwrap().wait().unwrap();
                    forks += 1;
                }
                forks
            }
        });
        let began = Instant::now();
        let mut handed = 0;
        let mut failed = Vec::new();
        while began.elapsed() < Duration::from_millis(600) {
            // a fresh allocator now and then: the range would run out
            let ports = Ports::between(LOW, ephemeral_low(), None);
            for _ in 0..1_000 {
                let port = ports.pick(ip).unwrap();
                handed += 1;
                // what the server does with it (std, like tokio, sets SO_REUSEADDR)
                if let Err(e) = std::net::TcpListener::bind((ip, port)) {
                    failed.push(format!("{port}: {e}"));
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        let forks = forker.join().unwrap();
        assert!(forks >= 20, "only {forks} forks");
        assert!(
            failed.is_empty(),
            "{} of {handed} ports handed out could not be bound ({forks} forks): {:?}",
            failed.len(),
            &failed[..failed.len().min(5)]
        );
    }

    #[test]
    fn a_claims_directory_others_may_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = HostClaims::at(&shared).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
        assert!(err.to_string().contains("shared"), "{err}");
        std::os::unix::fs::symlink(dir.path(), dir.path().join("link")).unwrap();
        assert!(HostClaims::at(&dir.path().join("link")).is_err());
        assert!(HostClaims::at(dir.path()).is_ok());
    }
}
