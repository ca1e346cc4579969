//! The real `jupyterhub-idle-culler` (PyPI, 2.0.0) against the hub, configured as its
//! README says and with nothing more: a service whose only role holds `list:users`,
//! `read:users:activity`, `read:servers` and `delete:servers` culls an idle server, and
//! with `admin:users` added and `--cull-users=True`, the idle user too.
//!
//! The Python environment comes from `scripts/venv` (run by `scripts/test`); set
//! `GALILEAN_TEST_VENV` to use another one.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Hub, ADMIN_TOKEN};
use galilean_storage::testing::{eventually, Lazy};
use serde_json::Value;

const CULLER_TOKEN: &str = "idle-culler-token-0123456789";

fn culler_bin() -> PathBuf {
    let dir = match std::env::var_os("GALILEAN_TEST_VENV") {
        Some(v) => PathBuf::from(v),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin"),
    };
    let culler = dir.join("python");
    assert!(
        dir.join("jupyterhub-idle-culler").exists(),
        "{} has no jupyterhub-idle-culler: run scripts/venv (scripts/test does)",
        dir.display()
    );
    culler
}

/// A hub whose `idle-culler` service holds the role the culler's README gives it, plus
/// `extra_scopes`.
fn hub(extra_scopes: &str) -> Hub {
    Hub::tiny(
        "",
        &format!(
            r#"
[authenticator]
allow_all = true

[[services]]
name = "idle-culler"
api_token = "{CULLER_TOKEN}"

[[roles]]
name = "idle-culler"
description = "cull idle servers"
scopes = ["list:users", "read:users:activity", "read:servers", "delete:servers"{extra_scopes}]
services = ["idle-culler"]
"#
        ),
    )
}

/// The culler, run as JupyterHub runs a managed service: its token and the API's URL in
/// its environment. Killed when dropped.
struct Culler(Child);

impl Culler {
    fn start(hub: &Hub, args: &[&str]) -> Culler {
        let log = std::fs::File::create(hub.dir.path().join("culler.log")).unwrap();
        let child = Command::new(culler_bin())
            .args([
                "-m",
                "jupyterhub_idle_culler",
                "--timeout=2",
                "--cull-every=1",
            ])
            .args(args)
            .env("JUPYTERHUB_API_TOKEN", CULLER_TOKEN)
            .env("JUPYTERHUB_API_URL", hub.api(""))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start the idle culler");
        Culler(child)
    }
}

impl Drop for Culler {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn user(hub: &Hub, name: &str) -> (u16, Value) {
    hub.admin_get(&format!("/users/{name}")).await
}

/// Creates `name` and starts its default server; waits until it is ready.
async fn user_with_server(hub: &Hub, name: &str) {
    let client = hub.client();
    let post = |path: String| {
        client
            .post(hub.api(&path))
            .header("Authorization", format!("token {ADMIN_TOKEN}"))
            .send()
    };
    assert_eq!(post(format!("/users/{name}")).await.unwrap().status(), 201);
    let s = post(format!("/users/{name}/server"))
        .await
        .unwrap()
        .status();
    assert!(s == 201 || s == 202, "start: {s}");
    eventually(
        format!("{name}'s server is ready"),
        Duration::from_secs(30),
        || async {
            let (_, u) = user(hub, name).await;
            (u["servers"][""]["ready"] == true).then_some(())
        },
    )
    .await;
}

fn log_of(hub: &Hub) -> String {
    format!(
        "the culler's log:\n{}\nthe hub's log:\n{}",
        std::fs::read_to_string(hub.dir.path().join("culler.log")).unwrap_or_default(),
        hub.log_text()
    )
}

#[tokio::test]
async fn the_idle_culler_with_its_readme_role_culls_an_idle_server() {
    let hub = hub("");
    user_with_server(&hub, "idle").await;
    let _culler = Culler::start(&hub, &[]);
    let what = Lazy(|| format!("the idle server is culled; {}", log_of(&hub)));
    eventually(what, Duration::from_secs(60), || async {
        let (s, u) = user(&hub, "idle").await;
        (s == 200 && u["servers"].as_object().is_some_and(|m| m.is_empty())).then_some(())
    })
    .await;
    // without --cull-users the user stays
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(user(&hub, "idle").await.0, 200);
    let log = log_of(&hub);
    assert!(
        !log.contains("HTTP 403") && !log.contains("HTTP 404"),
        "the culler was refused something: {log}"
    );
}

#[tokio::test]
async fn with_admin_users_and_cull_users_the_idle_user_goes_too() {
    let hub = hub(", \"admin:users\"");
    user_with_server(&hub, "gone").await;
    let _culler = Culler::start(&hub, &["--cull-users=True"]);
    let what = Lazy(|| format!("the idle user is culled; {}", log_of(&hub)));
    eventually(what, Duration::from_secs(60), || async {
        (user(&hub, "gone").await.0 == 404).then_some(())
    })
    .await;
}
