//! The hub's whole router under `hub.base_url`: the API, the OAuth provider, the admin
//! endpoints and the pages, each surface's routes from its own module, the body limit of
//! every hub request, and the route each request matched, told to the front door.
//! Assembled once, at start-up.

use std::sync::Arc;

use axum::extract::MatchedPath;
use axum::response::Response;

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
        .layer(axum::middleware::from_fn(tag_route))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_HUB_BODY))
        .with_state(app)
}

/// Hands the route a request matched (its path template, `/hub/api/users/{name}`) on to
/// the front door with the response, which labels the request's duration with it.
async fn tag_route(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(req).await;
    if let Some(m) = matched {
        response.extensions_mut().insert(m);
    }
    response
}
