//! The hub's pages in a real browser: Debian `chromium` driven by Playwright (from the
//! Python environment `scripts/venv` creates), against a real `galilean` process. The
//! browser side is `browser/pages.py`; this test starts the hub and runs it.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::Hub;

fn chromium() -> String {
    let path =
        std::env::var("GALILEAN_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&path).exists(),
        "{path} is missing: scripts/test installs Debian's chromium"
    );
    path
}

fn python() -> PathBuf {
    let dir = match std::env::var_os("GALILEAN_TEST_VENV") {
        Some(v) => PathBuf::from(v),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin"),
    };
    let py = dir.join("python");
    assert!(py.exists(), "{} is missing: run scripts/venv", py.display());
    py
}

#[test]
fn pages_work_in_a_real_browser() {
    let tiny = common::toml_str(common::tiny_server_bin());
    // `broken` gets a command that fails with HTML-looking output; everyone else a tiny
    // server that takes a moment to be ready, so the pending page is really seen
    let script = format!(
        "if [ \"$JUPYTERHUB_USER\" = broken ]; then echo '<img src=x onerror=alert(1)> cannot start'; exit 1; fi; exec {}",
        tiny.trim_matches('"')
    );
    let spawner = format!(
        "cmd = [\"/bin/sh\", \"-c\", {}]\nstart_timeout = 20\nhttp_timeout = 20\nstop_grace = 2\n\
         [spawner.environment]\nTINY_DELAY_READY_MS = \"1500\"\n",
        common::toml_str(&script)
    );
    let hub = Hub::with(
        &spawner,
        "[authenticator]\npassword = \"pw\"\nallow_all = true\n",
    );
    let out = Command::new(python())
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser/pages.py"))
        .arg(&hub.url)
        .arg(chromium())
        .output()
        .expect("run the browser script");
    assert!(
        out.status.success(),
        "browser test failed:\n{}\n{}\nhub log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        hub.log_text()
    );
}
