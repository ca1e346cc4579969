//! Roles, groups and scopes through the REST API (§2.9, §4): groups made and changed
//! through the API and from the config, roles from the config reaching users, groups'
//! members and services, `!group=` filters, and bad input on every group endpoint.

mod common;

use common::{Hub, ADMIN_TOKEN};
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

/// A token of `user` with `scopes`, made by the admin service.
async fn token_of(hub: &Hub, user: &str, scopes: Value) -> String {
    let (s, t) = call(
        hub,
        ADMIN_TOKEN,
        Method::POST,
        &format!("/users/{user}/tokens"),
        Some(json!({ "scopes": scopes })),
    )
    .await;
    assert_eq!(s, 201, "{t}");
    t["token"].as_str().unwrap().to_owned()
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("a list: {v}"))
        .iter()
        .map(|x| x["name"].as_str().unwrap().to_owned())
        .collect()
}

const CONFIG: &str = r#"
[authenticator]
allow_all = true
allowed_users = ["carol"]

[[services]]
name = "idle-culler"
api_token = "culler-token-0123456789"

[[roles]]
name = "idle-culler"
description = "cull idle servers"
scopes = ["list:users", "read:users:activity", "read:servers", "delete:servers"]
services = ["idle-culler"]

[[roles]]
name = "physics-teacher"
scopes = ["read:users!group=physics", "list:users!group=physics", "read:groups!group=physics"]
groups = ["teachers"]

[[groups]]
name = "physics"
users = ["alice", "bob"]
properties = { course = "PHY101" }

[[groups]]
name = "teachers"
users = ["tom"]
"#;

#[tokio::test]
async fn groups_through_the_api_and_from_the_config() {
    let hub = Hub::with_hub("", "", CONFIG);
    let admin = ADMIN_TOKEN;
    // the config's users and groups exist before the first request
    let (s, g) = call(&hub, admin, Method::GET, "/groups/physics", None).await;
    assert_eq!(s, 200, "{g}");
    assert_eq!(g["users"], json!(["alice", "bob"]));
    assert_eq!(g["properties"], json!({"course": "PHY101"}));
    assert_eq!(g["kind"], "group");
    let (s, u) = call(&hub, admin, Method::GET, "/users/carol", None).await;
    assert_eq!(s, 200, "allowed_users exist: {u}");
    let (s, u) = call(&hub, admin, Method::GET, "/users/alice", None).await;
    assert_eq!(s, 200);
    assert_eq!(u["groups"], json!(["physics"]));
    assert_eq!(u["roles"], json!(["user"]));
    let (_, tom) = call(&hub, admin, Method::GET, "/users/tom", None).await;
    assert_eq!(tom["groups"], json!(["teachers"]));

    // create, list, fill, empty, change, delete
    let (s, made) = call(
        &hub,
        admin,
        Method::POST,
        "/groups",
        Some(json!({"groups": ["chem", "bio"], "users": ["alice"]})),
    )
    .await;
    assert_eq!(s, 201, "{made}");
    assert_eq!(names(&made), vec!["bio", "chem"]);
    let (s, all) = call(&hub, admin, Method::GET, "/groups", None).await;
    assert_eq!(s, 200);
    assert_eq!(names(&all), vec!["physics", "teachers", "bio", "chem"]);
    let (s, e) = call(&hub, admin, Method::POST, "/groups/chem", None).await;
    assert_eq!(
        (s, e["message"].as_str()),
        (409, Some("Group chem already exists"))
    );
    let (s, g) = call(
        &hub,
        admin,
        Method::POST,
        "/groups/geo",
        Some(json!({"users": ["bob"]})),
    )
    .await;
    assert_eq!((s, g["users"].clone()), (201, json!(["bob"])));
    let (s, g) = call(
        &hub,
        admin,
        Method::POST,
        "/groups/chem/users",
        Some(json!({"users": ["bob", "carol"]})),
    )
    .await;
    assert_eq!(
        (s, g["users"].clone()),
        (200, json!(["alice", "bob", "carol"]))
    );
    let (s, g) = call(
        &hub,
        admin,
        Method::DELETE,
        "/groups/chem/users",
        Some(json!({"users": ["alice"]})),
    )
    .await;
    assert_eq!((s, g["users"].clone()), (200, json!(["bob", "carol"])));
    let (s, g) = call(
        &hub,
        admin,
        Method::PUT,
        "/groups/chem/properties",
        Some(json!({"lab": 3})),
    )
    .await;
    assert_eq!((s, g["properties"].clone()), (200, json!({"lab": 3})));
    let (_, bob) = call(&hub, admin, Method::GET, "/users/bob", None).await;
    assert_eq!(bob["groups"], json!(["chem", "geo", "physics"]));
    let (s, _) = call(&hub, admin, Method::DELETE, "/groups/chem", None).await;
    assert_eq!(s, 204);
    let (s, _) = call(&hub, admin, Method::GET, "/groups/chem", None).await;
    assert_eq!(s, 404);
    let (_, bob) = call(&hub, admin, Method::GET, "/users/bob", None).await;
    assert_eq!(bob["groups"], json!(["geo", "physics"]));
    // a deleted user leaves its groups
    let (s, _) = call(&hub, admin, Method::DELETE, "/users/bob", None).await;
    assert_eq!(s, 204);
    let (_, g) = call(&hub, admin, Method::GET, "/groups/geo", None).await;
    assert_eq!(g["users"], json!([]));

    // paging: the envelope on request
    let (s, page) = {
        let r = hub
            .client()
            .get(hub.api("/groups?limit=2&offset=1"))
            .header("Authorization", format!("token {admin}"))
            .header("Accept", "application/jupyterhub-pagination+json")
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(s, 200);
    assert_eq!(page["_pagination"]["total"], 4);
    assert_eq!(names(&page["items"]), vec!["teachers", "bio"]);

    // the group survives a restart with what the API did to it, and the config's
    // groups get their members back but never lose one
    drop(hub);
}

#[tokio::test]
async fn bad_input_on_group_endpoints_is_a_4xx_and_writes_nothing() {
    let hub = Hub::with_hub("", "", CONFIG);
    let admin = ADMIN_TOKEN;
    let huge = "x".repeat(300);
    for (m, path, body, status) in [
        (Method::POST, "/groups", Some(json!({})), 400),
        (Method::POST, "/groups", Some(json!({"groups": []})), 400),
        (Method::POST, "/groups", Some(json!({"groups": "one"})), 400),
        (
            Method::POST,
            "/groups",
            Some(json!({"groups": ["a"], "users": ["nobody"]})),
            400,
        ),
        (
            Method::POST,
            "/groups",
            Some(json!({"groups": ["a"], "extra": 1})),
            400,
        ),
        (
            Method::POST,
            "/groups",
            Some(json!({"groups": [huge]})),
            400,
        ),
        (
            Method::POST,
            "/groups",
            Some(json!({"groups": ["new", "physics"]})),
            409,
        ),
        (Method::POST, "/groups/physics/users", Some(json!({})), 400),
        (
            Method::POST,
            "/groups/physics/users",
            Some(json!({"users": ["nobody"]})),
            400,
        ),
        (
            Method::POST,
            "/groups/physics/users",
            Some(json!({"users": [1]})),
            400,
        ),
        (
            Method::DELETE,
            "/groups/physics/users",
            Some(json!({"users": "alice"})),
            400,
        ),
        (
            Method::POST,
            "/groups/none/users",
            Some(json!({"users": ["alice"]})),
            404,
        ),
        (
            Method::PUT,
            "/groups/physics/properties",
            Some(json!([1, 2])),
            400,
        ),
        (Method::PUT, "/groups/none/properties", Some(json!({})), 404),
        (Method::DELETE, "/groups/none", None, 404),
        (Method::GET, "/groups/none", None, 404),
        (Method::GET, "/groups?offset=x", None, 400),
    ] {
        let (s, e) = call(&hub, admin, m.clone(), path, body.clone()).await;
        assert_eq!(s, status, "{m} {path} {body:?}: {e}");
        assert!(e["message"].is_string(), "{m} {path}: a JSON message: {e}");
    }
    // nothing was partly written: no group `a` or `new`, physics unchanged
    let (_, all) = call(&hub, admin, Method::GET, "/groups", None).await;
    assert_eq!(names(&all), vec!["physics", "teachers"]);
    let (_, g) = call(&hub, admin, Method::GET, "/groups/physics", None).await;
    assert_eq!(g["users"], json!(["alice", "bob"]));
    assert_eq!(g["properties"], json!({"course": "PHY101"}));
    // a body that is not JSON
    let r = hub
        .client()
        .post(hub.api("/groups"))
        .header("Authorization", format!("token {admin}"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
}

#[tokio::test]
async fn roles_reach_services_groups_members_and_their_tokens() {
    let hub = Hub::with_hub("", "", CONFIG);
    let admin = ADMIN_TOKEN;
    let culler = "culler-token-0123456789";
    // the idle culler's role: list users, read activity and servers, nothing else
    let (s, users) = call(&hub, culler, Method::GET, "/users", None).await;
    assert_eq!(s, 200, "{users}");
    let alice = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "alice")
        .unwrap()
        .clone();
    let mut keys: Vec<&str> = alice
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort();
    // what JupyterHub shows this role (§2.13)
    assert_eq!(
        keys,
        vec![
            "admin",
            "kind",
            "last_activity",
            "name",
            "servers",
            "user_info"
        ]
    );
    let (s, _) = call(&hub, culler, Method::POST, "/users/zed", None).await;
    assert_eq!(s, 403);
    let (s, me) = call(&hub, culler, Method::GET, "/user", None).await;
    assert_eq!(s, 200);
    assert_eq!(me["kind"], "service");
    let scopes: Vec<&str> = me["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(scopes.contains(&"delete:servers"), "{scopes:?}");
    assert!(scopes.contains(&"list:users"), "{scopes:?}");

    // tom is a teacher: his group's role lets him see physics' members and no one else
    let tom = token_of(&hub, "tom", json!(["inherit"])).await;
    let (s, listed) = call(&hub, &tom, Method::GET, "/users", None).await;
    assert_eq!(s, 200, "{listed}");
    assert_eq!(names(&listed), vec!["alice", "bob"]);
    let (s, _) = call(&hub, &tom, Method::GET, "/users/alice", None).await;
    assert_eq!(s, 200);
    let (s, _) = call(&hub, &tom, Method::GET, "/users/carol", None).await;
    assert_eq!(s, 404, "filtered out: hidden");
    let (s, _) = call(&hub, &tom, Method::GET, "/groups/physics", None).await;
    assert_eq!(s, 200);
    let (s, _) = call(&hub, &tom, Method::GET, "/groups/teachers", None).await;
    assert_eq!(s, 404);
    // carol joins physics: tom sees her at once; she leaves: he no longer does
    let (s, _) = call(
        &hub,
        admin,
        Method::POST,
        "/groups/physics/users",
        Some(json!({"users": ["carol"]})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(&hub, &tom, Method::GET, "/users/carol", None).await;
    assert_eq!(s, 200);
    let (s, _) = call(
        &hub,
        admin,
        Method::DELETE,
        "/groups/physics/users",
        Some(json!({"users": ["carol"]})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(&hub, &tom, Method::GET, "/users/carol", None).await;
    assert_eq!(s, 404);
    // tom leaves teachers: his token loses the role at once
    let (s, _) = call(
        &hub,
        admin,
        Method::DELETE,
        "/groups/teachers/users",
        Some(json!({"users": ["tom"]})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(&hub, &tom, Method::GET, "/users/alice", None).await;
    assert_eq!(s, 404);
    let (s, _) = call(&hub, &tom, Method::GET, "/users", None).await;
    assert_eq!(s, 403);
}

/// A token may hold neither more than its owner (400) nor more than whoever asks for it
/// (403): a token holding only `tokens!user=alice` cannot mint one that inherits all of
/// alice's rights.
#[tokio::test]
async fn a_new_token_holds_no_more_than_its_owner_or_its_requester() {
    let hub = Hub::with_hub("", "", CONFIG);
    let narrow = token_of(&hub, "alice", json!(["tokens!user=alice"])).await;
    for body in [
        json!({}),
        json!({"scopes": ["inherit"]}),
        json!({"roles": ["token"]}),
    ] {
        let (s, e) = call(
            &hub,
            &narrow,
            Method::POST,
            "/users/alice/tokens",
            Some(body.clone()),
        )
        .await;
        assert_eq!(s, 403, "{body}: {e}");
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .contains("not held by User alice"),
            "{e}"
        );
    }
    let (s, e) = call(
        &hub,
        &narrow,
        Method::POST,
        "/users/alice/tokens",
        Some(json!({"scopes": ["read:users!user=alice"]})),
    )
    .await;
    assert_eq!(s, 403, "{e}");
    // what the requester holds it may hand on
    let (s, t) = call(
        &hub,
        &narrow,
        Method::POST,
        "/users/alice/tokens",
        Some(json!({"scopes": ["read:tokens!user=alice"]})),
    )
    .await;
    assert_eq!(s, 201, "{t}");
    // beyond the owner: 400, as JupyterHub
    let (s, e) = call(
        &hub,
        ADMIN_TOKEN,
        Method::POST,
        "/users/alice/tokens",
        Some(json!({"scopes": ["admin:users"]})),
    )
    .await;
    assert_eq!(s, 400, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("not held by User alice"),
        "{e}"
    );
    // a role of the config by name; an unknown one is a 400
    let (s, e) = call(
        &hub,
        ADMIN_TOKEN,
        Method::POST,
        "/users/tom/tokens",
        Some(json!({"roles": ["physics-teacher"]})),
    )
    .await;
    assert_eq!(s, 201, "{e}");
    let (s, _) = call(
        &hub,
        ADMIN_TOKEN,
        Method::POST,
        "/users/tom/tokens",
        Some(json!({"roles": ["no-such-role"]})),
    )
    .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn custom_scopes_and_role_names_reach_models_and_tokens() {
    let hub = Hub::with_hub(
        "",
        "",
        &format!(
            "{CONFIG}\n[[roles]]\nname = \"grader\"\nscopes = [\"custom:grades:read\"]\nusers = [\"alice\"]\nservices = [\"test-admin\"]\n\n\
             [[roles]]\nname = \"auditor\"\nscopes = [\"custom:grades:audit\"]\nusers = [\"carol\"]\n\n\
             [custom_scopes.\"custom:grades:read\"]\ndescription = \"read grades\"\n\n\
             [custom_scopes.\"custom:grades:audit\"]\ndescription = \"audit grades\"\n"
        ),
    );
    let alice = token_of(&hub, "alice", json!(["inherit"])).await;
    let (s, me) = call(&hub, &alice, Method::GET, "/user", None).await;
    assert_eq!(s, 200);
    let scopes: Vec<&str> = me["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(scopes.contains(&"custom:grades:read"), "{scopes:?}");
    let (_, u) = call(&hub, ADMIN_TOKEN, Method::GET, "/users/alice", None).await;
    assert_eq!(u["roles"], json!(["grader", "user"]));
    let (_, g) = call(&hub, ADMIN_TOKEN, Method::GET, "/groups/teachers", None).await;
    assert_eq!(g["roles"], json!(["physics-teacher"]));
    // a token may ask for a custom scope its owner holds, not one it does not
    let (s, t) = call(
        &hub,
        ADMIN_TOKEN,
        Method::POST,
        "/users/alice/tokens",
        Some(json!({"scopes": ["custom:grades:read"]})),
    )
    .await;
    assert_eq!(s, 201, "{t}");
    let (s, _) = call(
        &hub,
        ADMIN_TOKEN,
        Method::POST,
        "/users/bob/tokens",
        Some(json!({"scopes": ["custom:grades:read"]})),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = call(
        &hub,
        ADMIN_TOKEN,
        Method::POST,
        "/users/bob/tokens",
        Some(json!({"scopes": ["custom:nope"]})),
    )
    .await;
    assert_eq!(s, 400); // an administrator hands on only what it holds: carol's audit scope is not among
                        // its scopes, so it cannot mint a token that inherits it (JupyterHub would)
    let (s, e) = call(&hub, ADMIN_TOKEN, Method::POST, "/users/carol/tokens", None).await;
    assert_eq!(s, 403, "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("custom:grades:audit"),
        "{e}"
    );
}

/// `[[groups]]` at start-up adds members and never removes one, and replaces the
/// properties; what the API did to groups survives a restart.
#[tokio::test]
async fn config_groups_add_members_and_replace_properties_at_every_start() {
    let mut hub = Hub::with_hub("", "", CONFIG);
    let admin = ADMIN_TOKEN;
    let (s, _) = call(&hub, admin, Method::POST, "/users/carol", None).await;
    assert!(s == 201 || s == 409);
    let (s, _) = call(
        &hub,
        admin,
        Method::DELETE,
        "/groups/physics/users",
        Some(json!({"users": ["bob"]})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(
        &hub,
        admin,
        Method::POST,
        "/groups/physics/users",
        Some(json!({"users": ["carol"]})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(&hub, admin, Method::POST, "/groups/made-here", None).await;
    assert_eq!(s, 201);
    hub.stop();
    let text = std::fs::read_to_string(&hub.config).unwrap().replace(
        "users = [\"alice\", \"bob\"]\nproperties = { course = \"PHY101\" }",
        "users = [\"alice\", \"dave\"]\nproperties = { course = \"PHY102\", term = 2 }",
    );
    std::fs::write(&hub.config, text).unwrap();
    hub.start();
    let (_, g) = call(&hub, admin, Method::GET, "/groups/physics", None).await;
    assert_eq!(g["users"], json!(["alice", "carol", "dave"]));
    assert_eq!(g["properties"], json!({"course": "PHY102", "term": 2}));
    let (s, _) = call(&hub, admin, Method::GET, "/groups/made-here", None).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn services_are_listed_and_read_with_their_roles() {
    let hub = Hub::with_hub("", "", CONFIG);
    let (s, all) = call(&hub, ADMIN_TOKEN, Method::GET, "/services", None).await;
    assert_eq!(s, 200, "{all}");
    let mut names: Vec<&String> = all.as_object().unwrap().keys().collect();
    names.sort();
    assert_eq!(names, vec!["idle-culler", "test-admin"]);
    let culler = &all["idle-culler"];
    assert_eq!(culler["kind"], "service");
    assert_eq!(culler["admin"], false);
    assert_eq!(culler["roles"], json!(["idle-culler"]));
    assert_eq!(culler["url"], "");
    assert_eq!(all["test-admin"]["roles"], json!(["admin"]));
    let (s, one) = call(
        &hub,
        ADMIN_TOKEN,
        Method::GET,
        "/services/idle-culler",
        None,
    )
    .await;
    assert_eq!((s, one["name"].clone()), (200, json!("idle-culler")));
    let (s, e) = call(&hub, ADMIN_TOKEN, Method::GET, "/services/nope", None).await;
    assert_eq!(
        (s, e["message"].clone()),
        (404, json!("No such service: nope"))
    );
    // the culler's role lists users, not services
    let (s, _) = call(
        &hub,
        "culler-token-0123456789",
        Method::GET,
        "/services",
        None,
    )
    .await;
    assert_eq!(s, 403);
}
