//! The OAuth provider (§3) over real HTTP against a node started in-process on the memory
//! store, so that a test can register a client with a known secret and plant an expired
//! code: every refusal JupyterHub gives, and logout revoking the session's tokens.

mod common;

use base64::Engine;
use common::Browser;
use galilean_actors::secrets::sha256_hex;
use galilean_actors::store::{oauth, tokens, users};
use galilean_proto::records::{OAuthClientRecord, OAuthCodeRecord, FORMAT};
use galilean_proto::wire::NewToken;
use serde_json::Value;
use sha2::{Digest, Sha256};

const SECRET: &str = "the-client-secret-of-alices-server";
const CLIENT: &str = "jupyterhub-user-alice";
const REDIRECT: &str = "/user/alice/oauth_callback";
const VERIFIER: &str = "a-verifier-that-is-long-enough-for-rfc7636-0123456789";

/// The node, with alice and bob, and alice's server's OAuth client.
async fn setup() -> common::InProcess {
    let hub = common::InProcess::start(|c| c.authenticator.allow_all = true).await;
    let store = hub.store.clone();
    users::ensure_user(store.as_ref(), "alice", None)
        .await
        .unwrap();
    users::ensure_user(store.as_ref(), "bob", None)
        .await
        .unwrap();
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
    hub
}

fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn authorize_path(pkce: bool) -> String {
    let mut p = format!(
        "/hub/api/oauth2/authorize?client_id={CLIENT}&redirect_uri={}&response_type=code&state=st4te",
        common::urlencode(REDIRECT)
    );
    if pkce {
        p.push_str(&format!(
            "&code_challenge={}&code_challenge_method=S256",
            challenge(VERIFIER)
        ));
    }
    p
}

/// Runs the authorize step in `b`'s session; returns the code.
async fn code(b: &Browser, pkce: bool) -> String {
    let r = b.get(&authorize_path(pkce)).await;
    assert_eq!(r.status(), 302, "{}", r.text().await.unwrap());
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(loc.starts_with(&format!("{REDIRECT}?")), "{loc}");
    let url = reqwest::Url::parse(&format!("http://x{loc}")).unwrap();
    let q: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert!(q.contains(&("state".into(), "st4te".into())));
    let code = q.iter().find(|(k, _)| k == "code").unwrap().1.clone();
    assert_eq!(code.len(), 30);
    code
}

async fn token(url: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{url}/hub/api/oauth2/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn form<'a>(code: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut f = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("client_id", CLIENT),
        ("client_secret", SECRET),
        ("redirect_uri", REDIRECT),
    ];
    for (k, v) in extra {
        f.retain(|(n, _)| n != k);
        if !v.is_empty() {
            f.push((k, v));
        }
    }
    f
}

#[tokio::test]
async fn the_token_endpoint_refuses_what_jupyterhub_refuses() {
    let s = setup().await;
    let b = Browser::new(&s.url);
    // not logged in: to the login page, with the authorize URL as next
    let r = b.get(&authorize_path(true)).await;
    assert_eq!(r.status(), 302);
    let loc = r.headers()["location"].to_str().unwrap();
    assert!(
        loc.starts_with("/hub/login?next=%2Fhub%2Fapi%2Foauth2%2Fauthorize"),
        "{loc}"
    );
    assert_eq!(b.login("alice", "x", None).await.0, 302);

    // the good path, then the same code again
    let c = code(&b, true).await;
    let (st, body) = token(&s.url, &form(&c, &[("code_verifier", VERIFIER)])).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["scope"]
        .as_str()
        .unwrap()
        .contains("access:servers!server=alice/"));
    let access = body["access_token"].as_str().unwrap().to_owned();
    let (st, body) = token(&s.url, &form(&c, &[("code_verifier", VERIFIER)])).await;
    assert_eq!(
        (st, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "reused code"
    );

    // identity with the token: alice, with the resolved scopes
    let r = reqwest::Client::new()
        .get(format!("{}/hub/api/user", s.url))
        .header("Authorization", format!("Bearer {access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["name"], "alice");
    let scopes: Vec<&str> = me["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        scopes.contains(&"access:servers!server=alice/"),
        "{scopes:?}"
    );
    assert!(scopes.contains(&"read:users:name!user=alice"), "{scopes:?}");
    assert!(!scopes.contains(&"admin:users"));

    // a wrong PKCE verifier, and none at all
    let c = code(&b, true).await;
    let (st, body) = token(
        &s.url,
        &form(&c, &[("code_verifier", "x".repeat(50).as_str())]),
    )
    .await;
    assert_eq!(
        (st, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "wrong verifier"
    );
    let c = code(&b, true).await;
    let (st, body) = token(&s.url, &form(&c, &[])).await;
    assert_eq!((st, body["error"].as_str()), (400, Some("invalid_request")));
    assert_eq!(body["error_description"], "Code verifier required.");

    // a wrong redirect_uri
    let c = code(&b, false).await;
    let (st, body) = token(
        &s.url,
        &form(&c, &[("redirect_uri", "/user/alice/elsewhere")]),
    )
    .await;
    assert_eq!((st, body["error"].as_str()), (400, Some("invalid_request")));
    assert_eq!(body["error_description"], "Mismatching redirect URI.");

    // a wrong client secret; HTTP Basic instead of the form
    let c = code(&b, false).await;
    let (st, body) = token(&s.url, &form(&c, &[("client_secret", "not-the-secret")])).await;
    assert_eq!((st, body["error"].as_str()), (401, Some("invalid_client")));
    let r = reqwest::Client::new()
        .post(format!("{}/hub/api/oauth2/token", s.url))
        .basic_auth(CLIENT, Some(SECRET))
        .form(&[("grant_type", "authorization_code"), ("code", c.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // an expired code
    let expired = "expiredexpiredexpiredexpired00";
    let rec = OAuthCodeRecord {
        v: FORMAT,
        client_id: CLIENT.into(),
        user: "alice".into(),
        scopes: vec!["access:servers!server=alice/".into()],
        redirect_uri: REDIRECT.into(),
        session_id: None,
        code_challenge: None,
        code_challenge_method: None,
        expires_at: galilean_proto::time::now_micros() - 1_000_000,
    };
    oauth::insert_code(s.store.as_ref(), expired, &rec)
        .await
        .unwrap();
    let (st, body) = token(&s.url, &form(expired, &[])).await;
    assert_eq!(
        (st, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "expired code"
    );

    // the authorize endpoint: a mismatching redirect_uri and an unknown client are 400
    // pages, never redirects
    let r = b
        .get(&format!(
            "/hub/api/oauth2/authorize?client_id={CLIENT}&redirect_uri=https%3A%2F%2Fevil.example%2F&response_type=code"
        ))
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    let r = b
        .get("/hub/api/oauth2/authorize?client_id=nobody&response_type=code")
        .await;
    assert_eq!(r.status(), 400);

    // bob is refused alice's client
    let bob = Browser::new(&s.url);
    assert_eq!(bob.login("bob", "x", None).await.0, 302);
    let r = bob.get(&authorize_path(true)).await;
    assert_eq!(r.status(), 403);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("You do not have permission"));
    s.node.shutdown().await;
}

#[tokio::test]
async fn logout_revokes_the_sessions_oauth_tokens() {
    let s = setup().await;
    let b = Browser::new(&s.url);
    assert_eq!(b.login("alice", "x", None).await.0, 302);
    let c = code(&b, false).await;
    let (st, body) = token(&s.url, &form(&c, &[])).await;
    assert_eq!(st, 200);
    let access = body["access_token"].as_str().unwrap().to_owned();
    let whoami = || {
        reqwest::Client::new()
            .get(format!("{}/hub/api/user", s.url))
            .header("Authorization", format!("token {access}"))
            .send()
    };
    assert_eq!(whoami().await.unwrap().status(), 200);
    // an API token of alice's from elsewhere survives her logout
    let (other, v) = tokens::create_token(
        s.store.as_ref(),
        NewToken {
            owner: galilean_proto::records::Owner::User("alice".into()),
            scopes: vec!["inherit".into()],
            note: "api".into(),
            expires_in: None,
            session_id: None,
            client_id: "jupyterhub".into(),
        },
        None,
    )
    .await
    .unwrap();
    s.node.app.replica.wait_for(v).await;

    let r = b.get("/hub/logout").await;
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/hub/login");
    assert_eq!(
        whoami().await.unwrap().status(),
        403,
        "the session's token outlived logout"
    );
    let r = reqwest::Client::new()
        .get(format!("{}/hub/api/user", s.url))
        .header("Authorization", format!("token {}", other.1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // and the browser is logged out
    let r = b.get("/hub/home").await;
    assert_eq!(r.status(), 302);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/hub/login"));
    s.node.shutdown().await;
}
