//! End to end with the real `jupyterhub-singleuser` (PyPI jupyterhub==6.1.1) and
//! JupyterLab: log in with the form, start servers through the API and the spawn page,
//! follow the OAuth dance to `/user/<name>/lab`, and run code in a kernel over its
//! WebSocket through the proxy. Also isolation between two users.
//!
//! The Python environment comes from `scripts/venv` (run by `scripts/test`); set
//! `GALILEAN_TEST_VENV` to use another one.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{Browser, Hub, ADMIN_TOKEN};
use futures::{SinkExt, StreamExt};
use galilean_storage::testing::{eventually, Lazy};
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

fn venv_bin() -> PathBuf {
    let dir = match std::env::var_os("GALILEAN_TEST_VENV") {
        Some(v) => PathBuf::from(v),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin"),
    };
    let singleuser = dir.join("jupyterhub-singleuser");
    assert!(
        singleuser.exists(),
        "{} is missing: run scripts/venv (scripts/test does) to create the Python environment",
        singleuser.display()
    );
    dir
}

fn jupyter_hub() -> Hub {
    let bin = venv_bin();
    let spawner = format!(
        "cmd = [{}]\nargs = [\"--allow-root\"]\nstart_timeout = 120\nhttp_timeout = 120\nstop_grace = 5\n",
        common::toml_str(&bin.join("jupyterhub-singleuser").to_string_lossy()),
    );
    Hub::with(
        &spawner,
        "[authenticator]\npassword = \"pw\"\nallowed_users = [\"alice\", \"bob\"]\n",
    )
}

/// Polls the spawn-pending page until it redirects to the server.
async fn wait_pending(b: &Browser, user: &str, hub: &Hub) -> String {
    let what = Lazy(|| {
        format!(
            "{user}'s server is ready; the hub's log:\n{}",
            hub.log_text()
        )
    });
    eventually(what, Duration::from_secs(150), || async {
        let r = b.get(&format!("/hub/spawn-pending/{user}")).await;
        if r.status() == 302 {
            return Some(r.headers()["location"].to_str().unwrap().to_owned());
        }
        assert_eq!(r.status(), 200, "spawn-pending answered {}", r.status());
        None
    })
    .await
}

/// Creates a kernel through the proxy and runs `print(6*7)` over its WebSocket.
async fn run_code(b: &Browser, hub: &Hub, user: &str) -> String {
    let prefix = format!("/user/{user}/");
    let xsrf = b
        .cookie(&prefix, "_xsrf")
        .expect("the server set its _xsrf cookie");
    let r = b
        .client
        .post(b.url(&format!("{prefix}api/kernels")))
        .header("X-XSRFToken", &xsrf)
        .json(&json!({"name": "python3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let kernel: Value = r.json().await.unwrap();
    let id = kernel["id"].as_str().unwrap().to_owned();

    let ws_url = format!(
        "{}{prefix}api/kernels/{id}/channels?session_id=galilean-test",
        hub.url.replacen("http://", "ws://", 1)
    );
    let mut req = ws_url.into_client_request().unwrap();
    let cookies: Vec<String> = b
        .cookies(&prefix)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    req.headers_mut()
        .insert("Cookie", cookies.join("; ").parse().unwrap());
    req.headers_mut()
        .insert("X-XSRFToken", xsrf.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("kernel WebSocket through the proxy");
    let msg_id = "galilean-exec-1";
    let execute = json!({
        "header": {"msg_id": msg_id, "username": user, "session": "galilean-test",
                   "msg_type": "execute_request", "version": "5.3",
                   "date": "2026-01-01T00:00:00.000000Z"},
        "parent_header": {}, "metadata": {},
        "content": {"code": "print(6*7)", "silent": false, "store_history": false,
                    "user_expressions": {}, "allow_stdin": false, "stop_on_error": true},
        "channel": "shell", "buffers": []
    });
    ws.send(Message::text(execute.to_string())).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, ws.next())
            .await
            .expect("no output from the kernel")
            .expect("WebSocket closed")
            .unwrap();
        let Message::Text(text) = msg else { continue };
        let v: Value = serde_json::from_str(&text).unwrap();
        if v["parent_header"]["msg_id"] == msg_id && v["msg_type"] == "stream" {
            let _ = ws.close(None).await;
            return v["content"]["text"].as_str().unwrap().to_owned();
        }
    }
}

#[tokio::test]
async fn jupyterlab_through_galilean() {
    let hub = jupyter_hub();

    // alice logs in with the form; her server is started through the API
    let alice = Browser::new(&hub.url);
    let (s, loc) = alice.login("alice", "pw", None).await;
    assert_eq!(s, 302);
    assert_eq!(loc.as_deref(), Some("/hub/spawn"));
    let (s, body) = hub
        .admin_send(Method::POST, "/users/alice/server", None)
        .await;
    assert!(s == 201 || s == 202, "{s} {body}");
    hub.wait_ready("alice", "", Duration::from_secs(150)).await;

    // the OAuth dance ends on JupyterLab's page
    let (hops, page) = alice.follow("/user/alice/lab").await;
    let paths: Vec<String> = hops
        .iter()
        .map(|(_, u)| reqwest::Url::parse(u).unwrap().path().to_owned())
        .collect();
    assert_eq!(
        paths,
        [
            "/user/alice/lab",
            "/hub/api/oauth2/authorize",
            "/user/alice/oauth_callback",
            "/user/alice/lab"
        ],
        "{hops:?}"
    );
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("JupyterLab"), "not JupyterLab's page");

    // code runs in a kernel, over the WebSocket, through the proxy
    let out = run_code(&alice, &hub, "alice").await;
    assert_eq!(out.trim(), "42");

    // bob starts his server through the spawn page
    let bob = Browser::new(&hub.url);
    let (s, loc) = bob.login("bob", "pw", None).await;
    assert_eq!((s, loc.as_deref()), (302, Some("/hub/spawn")));
    let r = bob.get("/hub/spawn").await;
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/hub/spawn-pending/bob");
    let ready = wait_pending(&bob, "bob", &hub).await;
    assert_eq!(ready, "/user/bob/");
    let (_, page) = bob.follow("/user/bob/lab").await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("JupyterLab"));

    // isolation: bob's browser is refused by the hub for alice's client ...
    let r = bob
        .get("/hub/api/oauth2/authorize?client_id=jupyterhub-user-alice&redirect_uri=%2Fuser%2Falice%2Foauth_callback&response_type=code&state=abc")
        .await;
    assert_eq!(r.status(), 403);
    // ... and following alice's URL never yields her content
    let (hops, last) = bob.follow("/user/alice/lab").await;
    assert_eq!(last.status(), 403, "{hops:?}");
    assert!(!hops
        .iter()
        .any(|(s, u)| *s == 200 && u.contains("/user/alice/")));
    // a token of bob's is refused on alice's paths
    let (s, tok) = hub
        .admin_send(
            Method::POST,
            "/users/bob/tokens",
            Some(json!({"note": "t"})),
        )
        .await;
    assert_eq!(s, 201);
    let bob_token = tok["token"].as_str().unwrap().to_owned();
    let c = hub.client();
    let as_bob = |m: Method, url: String| {
        c.request(m, url)
            .header("Authorization", format!("token {bob_token}"))
            .send()
    };
    for (m, path) in [
        (Method::GET, "/hub/api/users/alice"),
        (Method::POST, "/hub/api/users/alice/server"),
        (Method::DELETE, "/hub/api/users/alice/server"),
        (Method::GET, "/hub/api/users/alice/tokens"),
    ] {
        let r = as_bob(m.clone(), format!("{}{path}", hub.url))
            .await
            .unwrap();
        assert!(
            r.status() == 403 || r.status() == 404,
            "{m} {path} with bob's token: {}",
            r.status()
        );
    }
    // alice's own server refuses bob's token too
    let r = as_bob(Method::GET, format!("{}/user/alice/api/contents", hub.url))
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // while bob's token works on his own server
    let r = as_bob(Method::GET, format!("{}/user/bob/api/contents", hub.url))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    for user in ["alice", "bob"] {
        let (s, _) = hub
            .admin_send(Method::DELETE, &format!("/users/{user}/server"), None)
            .await;
        assert!(s == 204 || s == 202);
    }
    let _ = ADMIN_TOKEN;
}
