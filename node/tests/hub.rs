//! The hub as a real process with tiny single-user servers: login, the API, the proxy,
//! stop and restart, the spawn queue, the failure contract, and bad input.

mod common;

use std::time::Duration;

use common::{group_alive, Browser, Hub, ADMIN_TOKEN};
use galilean_storage::testing::eventually;
use reqwest::Method;
use serde_json::{json, Value};

const OPEN: &str = "[authenticator]\nallow_all = true\n";

#[tokio::test]
async fn api_root_info_and_version_header() {
    let hub = Hub::tiny("", OPEN);
    let c = hub.client();
    for path in ["/hub/api", "/hub/api/"] {
        let r = c.get(format!("{}{path}", hub.url)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-jupyterhub-version"], "6.1.1");
        assert!(r.headers().contains_key("x-galilean-version"));
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["version"], "6.1.1");
    }
    // every hub response carries the header, errors included
    let r = c.get(hub.api("/nonexistent")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.headers().contains_key("x-jupyterhub-version"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], 404);

    let (s, info) = hub.admin_get("/info").await;
    assert_eq!(s, 200);
    assert_eq!(info["version"], "6.1.1");
    let r = c
        .get(format!("{}/hub/health", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // identity needs a token; never ?token=
    let r = c.get(hub.api("/user")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .get(format!("{}?token={ADMIN_TOKEN}", hub.api("/user")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let (s, me) = hub.admin_get("/user").await;
    assert_eq!(s, 200);
    assert_eq!(me["kind"], "service");
    assert_eq!(me["name"], "test-admin");
}

/// The status of a GET of `path` sent as written, with `cookie`.
async fn raw_get(base: &str, path: &str, cookie: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = base.trim_start_matches("http://").trim_end_matches('/');
    let mut conn = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text}"))
}

#[tokio::test]
async fn login_rules_and_next_validation() {
    let hub = Hub::tiny(
        "",
        "[authenticator]\npassword = \"sesame\"\nallowed_users = [\"alice\"]\nadmin_users = [\"root-user\"]\n",
    );
    // wrong password, disallowed user, invalid name: 403 with the form again
    let b = Browser::new(&hub.url);
    assert_eq!(b.login("alice", "wrong", None).await.0, 403);
    assert_eq!(b.login("mallory", "sesame", None).await.0, 403);
    let (s, _) = b.login("a/b", "sesame", None).await;
    assert_eq!(s, 403);
    // a posted form without the right _xsrf is refused
    let r = b
        .client
        .post(b.url("/hub/login"))
        .form(&[
            ("username", "alice"),
            ("password", "sesame"),
            ("_xsrf", "forged"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Login form invalid or expired"));
    // normalisation: surrounding space and upper case
    let (s, loc) = b.login("  Alice ", "sesame", None).await;
    assert_eq!(s, 302);
    assert_eq!(loc.as_deref(), Some("/hub/spawn"));
    let (s, me) = hub.admin_get("/users/alice").await;
    assert_eq!(s, 200, "{me}");
    // the admin from config exists and is an admin
    let (_, admin) = hub.admin_get("/users/root-user").await;
    assert_eq!(admin["admin"], true);
    // cookies as JupyterHub names them
    assert!(b.cookie("/hub/", "jupyterhub-hub-login").is_some());
    assert!(b.cookie("/", "jupyterhub-session-id").is_some());
    assert!(
        b.cookie("/user/alice/", "jupyterhub-hub-login").is_none(),
        "login cookie is for /hub/ only"
    );

    // next: only local paths
    let bad = [
        "//evil.com/x",
        "///evil.com/x",
        "\\\\evil.com/x",
        "/\\evil.com/x",
        "https://evil.com/x",
        "javascript:alert(1)",
        "http://evil.com//x",
    ];
    let own = format!("{}//evil.com/x", hub.url);
    for next in bad.iter().copied().chain([own.as_str()]) {
        let b = Browser::new(&hub.url);
        let (s, loc) = b.login("alice", "sesame", Some(next)).await;
        assert_eq!(s, 302, "{next}");
        let loc = loc.unwrap();
        assert!(
            loc.starts_with('/') && !loc.starts_with("//") && !loc.contains('\\'),
            "next {next:?} redirected to {loc:?}"
        );
        assert!(
            !loc.contains("evil.com") || loc.starts_with("/hub/") || loc.starts_with("/%5C"),
            "{next:?} -> {loc:?}"
        );
        // once logged in, /hub/login?next= is checked the same way
        let r = b
            .get(&format!("/hub/login?next={}", common::urlencode(next)))
            .await;
        let l = r.headers()["location"].to_str().unwrap();
        assert!(
            l.starts_with('/') && !l.starts_with("//"),
            "{next:?} -> {l:?}"
        );
    }
    // a session id planted before the login (fixation) is replaced at login
    let b = Browser::new(&hub.url);
    let planted = "0123456789abcdef0123456789abcdef";
    b.jar.add_cookie_str(
        &format!("jupyterhub-session-id={planted}; Path=/"),
        &hub.url.parse().unwrap(),
    );
    assert_eq!(b.login("alice", "sesame", None).await.0, 302);
    let session = b.cookie("/", "jupyterhub-session-id").unwrap();
    assert_ne!(
        session, planted,
        "the planted session id survived the login"
    );
    assert_eq!(session.len(), 32);
    // pages may be framed by the hub's own pages only; API answers by nothing
    let page = b.get("/hub/token").await;
    assert_eq!(
        page.headers()["content-security-policy"],
        "frame-ancestors 'self'; report-uri /hub/security/csp-report"
    );
    let api = b.get("/hub/api/").await;
    assert_eq!(
        api.headers()["content-security-policy"],
        "frame-ancestors 'none'; report-uri /hub/security/csp-report; default-src 'none'"
    );
    // user-redirect stays below the user's own prefix however a dot segment is written
    // (sent raw: a URL parser would fold the dot segments before they are sent)
    let cookie = b
        .cookies("/hub/")
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    for sneaky in [
        ".%2e/bob/",
        "%2e./bob/",
        "%2E%2e/bob/",
        "a/%2e%2E/%2e%2e/bob",
        "%2f%2fevil.com",
    ] {
        let status = raw_get(&hub.url, &format!("/hub/user-redirect/{sneaky}"), &cookie).await;
        assert_eq!(status, 400, "{sneaky}");
    }
    let r = b.get("/hub/user-redirect/lab/tree/a.ipynb?x=1").await;
    assert_eq!(r.status().as_u16(), 302);
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        "/user/alice/lab/tree/a.ipynb?x=1"
    );

    // same-host absolute URL is reduced to its path
    let b = Browser::new(&hub.url);
    let next = format!("{}/user/alice/tree?x=1", hub.url);
    let (_, loc) = b.login("alice", "sesame", Some(&next)).await;
    assert_eq!(loc.as_deref(), Some("/user/alice/tree?x=1"));

    // an oversized user name is refused and not written whole to the log
    let huge = "z".repeat(5000);
    let b = Browser::new(&hub.url);
    let (s, _) = b.login(&huge, "sesame", None).await;
    assert_eq!(s, 403);
    assert!(
        !hub.log_text().contains(&huge[..200]),
        "the whole name reached the log"
    );
}

#[tokio::test]
async fn start_proxy_stop_through_the_api() {
    let hub = Hub::tiny("", OPEN);
    let (s, _) = hub.admin_send(Method::POST, "/users/alice", None).await;
    assert_eq!(s, 201);
    let (s, _) = hub
        .admin_send(Method::POST, "/users/alice/server", None)
        .await;
    assert!(s == 201 || s == 202, "{s}");
    let model = hub.wait_ready("alice", "", Duration::from_secs(20)).await;
    let pid = model["state"]["pid"].as_i64().unwrap() as i32;
    // the proxy reaches it, path unchanged
    let c = hub.client();
    let r = c
        .get(format!("{}/user/alice/whoami?q=1", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let who: Value = r.json().await.unwrap();
    assert_eq!(who["path"], "/user/alice/whoami");
    assert_eq!(who["user"], "alice");
    // user-redirect: to the logged-in user's own server, through the hub's cookie path
    let b = Browser::new(&hub.url);
    assert_eq!(b.login("alice", "pw", None).await.0, 302);
    let (hops, last) = b.follow("/user-redirect/whoami?x=1").await;
    assert_eq!(last.status(), 200, "{hops:?}");
    let who: Value = last.json().await.unwrap();
    assert_eq!(
        (who["path"].as_str(), who["query"].as_str()),
        (Some("/user/alice/whoami"), Some("x=1"))
    );
    // the proxy table lists it
    let (_, routes) = hub.admin_get("/proxy").await;
    assert!(routes.get("/user/alice/").is_some(), "{routes}");
    // stop: 204, the process group is gone and the prefix no longer reaches it
    let (s, _) = hub
        .admin_send(Method::DELETE, "/users/alice/server", None)
        .await;
    assert!(s == 204 || s == 202, "{s}");
    eventually(
        format!("process group {pid} is gone after the stop"),
        Duration::from_secs(15),
        || async { !group_alive(pid) },
    )
    .await;
    // §8.6: API clients get 424; browsers are sent to the hub, which offers a spawn
    let r = c
        .post(format!("{}/user/alice/api/contents", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        424,
        "a stopped server answers 424 to API clients"
    );
    let v: Value = r.json().await.unwrap();
    assert!(
        v["message"].as_str().unwrap().contains("/hub/spawn/alice"),
        "{v}"
    );
    let r = c
        .get(format!("{}/user/alice/tree", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/hub/user/alice/tree");
    let r = c
        .get(format!("{}/hub/user/alice/api/status", hub.url))
        .header("Authorization", format!("token {ADMIN_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 424);
    let b = Browser::new(&hub.url);
    assert_eq!(b.login("alice", "pw", None).await.0, 302);
    let r = b.get("/hub/user/alice/tree").await;
    assert_eq!(r.status(), 424);
    let html = r.text().await.unwrap();
    assert!(html.contains("/hub/spawn/alice?next="), "{html}");
    let (_, model) = hub.admin_get("/users/alice").await;
    assert_eq!(model["servers"], json!({}));
}

/// Creates alice and starts her default server; her model once it is ready.
async fn alice_with_a_server(hub: &Hub) -> Value {
    hub.admin_send(Method::POST, "/users/alice", None).await;
    hub.admin_send(Method::POST, "/users/alice/server", None)
        .await;
    hub.wait_ready("alice", "", Duration::from_secs(20)).await
}

#[tokio::test]
async fn a_hub_restart_readopts_running_servers() {
    let mut hub = Hub::tiny("", OPEN);
    let before = alice_with_a_server(&hub).await;
    let c = hub.client();
    let who = |c: reqwest::Client, url: String| async move {
        let r = c
            .get(format!("{url}/user/alice/whoami"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()
    };
    let pid = who(c.clone(), hub.url.clone()).await["pid"].clone();
    let status = hub.stop();
    assert!(status.success(), "{status}");
    // the server outlived the hub
    assert!(common::alive(pid.as_i64().unwrap() as i32));
    hub.start();
    let r = c
        .get(format!("{}/user/alice/api", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "re-adopted server answers through the new hub"
    );
    assert_eq!(
        who(c.clone(), hub.url.clone()).await["pid"],
        pid,
        "the same process"
    );
    let after = hub.wait_ready("alice", "", Duration::from_secs(5)).await;
    assert_eq!(after["started"], before["started"]);

    // a server that died while the hub was down is marked stopped at the next start
    hub.stop();
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", pid.as_i64().unwrap())])
        .status();
    hub.start();
    let (_, model) = hub.admin_get("/users/alice").await;
    assert_eq!(model["servers"], json!({}), "{model}");
}

/// A server that does not answer while the hub restarts (its host busy; here stopped
/// with SIGSTOP) is still its user's running server: re-adopted, not killed.
#[tokio::test]
async fn a_hub_restart_readopts_a_running_server_that_is_slow_to_answer() {
    let mut hub = Hub::tiny("", OPEN);
    let before = alice_with_a_server(&hub).await;
    let pid = before["state"]["pid"].as_i64().unwrap() as i32;
    assert!(hub.stop().success());
    let frozen = nix::unistd::Pid::from_raw(pid);
    nix::sys::signal::kill(frozen, nix::sys::signal::Signal::SIGSTOP).unwrap();
    hub.start();
    let (_, model) = hub.admin_get("/users/alice").await;
    nix::sys::signal::kill(frozen, nix::sys::signal::Signal::SIGCONT).unwrap();
    assert_eq!(model["servers"][""]["ready"], true, "{model}");
    assert_eq!(
        model["servers"][""]["started"], before["started"],
        "{model}"
    );
    // it answers again through the hub, the same process
    let r = hub
        .client()
        .get(format!("{}/user/alice/whoami", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let who: Value = r.json().await.unwrap();
    assert_eq!(who["pid"].as_i64(), Some(pid as i64));
}

#[tokio::test]
async fn cleanup_servers_stops_them_with_the_hub() {
    let mut hub = Hub::tiny("", "[authenticator]\nallow_all = true\n");
    // turn on cleanup_servers by rewriting [hub]
    let text = std::fs::read_to_string(&hub.config).unwrap();
    std::fs::write(
        &hub.config,
        text.replacen("[hub]\n", "[hub]\ncleanup_servers = true\n", 1),
    )
    .unwrap();
    hub.stop();
    hub.start();
    let model = alice_with_a_server(&hub).await;
    let pid = model["state"]["pid"].as_i64().unwrap() as i32;
    assert!(hub.stop().success());
    assert!(!group_alive(pid), "cleanup_servers left the server running");
}

#[tokio::test]
async fn spawn_storm_queues_in_arrival_order() {
    const N: usize = 50;
    const LIMIT: usize = 5;
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events");
    let hub = Hub::tiny(
        &format!(
            "concurrent_spawn_limit = {LIMIT}\n[spawner.environment]\nTINY_DELAY_READY_MS = \"400\"\nTINY_EVENTS_FILE = {}\n",
            common::toml_str(&events.to_string_lossy())
        ),
        OPEN,
    );
    let names: Vec<String> = (0..N).map(|i| format!("u{i:02}")).collect();
    let (s, _) = hub
        .admin_send(Method::POST, "/users", Some(json!({ "usernames": names })))
        .await;
    assert_eq!(s, 201);
    // one request every 30 ms: the hub receives them in index order
    let mut tasks = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let c = hub.client();
        let url = hub.api(&format!("/users/{name}/server"));
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30 * i as u64)).await;
            let r = c
                .post(url)
                .header("Authorization", format!("token {ADMIN_TOKEN}"))
                .send()
                .await
                .unwrap();
            r.status().as_u16()
        }));
    }
    for t in tasks {
        let s = t.await.unwrap();
        assert!(s == 201 || s == 202, "a start was refused with {s}");
    }
    for name in &names {
        hub.wait_ready(name, "", Duration::from_secs(60)).await;
    }
    let metrics = hub
        .client()
        .get(hub.api("/metrics"))
        .header("Authorization", format!("token {ADMIN_TOKEN}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let peak = common::metric(&metrics, "galilean_spawns_concurrent_peak");
    assert!(peak as usize <= LIMIT, "{peak} spawns at once");
    assert!(
        peak as usize >= 2,
        "the queue never ran spawns in parallel ({peak})"
    );
    // launch order: a server can only launch once the one LIMIT places ahead of it
    // has finished, so index i+LIMIT never launches before index i
    let log = std::fs::read_to_string(&events).unwrap();
    let order: Vec<usize> = log
        .lines()
        .filter(|l| l.starts_with("start "))
        .map(|l| l.split(' ').nth(1).unwrap()[1..].parse().unwrap())
        .collect();
    assert_eq!(order.len(), N, "{log}");
    for (pos, &i) in order.iter().enumerate() {
        for &later in &order[pos + 1..] {
            assert!(
                later + LIMIT > i,
                "u{later:02} launched after u{i:02} though it arrived {} places earlier: {order:?}",
                i - later
            );
        }
    }
}

#[tokio::test]
async fn failed_starts_keep_the_contract() {
    // a command that prints two lines and exits at once
    let hub = Hub::with(
        "cmd = [\"/bin/sh\", \"-c\", \"echo 'the <b>server</b> cannot start'; echo second line >&2; exit 3\"]\nstart_timeout = 5\nhttp_timeout = 5\nstop_grace = 2\n",
        OPEN,
    );
    hub.admin_send(Method::POST, "/users/alice", None).await;
    let (s, body) = hub
        .admin_send(Method::POST, "/users/alice/server", None)
        .await;
    assert!(
        (400..500).contains(&s) || s == 202,
        "start of a failing command answered {s} {body}"
    );
    assert!(s != 500);
    // the progress stream ends with the failure and the log lines
    let events = progress_events(&hub, "alice").await;
    let last = events.last().unwrap();
    assert_eq!(last["progress"], 100);
    assert_eq!(last["failed"], true);
    let msg = last["message"].as_str().unwrap();
    assert!(
        msg.contains("cannot start") && msg.contains("second line"),
        "{msg}"
    );
    // the server is gone from the user's model
    let (_, model) = hub.admin_get("/users/alice").await;
    assert_eq!(model["servers"], json!({}), "{model}");
    // the spawn-pending page shows the message, escaped
    let b = Browser::new(&hub.url);
    assert_eq!(b.login("alice", "x", None).await.0, 302);
    let r = b.get("/hub/spawn-pending/alice").await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("the &lt;b&gt;server&lt;/b&gt; cannot start"),
        "{html}"
    );
    assert!(!html.contains("<b>server</b>"));
    // and the user can start again (it fails again, but it is a new attempt, not a 5xx)
    let (s, _) = hub
        .admin_send(Method::POST, "/users/alice/server", None)
        .await;
    assert!(s != 500 && s < 500, "{s}");
    let events = progress_events(&hub, "alice").await;
    assert_eq!(events.last().unwrap()["failed"], true);
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let hub = Hub::with(
        &format!(
            "cmd = [{}]\nstart_timeout = 3\nhttp_timeout = 3\nstop_grace = 2\n[spawner.environment]\nTINY_NEVER_LISTEN = \"1\"\n",
            common::toml_str(common::tiny_server_bin())
        ),
        OPEN,
    );
    hub.admin_send(Method::POST, "/users/alice", None).await;
    let (s, _) = hub
        .admin_send(Method::POST, "/users/alice/server", None)
        .await;
    assert!(s < 500, "{s}");
    let events = progress_events(&hub, "alice").await;
    let last = events.last().unwrap();
    assert_eq!(last["failed"], true, "{events:?}");
    assert!(
        last["message"].as_str().unwrap().contains("did not answer"),
        "{last}"
    );
    let (_, model) = hub.admin_get("/users/alice").await;
    assert_eq!(model["servers"], json!({}));
}

/// A hub that stops while a server is still starting leaves the process running, not
/// yet ready: the record holds it from its launch, so the next start of the hub finds it
/// and stops it instead of forgetting it (which let a second start make a second
/// process).
#[tokio::test]
async fn a_server_still_starting_when_the_hub_stops_is_stopped_at_the_next_start() {
    let mut hub = Hub::with(
        &format!(
            "cmd = [{}]\nstart_timeout = 60\nhttp_timeout = 60\nstop_grace = 2\n[spawner.environment]\nTINY_NEVER_LISTEN = \"1\"\n",
            common::toml_str(common::tiny_server_bin())
        ),
        OPEN,
    );
    hub.admin_send(Method::POST, "/users/alice", None).await;
    let (s, _) = hub
        .admin_send(Method::POST, "/users/alice/server", None)
        .await;
    assert_eq!(s, 202);
    let pid: i32 = eventually("a server is launched", Duration::from_secs(10), || async {
        let log = hub.log_text();
        log.split("started server process")
            .nth(1)
            .and_then(|rest| rest.split("pid=").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("the hub's log:\n{log}"))
    })
    .await;
    // the launch reaches the record before the hub goes
    eventually(
        "the record holds the launched process",
        Duration::from_secs(10),
        || async {
            let (_, model) = hub.admin_get("/users/alice").await;
            let recorded = model["servers"][""]["state"]["pid"].as_i64();
            if recorded == Some(pid.into()) {
                Ok(())
            } else {
                Err(model)
            }
        },
    )
    .await;
    hub.stop();
    assert!(common::alive(pid), "the server outlived the hub");
    hub.start();
    eventually(
        "the restarted hub has stopped the earlier spawn",
        Duration::from_secs(10),
        || async { !group_alive(pid) },
    )
    .await;
    let (_, model) = hub.admin_get("/users/alice").await;
    assert_eq!(model["servers"], json!({}), "{model}");
}

/// Reads the progress stream of alice's default server to its end.
async fn progress_events(hub: &Hub, user: &str) -> Vec<Value> {
    let r = hub
        .client()
        .get(hub.api(&format!("/users/{user}/server/progress")))
        .header("Authorization", format!("token {ADMIN_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let text = tokio::time::timeout(Duration::from_secs(30), r.text())
        .await
        .expect("progress stream did not end")
        .unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| serde_json::from_str(d.trim()).unwrap())
        .collect()
}

#[tokio::test]
async fn proxied_requests_do_not_read_the_store() {
    let hub = Hub::tiny("", OPEN);
    hub.admin_send(Method::POST, "/users/alice", None).await;
    hub.admin_send(Method::POST, "/users/alice/server", None)
        .await;
    hub.wait_ready("alice", "", Duration::from_secs(20)).await;
    // let start-up writes and the first activity flush settle
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (reads0, commits0) = hub.store_counters().await;
    let c = hub.client();
    for _ in 0..1000 {
        let r = c
            .get(format!("{}/user/alice/1k", hub.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
    let (reads1, commits1) = hub.store_counters().await;
    assert_eq!(reads1, reads0, "proxying read the store");
    assert!(commits1 - commits0 <= 1, "{} commits", commits1 - commits0);
    // activity arrives in a batch
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (reads2, commits2) = hub.store_counters().await;
    assert!(
        commits2 - commits0 <= 3,
        "{} commits for 1000 requests",
        commits2 - commits0
    );
    // only the batch's own transaction reads (the records it updates)
    assert!(reads2 - reads0 <= 6, "{} reads", reads2 - reads0);
    let (_, model) = hub.admin_get("/users/alice").await;
    assert!(model["servers"][""]["last_activity"].is_string());
}

#[tokio::test]
async fn bad_input_gets_clear_4xx_and_writes_nothing() {
    let hub = Hub::tiny("", OPEN);
    let c = hub.client();
    let send = |method: Method, path: &str, body: Option<&'static str>| {
        let mut r = c
            .request(method, hub.api(path))
            .header("Authorization", format!("token {ADMIN_TOKEN}"));
        if let Some(b) = body {
            r = r.header("Content-Type", "application/json").body(b);
        }
        r.send()
    };
    let cases: Vec<(Method, &str, Option<&'static str>, u16)> = vec![
        (Method::POST, "/users", Some(r#"{"usernames": 5}"#), 400),
        (
            Method::POST,
            "/users",
            Some(r#"{"usernames": ["ok1", "bad/name"]}"#),
            400,
        ),
        (Method::POST, "/users", Some("{not json"), 400),
        (Method::POST, "/users", Some("[]"), 400),
        (Method::GET, "/users/nobody", None, 404),
        (Method::DELETE, "/users/nobody", None, 404),
        (Method::POST, "/users/nobody/server", None, 404),
        (
            Method::PATCH,
            "/users/nobody",
            Some(r#"{"admin": true}"#),
            404,
        ),
        (Method::POST, "/users/alice/servers/x", None, 400),
        (Method::GET, "/users/nobody/tokens/999", None, 404),
        (Method::GET, "/users?offset=abc", None, 400),
        (Method::GET, "/users?state=bogus", None, 400),
    ];
    for (m, path, body, want) in cases {
        let r = send(m.clone(), path, body).await.unwrap();
        let status = r.status().as_u16();
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = r.text().await.unwrap();
        assert_eq!(status, want, "{m} {path} {body:?}: {text}");
        assert_eq!(ct.as_deref(), Some("application/json"), "{m} {path}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["status"], want);
        assert!(
            v["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{text}"
        );
    }
    // nothing of the rejected batch was written
    let (s, _) = hub.admin_get("/users/ok1").await;
    assert_eq!(s, 404, "a rejected batch created a user");
    // an oversized body is refused from its Content-Length, before it is sent
    let addr = hub.url.trim_start_matches("http://").to_owned();
    let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let head = format!(
        "POST /hub/api/users HTTP/1.1\r\nHost: {addr}\r\nAuthorization: token {ADMIN_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{{\"usernames\": [\"",
        3 * 1024 * 1024
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), sock.read(&mut buf))
        .await
        .expect("no answer to an oversized body")
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"status\":413"), "{answer}");
    // bad tokens
    for auth in ["token nope", "Bearer nope", "token", "Basic YTpi"] {
        let r = c
            .get(hub.api("/users"))
            .header("Authorization", auth)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{auth}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["status"], 403);
    }
    // an oversized name in the path is refused and not logged whole
    let long = "q".repeat(4000);
    let (s, _) = hub
        .admin_send(Method::POST, &format!("/users/{long}"), None)
        .await;
    assert_eq!(s, 400);
    assert!(!hub.log_text().contains(&long[..300]));
    // a page that does not exist is a page, not JSON
    let r = c
        .get(format!("{}/hub/nowhere", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    // and nothing above was a 5xx
    assert!(!hub.log_text().contains(" 500 "));
}

#[tokio::test]
async fn config_errors_exit_2_and_name_every_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[hub]\nbind_url = 5\nbogus = true\n[spawner]\nstart_timeout = \"soon\"\n[authenticator]\nallowed_users = \"alice\"\n",
    )
    .unwrap();
    for args in [
        &["config", "check", "--config"][..],
        &["serve", "--config"][..],
    ] {
        let out = std::process::Command::new(common::galilean_bin())
            .args(args)
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        for key in [
            "hub.bind_url",
            "hub.bogus",
            "spawner.start_timeout",
            "authenticator.allowed_users",
        ] {
            assert!(err.contains(key), "{key} missing from:\n{err}");
        }
        assert!(err.contains("bad.toml"));
    }
}

#[test]
fn the_deploy_examples_are_valid_configs() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    let mut files = vec![root.join("single-node.toml")];
    for i in 1..=3 {
        files.push(root.join(format!("three-nodes/node{i}.toml")));
    }
    // the three-node examples name TLS files under /etc/galilean/tls: make a set, the way
    // their comments say, and point copies of the configs at it
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("tls");
    let made = std::process::Command::new(common::galilean_bin())
        .args(["cluster", "certs", "--out"])
        .arg(&certs)
        .args([
            "--node",
            "1=10.0.0.1",
            "--node",
            "2=10.0.0.2",
            "--node",
            "3=10.0.0.3",
        ])
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let copy = tmp.path().join(f.file_name().unwrap());
        std::fs::write(
            &copy,
            text.replace("/etc/galilean/tls/", &format!("{}/", certs.display())),
        )
        .unwrap();
        let out = std::process::Command::new(common::galilean_bin())
            .args(["config", "check", "--config"])
            .arg(&copy)
            .env("GALILEAN_CLUSTER_SECRET", "an-example-secret-of-length")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            f.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
