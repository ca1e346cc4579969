//! JupyterHub 6's `GET`, `PUT` and `PATCH /users/{name}/servers/{server}` (§2.6) with a
//! real hub process: a named server made without starting it, read, changed and renamed
//! while stopped (its shares following it), refused while running, and bad input.

mod common;

use std::time::Duration;

use common::{Hub, ADMIN_TOKEN};
use galilean_storage::testing::eventually;
use reqwest::Method;
use serde_json::{json, Value};

async fn call(hub: &Hub, m: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = hub
        .client()
        .request(m, hub.api(path))
        .header("Authorization", format!("token {ADMIN_TOKEN}"));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let s = r.status().as_u16();
    let text = r.text().await.unwrap();
    (s, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_named_server_is_made_read_changed_and_renamed_while_stopped() {
    let hub = Hub::with_hub(
        "allow_named_servers = true\nnamed_server_limit_per_user = 3\n",
        &format!(
            "cmd = [{}]\nstart_timeout = 20\nhttp_timeout = 20\nstop_grace = 3\n",
            common::toml_str(common::tiny_server_bin())
        ),
        "[authenticator]\nallow_all = true\n",
    );
    assert_eq!(call(&hub, Method::POST, "/users/alice", None).await.0, 201);
    assert_eq!(call(&hub, Method::POST, "/users/bob", None).await.0, 201);

    let (s, m) = call(
        &hub,
        Method::PUT,
        "/users/alice/servers/nb1",
        Some(json!({"display_name": "My NB 1", "user_options": {"a": "b"}})),
    )
    .await;
    assert_eq!(s, 201, "{m}");
    assert_eq!(m["name"], "nb1");
    assert_eq!(m["display_name"], "My NB 1");
    assert_eq!(m["ready"], false);
    assert_eq!(m["stopped"], true);
    assert_eq!(m["user_options"], json!({"a": "b"}));
    assert_eq!(m["url"], "/user/alice/nb1/");
    let (s, e) = call(&hub, Method::PUT, "/users/alice/servers/nb1", None).await;
    assert_eq!(
        (s, e["message"].clone()),
        (409, json!("User alice already has server nb1"))
    );
    let (s, _) = call(&hub, Method::PUT, "/users/alice/servers/", None).await;
    assert_eq!(s, 409);
    let (s, e) = call(&hub, Method::PUT, "/users/alice/servers/Bad_Name", None).await;
    assert_eq!(
        (s, e["message"].clone()),
        (400, json!("Invalid server_name: 'Bad_Name'"))
    );
    let (s, m) = call(&hub, Method::GET, "/users/alice/servers/nb1", None).await;
    assert_eq!((s, m["display_name"].clone()), (200, json!("My NB 1")));
    let (s, _) = call(&hub, Method::GET, "/users/alice/servers/nope", None).await;
    assert_eq!(s, 404);

    // a share of nb1 follows its rename
    let (s, _) = call(
        &hub,
        Method::POST,
        "/shares/alice/nb1",
        Some(json!({"user": "bob"})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, m) = call(
        &hub,
        Method::PATCH,
        "/users/alice/servers/nb1",
        Some(json!({"name": "nb2", "user_options": {"c": 1}})),
    )
    .await;
    assert_eq!(s, 200, "{m}");
    assert_eq!(
        (m["name"].clone(), m["user_options"].clone()),
        (json!("nb2"), json!({"c": 1}))
    );
    assert_eq!(
        m["display_name"], "My NB 1",
        "a display name of its own stays"
    );
    assert_eq!(
        call(&hub, Method::GET, "/users/alice/servers/nb1", None)
            .await
            .0,
        404
    );
    let (_, shares) = call(&hub, Method::GET, "/shares/alice/nb2", None).await;
    assert_eq!(
        shares["items"][0]["scopes"],
        json!(["access:servers!server=alice/nb2"])
    );

    // bad edits: nothing changes
    for (body, status) in [
        (json!({}), 400),
        (json!({"colour": "red"}), 400),
        (json!({"user_options": [1]}), 400),
        (json!({"name": 7}), 400),
        (json!({"name": "Bad Name"}), 400),
        (json!({"display_name": "  "}), 400),
    ] {
        let (s, e) = call(
            &hub,
            Method::PATCH,
            "/users/alice/servers/nb2",
            Some(body.clone()),
        )
        .await;
        assert_eq!(s, status, "{body}: {e}");
        assert!(e["message"].is_string(), "{body}: {e}");
    }
    let (s, _) = call(&hub, Method::PUT, "/users/alice/servers/other", None).await;
    assert_eq!(s, 201);
    let (s, _) = call(
        &hub,
        Method::PATCH,
        "/users/alice/servers/nb2",
        Some(json!({"name": "other"})),
    )
    .await;
    assert_eq!(s, 409);
    let (_, m) = call(&hub, Method::GET, "/users/alice/servers/nb2", None).await;
    assert_eq!(m["user_options"], json!({"c": 1}));

    // running: refused until it stops
    let (s, _) = call(&hub, Method::POST, "/users/alice/servers/nb2", None).await;
    assert!(s == 201 || s == 202, "{s}");
    eventually("nb2 is ready", Duration::from_secs(30), || async {
        let (_, m) = call(&hub, Method::GET, "/users/alice/servers/nb2", None).await;
        (m["ready"] == true).then_some(())
    })
    .await;
    let (_, m) = call(&hub, Method::GET, "/users/alice/servers/nb2", None).await;
    assert_eq!(
        m["user_options"],
        json!({"c": 1}),
        "the start used the stored options"
    );
    let (s, e) = call(
        &hub,
        Method::PATCH,
        "/users/alice/servers/nb2",
        Some(json!({"display_name": "x"})),
    )
    .await;
    assert_eq!(s, 400, "{e}");
    assert!(e["message"].as_str().unwrap().contains("is active"), "{e}");
    let (s, _) = call(&hub, Method::DELETE, "/users/alice/servers/nb2", None).await;
    assert!(s == 204 || s == 202);
    eventually("nb2 stops", Duration::from_secs(30), || async {
        let (_, m) = call(&hub, Method::GET, "/users/alice/servers/nb2", None).await;
        (m["stopped"] == true).then_some(())
    })
    .await;
    let (s, m) = call(
        &hub,
        Method::PATCH,
        "/users/alice/servers/nb2",
        Some(json!({"display_name": "Back"})),
    )
    .await;
    assert_eq!((s, m["display_name"].clone()), (200, json!("Back")));
    // the default server through /servers/
    let (s, _) = call(
        &hub,
        Method::PATCH,
        "/users/alice/servers/",
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn a_user_is_renamed_with_what_names_it_and_never_while_a_server_runs() {
    let hub = Hub::with_hub(
        "allow_named_servers = true\n",
        &format!(
            "cmd = [{}]\nstart_timeout = 20\nhttp_timeout = 20\nstop_grace = 3\n",
            common::toml_str(common::tiny_server_bin())
        ),
        "[authenticator]\nallow_all = true\n",
    );
    for u in ["alice", "bob"] {
        assert_eq!(
            call(&hub, Method::POST, &format!("/users/{u}"), None)
                .await
                .0,
            201
        );
    }
    let (s, t) = call(&hub, Method::POST, "/users/alice/tokens", Some(json!({}))).await;
    assert_eq!(s, 201);
    let token = t["token"].as_str().unwrap().to_owned();
    assert_eq!(
        call(
            &hub,
            Method::POST,
            "/groups/g",
            Some(json!({"users": ["alice"]}))
        )
        .await
        .0,
        201
    );
    assert_eq!(
        call(&hub, Method::PUT, "/users/alice/servers/nb", None)
            .await
            .0,
        201
    );

    // refused: a taken name, an invalid one, a running server; nothing moves
    let (s, e) = call(
        &hub,
        Method::PATCH,
        "/users/alice",
        Some(json!({"name": "bob"})),
    )
    .await;
    assert_eq!(
        (s, e["message"].clone()),
        (
            400,
            json!("User bob already exists, username must be unique")
        )
    );
    let (s, _) = call(
        &hub,
        Method::PATCH,
        "/users/alice",
        Some(json!({"name": "a/b"})),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = call(&hub, Method::POST, "/users/alice/server", None).await;
    assert!(s == 201 || s == 202);
    eventually(
        "alice's server is ready",
        Duration::from_secs(30),
        || async {
            let (_, u) = call(&hub, Method::GET, "/users/alice", None).await;
            (u["servers"][""]["ready"] == true).then_some(())
        },
    )
    .await;
    let (s, e) = call(
        &hub,
        Method::PATCH,
        "/users/alice",
        Some(json!({"name": "alicia", "admin": true})),
    )
    .await;
    assert_eq!(s, 400, "{e}");
    let (_, u) = call(&hub, Method::GET, "/users/alice", None).await;
    assert_eq!(u["admin"], false, "a refused rename wrote its admin change");
    let (s, _) = call(&hub, Method::DELETE, "/users/alice/server", None).await;
    assert!(s == 204 || s == 202);
    eventually("alice's server stops", Duration::from_secs(30), || async {
        let (_, u) = call(&hub, Method::GET, "/users/alice", None).await;
        u["servers"]
            .as_object()
            .is_some_and(|m| m.is_empty())
            .then_some(())
    })
    .await;

    // renamed: the name normalised, her token, group and server follow her
    let (s, u) = call(
        &hub,
        Method::PATCH,
        "/users/alice",
        Some(json!({"name": "Alicia"})),
    )
    .await;
    assert_eq!(s, 200, "{u}");
    assert_eq!(u["name"], "alicia");
    assert_eq!(call(&hub, Method::GET, "/users/alice", None).await.0, 404);
    let me: Value = hub
        .client()
        .get(hub.api("/user"))
        .header("Authorization", format!("token {token}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["name"], "alicia");
    assert_eq!(me["groups"], json!(["g"]));
    let (s, m) = call(&hub, Method::GET, "/users/alicia/servers/nb", None).await;
    assert_eq!((s, m["url"].clone()), (200, json!("/user/alicia/nb/")));
    // a new alice is someone else: the old token is not hers
    assert_eq!(call(&hub, Method::POST, "/users/alice", None).await.0, 201);
    let me: Value = hub
        .client()
        .get(hub.api("/user"))
        .header("Authorization", format!("token {token}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["name"], "alicia");
}
