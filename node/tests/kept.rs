//! What works today and JupyterHub's clients rely on, kept with tests (issue 22, point
//! 8): the login page's anonymous `_xsrf` cookie, an empty body with any Content-Type
//! meaning no body (§2.1), and `ready` false while a server stops.

mod common;

use std::time::Duration;

use common::{Browser, Hub, ADMIN_TOKEN};
use galilean_storage::testing::eventually;
use serde_json::Value;

#[tokio::test]
async fn the_login_page_sets_an_anonymous_xsrf_cookie_matching_its_form() {
    let hub = Hub::tiny("", "[authenticator]\nallow_all = true\n");
    let b = Browser::new(&hub.url);
    let page = b.get("/hub/login").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let form = common::form_value(&html, "_xsrf").expect("_xsrf in the form");
    let cookie = b
        .cookie("/hub/", "_xsrf")
        .expect("an _xsrf cookie before any login");
    assert_eq!(cookie, form);
    assert!(
        b.cookie("/", "_xsrf").is_none(),
        "the cookie is for the hub's path"
    );
}

#[tokio::test]
async fn an_empty_body_of_any_content_type_is_no_body() {
    let hub = Hub::tiny("", "[authenticator]\nallow_all = true\n");
    for ct in [
        "application/json",
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/octet-stream",
    ] {
        let name = format!("e{}", ct.len());
        let r = hub
            .client()
            .post(hub.api(&format!("/users/{name}")))
            .header("Authorization", format!("token {ADMIN_TOKEN}"))
            .header("Content-Type", ct)
            .body("")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{ct}: {}", r.text().await.unwrap());
        let r = hub
            .client()
            .post(hub.api(&format!("/users/{name}/tokens")))
            .header("Authorization", format!("token {ADMIN_TOKEN}"))
            .header("Content-Type", ct)
            .body("")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{ct}");
    }
}

#[tokio::test]
async fn a_stopping_server_is_not_ready() {
    // the server takes its time to stop: it ignores SIGTERM for a while
    let script = format!(
        "trap 'sleep 3; exit 0' TERM; {} & wait $!; wait $!",
        common::tiny_server_bin()
    );
    let hub = Hub::with(
        &format!(
            "cmd = [\"/bin/sh\", \"-c\", {}]\nstart_timeout = 20\nhttp_timeout = 20\nstop_grace = 10\n",
            common::toml_str(&script)
        ),
        "[authenticator]\nallow_all = true\n",
    );
    let client = hub.client();
    let admin =
        |r: reqwest::RequestBuilder| r.header("Authorization", format!("token {ADMIN_TOKEN}"));
    assert_eq!(
        admin(client.post(hub.api("/users/slow")))
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    admin(client.post(hub.api("/users/slow/server")))
        .send()
        .await
        .unwrap();
    eventually(
        "slow's server is ready",
        Duration::from_secs(30),
        || async {
            let (_, u) = hub.admin_get("/users/slow").await;
            (u["servers"][""]["ready"] == true).then_some(())
        },
    )
    .await;
    let stop = {
        let client = client.clone();
        let url = hub.api("/users/slow/server");
        tokio::spawn(async move {
            client
                .delete(url)
                .header("Authorization", format!("token {ADMIN_TOKEN}"))
                .send()
                .await
                .map(|r| r.status().as_u16())
        })
    };
    let seen: Value = eventually(
        "the server shows pending stop",
        Duration::from_secs(10),
        || async {
            let (_, u) = hub.admin_get("/users/slow").await;
            let s = &u["servers"][""];
            (s["pending"] == "stop").then(|| s.clone())
        },
    )
    .await;
    assert_eq!(
        seen["ready"], false,
        "a stopping server is not ready: {seen}"
    );
    assert_eq!(seen["stopped"], false);
    let status = stop.await.unwrap().unwrap();
    assert!(status == 202 || status == 204, "{status}");
}
