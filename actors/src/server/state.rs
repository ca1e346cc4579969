//! The server actor's state: what it knows of its server (phase, instance, the progress
//! of the current spawn), and the record-level steps every path of its lifecycle shares:
//! loading from the replica, the clean-up that marks an instance stopped, stopping a
//! process, and finding a process whose launch was never recorded.

use std::sync::{Arc, Mutex, Weak};

use galilean_proto::models::ProgressEvent;
use galilean_proto::names::{server_client_id, ServerName, UserName};
use galilean_proto::records::{Owner, ServerPhase, ServerRecord, SpawnerState};
use tokio::sync::watch;

use crate::context::HubCtx;
use crate::error::OpError;
use crate::membership::lease::ServeLease;
use crate::policy::placement::Owned;
use crate::server::messages::{failed_event, push_progress, Progress};
use crate::store::servers::ServerKey;

/// What a server actor holds.
pub struct ServerState {
    pub(super) ctx: Arc<HubCtx>,
    pub(super) user: UserName,
    pub(super) server: ServerName,
    /// The server's record, fenced by this actor's ownership.
    pub(super) key: ServerKey,
    pub(super) lease: Weak<ServeLease>,
    pub(super) phase: ServerPhase,
    pub(super) instance: u64,
    pub(super) progress: watch::Sender<Arc<Progress>>,
    pub(super) stopped: watch::Sender<bool>,
    pub(super) remove_after_stop: bool,
    pub(super) spawn_task: Option<tokio::task::JoinHandle<()>>,
    /// Set by the spawn task as soon as a process exists, so a stop during a spawn can
    /// find it.
    pub(super) launched: Arc<Mutex<Option<SpawnerState>>>,
    pub(super) last_failure: Option<String>,
    /// The store shows a server this actor did not start (an earlier actor's, on this
    /// node or another): it is judged (`adopt`) before the next message is handled.
    pub(super) inherited: bool,
}

impl ServerState {
    /// The state of a new actor for `user`'s `server`, from the replica's record.
    pub(super) fn load(
        ctx: Arc<HubCtx>,
        user: UserName,
        server: ServerName,
        owned: Owned,
        lease: Weak<ServeLease>,
    ) -> ServerState {
        let rec = ctx.replica.read(|s| {
            s.servers
                .get(&(user.as_str().to_owned(), server.as_str().to_owned()))
                .cloned()
        });
        let (phase, instance, failure) = match &rec {
            Some(r) => (r.phase, r.instance, r.last_failure.clone()),
            None => (ServerPhase::Stopped, 0, None),
        };
        let mut progress = Progress {
            instance,
            events: Vec::new(),
        };
        if let Some(msg) = &failure {
            progress.events.push(failed_event(msg));
        }
        let key = ServerKey {
            user: user.as_str().to_owned(),
            server: server.as_str().to_owned(),
            owned,
        };
        ServerState {
            ctx,
            user,
            server,
            key,
            lease,
            phase,
            instance,
            progress: watch::channel(Arc::new(progress)).0,
            stopped: watch::channel(phase == ServerPhase::Stopped).0,
            remove_after_stop: false,
            spawn_task: None,
            launched: Arc::new(Mutex::new(None)),
            last_failure: failure,
            inherited: phase != ServerPhase::Stopped,
        }
    }

    pub(super) fn push_progress(&self, ev: ProgressEvent) {
        push_progress(&self.progress, ev);
    }

    /// JupyterHub's message for a server that is busy (`phase`).
    pub(super) fn busy(&self, phase: ServerPhase) -> OpError {
        let user = self.user.as_str();
        OpError::BadRequest(match phase {
            ServerPhase::Running if self.server.is_default() => {
                format!("{user} is already running")
            }
            ServerPhase::Running => format!("{user}:{} is already running", self.server),
            ServerPhase::Stopping => format!("{user}:{} is pending stop", self.server),
            _ => format!("{user}:{} is pending start", self.server),
        })
    }

    /// Marks this actor's instance of the server stopped and removes its token, OAuth
    /// client and the OAuth tokens issued to that client. A record of another instance
    /// that is not stopped (an earlier owner started it, and this node's replica had not
    /// shown it) is left alone and returned: marking it stopped would leave its process
    /// running unknown to every node.
    pub(super) async fn cleanup(
        &self,
        failure: Option<String>,
        remove: bool,
    ) -> Result<Option<ServerRecord>, OpError> {
        let client_id = server_client_id(&self.user, &self.server);
        let user = self.user.as_str().to_owned();
        let doomed: Vec<String> = self.ctx.replica.read(|s| {
            let issued = s
                .tokens_of(&Owner::User(user.clone()))
                .filter(|(_, t)| t.client_id == client_id)
                .map(|(h, _)| h.clone());
            let own = s
                .servers
                .get(&(user.clone(), self.server.as_str().to_owned()))
                .and_then(|r| r.token_id)
                .and_then(|id| s.token_ids.get(&id).cloned());
            issued.chain(own).collect()
        });
        let (other, v) = self
            .key
            .clean_up(
                self.ctx.store.as_ref(),
                self.instance,
                &client_id,
                &doomed,
                failure,
                remove,
            )
            .await?;
        if other.is_none() {
            self.ctx.replica.wait_for(v).await;
        }
        Ok(other)
    }

    /// Stops a server process with the configured grace. A failure is not acted on: the
    /// process is then gone, or on a host this node cannot reach.
    pub(super) async fn stop_process(&self, state: &SpawnerState) {
        let _ = self
            .ctx
            .spawner
            .stop(state, self.ctx.settings.stop_grace)
            .await;
    }

    /// The process of `rec`'s start that its launcher started but never recorded, found
    /// by the start's server token.
    pub(super) async fn find_unrecorded(&self, rec: &ServerRecord) -> Option<SpawnerState> {
        let id = rec.token_id?;
        let hash = self.ctx.replica.read(|s| s.token_ids.get(&id).cloned())?;
        self.ctx.spawner.find_unrecorded(&hash).await
    }
}
