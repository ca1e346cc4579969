//! Shares and share codes (§2.12) over real HTTP against a node started in-process on
//! the memory store (so a test can register alice's server's OAuth client with a known
//! secret): every operation, the accept-share page with its XSRF check, the checks that
//! a share grants no more than its granter holds, and a revoked share refusing the
//! recipient's OAuth token and the authorize step at once.

mod common;

use common::Browser;
use galilean_actors::secrets::sha256_hex;
use galilean_actors::store::{groups, oauth, tokens};
use galilean_node::config::RoleConfig;
use galilean_proto::records::{OAuthClientRecord, Owner, FORMAT};
use galilean_proto::wire::NewToken;
use reqwest::Method;
use serde_json::{json, Value};

const SECRET: &str = "the-client-secret-of-alices-server";
const CLIENT: &str = "jupyterhub-user-alice";
const REDIRECT: &str = "/user/alice/oauth_callback";

struct Setup {
    hub: common::InProcess,
    alice: String,
    bob: String,
    carol: String,
}

/// A token of `user`'s that inherits everything it holds.
async fn token_of(hub: &common::InProcess, user: &str) -> String {
    let (made, v) = tokens::create_token(
        hub.store.as_ref(),
        NewToken {
            owner: Owner::User(user.into()),
            scopes: vec!["inherit".into()],
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

/// alice, bob and carol (in group `g`), who may share their servers and name users and
/// groups: JupyterHub's default `user` role allows neither, a deployment grants
/// `shares!user`, `read:users:name` and `read:groups:name` to let users share; and alice's
/// server's OAuth client.
async fn setup() -> Setup {
    let hub = common::InProcess::start(|c| {
        c.authenticator.allow_all = true;
        c.roles.push(RoleConfig {
            name: "sharer".into(),
            description: None,
            scopes: vec![
                "shares!user".into(),
                "read:users:name".into(),
                "read:groups:name".into(),
            ],
            users: vec!["alice".into(), "bob".into(), "carol".into()],
            groups: vec![],
            services: vec![],
        });
        c.roles.push(RoleConfig {
            name: "plain-sharer".into(),
            description: None,
            scopes: vec!["shares!user".into()],
            users: vec!["dave".into()],
            groups: vec![],
            services: vec![],
        });
    })
    .await;
    let store = hub.store.clone();
    let (_, v) = groups::create_groups(store.as_ref(), &["g".into()], &["carol".into()], "{}")
        .await
        .unwrap();
    hub.node.app.replica.wait_for(v).await;
    let client = OAuthClientRecord {
        v: FORMAT,
        client_id: CLIENT.into(),
        secret_hash: sha256_hex(SECRET),
        redirect_uri: REDIRECT.into(),
        description: "Server at /user/alice/".into(),
        allowed_scopes: vec!["access:servers!server=alice/".into()],
        server: Some(("alice".into(), String::new())),
        service: None,
    };
    let v = oauth::put_client(store.as_ref(), &client).await.unwrap();
    hub.node.app.replica.wait_for(v).await;
    let alice = token_of(&hub, "alice").await;
    let bob = token_of(&hub, "bob").await;
    let carol = token_of(&hub, "carol").await;
    Setup {
        hub,
        alice,
        bob,
        carol,
    }
}

async fn call(s: &Setup, token: &str, m: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = reqwest::Client::new()
        .request(m, format!("{}/hub/api{path}", s.hub.url))
        .header("Authorization", format!("token {token}"));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn scopes_of(s: &Setup, token: &str) -> Vec<String> {
    let (st, me) = call(s, token, Method::GET, "/user", None).await;
    assert_eq!(st, 200, "{me}");
    me["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_owned())
        .collect()
}

const ACCESS: &str = "access:servers!server=alice/";

#[tokio::test]
async fn shares_grant_narrow_list_and_revoke_as_jupyterhub() {
    let s = setup().await;
    let (st, share) = call(
        &s,
        &s.alice,
        Method::POST,
        "/shares/alice/",
        Some(json!({"user": "bob"})),
    )
    .await;
    assert_eq!(st, 200, "{share}");
    assert_eq!(share["scopes"], json!([ACCESS]));
    assert_eq!(share["kind"], "user");
    assert_eq!(share["user"], json!({"name": "bob"}));
    assert_eq!(share["group"], Value::Null);
    assert_eq!(share["server"]["user"], json!({"name": "alice"}));
    assert_eq!(share["server"]["url"], "/user/alice/");
    assert!(scopes_of(&s, &s.bob).await.contains(&ACCESS.to_owned()));
    for path in ["/shares/alice", "/shares/alice/", "/users/bob/shared"] {
        let (st, list) = call(&s, &s.alice, Method::GET, path, None).await;
        let (st2, list2) = call(&s, &s.bob, Method::GET, path, None).await;
        let (st, list) = if path.starts_with("/users/bob") {
            (st2, list2)
        } else {
            (st, list)
        };
        assert_eq!(st, 200, "{path}: {list}");
        assert_eq!(list["_pagination"]["total"], 1, "{path}: {list}");
        assert_eq!(list["items"][0]["user"]["name"], "bob");
    }
    let (st, one) = call(&s, &s.bob, Method::GET, "/users/bob/shared/alice/", None).await;
    assert_eq!((st, one["scopes"].clone()), (200, json!([ACCESS])));

    // granting again adds scopes; revoking some leaves the rest
    let read = "read:servers!server=alice/";
    let (st, share) = call(
        &s,
        &s.alice,
        Method::POST,
        "/shares/alice/",
        Some(json!({"user": "bob", "scopes": ["read:servers"]})),
    )
    .await;
    assert_eq!((st, share["scopes"].clone()), (200, json!([ACCESS, read])));
    let (st, share) = call(
        &s,
        &s.alice,
        Method::PATCH,
        "/shares/alice/",
        Some(json!({"user": "bob", "scopes": [read]})),
    )
    .await;
    assert_eq!((st, share["scopes"].clone()), (200, json!([ACCESS])));
    let (st, gone) = call(
        &s,
        &s.alice,
        Method::PATCH,
        "/shares/alice/",
        Some(json!({"user": "bob"})),
    )
    .await;
    assert_eq!((st, gone), (200, json!({})));
    assert!(!scopes_of(&s, &s.bob).await.contains(&ACCESS.to_owned()));
    let (st, nobody) = call(
        &s,
        &s.alice,
        Method::PATCH,
        "/shares/alice/",
        Some(json!({"user": "nobody"})),
    )
    .await;
    assert_eq!((st, nobody), (200, json!({})));

    // a group share reaches its members; the recipient may give a share up
    let (st, _) = call(
        &s,
        &s.alice,
        Method::POST,
        "/shares/alice/",
        Some(json!({"group": "g"})),
    )
    .await;
    assert_eq!(st, 200);
    assert!(scopes_of(&s, &s.carol).await.contains(&ACCESS.to_owned()));
    let (st, list) = call(&s, &s.carol, Method::GET, "/users/carol/shared", None).await;
    assert_eq!(
        (st, list["items"][0]["kind"].clone()),
        (200, json!("group"))
    );
    let (st, _) = call(
        &s,
        &s.alice,
        Method::POST,
        "/shares/alice/",
        Some(json!({"user": "bob"})),
    )
    .await;
    assert_eq!(st, 200);
    let (st, _) = call(&s, &s.bob, Method::DELETE, "/users/bob/shared/alice/", None).await;
    assert_eq!(st, 204);
    let (st, _) = call(&s, &s.bob, Method::DELETE, "/users/bob/shared/alice/", None).await;
    assert_eq!(st, 404);
    // deleting every share of the server
    let (st, _) = call(&s, &s.alice, Method::DELETE, "/shares/alice/", None).await;
    assert_eq!(st, 204);
    assert!(!scopes_of(&s, &s.carol).await.contains(&ACCESS.to_owned()));
    let (_, list) = call(&s, &s.alice, Method::GET, "/shares/alice", None).await;
    assert_eq!(list["_pagination"]["total"], 0);
    s.hub.node.shutdown().await;
}

#[tokio::test]
async fn a_share_grants_no_more_than_its_granter_holds_and_bad_requests_are_refused() {
    let s = setup().await;
    for (body, status) in [
        // alice does not hold admin:servers on her own server (GHSA-c4gm-pwx9-9w8j)
        (json!({"user": "bob", "scopes": ["admin:servers"]}), 403),
        (
            json!({"user": "bob", "scopes": ["admin:server_state"]}),
            403,
        ),
        (json!({"user": "bob", "group": "g"}), 400),
        (json!({}), 400),
        (json!({"user": "nobody"}), 400),
        (json!({"group": "nogroup"}), 400),
        (
            json!({"user": "bob", "scopes": ["access:servers!user=alice"]}),
            400,
        ),
        (
            json!({"user": "bob", "scopes": ["access:servers!server=alice/other"]}),
            400,
        ),
        (json!({"user": "bob", "scopes": ["no:such:scope"]}), 400),
        (json!({"user": "bob", "extra": 1}), 400),
        (json!({"user": 7}), 400),
    ] {
        let (st, e) = call(
            &s,
            &s.alice,
            Method::POST,
            "/shares/alice/",
            Some(body.clone()),
        )
        .await;
        assert_eq!(st, status, "{body}: {e}");
        assert!(e["message"].is_string(), "{body}: {e}");
    }
    // another user's server: no `shares` on it
    let (st, _) = call(
        &s,
        &s.bob,
        Method::POST,
        "/shares/alice/",
        Some(json!({"user": "carol"})),
    )
    .await;
    assert_eq!(
        st, 404,
        "bob holds shares on his own servers only: filtered out"
    );
    // a server that does not exist, and no server at all
    let (st, _) = call(
        &s,
        &s.alice,
        Method::POST,
        "/shares/alice/nb",
        Some(json!({"user": "bob"})),
    )
    .await;
    assert_eq!(st, 404);
    for m in [Method::POST, Method::PATCH, Method::DELETE] {
        let (st, _) = call(
            &s,
            &s.alice,
            m.clone(),
            "/shares/alice",
            Some(json!({"user": "bob"})),
        )
        .await;
        assert_eq!(st, 405, "{m}");
    }
    // nothing was written by any of these
    let (_, list) = call(&s, &s.alice, Method::GET, "/shares/alice", None).await;
    assert_eq!(list["_pagination"]["total"], 0);
    // a user who may share but not read other users' names cannot share by name
    // (JupyterHub's rule)
    let dave = {
        let (_, v) = galilean_actors::store::users::create_users(
            s.hub.store.as_ref(),
            &["dave".into()],
            false,
            None,
        )
        .await
        .unwrap();
        s.hub.node.app.replica.wait_for(v).await;
        token_of(&s.hub, "dave").await
    };
    let (st, e) = call(
        &s,
        &dave,
        Method::POST,
        "/shares/dave/",
        Some(json!({"user": "bob"})),
    )
    .await;
    assert_eq!(st, 403, "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("read:users:name"),
        "{e}"
    );
    // and one without `shares` cannot share at all
    let (st, e) = call(
        &s,
        &s.bob,
        Method::POST,
        "/shares/bob/",
        Some(json!({"user": "carol"})),
    )
    .await;
    assert_eq!(st, 200, "{e}");
    let erin = {
        let (_, v) = galilean_actors::store::users::create_users(
            s.hub.store.as_ref(),
            &["erin".into()],
            false,
            None,
        )
        .await
        .unwrap();
        s.hub.node.app.replica.wait_for(v).await;
        token_of(&s.hub, "erin").await
    };
    let (st, e) = call(
        &s,
        &erin,
        Method::POST,
        "/shares/erin/",
        Some(json!({"user": "bob"})),
    )
    .await;
    assert_eq!(st, 403, "{e}");
    assert!(e["message"].as_str().unwrap().contains("[shares]"), "{e}");
    s.hub.node.shutdown().await;
}

#[tokio::test]
async fn share_codes_are_shown_once_accepted_in_the_browser_and_deleted() {
    let s = setup().await;
    let (st, e) = call(
        &s,
        &s.alice,
        Method::POST,
        "/share-codes/alice/",
        Some(json!({"expires_in": 30})),
    )
    .await;
    assert_eq!(st, 400, "{e}");
    let (st, made) = call(
        &s,
        &s.alice,
        Method::POST,
        "/share-codes/alice/",
        Some(json!({})),
    )
    .await;
    assert_eq!(st, 200, "{made}");
    let code = made["code"].as_str().unwrap().to_owned();
    let accept_url = made["accept_url"].as_str().unwrap().to_owned();
    assert_eq!(accept_url, format!("/hub/accept-share?code={code}"));
    assert_eq!(made["full_accept_url"], Value::Null);
    assert_eq!(made["scopes"], json!([ACCESS]));
    assert_eq!(made["exchange_count"], 0);
    let id = made["id"].as_str().unwrap().to_owned();
    let (st, list) = call(&s, &s.alice, Method::GET, "/share-codes/alice", None).await;
    assert_eq!((st, list["_pagination"]["total"].clone()), (200, json!(1)));
    assert!(
        list["items"][0].get("code").is_none(),
        "the code is shown once only"
    );

    // the owner may not accept its own code
    let alice = Browser::new(&s.hub.url);
    assert_eq!(alice.login("alice", "x", None).await.0, 302);
    assert_eq!(alice.get(&accept_url).await.status(), 403);
    // bob accepts it in the browser: the page, then its form
    let bob = Browser::new(&s.hub.url);
    assert_eq!(bob.login("bob", "x", None).await.0, 302);
    let page = bob.get(&accept_url).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("alice") && html.contains(ACCESS), "{html}");
    let xsrf = common::form_value(&html, "_xsrf").expect("_xsrf in the form");
    // a forged form is refused and nothing is granted
    let r = bob
        .client
        .post(bob.url("/hub/accept-share"))
        .form(&[("code", code.as_str()), ("_xsrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(!scopes_of(&s, &s.bob).await.contains(&ACCESS.to_owned()));
    // next is checked like every next: another site is not followed
    let r = bob
        .client
        .post(bob.url("/hub/accept-share"))
        .form(&[
            ("code", code.as_str()),
            ("_xsrf", xsrf.as_str()),
            ("next", "https://evil.example/x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/user/alice/");
    assert!(scopes_of(&s, &s.bob).await.contains(&ACCESS.to_owned()));
    let (_, list) = call(&s, &s.alice, Method::GET, "/share-codes/alice/", None).await;
    assert_eq!(list["items"][0]["exchange_count"], 1);
    // unknown codes
    assert_eq!(bob.get("/hub/accept-share?code=nope").await.status(), 404);

    // deleted by id, then all
    let (st, _) = call(
        &s,
        &s.alice,
        Method::DELETE,
        &format!("/share-codes/alice/?id={id}"),
        None,
    )
    .await;
    assert_eq!(st, 204);
    let (st, _) = call(
        &s,
        &s.alice,
        Method::DELETE,
        &format!("/share-codes/alice/?id={id}"),
        None,
    )
    .await;
    assert_eq!(st, 404);
    let (st, _) = call(
        &s,
        &s.alice,
        Method::DELETE,
        "/share-codes/alice/?id=bogus",
        None,
    )
    .await;
    assert_eq!(st, 404);
    let (st, _) = call(&s, &s.alice, Method::POST, "/share-codes/alice/", None).await;
    assert_eq!(st, 200);
    let (st, _) = call(&s, &s.alice, Method::DELETE, "/share-codes/alice/", None).await;
    assert_eq!(st, 204);
    let (_, list) = call(&s, &s.alice, Method::GET, "/share-codes/alice", None).await;
    assert_eq!(list["_pagination"]["total"], 0);
    assert_eq!(bob.get(&accept_url).await.status(), 404);
    s.hub.node.shutdown().await;
}

/// Runs the authorize step for alice's server in `b`'s session: the consent page, then
/// its form; returns the code, or the status the step answered with.
async fn authorize(b: &Browser) -> Result<String, u16> {
    let path = format!(
        "/hub/api/oauth2/authorize?client_id={CLIENT}&redirect_uri={}&response_type=code&state=s",
        common::urlencode(REDIRECT)
    );
    let r = b.get(&path).await;
    if r.status() != 200 {
        return Err(r.status().as_u16());
    }
    let html = r.text().await.unwrap();
    let xsrf = common::form_value(&html, "_xsrf").expect("_xsrf on the consent page");
    let r = b
        .client
        .post(b.url(&path))
        .form(&[("_xsrf", xsrf.as_str()), ("scopes", ACCESS)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    let url = reqwest::Url::parse(&format!("http://x{loc}")).unwrap();
    let code = url.query_pairs().find(|(k, _)| k == "code").unwrap().1;
    Ok(code.into_owned())
}

#[tokio::test]
async fn a_revoked_share_refuses_the_recipient_s_oauth_token_and_the_authorize_step() {
    let s = setup().await;
    let bob = Browser::new(&s.hub.url);
    assert_eq!(bob.login("bob", "x", None).await.0, 302);
    // before any share, bob may not use alice's server
    assert!(authorize(&bob).await.is_err());
    let (st, _) = call(
        &s,
        &s.alice,
        Method::POST,
        "/shares/alice/",
        Some(json!({"user": "bob"})),
    )
    .await;
    assert_eq!(st, 200);
    let code = authorize(&bob).await.expect("the share lets bob authorize");
    let r = reqwest::Client::new()
        .post(format!("{}/hub/api/oauth2/token", s.hub.url))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("client_id", CLIENT),
            ("client_secret", SECRET),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let access: Value = r.json().await.unwrap();
    let access = access["access_token"].as_str().unwrap().to_owned();
    let scopes = scopes_of(&s, &access).await;
    assert!(scopes.contains(&ACCESS.to_owned()), "{scopes:?}");
    // revoked: the token is refused at once, and so is the authorize step
    let (st, _) = call(
        &s,
        &s.alice,
        Method::PATCH,
        "/shares/alice/",
        Some(json!({"user": "bob"})),
    )
    .await;
    assert_eq!(st, 200);
    let (st, _) = call(&s, &access, Method::GET, "/user", None).await;
    assert_eq!(
        st, 403,
        "a revoked share's OAuth token still identified bob"
    );
    assert!(authorize(&bob).await.is_err());
    // bob's own API token is untouched
    assert_eq!(call(&s, &s.bob, Method::GET, "/user", None).await.0, 200);
    s.hub.node.shutdown().await;
}
