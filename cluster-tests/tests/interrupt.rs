//! An interrupted chaos run leaves nothing behind: no node, no tiny server, no namespace,
//! no link. Runs the real command against the real `galilean` (built beside it by
//! `cargo build -p galilean-node`, which `cargo test --workspace` does).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use galilean_storage::testing::eventually_blocking;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

fn galilean() -> PathBuf {
    let g = Path::new(env!("CARGO_BIN_EXE_cluster-tests")).with_file_name("galilean");
    assert!(
        g.exists() && g.with_file_name("tiny_server").exists(),
        "{} and tiny_server are needed: cargo build -p galilean-node",
        g.display()
    );
    g
}

/// The pids of the processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            out.push(pid);
        }
    }
    out
}

fn alive(pid: u32) -> bool {
    // a zombie is gone for our purpose: it holds no port and runs nothing
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
}

/// Starts a run on `network`, interrupts it once its servers have started, and checks
/// that everything it made is gone.
fn interrupted_run_cleans_up(network: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cluster-tests"))
        .args(["chaos", "--nodes", "3", "--duration", "60s", "--seed", "5"])
        .args(["--network", network, "--galilean"])
        .arg(galilean())
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let harness = child.id();
    // read to the end (a closed pipe would fail the harness's next message)
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    // the stable users' servers are started before the schedule is announced
    while !seen.iter().any(|l: &String| l.contains("faults planned")) {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => seen.push(line),
            Err(e) => panic!("the run did not get going ({e}): {seen:?}"),
        }
    }
    assert!(
        seen.iter().any(|l| l.contains(&format!("({network})"))),
        "{seen:?}"
    );
    let events = std::fs::read_to_string(out.join("servers.events")).unwrap_or_default();
    let servers: Vec<u32> = events
        .lines()
        .filter(|l| l.starts_with("start "))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    assert!(!servers.is_empty(), "no server started: {events:?}");
    // the nodes' command lines name their configs in the run's folder
    let out_text = format!("{}/node", out.display());
    assert_eq!(
        processes_mentioning(&out_text).len(),
        3,
        "three nodes run before the interrupt"
    );

    kill(Pid::from_raw(harness as i32), Signal::SIGINT).unwrap();
    let status = eventually_blocking("the harness exits", Duration::from_secs(30), || {
        child.try_wait().unwrap()
    });
    assert_eq!(status.code(), Some(130));

    let left: Vec<u32> = processes_mentioning(&out_text)
        .into_iter()
        .filter(|p| alive(*p))
        .collect();
    assert!(left.is_empty(), "nodes left running: {left:?}");
    let servers_left: Vec<u32> = servers.into_iter().filter(|p| alive(*p)).collect();
    assert!(servers_left.is_empty(), "servers left: {servers_left:?}");
    let namespaces = Command::new("ip").args(["netns", "list"]).output();
    if let Ok(n) = namespaces {
        let text = String::from_utf8_lossy(&n.stdout).into_owned();
        assert!(
            !text.contains(&format!("galilean-chaos-{harness}-")),
            "namespaces left: {text}"
        );
    }
    let links = Command::new("ip").args(["-o", "link"]).output();
    if let Ok(l) = links {
        let text = String::from_utf8_lossy(&l.stdout).into_owned();
        let tag = harness % 100_000;
        assert!(
            !text.contains(&format!("gcb{tag}:")) && !text.contains(&format!("gcv{tag}n")),
            "links left: {text}"
        );
    }
}

#[test]
fn an_interrupted_run_on_namespaces_leaves_nothing() {
    interrupted_run_cleans_up("netns");
}

#[test]
fn an_interrupted_run_on_the_loopback_relay_leaves_nothing() {
    interrupted_run_cleans_up("loopback");
}
