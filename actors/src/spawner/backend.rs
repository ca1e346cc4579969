//! The contract of a spawner backend: what it is asked to start, the check it makes at
//! the moment of the launch, and what it reports. A spawner is stateless between calls:
//! everything a later owner needs to poll, re-adopt or stop a server is in the returned
//! [`SpawnerState`], which the server actor persists.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use galilean_proto::records::SpawnerState;

/// Everything needed to start one server.
#[derive(Debug, Clone)]
pub struct SpawnRequest {
    /// Owner's name (unescaped), for logs.
    pub user: String,
    /// Server name (`""` for the default server), for logs.
    pub server: String,
    /// `spawner.cmd` followed by `spawner.args`.
    pub argv: Vec<String>,
    /// The environment of the process, complete except for `JUPYTERHUB_SERVICE_URL`,
    /// which the spawner adds once it has chosen where the server listens. Nothing from
    /// the hub's own environment is inherited beyond what is in here.
    pub env: BTreeMap<String, String>,
    /// The server's URL prefix (`/user/alice/`), for `JUPYTERHUB_SERVICE_URL`.
    pub prefix: String,
    /// Working directory; created (with parents) if missing.
    pub home_dir: PathBuf,
    /// File that receives the process's stdout and stderr (appended; parents created).
    pub log_path: PathBuf,
    /// This node's id, recorded in the state.
    pub node: u64,
    /// Whether this node may still launch the process, asked at the last moment.
    pub may_launch: LaunchCheck,
}

/// A check a spawner makes immediately before it launches a process, with nothing that
/// waits in between, and again right after. The node asked for the spawn a moment ago,
/// but a node that was stopped (SIGSTOP, a paused VM) between its own check and the
/// launch wakes up without its serving lease, and maybe without the user, whose new
/// owner has started the server meanwhile. The check after the launch covers a stop
/// that landed during it: the process is stopped at once. Clones share one check.
#[derive(Clone, Default)]
pub struct LaunchCheck(Option<Arc<dyn Fn() -> Result<(), String> + Send + Sync>>);

impl LaunchCheck {
    pub fn new(check: impl Fn() -> Result<(), String> + Send + Sync + 'static) -> LaunchCheck {
        LaunchCheck(Some(Arc::new(check)))
    }

    /// `Err` with the reason when the launch may not go ahead; always `Ok` without a
    /// check.
    pub fn check(&self) -> Result<(), String> {
        self.0.as_ref().map_or(Ok(()), |check| check())
    }
}

impl std::fmt::Debug for LaunchCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "LaunchCheck(..)"
        } else {
            "LaunchCheck(none)"
        })
    }
}

/// A started process.
#[derive(Debug, Clone)]
pub struct Started {
    /// Where the hub reaches the server, e.g. `http://127.0.0.1:41123` (no path).
    pub url: String,
    pub state: SpawnerState,
}

/// What `poll` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollStatus {
    Running,
    /// Exited, with its exit code when known.
    Exited(Option<i32>),
}

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("could not start {argv0:?}: {reason}")]
    Exec { argv0: String, reason: String },
    #[error("spawner i/o: {0}")]
    Io(String),
    #[error("no command configured (spawner.cmd is empty)")]
    NoCommand,
    /// The request's [`LaunchCheck`] failed: nothing runs.
    #[error("not launched: {0}")]
    NotLaunched(String),
}

#[async_trait]
pub trait Spawner: Send + Sync + 'static {
    /// Starts the process and returns as soon as it runs (not when it is ready). Asks
    /// `req.may_launch` right before the launch and right after it; when it fails, returns
    /// [`SpawnError::NotLaunched`] with nothing left running.
    async fn start(&self, req: SpawnRequest) -> Result<Started, SpawnError>;
    /// Whether the process described by `state` still runs.
    async fn poll(&self, state: &SpawnerState) -> PollStatus;
    /// Stops it: SIGTERM to its process group, SIGKILL after `grace`, and waits until the
    /// group is gone (bounded). Stopping a process that is already gone is not an error.
    async fn stop(&self, state: &SpawnerState, grace: Duration) -> Result<(), SpawnError>;
    /// A live process this spawner can see although no state records it — its launch
    /// was cut off (the launching node killed or stopped) between starting it and
    /// recording it — found by its server token, whose SHA-256 is `token_hash` (each
    /// start has its own). None by default.
    async fn find_unrecorded(&self, _token_hash: &str) -> Option<SpawnerState> {
        None
    }
}
