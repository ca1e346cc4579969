//! The hub's own operations on a real hub process: the proxy's routing table and its
//! re-sync (§2.11), the deprecated endpoints (§2.14), and the metrics page with
//! JupyterHub's metric names (§2.3); each with its scope and its bad input.

mod common;

use std::time::Duration;

use common::{urlencode, Browser, Hub, ADMIN_TOKEN};
use galilean_storage::testing::eventually;
use reqwest::Method;
use serde_json::{json, Value};

const OPEN: &str = "[authenticator]\nallow_all = true\n";

fn tiny_spawner() -> String {
    format!(
        "cmd = [{}]\nstart_timeout = 20\nhttp_timeout = 20\nstop_grace = 3\n",
        common::toml_str(common::tiny_server_bin())
    )
}

/// A request with `token` (none when empty), an optional raw body and extra headers:
/// status and body text.
async fn send(
    hub: &Hub,
    token: &str,
    m: Method,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let url = if path.starts_with("/hub/") {
        format!("{}{path}", hub.url)
    } else {
        hub.api(path)
    };
    let mut r = hub.client().request(m, url);
    if !token.is_empty() {
        r = r.header("Authorization", format!("token {token}"));
    }
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    if let Some(b) = body {
        r = r
            .header("Content-Type", "application/json")
            .body(b.to_owned());
    }
    let r = r.send().await.expect("request");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// As [`send`], the body read as JSON (`null` when it is not).
async fn call(hub: &Hub, token: &str, m: Method, path: &str, body: Option<&str>) -> (u16, Value) {
    let (s, text) = send(hub, token, m, path, body, &[]).await;
    (s, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn user_with_token(hub: &Hub, name: &str) -> String {
    let (s, _) = hub
        .admin_send(Method::POST, &format!("/users/{name}"), None)
        .await;
    assert_eq!(s, 201);
    let (s, tok) = hub
        .admin_send(
            Method::POST,
            &format!("/users/{name}/tokens"),
            Some(json!({"note": "test"})),
        )
        .await;
    assert_eq!(s, 201, "{tok}");
    tok["token"].as_str().unwrap().to_owned()
}

async fn start(hub: &Hub, name: &str) {
    let (s, _) = hub
        .admin_send(Method::POST, &format!("/users/{name}/server"), None)
        .await;
    assert!(s == 201 || s == 202, "{s}");
    hub.wait_ready(name, "", Duration::from_secs(20)).await;
}

/// The value of the sample `line_start` (a metric name and its labels) in `text`.
fn sample(text: &str, line_start: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(line_start)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn the_proxy_table_pages_like_an_object_and_resyncs() {
    let hub = Hub::with(&tiny_spawner(), OPEN);
    let alice = user_with_token(&hub, "alice").await;
    user_with_token(&hub, "bob").await;
    start(&hub, "alice").await;
    start(&hub, "bob").await;

    // the whole table: the hub's route, then each running server
    let (s, all) = call(&hub, ADMIN_TOKEN, Method::GET, "/proxy", None).await;
    assert_eq!(s, 200, "{all}");
    let keys: Vec<&String> = all.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["/", "/user/alice/", "/user/bob/"]);
    assert_eq!(
        all["/"],
        json!({"routespec": "/", "target": hub.url, "data": {"hub": true}})
    );
    assert_eq!(all["/user/alice/"]["routespec"], "/user/alice/");
    assert_eq!(all["/user/alice/"]["data"]["user"], "alice");
    assert_eq!(all["/user/alice/"]["data"]["server_name"], "");
    assert!(all["/user/alice/"]["target"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));

    // a page of it, bare, and in the envelope with an object of items
    let (s, page) = call(
        &hub,
        ADMIN_TOKEN,
        Method::GET,
        "/proxy?limit=1&offset=1",
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(page, json!({"/user/alice/": all["/user/alice/"]}));
    let (s, text) = send(
        &hub,
        ADMIN_TOKEN,
        Method::GET,
        "/proxy?offset=-1&limit=1",
        None,
        &[("Accept", "application/jupyterhub-pagination+json")],
    )
    .await;
    assert_eq!(s, 200);
    let env: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(env["items"], json!({"/user/alice/": all["/user/alice/"]}));
    assert_eq!(env["_pagination"]["total"], 3);
    assert_eq!(env["_pagination"]["offset"], 1);
    assert_eq!(env["_pagination"]["next"]["offset"], 2);
    let (s, text) = send(
        &hub,
        ADMIN_TOKEN,
        Method::GET,
        "/proxy",
        None,
        &[("Accept", "application/jupyterhub-pagination+json")],
    )
    .await;
    let env: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (s, &env["items"], &env["_pagination"]["next"]),
        (200, &all, &Value::Null)
    );
    let (s, v) = call(&hub, ADMIN_TOKEN, Method::GET, "/proxy?limit=two", None).await;
    assert_eq!(
        (s, v["message"].as_str()),
        (
            400,
            Some("Invalid argument type, offset and limit must be integers")
        )
    );

    // POST re-syncs: 200, empty; the servers are still reached through the proxy
    let (s, text) = send(&hub, ADMIN_TOKEN, Method::POST, "/proxy", None, &[]).await;
    assert_eq!((s, text.as_str()), (200, ""));
    let r = hub
        .client()
        .get(format!("{}/user/alice/whoami", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(hub
        .log_text()
        .contains("the proxy's routes were rebuilt from the replica"));

    // PATCH: a JSON object with string fields, else 400; then the same re-sync
    for (body, message) in [
        (None, "need JSON body"),
        (Some("[1]"), "Request body must be JSON dict"),
        (Some("{"), "Request body must be JSON dict"),
        (Some(r#"{"api_url": 5}"#), "api_url must be a string"),
        (
            Some(r#"{"auth_token": null}"#),
            "auth_token must be a string",
        ),
    ] {
        let (s, v) = call(&hub, ADMIN_TOKEN, Method::PATCH, "/proxy", body).await;
        assert_eq!(v, json!({"status": 400, "message": message}), "{body:?}");
        assert_eq!(s, 400);
    }
    let secret = "proxy-secret-not-for-logs-42";
    let body = json!({"api_url": "http://10.0.0.9:8001", "auth_token": secret}).to_string();
    let (s, text) = send(&hub, ADMIN_TOKEN, Method::PATCH, "/proxy", Some(&body), &[]).await;
    assert_eq!((s, text.as_str()), (200, ""));
    let log = hub.log_text();
    assert!(
        log.contains("the built-in proxy has nothing to re-point"),
        "{log}"
    );
    assert!(!log.contains(secret), "the proxy token reached the log");

    // every method wants the proxy scope
    for m in [Method::GET, Method::POST, Method::PATCH] {
        let (s, v) = call(&hub, &alice, m.clone(), "/proxy", Some("{}")).await;
        assert_eq!(s, 403, "{m}");
        assert_eq!(
            v["message"],
            "Action is not authorized with current scopes; requires any of [proxy]"
        );
    }
}

#[tokio::test]
async fn legacy_endpoints_and_metrics() {
    let hub = Hub::with(&tiny_spawner(), OPEN);
    let alice = user_with_token(&hub, "alice").await;
    let bob = user_with_token(&hub, "bob").await;
    start(&hub, "alice").await;

    // GET /authorizations/token/{token}: the owner's model, with its identify scopes
    let (s, v) = call(
        &hub,
        ADMIN_TOKEN,
        Method::GET,
        &format!("/authorizations/token/{alice}"),
        None,
    )
    .await;
    assert_eq!(
        (s, v["kind"].as_str(), v["name"].as_str()),
        (200, Some("user"), Some("alice"))
    );
    assert!(v["servers"][""]["ready"] == true, "{v}");
    let (s, v) = call(
        &hub,
        &alice,
        Method::GET,
        &format!("/authorizations/token/{bob}"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let mut keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["admin", "groups", "kind", "name", "user_info"],
        "{v}"
    );
    let (s, v) = call(
        &hub,
        &bob,
        Method::GET,
        &format!("/authorizations/token/{ADMIN_TOKEN}"),
        None,
    )
    .await;
    assert_eq!(
        (s, v),
        (
            200,
            json!({"kind": "service", "name": "test-admin", "admin": true})
        )
    );
    let (s, v) = call(
        &hub,
        &bob,
        Method::GET,
        "/authorizations/token/no-such-token-0123",
        None,
    )
    .await;
    assert_eq!((s, v), (404, json!({"status": 404, "message": null})));
    // only a token authenticates it
    let (s, _) = call(
        &hub,
        "",
        Method::GET,
        &format!("/authorizations/token/{bob}"),
        None,
    )
    .await;
    assert_eq!(s, 403);
    let log = hub.log_text();
    assert!(log.contains("/authorizations/token/:token endpoint is deprecated"));
    assert!(
        !log.contains(&bob) && !log.contains(&alice),
        "a token reached the log"
    );

    // POST /authorizations/token: removed
    for path in ["/authorizations/token", "/authorizations/token/abc"] {
        let (s, v) = call(&hub, &bob, Method::POST, path, Some("{}")).await;
        assert_eq!(s, 404);
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains("/hub/api/users/:user/tokens"),
            "{v}"
        );
    }

    // GET /authorizations/cookie/{name}[/{value}]: who a login cookie names
    let b = Browser::new(&hub.url);
    assert_eq!(b.login("carol", "pw", None).await.0, 302);
    let cookie = b
        .cookie("/hub/", "jupyterhub-hub-login")
        .expect("login cookie");
    let path = format!(
        "/authorizations/cookie/jupyterhub-hub-login/{}",
        urlencode(&cookie)
    );
    let (s, v) = call(&hub, ADMIN_TOKEN, Method::GET, &path, None).await;
    assert_eq!(
        (s, v["name"].as_str(), v["kind"].as_str()),
        (200, Some("carol"), Some("user"))
    );
    // the value in the body, as JupyterHub reads it
    let (s, text) = send(
        &hub,
        ADMIN_TOKEN,
        Method::GET,
        "/authorizations/cookie/jupyterhub-hub-login",
        Some(&cookie),
        &[],
    )
    .await;
    assert_eq!(s, 200, "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["name"],
        "carol"
    );
    // a caller that may read nothing of carol sees nothing of her
    let (s, v) = call(&hub, &bob, Method::GET, &path, None).await;
    assert_eq!((s, v), (200, json!({})));
    for path in [
        format!("/authorizations/cookie/other-cookie/{}", urlencode(&cookie)),
        "/authorizations/cookie/jupyterhub-hub-login/garbage".to_owned(),
        "/authorizations/cookie/jupyterhub-hub-login".to_owned(),
    ] {
        let (s, v) = call(&hub, ADMIN_TOKEN, Method::GET, &path, None).await;
        assert_eq!(
            (s, v),
            (404, json!({"status": 404, "message": null})),
            "{path}"
        );
    }
    // not with the cookie itself
    let r = b
        .client
        .get(format!("{}/hub/api{path}", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // POST /users/{name}/admin-access: scope servers; off, as in JupyterHub by default
    let (s, v) = call(
        &hub,
        ADMIN_TOKEN,
        Method::POST,
        "/users/alice/admin-access",
        None,
    )
    .await;
    assert_eq!(
        (s, v["message"].as_str()),
        (403, Some("admin access to user servers disabled"))
    );
    let (s, v) = call(&hub, &bob, Method::POST, "/users/alice/admin-access", None).await;
    assert_eq!(
        (s, v["message"].as_str()),
        (404, Some("No access to resources or resources not found"))
    );

    // metrics: read:metrics, at /hub/metrics and /hub/api/metrics
    for (token, path) in [
        ("", "/hub/metrics"),
        (bob.as_str(), "/hub/metrics"),
        ("", "/metrics"),
    ] {
        let (s, v) = call(&hub, token, Method::GET, path, None).await;
        assert_eq!(
            (s, v),
            (
                403,
                json!({"status": 403, "message": "Access to metrics requires scope 'read:metrics'"})
            ),
            "{path}"
        );
    }
    let metrics = eventually("the spawn is counted", Duration::from_secs(10), || async {
        let (s, text) = send(&hub, ADMIN_TOKEN, Method::GET, "/hub/metrics", None, &[]).await;
        assert_eq!(s, 200, "{text}");
        let spawned = sample(
            &text,
            r#"jupyterhub_server_spawn_duration_seconds_count{status="success",reason=""}"#,
        );
        if spawned == Some(1.0) {
            Ok(text)
        } else {
            Err(text)
        }
    })
    .await;
    assert_eq!(
        sample(&metrics, "jupyterhub_total_users"),
        Some(3.0),
        "{metrics}"
    );
    assert_eq!(sample(&metrics, "jupyterhub_running_servers"), Some(1.0));
    for period in ["24h", "7d", "30d"] {
        let n = sample(
            &metrics,
            &format!("jupyterhub_active_users{{period=\"{period}\"}}"),
        );
        assert!(n.is_some(), "{period}: {metrics}");
    }
    let users = sample(
        &metrics,
        r#"jupyterhub_request_duration_seconds_count{method="POST",handler="/hub/api/users/{name}",code="201"}"#,
    );
    assert_eq!(users, Some(2.0), "{metrics}");
    let refused = sample(
        &metrics,
        r#"jupyterhub_request_duration_seconds_count{method="GET",handler="/hub/metrics",code="403"}"#,
    );
    assert_eq!(refused, Some(2.0), "{metrics}");
    assert!(metrics.contains(
        r#"jupyterhub_request_duration_seconds_bucket{method="POST",handler="/hub/api/users/{name}",code="201",le="+Inf"} 2.0"#
    ));
    assert_eq!(
        sample(&metrics, "jupyterhub_hub_startup_duration_seconds_count"),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &metrics,
            r#"jupyterhub_login_duration_seconds_count{status="success"}"#
        ),
        Some(1.0)
    );
    for zero in [
        r#"jupyterhub_server_spawn_duration_seconds_count{status="failure",reason="throttled"}"#,
        r#"jupyterhub_server_stop_seconds_count{status="success"}"#,
    ] {
        assert_eq!(sample(&metrics, zero), Some(0.0), "{zero}");
    }
    assert!(metrics.contains("# TYPE jupyterhub_request_duration_seconds histogram"));
    // Galilean's own are still there
    assert_eq!(common::metric(&metrics, "galilean_running_servers"), 1);
    assert!(common::metric(&metrics, "galilean_store_reads_total") > 0);
    // a stop is timed too
    let (s, _) = hub
        .admin_send(Method::DELETE, "/users/alice/server", None)
        .await;
    assert!(s == 202 || s == 204, "{s}");
    eventually("the stop is counted", Duration::from_secs(15), || async {
        let (_, text) = send(
            &hub,
            ADMIN_TOKEN,
            Method::GET,
            "/hub/api/metrics",
            None,
            &[],
        )
        .await;
        let stopped = sample(
            &text,
            r#"jupyterhub_server_stop_seconds_count{status="success"}"#,
        );
        if stopped == Some(1.0) {
            Ok(())
        } else {
            Err(text)
        }
    })
    .await;
}

#[tokio::test]
async fn open_metrics_and_admin_access_when_configured() {
    let hub = Hub::with_hub(
        "authenticate_prometheus = false\nadmin_access = true\n",
        &tiny_spawner(),
        OPEN,
    );
    let (s, text) = send(&hub, "", Method::GET, "/hub/metrics", None, &[]).await;
    assert_eq!(s, 200);
    assert!(text.contains("jupyterhub_total_users"), "{text}");
    let (s, v) = call(
        &hub,
        ADMIN_TOKEN,
        Method::POST,
        "/users/dora/admin-access",
        None,
    )
    .await;
    assert_eq!((s, v), (404, json!({"status": 404, "message": null})));
    let dora = user_with_token(&hub, "dora").await;
    let (s, text) = send(
        &hub,
        ADMIN_TOKEN,
        Method::POST,
        "/users/dora/admin-access",
        None,
        &[],
    )
    .await;
    assert_eq!((s, text.as_str()), (200, ""));
    // dora's own `servers` scope covers herself
    let (s, _) = call(&hub, &dora, Method::POST, "/users/dora/admin-access", None).await;
    assert_eq!(s, 200);
    assert!(hub.log_text().contains("Admin access API is not needed"));
}
