//! `GET /hub/api/metrics`: this node's counters in Prometheus' text format.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use galilean_actors::policy::scopes::Target;
use galilean_proto::records::ServerPhase;

use crate::api::caller::{require, Caller};
use crate::app::AppState;
use crate::error::ApiResult;

type App = State<Arc<AppState>>;

/// Prometheus-style counters; the store counters let tests assert on reads and writes.
pub async fn metrics(State(app): App, Caller(id): Caller) -> ApiResult<Response> {
    require(&app, &id, &["read:metrics"], Target::Global)?;
    let c = app.store.counters().snapshot();
    let (users, running) = app.replica.read(|s| {
        (
            s.users.len(),
            s.servers
                .values()
                .filter(|r| r.phase == ServerPhase::Running)
                .count(),
        )
    });
    let peak = app
        .ctx
        .spawning_peak
        .load(std::sync::atomic::Ordering::SeqCst);
    let body = format!(
        "# TYPE galilean_store_reads_total counter\ngalilean_store_reads_total {}\n\
         # TYPE galilean_store_write_commits_total counter\ngalilean_store_write_commits_total {}\n\
         # TYPE galilean_store_mutations_total counter\ngalilean_store_mutations_total {}\n\
         # TYPE galilean_store_conflicts_total counter\ngalilean_store_conflicts_total {}\n\
         # TYPE galilean_users gauge\ngalilean_users {users}\n\
         # TYPE galilean_running_servers gauge\ngalilean_running_servers {running}\n\
         # TYPE galilean_spawns_concurrent_peak gauge\ngalilean_spawns_concurrent_peak {peak}\n",
        c.reads, c.write_commits, c.mutations, c.conflicts
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response())
}
