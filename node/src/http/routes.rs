//! The hub's whole router under `hub.base_url`: the API, the OAuth provider, the admin
//! endpoints and the pages, each surface's routes from its own module, and the layers
//! every hub request passes (the body limit, and the wait after a write until every live
//! node has applied it).

use std::sync::Arc;

use axum::http::Method;

use crate::app::AppState;

/// The largest request body the hub's own handlers accept (the proxy streams any size).
pub const MAX_HUB_BODY: usize = 1024 * 1024;

/// The hub's whole router: API, OAuth, admin endpoints and pages, under `hub.base_url`.
pub fn hub_router(app: Arc<AppState>) -> axum::Router {
    let p = app.base_url.clone();
    let h = app.hub_prefix.clone();
    let api = format!("{h}api");
    crate::api::routes(&api)
        .merge(crate::oauth::routes(&api))
        .merge(crate::admin::routes(&h, &api))
        .merge(crate::pages::routes(&p, &h))
        .fallback(crate::pages::unrouted::not_found)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            applied_everywhere,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_HUB_BODY))
        .with_state(app)
}

/// In a cluster, a request that wrote answers only once every live node has applied
/// what this one has (or has surely stopped serving: see `membership::await_everywhere`), so
/// that whatever the answer reports is what every node answers next: a user created
/// through one node is read through any other as soon as the 201 arrives, and an OAuth
/// code issued by one node is redeemed at another. Reads never wait.
async fn applied_everywhere(
    axum::extract::State(app): axum::extract::State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let path = req.uri().path();
    // GETs that write: issuing an OAuth code, and the spawn pages
    let may_write = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || path.ends_with("/oauth2/authorize")
        || path
            .strip_prefix(app.hub_prefix.as_str())
            .is_some_and(|rest| rest.starts_with("spawn"));
    let before = app.replica.version();
    let response = next.run(req).await;
    if may_write && app.replica.version() > before {
        galilean_actors::membership::await_everywhere(&app.router).await;
    }
    response
}
