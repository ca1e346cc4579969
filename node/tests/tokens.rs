//! A token's life (§2.8, §3.5) on a real hub: what `POST /users/{name}/tokens` accepts,
//! `hub.token_expires_in_max_seconds`, the use of a token showing as its
//! `last_activity`, and the purge that deletes expired tokens and OAuth codes.
//!
//! The purge runs every minute; the tests that wait for it make it run every half
//! second, a real process through `GALILEAN_TEST_PURGE_EXPIRED_INTERVAL` (a variable
//! only tests set) and a node in this process through its config's
//! `hub.purge_expired_interval` (no key of the file).

mod common;

use std::time::Duration;

use common::{Hub, ADMIN_TOKEN};
use galilean_actors::secrets::sha256_hex;
use galilean_actors::store::{keys, oauth, tokens, users};
use galilean_proto::records::{OAuthCodeRecord, Owner, FORMAT};
use galilean_proto::time::now_micros;
use galilean_proto::wire::NewToken;
use galilean_storage::testing::eventually;
use reqwest::Method;
use serde_json::{json, Value};

const ALLOW_ALL: &str = "[authenticator]\nallow_all = true\n";

async fn call(hub: &Hub, token: &str, m: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = hub
        .client()
        .request(m, hub.api(path))
        .header("Authorization", format!("token {token}"));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let s = r.status().as_u16();
    let text = r.text().await.unwrap();
    (s, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `POST /users/{user}/tokens` as the admin service, with `body` as it is written.
async fn post_raw(hub: &Hub, user: &str, body: &str) -> (u16, Value) {
    let r = hub
        .client()
        .post(hub.api(&format!("/users/{user}/tokens")))
        .header("Authorization", format!("token {ADMIN_TOKEN}"))
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn new_user(hub: &Hub, name: &str) {
    let (s, _) = call(
        hub,
        ADMIN_TOKEN,
        Method::POST,
        &format!("/users/{name}"),
        None,
    )
    .await;
    assert_eq!(s, 201);
}

/// The token ids `GET /users/{user}/tokens` lists, in its order.
async fn listed(hub: &Hub, user: &str) -> Vec<String> {
    let (s, list) = hub.admin_get(&format!("/users/{user}/tokens")).await;
    assert_eq!(s, 200, "{list}");
    list["api_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Seconds from the model's `created` to its `expires_at`.
fn lifetime(model: &Value) -> i64 {
    let at = |k: &str| galilean_proto::time::parse(model[k].as_str().unwrap()).unwrap();
    (at("expires_at") - at("created")) / 1_000_000
}

/// Each field of a wrong type, an expiry out of bounds, both scopes and roles, a body
/// that is no JSON object or no JSON at all: a 400 with JupyterHub's message in its JSON
/// error body, and no token made. Keys it does not know are ignored, as JupyterHub does.
#[tokio::test]
async fn a_bad_token_body_is_refused_with_jupyterhubs_message_and_makes_nothing() {
    let hub = Hub::with_hub("", "", ALLOW_ALL);
    new_user(&hub, "tess").await;
    let bad = [
        ("not json", "Invalid JSON in body of request"),
        ("[1, 2]", "Body must be a JSON dict or empty"),
        ("\"a token\"", "Body must be a JSON dict or empty"),
        (
            r#"{"expires_in": "3600"}"#,
            "token expires_in must be null or integer, not '3600'",
        ),
        (
            r#"{"expires_in": 1.5}"#,
            "token expires_in must be null or integer, not 1.5",
        ),
        (
            r#"{"expires_in": true}"#,
            "token expires_in must be null or integer, not True",
        ),
        (
            r#"{"expires_in": 0}"#,
            "expires_in must be a positive integer or null, not 0",
        ),
        (
            r#"{"expires_in": -60}"#,
            "expires_in must be a positive integer or null, not -60",
        ),
        (
            r#"{"scopes": "read:users"}"#,
            "token scopes must be null or a list of strings, not 'read:users'",
        ),
        (
            r#"{"scopes": ["read:users", 1]}"#,
            "token scopes must be null or a list of strings, not ['read:users', 1]",
        ),
        (
            r#"{"roles": "user"}"#,
            "token roles must be null or a list of strings, not 'user'",
        ),
        (
            r#"{"roles": [null]}"#,
            "token roles must be null or a list of strings, not [None]",
        ),
        (
            r#"{"note": 5}"#,
            "token note must be null or a string, not 5",
        ),
        (
            r#"{"note": {"text": "x"}}"#,
            "token note must be null or a string, not {'text': 'x'}",
        ),
        (
            r#"{"scopes": ["read:users"], "roles": ["user"]}"#,
            "Can only assign one of scopes or roles when creating tokens.",
        ),
    ];
    for (body, message) in bad {
        let (s, e) = post_raw(&hub, "tess", body).await;
        assert_eq!(s, 400, "{body}: {e}");
        assert_eq!(e, json!({"status": 400, "message": message}), "{body}");
    }
    assert!(listed(&hub, "tess").await.is_empty(), "no token was made");

    // without a maximum a token never expires unless asked; unknown keys are ignored
    let (s, t) = post_raw(&hub, "tess", r#"{"colour": "red"}"#).await;
    assert_eq!(s, 201, "{t}");
    assert_eq!(t["expires_at"], Value::Null);
    let (s, t) = post_raw(&hub, "tess", "").await;
    assert_eq!((s, &t["expires_at"]), (201, &Value::Null), "{t}");
    let (s, t) = post_raw(&hub, "tess", r#"{"expires_in": 86400, "note": null}"#).await;
    assert_eq!(s, 201, "{t}");
    assert_eq!(lifetime(&t), 86_400);
    assert_eq!(t["note"], "Requested via api by service test-admin");
    assert_eq!(listed(&hub, "tess").await.len(), 3);
}

/// With `hub.token_expires_in_max_seconds` set, a token asked for without an expiry
/// gets the maximum, and one asked for longer is refused (JupyterHub 5.1+).
#[tokio::test]
async fn the_expiry_maximum_is_the_default_and_the_limit() {
    let hub = Hub::with_hub("token_expires_in_max_seconds = 3600\n", "", ALLOW_ALL);
    new_user(&hub, "max").await;
    for body in [
        "",
        "{}",
        r#"{"expires_in": null}"#,
        r#"{"expires_in": 3600}"#,
    ] {
        let (s, t) = post_raw(&hub, "max", body).await;
        assert_eq!(s, 201, "{body}: {t}");
        assert_eq!(lifetime(&t), 3600, "{body}");
    }
    let (s, t) = post_raw(&hub, "max", r#"{"expires_in": 60}"#).await;
    assert_eq!((s, lifetime(&t)), (201, 60));
    let (s, e) = post_raw(&hub, "max", r#"{"expires_in": 3601}"#).await;
    assert_eq!(s, 400);
    assert_eq!(e["message"], "token expires_in: 3601 must not exceed 3600");
    let (s, e) = post_raw(&hub, "max", r#"{"expires_in": 0}"#).await;
    assert_eq!(s, 400);
    assert_eq!(
        e["message"],
        "expires_in must be a positive integer or null, not 0"
    );
    assert_eq!(listed(&hub, "max").await.len(), 5);
}

/// A token's use is noted in memory and written with the next activity flush: its
/// model then has a `last_activity`, in the list and alone, and so has its user, unless
/// the token is a server's (§2.1). An expired token is not listed, though its record
/// stays until the purge.
#[tokio::test]
async fn a_used_token_shows_its_last_activity_after_a_flush() {
    let hub = Hub::with_hub("", "", ALLOW_ALL);
    new_user(&hub, "uma").await;
    let (s, t) = call(
        &hub,
        ADMIN_TOKEN,
        Method::POST,
        "/users/uma/tokens",
        Some(json!({"note": "used"})),
    )
    .await;
    assert_eq!(s, 201);
    let (secret, id) = (t["token"].as_str().unwrap(), t["id"].as_str().unwrap());
    assert_eq!(t["last_activity"], Value::Null);
    let (s, _) = call(&hub, ADMIN_TOKEN, Method::POST, "/users/uma/tokens", None).await;
    assert_eq!(s, 201);

    let (s, me) = call(&hub, secret, Method::GET, "/user", None).await;
    assert_eq!((s, me["name"].as_str()), (200, Some("uma")));
    let used = eventually(
        "the token's use is flushed",
        Duration::from_secs(20),
        || async {
            let (_, list) = hub.admin_get("/users/uma/tokens").await;
            let mine = list["api_tokens"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["id"] == id)
                .cloned()
                .unwrap();
            if mine["last_activity"].is_string() {
                Ok((mine, list))
            } else {
                Err(list)
            }
        },
    )
    .await;
    let (model, list) = used;
    assert!(model["last_activity"].as_str() >= model["created"].as_str());
    // as JupyterHub lists them: the least recently used first, the used one last
    let ids: Vec<&str> = list["api_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.last(), Some(&id), "{list}");
    let (s, one) = hub.admin_get(&format!("/users/uma/tokens/{id}")).await;
    assert_eq!((s, &one["last_activity"]), (200, &model["last_activity"]));
    let (_, user) = hub.admin_get("/users/uma").await;
    assert!(
        user["last_activity"].is_string(),
        "its user's use too: {user}"
    );

    // a server's own token (JupyterHub knows it by its note): its use is the token's
    // activity, not its user's
    let (s, t) = call(
        &hub,
        ADMIN_TOKEN,
        Method::POST,
        "/users/uma/tokens",
        Some(json!({"note": "Server at /user/uma/"})),
    )
    .await;
    assert_eq!(s, 201);
    let (server_secret, server_id) = (t["token"].as_str().unwrap(), t["id"].as_str().unwrap());
    let (s, _) = call(&hub, server_secret, Method::GET, "/user", None).await;
    assert_eq!(s, 200);
    eventually(
        "the server token's use is flushed",
        Duration::from_secs(20),
        || async {
            let (_, one) = hub
                .admin_get(&format!("/users/uma/tokens/{server_id}"))
                .await;
            one["last_activity"].is_string()
        },
    )
    .await;
    let (_, after) = hub.admin_get("/users/uma").await;
    assert_eq!(after["last_activity"], user["last_activity"]);

    let (s, t) = call(
        &hub,
        ADMIN_TOKEN,
        Method::POST,
        "/users/uma/tokens",
        Some(json!({"expires_in": 1})),
    )
    .await;
    assert_eq!(s, 201);
    let short = t["id"].as_str().unwrap().to_owned();
    assert!(listed(&hub, "uma").await.contains(&short));
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert!(
        !listed(&hub, "uma").await.contains(&short),
        "not listed once expired"
    );
}

/// An expired token's record is deleted by the purge (`GET` by id answers 404 once its
/// record is gone), a token that does not expire is kept. The hub purges every half
/// second here (`GALILEAN_TEST_PURGE_EXPIRED_INTERVAL`).
#[tokio::test]
async fn the_purge_deletes_expired_tokens_from_a_running_hub() {
    let hub = Hub::with_hub_env(
        "",
        "",
        ALLOW_ALL,
        &[("GALILEAN_TEST_PURGE_EXPIRED_INTERVAL", "0.5")],
    );
    new_user(&hub, "pat").await;
    let make = |body: Value| {
        let hub = &hub;
        async move {
            let (s, t) = call(
                hub,
                ADMIN_TOKEN,
                Method::POST,
                "/users/pat/tokens",
                Some(body),
            )
            .await;
            assert_eq!(s, 201, "{t}");
            t["id"].as_str().unwrap().to_owned()
        }
    };
    let short = make(json!({"expires_in": 1})).await;
    let lasting = make(json!({})).await;
    let (s, _) = hub.admin_get(&format!("/users/pat/tokens/{short}")).await;
    assert_eq!(s, 200);
    eventually(
        "the expired token's record is purged",
        Duration::from_secs(15),
        || async {
            let (s, _) = hub.admin_get(&format!("/users/pat/tokens/{short}")).await;
            s == 404
        },
    )
    .await;
    let (s, _) = hub.admin_get(&format!("/users/pat/tokens/{lasting}")).await;
    assert_eq!(s, 200, "a token without expiry stays");
    assert!(hub.log_text().contains("purged expired tokens"));
}

/// On a node in this process (its store at hand, purging every half second through its
/// config), an expired token and an expired OAuth code never redeemed are deleted from
/// the store and the replica; a live code and a lasting token stay.
#[tokio::test]
async fn the_purge_deletes_expired_tokens_and_codes_from_the_store() {
    let hub = common::InProcess::start(|c| {
        c.hub.purge_expired_interval = Duration::from_millis(500);
    })
    .await;
    let store = hub.store.clone();
    let replica = hub.node.app.replica.clone();
    users::ensure_user(store.as_ref(), "quinn", None)
        .await
        .unwrap();
    let spec = |expires_in| NewToken {
        owner: Owner::User("quinn".into()),
        scopes: vec!["inherit".into()],
        note: "test".into(),
        expires_in,
        session_id: None,
        client_id: "jupyterhub".into(),
    };
    let ((short, short_secret), _) = tokens::create_token(store.as_ref(), spec(Some(1)), None)
        .await
        .unwrap();
    let ((_, lasting_secret), v) = tokens::create_token(store.as_ref(), spec(None), None)
        .await
        .unwrap();
    replica.wait_for(v).await;
    let code = |expires_at| OAuthCodeRecord {
        v: FORMAT,
        client_id: "jupyterhub-user-quinn".into(),
        user: "quinn".into(),
        scopes: vec![],
        redirect_uri: "/user/quinn/oauth_callback".into(),
        session_id: None,
        code_challenge: None,
        code_challenge_method: None,
        expires_at,
    };
    let hour = 3_600_000_000;
    oauth::insert_code(store.as_ref(), "stale-code", &code(now_micros() - hour))
        .await
        .unwrap();
    oauth::insert_code(store.as_ref(), "fresh-code", &code(now_micros() + hour))
        .await
        .unwrap();
    let stored = |key: Vec<u8>| {
        let store = store.clone();
        async move {
            let mut tx = store.begin().await.unwrap();
            tx.get(&key).await.unwrap().is_some()
        }
    };
    assert!(replica.read(|s| s.token_ids.contains_key(&short.id)));

    eventually(
        "the expired token and code are purged",
        Duration::from_secs(15),
        || async {
            !stored(keys::token(&sha256_hex(&short_secret))).await
                && !stored(keys::code(&sha256_hex("stale-code"))).await
        },
    )
    .await;
    eventually("the replica follows", Duration::from_secs(5), || async {
        replica.read(|s| !s.token_ids.contains_key(&short.id) && s.tokens_by_expiry.is_empty())
    })
    .await;
    assert!(stored(keys::token(&sha256_hex(&lasting_secret))).await);
    assert!(stored(keys::code(&sha256_hex("fresh-code"))).await);
    hub.node.shutdown().await;
}
