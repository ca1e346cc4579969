//! The OAuth 2 provider for single-user servers and services (§3): the authorize
//! endpoint (browser, cookie-authenticated) and the token endpoint (authorization-code
//! grant, client credentials in the form body, PKCE enforced when a challenge was sent).

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

use crate::app::AppState;

mod authorize;
mod token;

/// The OAuth routes; `api` is the API prefix without its trailing slash.
pub fn routes(api: &str) -> Router<Arc<AppState>> {
    Router::new()
        .route(&format!("{api}/oauth2/token"), post(token::token))
        .route(
            &format!("{api}/oauth2/authorize"),
            get(authorize::authorize).post(authorize::authorize_post),
        )
}
