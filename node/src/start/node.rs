//! A running node, and how it stops: activity flushed (bounded), servers stopped when
//! `hub.cleanup_servers` says so, tasks ended.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::AppState;
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
    pub(crate) tasks: Vec<JoinHandle<()>>,
}

impl Node {
    /// Stops serving, flushes activity, and stops servers when `cleanup_servers` says so.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        if self.app.config.hub.cleanup_servers {
            stop_all_servers(&self.app).await;
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
        for t in self.tasks {
            t.abort();
        }
    }
}
