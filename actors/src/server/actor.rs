//! The ServerActor: owns one (user, server name), drives its lifecycle
//! (`policy::lifecycle`) through the spawner, and persists every phase change in the
//! server's record (`store::servers`). The router starts it on the owner of the server's
//! user; the spawn (`server::spawn`) and stop work runs in tasks that report back with
//! messages, so the actor always answers.
//!
//! Persists: `("s", user, server)`, the server's API token, and its OAuth client.

use std::sync::{Arc, Weak};
use std::time::Duration;

use galilean_proto::models::ProgressEvent;
use galilean_proto::names::{server_client_id, ServerName, UserName};
use galilean_proto::records::{Owner, ServerPhase, SpawnerState};
use galilean_proto::wire::NewToken;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::watch;

use crate::context::HubCtx;
use crate::error::OpError;
use crate::membership::lease::ServeLease;
use crate::policy::lifecycle::{transition, Effect, Event, Refusal};
use crate::policy::placement::Owned;
use crate::policy::server_env;
use crate::secrets::new_token_secret;
use crate::server::judge::ADOPT_ROUNDS;
use crate::server::messages::{failed_event, Progress, ServerMsg, ServerStatus};
use crate::server::spawn::{launch_check, SpawnTask};
use crate::server::state::ServerState;
use crate::spawner::{SpawnRequest, Started};
use crate::store::servers::{server_client, Begun, NewStart};

pub struct ServerActor;

pub struct ServerArgs {
    pub ctx: Arc<HubCtx>,
    pub user: UserName,
    pub server: ServerName,
    /// What this actor's writes are fenced by.
    pub owned: Owned,
    /// The node's serving lease, which a spawn checks before it launches.
    pub lease: Weak<ServeLease>,
}

impl Actor for ServerActor {
    type Msg = ServerMsg;
    type State = ServerState;
    type Arguments = ServerArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: ServerArgs,
    ) -> Result<ServerState, ActorProcessingErr> {
        Ok(ServerState::load(
            args.ctx,
            args.user,
            args.server,
            args.owned,
            args.lease,
        ))
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: ServerMsg,
        st: &mut ServerState,
    ) -> Result<(), ActorProcessingErr> {
        // whatever is asked of a server this actor did not start, the answer comes from
        // a judged one: a start otherwise waits on a spawn nobody runs any more (the
        // live-set change's adoption skips servers that have an actor by then)
        if st.inherited {
            st.inherited = false;
            let adopted = st.adopt().await;
            if let ServerMsg::Adopt { reply } = msg {
                let _ = reply.send(adopted);
                return Ok(());
            }
        }
        match msg {
            ServerMsg::Start {
                user_options,
                display_name,
                reply,
            } => {
                let r = st.start(&myself, user_options, display_name).await;
                let _ = reply.send(r);
            }
            ServerMsg::Stop { remove, reply } => {
                let r = st.stop(&myself, remove).await;
                let _ = reply.send(r);
            }
            ServerMsg::Status { reply } => {
                let _ = reply.send(ServerStatus {
                    phase: st.phase,
                    progress: st.progress.subscribe(),
                    last_failure: st.last_failure.clone(),
                });
            }
            ServerMsg::Adopt { reply } => {
                let adopted = st.adopt().await;
                let _ = reply.send(adopted);
            }
            ServerMsg::SpawnFinished { instance, result } => {
                if instance == st.instance {
                    st.spawn_finished(result).await;
                }
            }
            ServerMsg::StopFinished { instance } => {
                if instance == st.instance {
                    st.stop_finished().await;
                }
            }
        }
        Ok(())
    }

    /// An actor stopped mid-spawn (its user moved to another node) would never hear how
    /// the spawn ended: its process, not yet recorded anywhere, would run on unknown to
    /// every node while the new owner starts another. Stop the spawn and its process.
    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        st: &mut ServerState,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(task) = st.spawn_task.take() {
            task.abort();
            let launched = st.launched.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(state) = launched {
                tracing::info!(user = %st.user, server = %st.server, pid = ?state.pid, "stopping a server whose spawn the actor's stop interrupted");
                st.stop_process(&state).await;
            }
        }
        Ok(())
    }
}

impl ServerState {
    async fn start(
        &mut self,
        myself: &ActorRef<ServerMsg>,
        user_options: Option<String>,
        display_name: Option<String>,
    ) -> Result<watch::Receiver<Arc<Progress>>, OpError> {
        let (next, effect) = match transition(self.phase, Event::StartRequested) {
            Ok(t) => t,
            Err(Refusal::AlreadyRunning) => return Err(self.busy(ServerPhase::Running)),
            Err(Refusal::PendingStop) => return Err(self.busy(ServerPhase::Stopping)),
        };
        if effect == Effect::AlreadyStarting {
            return Ok(self.progress.subscribe());
        }
        // persist Starting with a fresh server token and OAuth client
        let ctx = self.ctx.clone();
        let user = self.user.as_str().to_owned();
        let secret = new_token_secret();
        let prefix = server_env::prefix(&ctx.settings, &self.user, &self.server);
        let client_id = server_client_id(&self.user, &self.server);
        let start = NewStart {
            secret: &secret,
            token: NewToken {
                owner: Owner::User(user.clone()),
                scopes: vec![
                    "access:servers!server".to_owned(),
                    "users:activity!user".to_owned(),
                ],
                note: format!("Server at {prefix}"),
                expires_in: None,
                session_id: None,
                client_id: "jupyterhub".to_owned(),
            },
            client: server_client(&user, self.server.as_str(), &client_id, &prefix, &secret),
            display_name,
            user_options,
        };
        let (rec, version) = match self.key.begin_start(ctx.store.as_ref(), &start).await? {
            Begun::Started(rec, version) => (rec, version),
            // this actor thought the server stopped, but the store says otherwise: an
            // earlier owner started it, and this node's replica had not shown it when
            // the actor loaded. Starting again would make a second process: the start
            // is refused, and the next message to this actor judges the first.
            Begun::Occupied(phase) => {
                self.inherited = true;
                return Err(if phase == ServerPhase::Running {
                    OpError::BadRequest(format!("{user} is already running"))
                } else {
                    self.busy(phase)
                });
            }
        };
        ctx.replica.wait_for(version).await;
        self.phase = next;
        self.instance = rec.instance;
        self.last_failure = None;
        self.stopped.send_replace(false);
        *self.launched.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.progress.send_replace(Arc::new(Progress {
            instance: rec.instance,
            events: vec![ProgressEvent::step(0, "Server requested")],
        }));
        let s = &ctx.settings;
        let task = SpawnTask {
            ctx: ctx.clone(),
            key: self.key.clone(),
            myself: myself.clone(),
            instance: rec.instance,
            req: SpawnRequest {
                user: user.clone(),
                server: self.server.as_str().to_owned(),
                argv: s.cmd.iter().chain(&s.args).cloned().collect(),
                env: server_env::server_env(s, &self.user, &self.server, &secret),
                prefix,
                home_dir: server_env::home_dir(s, &self.user),
                log_path: server_env::log_path(s, &self.user, &self.server),
                node: s.node_id,
                may_launch: launch_check(self.lease.clone(), ctx.clone(), &self.key, rec.instance),
            },
            progress: self.progress.clone(),
            launched: self.launched.clone(),
        };
        self.spawn_task = Some(tokio::spawn(task.run()));
        Ok(self.progress.subscribe())
    }

    async fn spawn_finished(&mut self, result: Result<Started, String>) {
        let event = if result.is_ok() {
            Event::SpawnSucceeded
        } else {
            Event::SpawnFailed
        };
        let Ok((next, effect)) = transition(self.phase, event) else {
            return;
        };
        self.spawn_task = None;
        match (effect, result) {
            (Effect::MarkRunning, Ok(started)) => {
                let write = self
                    .key
                    .mark_running(
                        self.ctx.store.as_ref(),
                        self.instance,
                        &started.url,
                        &started.state,
                    )
                    .await;
                match write {
                    Ok(v) => {
                        self.ctx.replica.wait_for(v).await;
                        self.phase = next;
                        let url = server_env::prefix(&self.ctx.settings, &self.user, &self.server);
                        self.push_progress(ProgressEvent {
                            ready: Some(true),
                            html_message: Some(format!(
                                "Server ready at <a href=\"{url}\">{url}</a>"
                            )),
                            url: Some(url.clone()),
                            ..ProgressEvent::step(100, format!("Server ready at {url}"))
                        });
                    }
                    Err(e) => {
                        tracing::error!(user = %self.user, server = %self.server, error = %e, "could not record a ready server");
                        self.stop_process(&started.state).await;
                        self.fail(format!("Spawn failed: could not record the server: {e}"))
                            .await;
                    }
                }
            }
            (Effect::MarkFailed, Err(message)) => {
                let launched = self
                    .launched
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                if let Some(state) = launched {
                    let _ = self.ctx.spawner.stop(&state, Duration::from_secs(2)).await;
                }
                self.phase = next;
                self.fail(message).await;
            }
            _ => {}
        }
    }

    /// Records a failed spawn: phase Stopped, the failure kept, token and client gone.
    async fn fail(&mut self, message: String) {
        tracing::warn!(user = %self.user, server = %self.server, "spawn failed");
        self.phase = ServerPhase::Stopped;
        self.last_failure = Some(message.clone());
        match self.cleanup(Some(message.clone()), false).await {
            Ok(None) => {}
            Ok(Some(_)) => {
                self.push_progress(failed_event(&message));
                self.adopt().await;
                return;
            }
            Err(e) => {
                tracing::error!(user = %self.user, server = %self.server, error = %e, "cleanup after failed spawn");
            }
        }
        self.push_progress(failed_event(&message));
        self.stopped.send_replace(true);
    }

    async fn stop(
        &mut self,
        myself: &ActorRef<ServerMsg>,
        remove: bool,
    ) -> Result<watch::Receiver<bool>, OpError> {
        let Ok((next, effect)) = transition(self.phase, Event::StopRequested) else {
            return Err(OpError::BadRequest("cannot stop".into()));
        };
        self.remove_after_stop |= remove;
        match effect {
            Effect::AlreadyStopped => {
                if remove
                    && self
                        .cleanup(self.last_failure.clone(), true)
                        .await?
                        .is_some()
                {
                    // started meanwhile by an earlier owner: judge that one first
                    self.remove_after_stop = false;
                    self.adopt().await;
                    return Err(OpError::BadRequest(format!(
                        "{}:{} was started again; stop it, then delete it",
                        self.user.as_str(),
                        self.server.as_str()
                    )));
                }
                return Ok(watch::channel(true).1);
            }
            Effect::AlreadyStopping => return Ok(self.stopped.subscribe()),
            _ => {}
        }
        if let Some(task) = self.spawn_task.take() {
            task.abort();
            self.push_progress(failed_event("Spawn cancelled"));
        }
        // Stopping: the route goes at once (routes exist only for running servers). A
        // stop ends whatever instance the store shows (it is this actor's, unless an
        // earlier owner started another that this node's replica had not shown)
        let (recorded, v) = self.key.mark_stopping(self.ctx.store.as_ref()).await?;
        self.ctx.replica.wait_for(v).await;
        self.phase = next;
        let launched = self
            .launched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut states: Vec<SpawnerState> = Vec::new();
        if let Some((instance, state)) = recorded {
            self.instance = instance;
            states.extend(Some(state).filter(|st| st.pid.is_some()));
        }
        if let Some(own) = launched.filter(|l| states.iter().all(|st| st.pid != l.pid)) {
            states.push(own);
        }
        let ctx = self.ctx.clone();
        let me = myself.clone();
        let instance = self.instance;
        tokio::spawn(async move {
            let began = std::time::Instant::now();
            let mut ok = true;
            for state in states {
                if let Err(e) = ctx.spawner.stop(&state, ctx.settings.stop_grace).await {
                    tracing::error!(error = %e, "stopping a server process");
                    ok = false;
                }
            }
            ctx.timings.stopped(ok, began.elapsed());
            let _ = me.cast(ServerMsg::StopFinished { instance });
        });
        Ok(self.stopped.subscribe())
    }

    async fn stop_finished(&mut self) {
        let Ok((next, Effect::MarkStopped)) = transition(self.phase, Event::StopFinished) else {
            return;
        };
        let remove = std::mem::take(&mut self.remove_after_stop);
        self.phase = next;
        for _ in 0..ADOPT_ROUNDS {
            match self.cleanup(None, remove).await {
                Ok(None) => break,
                // another instance than the one stopped: the stop asked for ends it too
                Ok(Some(newer)) => {
                    self.instance = newer.instance;
                    if newer.spawner.pid.is_some() {
                        self.stop_process(&newer.spawner).await;
                    }
                }
                Err(e) => {
                    tracing::error!(user = %self.user, server = %self.server, error = %e, "recording a stopped server");
                    break;
                }
            }
        }
        self.stopped.send_replace(true);
    }
}
