//! `GET /hub/health` (and `/hub/api/health`): 200 while this node can serve, 503 while it
//! cannot or drains, for load balancers.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;

type App = State<Arc<AppState>>;

/// 200 when this node can serve reads and writes — its store is ready and it reaches a
/// majority of the members for actor messages — else 503.
pub async fn health(State(app): App) -> Response {
    let members = app.router.members().len();
    let majority = members / 2 + 1;
    if galilean_actors::membership::draining(&app.replica).contains(&app.router.node_id()) {
        // still answers what it is sent, but a load balancer should send it nothing new
        crate::error::HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "This node is draining (galilean cluster drain): its users have moved to the other nodes.",
        )
        .into_response()
    } else if app.store.ready()
        && app.router.lease_valid()
        && app.router.reachable_members() >= majority
    {
        (StatusCode::OK, [(header::CONTENT_TYPE, "text/html")], "").into_response()
    } else {
        crate::error::HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "This node cannot serve now: no store leader, or too few members reachable.",
        )
        .into_response()
    }
}
