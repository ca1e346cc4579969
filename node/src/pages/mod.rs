//! The hub's browser pages (§8): login, logout, home, spawn, spawn-pending, the pages for
//! servers without a route (§8.6), `user-redirect`, and error pages. Every page is
//! rendered from a template; user-supplied text is escaped by the template engine
//! (auto-escaping is on for `.html`).

use std::sync::Arc;

use axum::routing::{any, get};
use axum::Router;

use crate::app::AppState;

mod accept_share;
mod home;
mod login;
mod pending;
pub mod render;
mod spawn;
mod target;
pub mod templates;
pub mod unrouted;
mod urls;

pub use render::error_page;

/// The pages' routes; `p` is `hub.base_url` (`P`), `h` the hub's prefix (`P + "hub/"`).
pub fn routes(p: &str, h: &str) -> Router<Arc<AppState>> {
    let hub = |path: &str| format!("{h}{path}");
    let mut r = Router::new()
        .route(&hub("login"), get(login::login_get).post(login::login_post))
        .route(&hub("logout"), get(login::logout))
        .route(&hub("home"), get(home::home))
        .route(&hub("token"), get(home::token_page))
        .route(
            &hub("accept-share"),
            get(accept_share::offer).post(accept_share::accept),
        )
        .route(
            &hub("spawn"),
            get(spawn::spawn_self).post(spawn::spawn_self),
        )
        .route(
            &hub("spawn/{user}"),
            get(spawn::spawn_user).post(spawn::spawn_user),
        )
        .route(
            &hub("spawn/{user}/{server}"),
            get(spawn::spawn_named).post(spawn::spawn_named),
        )
        .route(&hub("spawn-pending/{user}"), get(pending::pending_user))
        .route(
            &hub("spawn-pending/{user}/{server}"),
            get(pending::pending_named),
        )
        .route(&hub("user/{user}"), any(unrouted::hub_user_url))
        .route(&hub("user/{user}/{*rest}"), any(unrouted::hub_user_url))
        .route(&hub("user-redirect/{*rest}"), get(unrouted::user_redirect))
        .route(&format!("{p}user/{{user}}"), any(unrouted::user_url))
        .route(
            &format!("{p}user/{{user}}/{{*rest}}"),
            any(unrouted::user_url),
        )
        .route(
            &format!("{p}user-redirect/{{*rest}}"),
            get(unrouted::prefix_redirect),
        )
        .route(h, get(login::hub_root))
        .route(h.trim_end_matches('/'), get(login::hub_root));
    if p != "/" {
        r = r.route(p.trim_end_matches('/'), get(login::root));
    }
    r.route(p, get(login::root))
}
