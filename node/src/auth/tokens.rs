//! API tokens (§2.1): the `Authorization: token|bearer` header, and a secret resolved to
//! an identity from the local replica only, through the token cache. The scopes are the
//! token's grant (`policy::tokens`), the same ones token listings show.

use std::sync::Arc;

use axum::http::{header, HeaderMap};
use galilean_actors::policy::tokens::token_grant;
use galilean_actors::secrets::sha256_hex;
use galilean_proto::time::now_micros;

use crate::app::AppState;
use crate::auth::identity::Identity;

/// The token of an `Authorization: token X` or `Bearer X` header.
pub fn header_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.trim().split_once(char::is_whitespace)?;
    if !(scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer")) {
        return None;
    }
    let token = rest.trim();
    (!token.is_empty() && !token.contains(char::is_whitespace)).then_some(token)
}

/// Resolves a token secret: owner, expiry, effective scopes. Reads the local replica
/// only (through the token cache).
pub fn identify_token(app: &AppState, secret: &str) -> Option<Identity> {
    let hash = sha256_hex(secret);
    let now = now_micros();
    let version = app.replica.read(|s| s.version);
    if let Some(hit) = app.token_cache.get(&hash, version, now) {
        return hit;
    }
    let (version, expires_at, identity) = app.replica.read(|s| {
        let tok = s.tokens.get(&hash)?;
        let grant = token_grant(s, tok, |name| app.services.get(name).map(|svc| svc.admin))?;
        let identity = Identity {
            owner: tok.owner.clone(),
            admin: grant.admin,
            scopes: Arc::new(grant.scopes),
            token_id: Some(tok.id),
            token_hash: Some(hash.clone()),
            session_id: tok.session_id.clone(),
            via_cookie: false,
        };
        Some((s.version, tok.expires_at, Arc::new(identity)))
    })?;
    app.token_cache
        .put(&hash, version, expires_at, identity.clone());
    if expires_at.is_some_and(|e| e <= now) {
        return None;
    }
    Some((*identity).clone())
}
