//! One rule, one place: where two surfaces decide the same thing, they give the same
//! answer. The spawn page and the API refuse a named server past the user's limit and an
//! invalid display name alike; a token is listed with exactly the scopes its checks hold
//! it to, including its OAuth client's filter.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Browser, Hub};
use galilean_actors::store::{oauth, tokens, users};
use galilean_proto::records::{OAuthClientRecord, Owner, FORMAT};
use galilean_proto::wire::NewToken;
use reqwest::Method;
use serde_json::{json, Value};

/// A hub with named servers, at most one a user, whose servers are `tiny_server`.
fn hub_with_a_limit_of_one() -> Hub {
    Hub::with_hub(
        "allow_named_servers = true\nnamed_server_limit_per_user = 1\n",
        &format!(
            "cmd = [{}]\nstart_timeout = 20\nhttp_timeout = 20\nstop_grace = 3\n",
            common::toml_str(common::tiny_server_bin())
        ),
        "[authenticator]\nallow_all = true\n",
    )
}

#[tokio::test]
async fn the_spawn_page_holds_the_named_server_limit_as_the_api_does() {
    let hub = hub_with_a_limit_of_one();
    let alice = Browser::new(&hub.url);
    assert_eq!(alice.login("alice", "pw", None).await.0, 302);

    // within the limit: the page starts nb1
    let r = alice.get("/hub/spawn/alice/nb1").await;
    assert_eq!(r.status().as_u16(), 302, "{}", r.text().await.unwrap());
    hub.wait_ready("alice", "nb1", Duration::from_secs(20))
        .await;

    // one more named server: the API refuses it, and the page gives the same answer
    let limit = "User alice already has the maximum of 1 named servers.  One must be \
                 deleted before a new server can be created";
    let (s, e) = hub
        .admin_send(Method::POST, "/users/alice/servers/nb2", None)
        .await;
    assert_eq!((s, e["message"].as_str()), (400, Some(limit)), "{e}");
    let r = alice.get("/hub/spawn/alice/nb2").await;
    assert_eq!(r.status().as_u16(), 400);
    let page = r.text().await.unwrap();
    assert!(page.contains(limit), "{page}");
    let (_, model) = hub
        .admin_get("/users/alice?include_stopped_servers=1")
        .await;
    assert!(model["servers"].get("nb2").is_none(), "{model}");
}

#[tokio::test]
async fn the_spawn_page_refuses_an_invalid_display_name_as_the_api_does() {
    let hub = hub_with_a_limit_of_one();
    // refused by both, and nothing is started
    let bob = Browser::new(&hub.url);
    assert_eq!(bob.login("bob", "pw", None).await.0, 302);
    let (s, e) = hub
        .admin_send(
            Method::POST,
            "/users/bob/server",
            Some(json!({"display_name": "two  spaces"})),
        )
        .await;
    assert_eq!(
        (s, e["message"].as_str()),
        (400, Some("Invalid display_name"))
    );
    let r = bob.get("/hub/spawn?display_name=two%20%20spaces").await;
    assert_eq!(r.status().as_u16(), 400);
    let page = r.text().await.unwrap();
    assert!(page.contains("Invalid display_name"), "{page}");
    let (_, model) = hub.admin_get("/users/bob").await;
    assert_eq!(model["servers"], json!({}), "{model}");

    // a valid one is kept by either
    let r = bob.get("/hub/spawn?display_name=%20My%20NB%20").await;
    assert_eq!(r.status().as_u16(), 302);
    let model = hub.wait_ready("bob", "", Duration::from_secs(20)).await;
    assert_eq!(model["display_name"], "My NB", "{model}");
}

/// A token issued through a service's OAuth client to an administrator: the service's
/// filter makes it hold `access:services!service=announcement`. Listing it must show
/// what the token's checks hold it to, no more and no less.
#[tokio::test]
async fn a_token_is_listed_with_exactly_the_scopes_it_is_held_to() {
    let hub = common::InProcess::start(|_| {}).await;
    let (node, store) = (&hub.node, hub.store.clone());
    users::ensure_user(store.as_ref(), "root", Some(true))
        .await
        .unwrap();
    let client = OAuthClientRecord {
        v: FORMAT,
        client_id: "service-announcement".into(),
        secret_hash: String::new(),
        redirect_uri: "/services/announcement/oauth_callback".into(),
        description: "announcement".into(),
        allowed_scopes: vec![],
        server: None,
        service: Some("announcement".into()),
    };
    oauth::put_client(store.as_ref(), &client).await.unwrap();
    let spec = |scopes: &[&str], client_id: &str| NewToken {
        owner: Owner::User("root".into()),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        note: String::new(),
        expires_in: None,
        session_id: None,
        client_id: client_id.into(),
    };
    let ((issued, secret), _) = tokens::create_token(
        store.as_ref(),
        spec(&["read:users:name!user"], "service-announcement"),
        None,
    )
    .await
    .unwrap();
    let ((_, admin), v) =
        tokens::create_token(store.as_ref(), spec(&["inherit"], "jupyterhub"), None)
            .await
            .unwrap();
    node.app.replica.wait_for(v).await;

    let client = reqwest::Client::new();
    let get = |path: String, token: String| {
        let client = client.clone();
        let url = format!("http://{}/hub/api{path}", node.addr);
        async move {
            let r = client
                .get(url)
                .header("Authorization", format!("token {token}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let scopes = |v: &Value| -> BTreeSet<String> {
        v["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    };
    let held = scopes(&get("/user".into(), secret).await);
    assert!(
        held.contains("access:services!service=announcement"),
        "{held:?}"
    );
    let one = get(format!("/users/root/tokens/a{}", issued.id), admin.clone()).await;
    assert_eq!(scopes(&one), held, "GET one token");
    let all = get("/users/root/tokens".into(), admin).await;
    let listed = all["api_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == format!("a{}", issued.id))
        .expect("the token is listed");
    assert_eq!(scopes(listed), held, "the list of tokens");
}
