//! The token endpoint (§3.3): an authorization code redeemed once, by its client (id and
//! secret in the form body), with the PKCE verifier when a challenge was sent, for an
//! access token.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use galilean_actors::secrets::sha256_hex;
use galilean_actors::store::oauth;
use galilean_proto::names::UserName;
use galilean_proto::records::Owner;
use galilean_proto::time::now_micros;
use galilean_proto::wire::NewToken;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::app::AppState;

type App = State<Arc<AppState>>;

/// An OAuth error response (RFC 6749 §5.2).
fn oauth_error(status: StatusCode, error: &str, description: Option<&str>) -> Response {
    let mut body = json!({ "error": error });
    if let Some(d) = description {
        body["error_description"] = json!(d);
    }
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

fn pkce_ok(method: Option<&str>, challenge: &str, verifier: &str) -> bool {
    let computed = match method {
        Some("S256") => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(Sha256::digest(verifier.as_bytes())),
        _ => verifier.to_owned(),
    };
    subtle::ConstantTimeEq::ct_eq(computed.as_bytes(), challenge.as_bytes()).into()
}

/// `POST H/api/oauth2/token`.
pub async fn token(State(app): App, headers: HeaderMap, body: Bytes) -> Response {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("application/x-www-form-urlencoded") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some("The token request must be form-encoded."),
        );
    }
    let Ok(form) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some("Malformed body."),
        );
    };
    let arg = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    match arg("grant_type") {
        Some("authorization_code") => {}
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                Some("Request is missing grant type."),
            )
        }
        Some(_) => return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", None),
    }
    // client authentication: body credentials only
    let (Some(client_id), Some(secret)) = (arg("client_id"), arg("client_secret")) else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", None);
    };
    let client = app.replica.read(|s| s.clients.get(client_id).cloned());
    let authenticated = client.as_ref().is_some_and(|c| {
        !c.secret_hash.is_empty()
            && bool::from(subtle::ConstantTimeEq::ct_eq(
                sha256_hex(secret).as_bytes(),
                c.secret_hash.as_bytes(),
            ))
    });
    let Some(client) = client.filter(|_| authenticated) else {
        tracing::info!(client = %galilean_actors::policy::text::clip(client_id), "token request with bad client credentials");
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", None);
    };
    let Some(code) = arg("code").filter(|c| !c.is_empty()) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some("Missing code parameter."),
        );
    };
    // taking the code makes it single-use, even when two requests race
    let rec = match oauth::take_code(app.store.as_ref(), code).await {
        Ok(r) => r,
        Err(e) => return crate::error::HttpError::from(e).into_response(),
    };
    let Some(rec) = rec else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", None);
    };
    if rec.expires_at <= now_micros() || rec.client_id != client.client_id {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", None);
    }
    if let Some(r) = arg("redirect_uri") {
        if r != rec.redirect_uri {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                Some("Mismatching redirect URI."),
            );
        }
    }
    if let Some(challenge) = &rec.code_challenge {
        let Some(verifier) = arg("code_verifier").filter(|v| !v.is_empty()) else {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                Some("Code verifier required."),
            );
        };
        if !pkce_ok(rec.code_challenge_method.as_deref(), challenge, verifier) {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", None);
        }
    }
    let Ok(user) = UserName::parse(&rec.user) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", None);
    };
    let expires_in = app.cookie_max_age_secs.max(1) as u64;
    let spec = NewToken {
        owner: Owner::User(user.as_str().to_owned()),
        scopes: rec.scopes.clone(),
        note: format!("OAuth token for {}", client.description),
        expires_in: Some(expires_in),
        session_id: rec.session_id.clone(),
        client_id: client.client_id.clone(),
    };
    let created = app.router.create_token(&user, spec).await;
    let (_, secret) = match created {
        Ok(t) => t,
        Err(galilean_actors::OpError::NotFound(_)) => {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", None)
        }
        Err(e) => return crate::error::HttpError::from(e).into_response(),
    };
    let body = json!({
        "access_token": secret,
        "expires_in": expires_in,
        "token_type": "Bearer",
        "scope": rec.scopes.join(" "),
    });
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        body.to_string(),
    )
        .into_response()
}
