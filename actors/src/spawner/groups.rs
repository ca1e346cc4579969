//! A server's process group: signalled as a whole (never the hub's own group, nor
//! every process), and watched until no live member is left.

use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::spawner::procfs::{leader, live_groups, Leader};

/// How often a stop looks whether the process group is gone.
const STOP_TICK: Duration = Duration::from_millis(50);

/// Guards against pids whose process group is never a server's: 0 and 1 (`kill(0)` and
/// `kill(-1)` mean "my group" and "everyone"), and the hub's own group.
pub fn may_signal_group(pid: i32) -> bool {
    pid > 1 && Pid::from_raw(pid) != nix::unistd::getpgrp()
}

pub fn signal_group(pid: i32, signal: Signal) {
    match kill(Pid::from_raw(-pid), signal) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => tracing::warn!(pid, %signal, error = %e, "signalling a server's process group"),
    }
}

/// Whether any process of the group led by `pid` still runs (zombies do not count).
///
/// A pid is not reused while a process group of that id exists, so when the leader has
/// exited, the remaining members of group `pid` are the server's own descendants.
pub async fn group_alive(pid: i32, start_ticks: Option<u64>) -> bool {
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

pub async fn wait_gone(pid: i32, start_ticks: Option<u64>, within: Duration) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_signals_everyone_or_the_hub() {
        assert!(!may_signal_group(0));
        assert!(!may_signal_group(1));
        assert!(!may_signal_group(-5));
        assert!(!may_signal_group(nix::unistd::getpgrp().as_raw()));
    }
}
