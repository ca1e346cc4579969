//! The REST API as operators and services use it (§2): users, pagination and state
//! filters, tokens, activity, named servers, the proxy table and scopes on each path.

mod common;

use std::time::Duration;

use common::{Hub, ADMIN_TOKEN};
use galilean_storage::testing::eventually;
use reqwest::Method;
use serde_json::{json, Value};

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

#[tokio::test]
async fn users_tokens_activity_and_named_servers() {
    let hub = Hub::with_hub(
        "allow_named_servers = true\nnamed_server_limit_per_user = 2\n",
        &format!(
            "cmd = [{}]\nstart_timeout = 20\nhttp_timeout = 20\nstop_grace = 3\n",
            common::toml_str(common::tiny_server_bin())
        ),
        "[authenticator]\nallow_all = true\n",
    );
    let admin = ADMIN_TOKEN;

    // create in bulk (admin flag applies to all), then one more; duplicates are 409
    let names: Vec<String> = (0..7).map(|i| format!("user{i}")).collect();
    let (s, created) = call(
        &hub,
        admin,
        Method::POST,
        "/users",
        Some(json!({"usernames": names, "admin": false})),
    )
    .await;
    assert_eq!(s, 201);
    assert_eq!(created.as_array().unwrap().len(), 7);
    let (s, _) = call(&hub, admin, Method::POST, "/users/user0", None).await;
    assert_eq!(s, 409);
    let (s, u) = call(&hub, admin, Method::POST, "/users/Carol", None).await;
    assert_eq!(
        (s, u["name"].as_str()),
        (201, Some("carol")),
        "names are normalised"
    );

    // the pagination envelope when asked, a plain list otherwise
    let r = hub
        .client()
        .get(hub.api("/users?limit=3&offset=2"))
        .header("Authorization", format!("token {admin}"))
        .header("Accept", "application/jupyterhub-pagination+json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    assert_eq!(page["_pagination"]["offset"], 2);
    assert_eq!(page["_pagination"]["limit"], 3);
    assert_eq!(page["_pagination"]["total"], 8);
    assert_eq!(page["_pagination"]["next"]["offset"], 5);
    let (_, all) = call(&hub, admin, Method::GET, "/users", None).await;
    assert_eq!(all.as_array().unwrap().len(), 8);

    // admin flag by PATCH; a non-admin user's token sees only itself
    let (s, u) = call(
        &hub,
        admin,
        Method::PATCH,
        "/users/user1",
        Some(json!({"admin": true})),
    )
    .await;
    assert_eq!((s, u["admin"].as_bool()), (200, Some(true)));
    let (s, tok) = call(
        &hub,
        admin,
        Method::POST,
        "/users/user2/tokens",
        Some(json!({"note": "mine", "expires_in": 3600})),
    )
    .await;
    assert_eq!(s, 201, "{tok}");
    let t2 = tok["token"].as_str().unwrap().to_owned();
    let t2_id = tok["id"].as_str().unwrap().to_owned();
    // as JupyterHub: a token made by someone else says who made it
    assert_eq!(tok["note"], "mine by service test-admin");
    assert!(tok["expires_at"].is_string());
    let (s, me) = call(&hub, &t2, Method::GET, "/user", None).await;
    assert_eq!((s, me["name"].as_str()), (200, Some("user2")));
    // as in JupyterHub, `self` does not include list:users
    let (s, _) = call(&hub, &t2, Method::GET, "/users", None).await;
    assert_eq!(s, 403);
    let (s, me) = call(&hub, &t2, Method::GET, "/users/user2", None).await;
    assert_eq!((s, me["name"].as_str()), (200, Some("user2")));
    let (s, _) = call(&hub, &t2, Method::GET, "/users/user3", None).await;
    assert_eq!(s, 404);
    let (s, _) = call(&hub, &t2, Method::DELETE, "/users/user3", None).await;
    assert!(s == 403 || s == 404, "{s}");
    let (s, _) = call(&hub, &t2, Method::GET, "/proxy", None).await;
    assert_eq!(s, 403);
    // tokens: list, get, delete; a deleted token stops working at once
    let (s, tokens) = call(&hub, &t2, Method::GET, "/users/user2/tokens", None).await;
    assert_eq!(s, 200);
    assert!(tokens["api_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["id"] == t2_id.as_str()));
    let (s, one) = call(
        &hub,
        admin,
        Method::GET,
        &format!("/users/user2/tokens/{t2_id}"),
        None,
    )
    .await;
    assert_eq!(
        (s, one["note"].as_str()),
        (200, Some("mine by service test-admin"))
    );
    assert!(
        one.get("token").is_none(),
        "the secret is never shown again"
    );
    let (s, _) = call(
        &hub,
        admin,
        Method::DELETE,
        &format!("/users/user2/tokens/{t2_id}"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = call(&hub, &t2, Method::GET, "/user", None).await;
    assert_eq!(s, 403);

    // activity
    let (s, _) = call(
        &hub,
        admin,
        Method::POST,
        "/users/user3/activity",
        Some(json!({"last_activity": "2026-11-01T10:00:00.000000Z"})),
    )
    .await;
    assert_eq!(s, 200);
    let (_, u) = call(&hub, admin, Method::GET, "/users/user3", None).await;
    assert!(
        u["last_activity"]
            .as_str()
            .unwrap()
            .starts_with("2026-11-01T10:00:00"),
        "{u}"
    );
    let (s, _) = call(
        &hub,
        admin,
        Method::POST,
        "/users/user3/activity",
        Some(json!({"last_activity": "yesterday"})),
    )
    .await;
    assert_eq!(s, 400);

    // named servers, within the limit; state filters
    for srv in ["nb1", "nb2"] {
        let (s, _) = call(
            &hub,
            admin,
            Method::POST,
            &format!("/users/user4/servers/{srv}"),
            None,
        )
        .await;
        assert!(s == 201 || s == 202, "{srv}: {s}");
    }
    let (s, e) = call(&hub, admin, Method::POST, "/users/user4/servers/nb3", None).await;
    assert_eq!(s, 400, "{e}");
    let (s, _) = call(
        &hub,
        admin,
        Method::POST,
        "/users/user4/servers/Bad_Name",
        None,
    )
    .await;
    assert_eq!(s, 400);
    hub.wait_ready("user4", "nb1", Duration::from_secs(20))
        .await;
    hub.wait_ready("user4", "nb2", Duration::from_secs(20))
        .await;
    let r = hub
        .client()
        .get(format!("{}/user/user4/nb2/whoami", hub.url))
        .send()
        .await
        .unwrap();
    let who: Value = r.json().await.unwrap();
    assert_eq!(who["server"], "nb2");
    let (_, ready) = call(&hub, admin, Method::GET, "/users?state=ready", None).await;
    let ready: Vec<&str> = ready
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(ready, ["user4"]);
    let (_, inactive) = call(&hub, admin, Method::GET, "/users?state=inactive", None).await;
    assert_eq!(inactive.as_array().unwrap().len(), 7);
    let (_, routes) = call(&hub, admin, Method::GET, "/proxy", None).await;
    assert!(
        routes.get("/user/user4/nb1/").is_some() && routes.get("/user/user4/nb2/").is_some(),
        "{routes}"
    );
    // remove a named server entirely
    let (s, _) = call(
        &hub,
        admin,
        Method::DELETE,
        "/users/user4/servers/nb1",
        Some(json!({"remove": true})),
    )
    .await;
    assert!(s == 204 || s == 202);
    let u = eventually("nb1 is removed", Duration::from_secs(10), || async {
        let (_, u) = call(&hub, admin, Method::GET, "/users/user4", None).await;
        if u["servers"].get("nb1").is_none() {
            Ok(u)
        } else {
            Err(u)
        }
    })
    .await;

    // deleting a user stops its servers and removes it
    let pid = u["servers"]["nb2"]["state"]["pid"].as_i64().unwrap() as i32;
    let (s, _) = call(&hub, admin, Method::DELETE, "/users/user4", None).await;
    assert_eq!(s, 204);
    let (s, _) = call(&hub, admin, Method::GET, "/users/user4", None).await;
    assert_eq!(s, 404);
    eventually(
        "the deleted user's server is gone",
        Duration::from_secs(10),
        || async { !common::group_alive(pid) },
    )
    .await;
}

/// A token's identity is resolved once and reused until the replica changes: every
/// change to its owner or to the token itself shows in the very next request, and an
/// expiry passes without any change.
#[tokio::test]
async fn a_tokens_rights_follow_every_change_at_once() {
    let hub = Hub::with_hub("", "", "[authenticator]\nallow_all = true\n");
    let admin = ADMIN_TOKEN;
    let (s, _) = call(&hub, admin, Method::POST, "/users/tess", None).await;
    assert_eq!(s, 201);
    let (s, t) = call(
        &hub,
        admin,
        Method::POST,
        "/users/tess/tokens",
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 201);
    let token = t["token"].as_str().unwrap().to_owned();
    let id = t["id"].as_str().unwrap().to_owned();

    let lists = |expected: u16| {
        let (hub, token) = (&hub, token.clone());
        async move {
            // several times over: the later ones are answered from the resolved identity
            for _ in 0..3 {
                let (s, _) = call(hub, &token, Method::GET, "/users", None).await;
                assert_eq!(s, expected);
                let (s, me) = call(hub, &token, Method::GET, "/user", None).await;
                assert_eq!((s, me["name"].as_str()), (200, Some("tess")));
            }
        }
    };
    lists(403).await;
    let (s, _) = call(
        &hub,
        admin,
        Method::PATCH,
        "/users/tess",
        Some(json!({"admin": true})),
    )
    .await;
    assert_eq!(s, 200);
    lists(200).await;
    let (s, _) = call(
        &hub,
        admin,
        Method::PATCH,
        "/users/tess",
        Some(json!({"admin": false})),
    )
    .await;
    assert_eq!(s, 200);
    lists(403).await;

    let (s, _) = call(
        &hub,
        admin,
        Method::DELETE,
        &format!("/users/tess/tokens/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = call(&hub, &token, Method::GET, "/user", None).await;
    assert_eq!(s, 403, "a deleted token is refused at once");

    // an expiring token stops working when it expires, with nothing else changing
    let (s, t) = call(
        &hub,
        admin,
        Method::POST,
        "/users/tess/tokens",
        Some(json!({"expires_in": 2})),
    )
    .await;
    assert_eq!(s, 201);
    let short = t["token"].as_str().unwrap().to_owned();
    let (s, _) = call(&hub, &short, Method::GET, "/user", None).await;
    assert_eq!(s, 200);
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    let (s, _) = call(&hub, &short, Method::GET, "/user", None).await;
    assert_eq!(s, 403, "an expired token is refused");

    let (s, _) = call(&hub, admin, Method::DELETE, "/users/tess", None).await;
    assert_eq!(s, 204);
    let (s, _) = call(&hub, &short, Method::GET, "/user", None).await;
    assert_eq!(s, 403);
}

/// Pages in the default order (by id) come from an index kept beside the users; they
/// must match the order users were created in, forwards and backwards, after deletions
/// and re-creations, and agree with the filtered (sorting) path.
#[tokio::test]
async fn user_pages_follow_creation_order() {
    let hub = Hub::with_hub("", "", "[authenticator]\nallow_all = true\n");
    let admin = ADMIN_TOKEN;
    let page = |q: String| {
        let hub = &hub;
        async move {
            let (s, v) = call(hub, admin, Method::GET, &format!("/users?{q}"), None).await;
            assert_eq!(s, 200, "{q}");
            v.as_array()
                .unwrap()
                .iter()
                .map(|u| u["name"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    // names deliberately out of alphabetical order
    for name in ["mo", "zed", "amy", "kit", "bo", "lu"] {
        let (s, _) = call(&hub, admin, Method::POST, &format!("/users/{name}"), None).await;
        assert_eq!(s, 201);
    }
    let (s, _) = call(&hub, admin, Method::DELETE, "/users/amy", None).await;
    assert_eq!(s, 204);
    let (s, _) = call(&hub, admin, Method::POST, "/users/amy", None).await;
    assert_eq!(s, 201, "re-created: now the newest");
    let (s, _) = call(&hub, admin, Method::DELETE, "/users/kit", None).await;
    assert_eq!(s, 204);

    let all = page("limit=200".into()).await;
    let mine: Vec<&str> = all
        .iter()
        .map(String::as_str)
        .filter(|n| ["mo", "zed", "amy", "kit", "bo", "lu"].contains(n))
        .collect();
    assert_eq!(mine, ["mo", "zed", "bo", "lu", "amy"]);
    // the same through the sorting path (an empty name filter matches everyone)
    assert_eq!(page("limit=200&name_filter=".into()).await, all);
    let mut backwards = all.clone();
    backwards.reverse();
    assert_eq!(page("limit=200&sort=-id".into()).await, backwards);
    assert_eq!(
        page("limit=200&sort=-id&name_filter=".into()).await,
        backwards
    );
    for (offset, limit) in [(0, 2), (1, 2), (3, 5), (all.len() - 1, 3), (all.len(), 3)] {
        let expected: Vec<String> = all.iter().skip(offset).take(limit).cloned().collect();
        assert_eq!(
            page(format!("offset={offset}&limit={limit}")).await,
            expected,
            "offset {offset} limit {limit}"
        );
    }
}
