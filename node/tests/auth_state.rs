//! Users' `auth_state` (§2.5) against a node started in-process: stored encrypted with
//! `JUPYTERHUB_CRYPT_KEY`'s keys (never as plain text), read back on `GET /users/{name}`
//! with `admin:auth_state` only, and refused with a message naming the key when the hub
//! has none.

mod common;

use galilean_actors::crypt::CryptKeys;
use galilean_actors::store::{keys, tokens, users};
use galilean_proto::records::Owner;
use galilean_proto::wire::NewToken;
use reqwest::Method;
use serde_json::{json, Value};

async fn token_of(hub: &common::InProcess, user: &str, scopes: &[&str]) -> String {
    let (made, v) = tokens::create_token(
        hub.store.as_ref(),
        NewToken {
            owner: Owner::User(user.into()),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            note: "test".into(),
            expires_in: None,
            session_id: None,
            client_id: "jupyterhub".into(),
        },
        None,
    )
    .await
    .unwrap();
    hub.node.app.replica.wait_for(v).await;
    made.1
}

async fn call(url: &str, token: &str, m: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = reqwest::Client::new()
        .request(m, format!("{url}/hub/api{path}"))
        .header("Authorization", format!("token {token}"));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let s = r.status().as_u16();
    (
        s,
        serde_json::from_str(&r.text().await.unwrap()).unwrap_or(Value::Null),
    )
}

/// A node with `keys`, an admin `root` and a user `alice`: (node, root's token).
async fn hub(keys: Option<&str>) -> (common::InProcess, String) {
    let keys = keys.map(|k| CryptKeys::parse(k).unwrap());
    let hub = common::InProcess::start(move |c| c.crypt_keys = keys).await;
    users::ensure_user(hub.store.as_ref(), "root", Some(true))
        .await
        .unwrap();
    let (_, v) = users::ensure_user(hub.store.as_ref(), "alice", None)
        .await
        .unwrap();
    hub.node.app.replica.wait_for(v).await;
    let root = token_of(&hub, "root", &["inherit"]).await;
    (hub, root)
}

const KEY: &str = "8b8c2cbd4c9a57c1b7f6d9c1a3e5f7091b2d3f4e5a6b7c8d9e0f1a2b3c4d5e6f";

#[tokio::test]
async fn auth_state_is_stored_encrypted_and_read_back_by_those_who_may() {
    let (hub, root) = hub(Some(KEY)).await;
    let state = json!({"access_token": "secret-value-42", "refresh": [1, 2]});
    let (s, m) = call(
        &hub.url,
        &root,
        Method::PATCH,
        "/users/alice",
        Some(json!({"auth_state": state})),
    )
    .await;
    assert_eq!(s, 200, "{m}");
    assert_eq!(m["auth_state"], state);
    let (_, m) = call(&hub.url, &root, Method::GET, "/users/alice", None).await;
    assert_eq!(m["auth_state"], state);
    // lists show null
    let (_, list) = call(&hub.url, &root, Method::GET, "/users", None).await;
    let alice = list
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "alice")
        .unwrap();
    assert_eq!(alice["auth_state"], Value::Null);
    // without admin:auth_state the key is absent
    let reader = token_of(&hub, "root", &["read:users"]).await;
    let (_, m) = call(&hub.url, &reader, Method::GET, "/users/alice", None).await;
    assert!(m.get("auth_state").is_none(), "{m}");
    // the store holds no plain text
    let mut tx = hub.store.begin().await.unwrap();
    let raw = tx.get(&keys::auth_state("alice")).await.unwrap().unwrap();
    assert!(!String::from_utf8_lossy(&raw).contains("secret-value-42"));
    assert!(raw.starts_with(b"gAAAAA"), "a Fernet token");
    // null clears it
    let (s, m) = call(
        &hub.url,
        &root,
        Method::PATCH,
        "/users/alice",
        Some(json!({"auth_state": null})),
    )
    .await;
    assert_eq!((s, m["auth_state"].clone()), (200, Value::Null));
    let mut tx = hub.store.begin().await.unwrap();
    assert!(tx.get(&keys::auth_state("alice")).await.unwrap().is_none());
    // not an object
    let (s, e) = call(
        &hub.url,
        &root,
        Method::PATCH,
        "/users/alice",
        Some(json!({"auth_state": [1]})),
    )
    .await;
    assert_eq!(s, 400, "{e}");
    hub.node.shutdown().await;
}

#[tokio::test]
async fn without_a_key_auth_state_is_refused_and_nothing_is_written() {
    let (hub, root) = hub(None).await;
    let (s, e) = call(
        &hub.url,
        &root,
        Method::PATCH,
        "/users/alice",
        Some(json!({"admin": true, "auth_state": {"a": 1}})),
    )
    .await;
    assert_eq!(s, 400, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("JUPYTERHUB_CRYPT_KEY"),
        "{e}"
    );
    let (_, m) = call(&hub.url, &root, Method::GET, "/users/alice", None).await;
    assert_eq!(
        m["admin"], false,
        "the admin flag of a refused request was written"
    );
    assert_eq!(m["auth_state"], Value::Null);
    hub.node.shutdown().await;
}
