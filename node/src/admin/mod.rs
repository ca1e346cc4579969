//! What operators and load balancers ask a node: its health, its metrics (and what it
//! measures for them), and the status documents of the cluster (`galilean cluster status`
//! and the chaos harness read them).

use std::sync::Arc;

use axum::routing::get;
use axum::Router;

use crate::app::AppState;

mod health;
pub mod measures;
mod metrics;
pub mod status;

/// The admin routes; `h` is the hub's prefix (`P + "hub/"`), `api` the API prefix
/// without its trailing slash.
pub fn routes(h: &str, api: &str) -> Router<Arc<AppState>> {
    Router::new()
        .route(&format!("{h}health"), get(health::health))
        .route(&format!("{api}/health"), get(health::health))
        .route(&format!("{h}metrics"), get(metrics::metrics))
        .route(&format!("{api}/metrics"), get(metrics::metrics))
}
