//! The `check` command on the shipped fixtures: a bad history exits non-zero with
//! `violations: 1` as its last line, the clean one exits zero; a history that does not
//! parse is a usage error naming the line.

use std::process::Command;

fn check(fixture: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(fixture);
    let out = Command::new(env!("CARGO_BIN_EXE_cluster-tests"))
        .arg("check")
        .arg(&path)
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    if out.status.code() != Some(2) {
        assert!(dir.path().join("report.md").exists());
        assert!(dir.path().join("report.json").exists());
    }
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn check_flags_each_bad_fixture_and_passes_the_clean_one() {
    for bad in [
        "lost-write.jsonl",
        "resurrected-delete.jsonl",
        "double-server.jsonl",
        "revoked-token-accepted.jsonl",
        "diverged-node.jsonl",
        "acked-without-quorum.jsonl",
    ] {
        let (code, out) = check(bad);
        assert_eq!(code, Some(1), "{bad}: {out}");
        let stdout_last = out.lines().rfind(|l| l.starts_with("violations: "));
        assert_eq!(stdout_last, Some("violations: 1"), "{bad}: {out}");
    }
    let (code, out) = check("clean.jsonl");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("violations: 0"), "{out}");
}

#[test]
fn a_history_that_does_not_parse_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.jsonl");
    std::fs::write(&path, "{\"type\":\"fault\"}\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cluster-tests"))
        .arg("check")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("h.jsonl:1"));
}
