//! The spawner backends by the name `spawner.class` gives them: the one place that
//! knows each concrete backend, so the actors and the node only ever hold a
//! `dyn Spawner`.

use std::net::IpAddr;
use std::sync::Arc;

use crate::spawner::backend::Spawner;
use crate::spawner::local::LocalProcessSpawner;

/// A backend and its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// `local-process`: servers run as the hub's own OS user, listening on `ip`.
    LocalProcess { ip: IpAddr },
}

/// The spawner for `backend`.
pub fn build(backend: Backend) -> Arc<dyn Spawner> {
    match backend {
        Backend::LocalProcess { ip } => Arc::new(LocalProcessSpawner::listening_on(ip)),
    }
}
