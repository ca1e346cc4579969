//! A server's log file as failure messages quote it: the end of what the latest start
//! wrote.

use std::path::Path;

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
    use super::*;

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
