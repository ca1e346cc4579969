//! `POST /hub/api/shutdown` (§2.3) on a real hub process: the 202 arrives, then the
//! process exits 0 as on SIGTERM, stopping the servers it runs or leaving them as the
//! body (or else `hub.cleanup_servers`) says; a bad body or a caller without the
//! `shutdown` scope changes nothing.

mod common;

use std::time::{Duration, Instant};

use common::{group_alive, Hub, ADMIN_TOKEN};
use galilean_storage::testing::eventually;
use reqwest::Method;
use serde_json::{json, Value};

const OPEN: &str = "[authenticator]\nallow_all = true\n";

/// How long an idle hub may take from the 202 to its exit.
const EXIT_BOUND: Duration = Duration::from_secs(15);

/// POSTs `body` (raw) to `/shutdown` with `token`: status, JSON body.
async fn post_shutdown(hub: &Hub, token: &str, body: Option<&str>) -> (u16, Value) {
    let mut r = hub
        .client()
        .post(hub.api("/shutdown"))
        .header("Authorization", format!("token {token}"));
    if let Some(b) = body {
        r = r
            .header("Content-Type", "application/json")
            .body(b.to_owned());
    }
    let r = r.send().await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Starts `user`'s default server and returns its process id.
async fn start_server(hub: &Hub, user: &str) -> i32 {
    let (s, _) = hub
        .admin_send(Method::POST, &format!("/users/{user}"), None)
        .await;
    assert_eq!(s, 201);
    let (s, _) = hub
        .admin_send(Method::POST, &format!("/users/{user}/server"), None)
        .await;
    assert!(s == 201 || s == 202, "{s}");
    let model = hub.wait_ready(user, "", Duration::from_secs(20)).await;
    model["state"]["pid"].as_i64().expect("pid") as i32
}

async fn still_serves(hub: &mut Hub) {
    assert!(hub.running(), "the hub exited:\n{}", hub.log_text());
    let (s, v) = hub.admin_get("/").await;
    assert_eq!((s, v["version"].is_string()), (200, true));
}

#[tokio::test]
async fn refused_requests_leave_the_hub_running_and_then_servers_true_stops_it_and_its_servers() {
    let mut hub = Hub::tiny("", OPEN);
    let pid = start_server(&hub, "alice").await;

    // a caller without the shutdown scope: 403, nothing happens
    let (s, tok) = hub
        .admin_send(
            Method::POST,
            "/users/alice/tokens",
            Some(json!({"note": "no shutdown"})),
        )
        .await;
    assert_eq!(s, 201, "{tok}");
    let alice = tok["token"].as_str().unwrap().to_owned();
    let (s, v) = post_shutdown(&hub, &alice, None).await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(
        v["message"],
        "Action is not authorized with current scopes; requires any of [shutdown]"
    );
    let (s, v) = post_shutdown(&hub, "not-a-token-at-all", None).await;
    assert_eq!(
        (s, v["message"].as_str()),
        (403, Some("Missing or invalid credentials."))
    );

    // bad bodies: 400 in JupyterHub's words, nothing done
    for (body, message) in [
        (
            r#"{"servers": "yes"}"#,
            "servers must be true or false, got 'yes'",
        ),
        (
            r#"{"proxy": null}"#,
            "proxy must be true or false, got None",
        ),
        (
            r#"{"servers": true, "proxy": 2}"#,
            "proxy must be true or false, got 2",
        ),
        ("{not json", "Invalid JSON in body of request"),
        (r#"["servers"]"#, "Request body must be a JSON object"),
    ] {
        let (s, v) = post_shutdown(&hub, ADMIN_TOKEN, Some(body)).await;
        assert_eq!(s, 400, "{body}: {v}");
        assert_eq!(v, json!({"status": 400, "message": message}), "{body}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    still_serves(&mut hub).await;
    assert!(group_alive(pid));

    // servers: true stops alice's server although cleanup_servers is off
    let asked = Instant::now();
    let (s, v) = post_shutdown(
        &hub,
        ADMIN_TOKEN,
        Some(r#"{"servers": true, "proxy": true}"#),
    )
    .await;
    assert_eq!((s, v), (202, json!({"message": "Shutting down Hub"})));
    let status = hub.wait_exit(EXIT_BOUND + Duration::from_secs(10));
    assert!(status.success(), "{status}:\n{}", hub.log_text());
    assert!(asked.elapsed() < EXIT_BOUND, "took {:?}", asked.elapsed());
    assert!(!group_alive(pid), "the server outlived the hub");
    let log = hub.log_text();
    assert!(
        log.contains("shutting down, as asked through the API"),
        "{log}"
    );
    // a new start finds the server stopped, as after a SIGTERM with cleanup_servers
    hub.start();
    let (s, u) = hub.admin_get("/users/alice").await;
    assert_eq!(s, 200);
    assert!(u["servers"].get("").is_none(), "{u}");
}

#[tokio::test]
async fn servers_false_leaves_them_running_even_with_cleanup_servers() {
    let mut hub = Hub::with_hub(
        "cleanup_servers = true\n",
        &format!(
            "cmd = [{}]\nstart_timeout = 20\nhttp_timeout = 20\nstop_grace = 3\n",
            common::toml_str(common::tiny_server_bin())
        ),
        OPEN,
    );
    let pid = start_server(&hub, "bob").await;
    let (s, _) = post_shutdown(&hub, ADMIN_TOKEN, Some(r#"{"servers": false}"#)).await;
    assert_eq!(s, 202);
    let status = hub.wait_exit(EXIT_BOUND);
    assert!(status.success(), "{status}:\n{}", hub.log_text());
    assert!(group_alive(pid), "the server was stopped");
    // the next start re-adopts it
    hub.start();
    let model = hub.wait_ready("bob", "", Duration::from_secs(20)).await;
    assert_eq!(model["state"]["pid"].as_i64(), Some(i64::from(pid)));
}

#[tokio::test]
async fn no_body_follows_the_config() {
    let mut hub = Hub::with_hub(
        "cleanup_servers = true\n",
        &format!(
            "cmd = [{}]\nstart_timeout = 20\nhttp_timeout = 20\nstop_grace = 3\n",
            common::toml_str(common::tiny_server_bin())
        ),
        OPEN,
    );
    let pid = start_server(&hub, "cy").await;
    let (s, v) = post_shutdown(&hub, ADMIN_TOKEN, None).await;
    assert_eq!((s, v["message"].as_str()), (202, Some("Shutting down Hub")));
    let status = hub.wait_exit(EXIT_BOUND);
    assert!(status.success(), "{status}:\n{}", hub.log_text());
    eventually(
        format!("process group {pid} is gone"),
        Duration::from_secs(5),
        || async { !group_alive(pid) },
    )
    .await;
}
