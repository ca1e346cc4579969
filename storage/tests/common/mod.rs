//! What the crash tests (`crash.rs`, `raft_crash.rs`) share: a child process (the test
//! binary itself, re-run for one test with an environment variable set) commits in a
//! loop and prints `ack <i>` after each commit returned; the parent kills it with SIGKILL
//! and judges the acknowledgements.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a child may run if nobody kills it.
pub const CHILD_LIFETIME: Duration = Duration::from_secs(60);

/// In the child: reports commit `i` as acknowledged. False once the parent has gone
/// (the write fails): the child should stop.
pub fn ack(i: u64) -> bool {
    let mut stdout = std::io::stdout();
    writeln!(stdout, "ack {i}")
        .and_then(|()| stdout.flush())
        .is_ok()
}

/// Runs the test `child_test` of this binary as a child with `env` set to `path`, kills
/// it `delay` after its first acknowledgement, and returns every commit it acknowledged.
pub fn run_child_and_kill(child_test: &str, env: &str, path: &Path, delay: Duration) -> Vec<u64> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", child_test, "--nocapture", "--test-threads=1"])
        .env(env, path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, acks) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(n) = line.strip_prefix("ack ") {
                if tx.send(n.parse::<u64>().unwrap()).is_err() {
                    break;
                }
            }
        }
    });
    let mut acked = vec![acks
        .recv_timeout(Duration::from_secs(60))
        .expect("the child acknowledged nothing")];
    std::thread::sleep(delay);
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child exited by itself: {status}");
    reader.join().unwrap();
    // every line the child printed before it died
    acked.extend(acks.try_iter());
    acked
}

/// Checks one round's acknowledgements: in order, and carrying on after the previous
/// round's last one (`last_acked`), or after a later commit that was made durable but
/// not acknowledged. Returns this round's last.
pub fn judge_acks(round: usize, delay: Duration, acked: &[u64], last_acked: u64) -> u64 {
    eprintln!(
        "round {round}: killed {delay:?} after the first ack, {} acks",
        acked.len()
    );
    assert!(
        acked.windows(2).all(|w| w[1] == w[0] + 1),
        "acks out of order"
    );
    assert!(acked[0] > last_acked, "round {round}: {acked:?}");
    *acked.last().unwrap()
}
