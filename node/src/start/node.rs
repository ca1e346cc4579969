//! A running node, and how it stops: no new connections, the answers in flight finished
//! (bounded), activity flushed (bounded), servers stopped when `hub.cleanup_servers` or
//! the API's stop request says so, tasks ended.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::AppState;
use crate::http::front::DRAIN_TIMEOUT;
use crate::start::background::{flush_activity, stop_all_servers, LAST_FLUSH_TIMEOUT};

/// Sets up logging to stderr; `RUST_LOG` wins over the configured level.
pub fn init_tracing(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{level},hyper=warn")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// A running node.
pub struct Node {
    pub addr: SocketAddr,
    pub app: Arc<AppState>,
    pub(crate) shutdown: watch::Sender<bool>,
    /// The front door: it ends once its connections finished their answers.
    pub(crate) serving: JoinHandle<()>,
    pub(crate) tasks: Vec<JoinHandle<()>>,
}

impl Node {
    /// Stops serving, flushes activity, and stops the servers this node runs when asked:
    /// by the stop request's `servers` if `POST /hub/api/shutdown` gave one, else by
    /// `hub.cleanup_servers`. Returns once the answers in flight are written (at most
    /// [`DRAIN_TIMEOUT`] after the stop began).
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let asked = self.app.control.stop_requested();
        let cleanup = asked
            .and_then(|r| r.cleanup_servers)
            .unwrap_or(self.app.config.hub.cleanup_servers);
        if cleanup {
            tracing::info!("stopping the single-user servers this node runs");
            stop_all_servers(&self.app).await;
        } else {
            tracing::info!("leaving single-user servers running");
        }
        // bounded: a node whose whole cluster stops with it may have no majority left to
        // commit to, and would otherwise wait out the store's commit deadline
        match tokio::time::timeout(LAST_FLUSH_TIMEOUT, flush_activity(&self.app)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("last activity flush failed: {e}"),
            Err(_) => tracing::warn!(
                "last activity flush gave up after {LAST_FLUSH_TIMEOUT:?}: the store did not commit it"
            ),
        }
        // the front door's own drain is bounded; this bound only guards against a hang
        let mut serving = self.serving;
        if tokio::time::timeout(DRAIN_TIMEOUT + Duration::from_secs(1), &mut serving)
            .await
            .is_err()
        {
            serving.abort();
        }
        for t in self.tasks {
            t.abort();
        }
    }
}
