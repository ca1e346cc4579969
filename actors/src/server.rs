//! The ServerActor: owns one (user, server name), drives its lifecycle
//! ([`crate::lifecycle`]) through the spawner, and persists every phase change in the
//! server's record. Handlers reach it through the router; the spawn and stop work runs
//! in tasks that report back with internal messages, so the actor always answers.
//!
//! Persists: `("s", user, server)`, the server's API token, and its OAuth client.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use galilean_proto::models::ProgressEvent;
use galilean_proto::names::{server_client_id, ServerName, UserName};
use galilean_proto::records::{
    OAuthClientRecord, Owner, ServerPhase, ServerRecord, SpawnerState, FORMAT,
};
use galilean_proto::time::now_micros;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::watch;

use crate::context::HubCtx;
use crate::error::OpError;
use crate::lifecycle::{transition, Effect, Event, Refusal};
use crate::ops::{self, get, put, NewToken};
use crate::spawner::readiness::{wait_until_ready, NotReady};
use crate::spawner::{local::tail_log, LaunchCheck, PollStatus, SpawnRequest, Started};
use crate::{in_txn, keys};

/// Progress of the current (or last) spawn.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub instance: u64,
    pub events: Vec<ProgressEvent>,
}

impl Progress {
    pub fn finished(&self) -> bool {
        self.events.last().is_some_and(ProgressEvent::is_terminal)
    }
}

#[derive(ractor_cluster::RactorMessage)]
pub enum ServerMsg {
    /// Start the server. Replies with the progress of the spawn (a start already under
    /// way replies with its progress too).
    Start {
        user_options: Option<String>,
        display_name: Option<String>,
        reply: RpcReplyPort<Result<watch::Receiver<Arc<Progress>>, OpError>>,
    },
    /// Stop the server (and delete its record when `remove`). Replies with a receiver
    /// that turns `true` when it has stopped.
    Stop {
        remove: bool,
        reply: RpcReplyPort<Result<watch::Receiver<bool>, OpError>>,
    },
    /// The current phase and progress.
    Status {
        reply: RpcReplyPort<ServerStatus>,
    },
    /// Check a server found running at start-up: re-adopt it if its process runs, else
    /// mark it stopped. Replies whether it was re-adopted.
    Adopt {
        reply: RpcReplyPort<bool>,
    },
    SpawnFinished {
        instance: u64,
        result: Result<Started, String>,
    },
    StopFinished {
        instance: u64,
    },
}

#[derive(Debug, Clone)]
pub struct ServerStatus {
    pub phase: ServerPhase,
    pub progress: watch::Receiver<Arc<Progress>>,
    pub last_failure: Option<String>,
}

pub struct ServerActor;

pub struct ServerArgs {
    pub ctx: Arc<HubCtx>,
    pub user: UserName,
    pub server: ServerName,
    /// What this actor's writes are fenced by.
    pub owned: crate::remote::Owned,
    /// For the serving lease, which a spawn checks before it launches.
    pub router: std::sync::Weak<crate::Router>,
}

pub struct ServerState {
    ctx: Arc<HubCtx>,
    user: UserName,
    server: ServerName,
    owned: crate::remote::Owned,
    router: std::sync::Weak<crate::Router>,
    phase: ServerPhase,
    instance: u64,
    progress: watch::Sender<Arc<Progress>>,
    stopped: watch::Sender<bool>,
    remove_after_stop: bool,
    spawn_task: Option<tokio::task::JoinHandle<()>>,
    /// Set by the spawn task as soon as a process exists, so a stop during a spawn can
    /// find it.
    launched: Arc<Mutex<Option<SpawnerState>>>,
    last_failure: Option<String>,
    /// The store shows a server this actor did not start (an earlier actor's, on this
    /// node or another): it is judged (`adopt`) before the next message is handled.
    inherited: bool,
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
        let rec = args.ctx.replica.read(|s| {
            s.servers
                .get(&(
                    args.user.as_str().to_owned(),
                    args.server.as_str().to_owned(),
                ))
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
        Ok(ServerState {
            ctx: args.ctx,
            user: args.user,
            server: args.server,
            owned: args.owned,
            router: args.router,
            phase,
            instance,
            progress: watch::channel(Arc::new(progress)).0,
            stopped: watch::channel(phase == ServerPhase::Stopped).0,
            remove_after_stop: false,
            spawn_task: None,
            launched: Arc::new(Mutex::new(None)),
            last_failure: failure,
            inherited: phase != ServerPhase::Stopped,
        })
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

fn failed_event(message: &str) -> ProgressEvent {
    ProgressEvent {
        failed: Some(true),
        ..ProgressEvent::step(100, message)
    }
}

impl ServerState {
    fn key(&self) -> Vec<u8> {
        keys::server(self.user.as_str(), self.server.as_str())
    }

    fn push_progress(&self, ev: ProgressEvent) {
        self.progress.send_modify(|p| {
            let mut next = (**p).clone();
            next.events.push(ev);
            *p = Arc::new(next);
        });
    }

    async fn start(
        &mut self,
        myself: &ActorRef<ServerMsg>,
        user_options: Option<String>,
        display_name: Option<String>,
    ) -> Result<watch::Receiver<Arc<Progress>>, OpError> {
        let user = self.user.as_str().to_owned();
        let (next, effect) = match transition(self.phase, Event::StartRequested) {
            Ok(t) => t,
            Err(Refusal::AlreadyRunning) => {
                let what = if self.server.is_default() {
                    format!("{user} is already running")
                } else {
                    format!("{user}:{} is already running", self.server)
                };
                return Err(OpError::BadRequest(what));
            }
            Err(Refusal::PendingStop) => {
                return Err(OpError::BadRequest(format!(
                    "{user}:{} is pending stop",
                    self.server
                )))
            }
        };
        if effect == Effect::AlreadyStarting {
            return Ok(self.progress.subscribe());
        }
        // persist Starting with a fresh server token and OAuth client
        let secret = ops::new_token_secret();
        let ctx = self.ctx.clone();
        let key = self.key();
        let server_name = self.server.as_str().to_owned();
        let prefix = ctx.prefix(&self.user, &self.server);
        let client_id = server_client_id(&self.user, &self.server);
        let now = now_micros();
        let token_spec = NewToken {
            owner: Owner::User(user.clone()),
            scopes: vec![
                "access:servers!server".to_owned(),
                "users:activity!user".to_owned(),
            ],
            note: format!("Server at {prefix}"),
            expires_in: None,
            session_id: None,
            client_id: "jupyterhub".to_owned(),
        };
        let owned = self.owned;
        let (rec, version) = in_txn!(ctx.store.as_ref(), |tx| {
            crate::remote::fence(tx.as_mut(), &user, owned).await?;
            if tx.get(&keys::user(&user)).await?.is_none() {
                return Err(OpError::NotFound(format!("No such user: {user}")));
            }
            let old = get::<ServerRecord>(tx.as_mut(), &key).await?;
            // this actor thought the server stopped, but the store says otherwise: an
            // earlier owner started it, and this node's replica had not shown it when the
            // actor loaded. Starting again would make a second process: the start is
            // refused, and the next message to this actor judges the first.
            if let Some(o) = old.as_ref().filter(|o| o.phase != ServerPhase::Stopped) {
                self.inherited = true;
                return Err(OpError::BadRequest(match o.phase {
                    ServerPhase::Running => format!("{user} is already running"),
                    ServerPhase::Stopping => format!("{user}:{server_name} is pending stop"),
                    _ => format!("{user}:{server_name} is pending start"),
                }));
            }
            let token =
                ops::insert_token(ctx.store.as_ref(), tx.as_mut(), &secret, &token_spec).await?;
            let rec = ServerRecord {
                v: FORMAT,
                user: user.clone(),
                name: server_name.clone(),
                display_name: display_name
                    .clone()
                    .or_else(|| old.as_ref().map(|o| o.display_name.clone()))
                    .unwrap_or_else(|| server_name.clone()),
                phase: ServerPhase::Starting,
                instance: old.as_ref().map_or(1, |o| o.instance + 1),
                started: Some(now),
                last_activity: Some(now),
                user_options: user_options
                    .clone()
                    .or_else(|| old.as_ref().map(|o| o.user_options.clone()))
                    .unwrap_or_else(|| "null".to_owned()),
                target: None,
                spawner: SpawnerState::default(),
                token_id: Some(token.id),
                last_failure: None,
            };
            put(tx.as_mut(), &key, &rec)?;
            let client = OAuthClientRecord {
                v: FORMAT,
                client_id: client_id.clone(),
                secret_hash: ops::sha256_hex(&secret),
                redirect_uri: format!("{prefix}oauth_callback"),
                description: format!("Server at {prefix}"),
                allowed_scopes: vec![format!("access:servers!server={user}/{server_name}")],
                server: Some((user.clone(), server_name.clone())),
                service: None,
            };
            put(tx.as_mut(), &keys::client(&client_id), &client)?;
            rec
        })?;
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
        let task = SpawnTask {
            ctx: ctx.clone(),
            owned,
            myself: myself.clone(),
            instance: rec.instance,
            req: SpawnRequest {
                user: user.clone(),
                server: server_name,
                argv: ctx
                    .settings
                    .cmd
                    .iter()
                    .chain(&ctx.settings.args)
                    .cloned()
                    .collect(),
                env: ctx.server_env(&self.user, &self.server, &secret),
                prefix,
                home_dir: ctx.home_dir(&self.user),
                log_path: ctx.settings.log_dir.join(format!(
                    "{}{}{}.log",
                    self.user.escaped(),
                    if self.server.is_default() { "" } else { "--" },
                    self.server.escaped()
                )),
                node: ctx.settings.node_id,
                may_launch: launch_check(
                    self.router.clone(),
                    ctx.clone(),
                    (user.clone(), self.server.as_str().to_owned()),
                    owned,
                    rec.instance,
                ),
            },
            progress: self.progress.clone(),
            launched: self.launched.clone(),
        };
        self.spawn_task = Some(tokio::spawn(task.run()));
        Ok(self.progress.subscribe())
    }

    async fn spawn_finished(&mut self, result: Result<Started, String>) {
        let Ok((next, effect)) = transition(
            self.phase,
            if result.is_ok() {
                Event::SpawnSucceeded
            } else {
                Event::SpawnFailed
            },
        ) else {
            return;
        };
        self.spawn_task = None;
        match (effect, result) {
            (Effect::MarkRunning, Ok(started)) => {
                let write = self.mark_running(&started).await;
                match write {
                    Ok(v) => {
                        self.ctx.replica.wait_for(v).await;
                        self.phase = next;
                        let url = self.ctx.prefix(&self.user, &self.server);
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

    async fn mark_running(&self, started: &Started) -> Result<galilean_storage::Version, OpError> {
        let key = self.key();
        let ((), v) = in_txn!(self.ctx.store.as_ref(), |tx| {
            crate::remote::fence(tx.as_mut(), self.user.as_str(), self.owned).await?;
            match get::<ServerRecord>(tx.as_mut(), &key).await? {
                Some(mut rec)
                    if rec.instance == self.instance && rec.phase == ServerPhase::Starting =>
                {
                    rec.phase = ServerPhase::Running;
                    rec.target = Some(started.url.clone());
                    rec.spawner = started.state.clone();
                    put(tx.as_mut(), &key, &rec)?;
                }
                _ => {
                    return Err(OpError::BadRequest(
                        "the server's record changed during the spawn".into(),
                    ))
                }
            }
        })?;
        Ok(v)
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

    /// Marks this actor's instance of the server stopped and removes its token, OAuth
    /// client and the OAuth tokens issued to that client. A record of another instance
    /// that is not stopped (an earlier owner started it, and this node's replica had not
    /// shown it) is left alone and returned: marking it stopped would leave its process
    /// running unknown to every node.
    async fn cleanup(
        &self,
        failure: Option<String>,
        remove: bool,
    ) -> Result<Option<ServerRecord>, OpError> {
        let key = self.key();
        let client_id = server_client_id(&self.user, &self.server);
        let user = self.user.as_str().to_owned();
        let doomed: Vec<String> = self.ctx.replica.read(|s| {
            s.tokens
                .iter()
                .filter(|(_, t)| t.client_id == client_id && t.owner == Owner::User(user.clone()))
                .map(|(h, _)| h.clone())
                .collect()
        });
        let server_token = self.ctx.replica.read(|s| {
            s.servers
                .get(&(user.clone(), self.server.as_str().to_owned()))
                .and_then(|r| r.token_id)
                .and_then(|id| s.token_ids.get(&id).cloned())
        });
        let (other, v) = in_txn!(self.ctx.store.as_ref(), |tx| {
            crate::remote::fence(tx.as_mut(), self.user.as_str(), self.owned).await?;
            match get::<ServerRecord>(tx.as_mut(), &key).await? {
                Some(rec) if rec.instance != self.instance && rec.phase != ServerPhase::Stopped => {
                    Some(rec)
                }
                rec => {
                    if let Some(mut rec) = rec {
                        if remove {
                            tx.clear(&key);
                        } else {
                            rec.phase = ServerPhase::Stopped;
                            rec.started = None;
                            rec.target = None;
                            rec.last_activity = Some(now_micros());
                            rec.spawner = SpawnerState::default();
                            rec.token_id = None;
                            rec.last_failure = failure.clone();
                            put(tx.as_mut(), &key, &rec)?;
                        }
                    }
                    tx.clear(&keys::client(&client_id));
                    for h in doomed.iter().chain(server_token.iter()) {
                        tx.clear(&keys::token(h));
                    }
                    None
                }
            }
        })?;
        if other.is_none() {
            self.ctx.replica.wait_for(v).await;
        }
        Ok(other)
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
        // Stopping: the route goes at once (routes exist only for running servers)
        // a stop ends whatever instance the store shows (it is this actor's, unless an
        // earlier owner started another that this node's replica had not shown)
        let key = self.key();
        let (recorded, v) = in_txn!(self.ctx.store.as_ref(), |tx| {
            crate::remote::fence(tx.as_mut(), self.user.as_str(), self.owned).await?;
            match get::<ServerRecord>(tx.as_mut(), &key).await? {
                Some(mut rec) => {
                    rec.phase = ServerPhase::Stopping;
                    put(tx.as_mut(), &key, &rec)?;
                    Some((rec.instance, rec.spawner))
                }
                None => None,
            }
        })?;
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
            for state in states {
                if let Err(e) = ctx.spawner.stop(&state, ctx.settings.stop_grace).await {
                    tracing::error!(error = %e, "stopping a server process");
                }
            }
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

    /// Judges the server's record: re-adopts a running server that answers, and stops
    /// (and records stopped) any other. When the record turns out to be another instance
    /// than the one judged (this node's replica lagged), judges that one in turn.
    async fn adopt(&mut self) -> bool {
        let mut rec = self.ctx.replica.read(|s| {
            s.servers
                .get(&(
                    self.user.as_str().to_owned(),
                    self.server.as_str().to_owned(),
                ))
                .cloned()
        });
        for _ in 0..ADOPT_ROUNDS {
            let Some(r) = rec.take() else { return false };
            if r.phase == ServerPhase::Stopped {
                return false;
            }
            self.instance = r.instance;
            if self.judge(&r).await {
                return true;
            }
            match self.cleanup(None, false).await {
                Ok(None) => {
                    tracing::info!(user = %self.user, server = %self.server, "server did not survive; marked stopped");
                    self.phase = ServerPhase::Stopped;
                    self.stopped.send_replace(true);
                    return false;
                }
                Ok(Some(newer)) => {
                    tracing::info!(user = %self.user, server = %self.server, instance = newer.instance, "the record shows a newer instance; judging it");
                    rec = Some(newer.into());
                }
                Err(e) => {
                    tracing::error!(user = %self.user, server = %self.server, error = %e, "marking a lost server stopped");
                    self.phase = ServerPhase::Stopped;
                    self.stopped.send_replace(true);
                    return false;
                }
            }
        }
        tracing::warn!(user = %self.user, server = %self.server, "the server's record kept changing while it was judged");
        false
    }

    /// Re-adopts `rec` if it is running (true); otherwise stops its process, if one
    /// lives (false).
    ///
    /// Running means: recorded running and its process alive on this host, the same
    /// process (pid and start time match). It is re-adopted whether or not it answers
    /// at once: a readiness probe with a deadline stopped healthy servers on a loaded host
    /// (a 1,000-server storm while ownership moved), ending users' sessions. A server that
    /// hangs stays its user's to stop, as in JupyterHub, which trusts its spawner's poll.
    async fn judge(&mut self, rec: &ServerRecord) -> bool {
        let alive = rec.spawner.pid.is_some()
            && self.ctx.spawner.poll(&rec.spawner).await == PollStatus::Running;
        if alive && rec.phase == ServerPhase::Running && rec.target.is_some() {
            self.phase = ServerPhase::Running;
            self.stopped.send_replace(false);
            tracing::info!(user = %self.user, server = %self.server, "re-adopted a running server");
            return true;
        }
        if alive {
            self.stop_process(&rec.spawner).await;
        } else if let Some(found) = self.find_unrecorded(rec).await {
            // launched, but its launcher was stopped or killed before it could record it
            tracing::info!(user = %self.user, server = %self.server, pid = ?found.pid, "stopping a server process whose launch was never recorded");
            self.stop_process(&found).await;
        }
        false
    }
}

impl ServerState {
    /// Stops a server process with the configured grace. A failure is not acted on: the
    /// process is then gone, or on a host this node cannot reach.
    async fn stop_process(&self, state: &SpawnerState) {
        let _ = self
            .ctx
            .spawner
            .stop(state, self.ctx.settings.stop_grace)
            .await;
    }

    /// The process of `rec`'s start that its launcher started but never recorded, found
    /// by the start's server token.
    async fn find_unrecorded(&self, rec: &ServerRecord) -> Option<SpawnerState> {
        let id = rec.token_id?;
        let hash = self.ctx.replica.read(|s| s.token_ids.get(&id).cloned())?;
        self.ctx.spawner.find_unrecorded(&hash).await
    }
}

/// How many newer instances adoption follows before it gives up (each needs another
/// owner to have started the server meanwhile).
const ADOPT_ROUNDS: usize = 5;

/// The work of one spawn, off the actor: wait for a slot, launch, wait until ready.
struct SpawnTask {
    ctx: Arc<HubCtx>,
    owned: crate::remote::Owned,
    myself: ActorRef<ServerMsg>,
    instance: u64,
    req: SpawnRequest,
    progress: watch::Sender<Arc<Progress>>,
    launched: Arc<Mutex<Option<SpawnerState>>>,
}

impl SpawnTask {
    /// Writes the launched process into this spawn's record (still Starting), fenced:
    /// an owner that lost the user cannot write. Without a process, only confirms (in a
    /// write, so that the leader validates what it read) that this node still owns the
    /// user and the record is still this spawn's.
    async fn record_launch(&self, state: Option<&SpawnerState>) -> Result<(), OpError> {
        let key = keys::server(&self.req.user, &self.req.server);
        let ((), v) = in_txn!(self.ctx.store.as_ref(), |tx| {
            crate::remote::fence(tx.as_mut(), &self.req.user, self.owned).await?;
            match get::<ServerRecord>(tx.as_mut(), &key).await? {
                Some(mut rec)
                    if rec.instance == self.instance && rec.phase == ServerPhase::Starting =>
                {
                    if let Some(state) = state {
                        rec.spawner = state.clone();
                    }
                    put(tx.as_mut(), &key, &rec)?;
                }
                _ => {
                    return Err(OpError::BadRequest(
                        "the server's record changed during the spawn".into(),
                    ))
                }
            }
        })?;
        self.ctx.replica.wait_for(v).await;
        Ok(())
    }

    async fn run(self) {
        let result = self.spawn().await;
        let _ = self.myself.cast(ServerMsg::SpawnFinished {
            instance: self.instance,
            result,
        });
    }

    fn push(&self, ev: ProgressEvent) {
        self.progress.send_modify(|p| {
            let mut next = (**p).clone();
            next.events.push(ev);
            *p = Arc::new(next);
        });
    }

    async fn spawn(&self) -> Result<Started, String> {
        use std::sync::atomic::Ordering;
        let ctx = &self.ctx;
        if ctx.spawn_slots.available_permits() == 0 {
            self.push(ProgressEvent::step(10, "Waiting for a spawn slot"));
        }
        let _permit = ctx
            .spawn_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| "Spawn failed: the hub is shutting down".to_owned())?;
        let now = ctx.spawning_now.fetch_add(1, Ordering::SeqCst) + 1;
        ctx.spawning_peak.fetch_max(now, Ordering::SeqCst);
        let _guard = SlotGuard(ctx.clone());
        // a spawn that waited (for a slot, or in a node that was stopped) may no longer be
        // this node's to make: launching then would race the new owner's start
        self.record_launch(None)
            .await
            .map_err(|e| format!("Spawn failed: {e}"))?;
        // asked here before any of the launch's work (a port, the home directory), and
        // by the spawner again at the launch itself
        self.req
            .may_launch
            .check()
            .map_err(|e| format!("Spawn failed: {e}"))?;
        self.push(ProgressEvent::step(50, "Spawning server..."));
        let log_path = self.req.log_path.clone();
        // the log is appended to: a failure shows only what this start wrote
        let log_from = std::fs::metadata(&log_path).map_or(0, |m| m.len());
        let deadline = tokio::time::Instant::now() + ctx.settings.start_timeout;
        let started = tokio::time::timeout_at(deadline, ctx.spawner.start(self.req.clone()))
            .await
            .map_err(|_| {
                format!(
                    "Spawn failed: the server did not start within {} seconds",
                    ctx.settings.start_timeout.as_secs()
                )
            })?
            .map_err(|e| format!("Spawn failed: {e}"))?;
        *self.launched.lock().unwrap_or_else(|e| e.into_inner()) = Some(started.state.clone());
        // the record knows the process from now on: if this node dies or restarts before
        // the server is ready, whoever checks the record next finds and stops it
        if let Err(e) = self.record_launch(Some(&started.state)).await {
            let _ = ctx
                .spawner
                .stop(&started.state, ctx.settings.stop_grace)
                .await;
            return Err(format!("Spawn failed: could not record the server: {e}"));
        }
        let state = started.state.clone();
        let spawner = ctx.spawner.clone();
        let exited = async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if let PollStatus::Exited(code) = spawner.poll(&state).await {
                    return match code {
                        Some(c) => format!("the server process exited with status {c}"),
                        None => "the server process exited".to_owned(),
                    };
                }
            }
        };
        let ready_timeout = ctx
            .settings
            .http_timeout
            .min(deadline.saturating_duration_since(tokio::time::Instant::now()));
        let ready = wait_until_ready(
            &ctx.probe,
            &started.url,
            &self.req.prefix,
            ready_timeout,
            exited,
        )
        .await;
        match ready {
            Ok(_) => Ok(started),
            Err(e) => {
                let why = match e {
                    NotReady::GaveUp(reason) => reason,
                    NotReady::Timeout(_) => format!(
                        "the server did not answer at {}{}api within {} seconds",
                        started.url,
                        self.req.prefix,
                        ready_timeout.as_secs_f64().round()
                    ),
                };
                let log = tail_log(&log_path, log_from, 20, 4096);
                Err(if log.trim().is_empty() {
                    format!("Spawn failed: {why}")
                } else {
                    format!("Spawn failed: {why}. Last lines of the server's log:\n{log}")
                })
            }
        }
    }
}

/// Whether this node may launch the process of `instance` of `user`'s server (the key,
/// with the server's name), which it owns as `owned`, by what it knows first-hand: a
/// spawn's confirmation in the store may be an old one (a commit sent again after a
/// partition gets its first answer back, from before the partition), and ownership may
/// have moved since. While the serving lease runs, the replica has everything committed
/// before the node's last proof of being caught up, and a user moves away only after
/// its owner's lease ran out (`remote::LIVE_DEADLINE`): so the replica shows any move
/// that could make this launch a second process. Reads only this node's memory, so
/// that the spawner can ask it at the moment of the launch.
fn launch_check(
    router: std::sync::Weak<crate::Router>,
    ctx: Arc<HubCtx>,
    key: (String, String),
    owned: crate::remote::Owned,
    instance: u64,
) -> LaunchCheck {
    LaunchCheck::new(move || {
        let router = router
            .upgrade()
            .ok_or_else(|| "the hub is shutting down".to_owned())?;
        if !router.lease_valid() {
            return Err("this node is out of touch with its cluster".into());
        }
        let user = key.0.as_str();
        if let Some(set) = crate::remote::LiveSet::read(&ctx.replica) {
            set.check_owner(user, owned)
                .map_err(|_| format!("{user} is no longer this node's to start"))?;
        }
        let ours = ctx.replica.read(|s| {
            s.servers
                .get(&key)
                .is_some_and(|r| r.instance == instance && r.phase == ServerPhase::Starting)
        });
        if !ours {
            return Err("the server's record changed during the spawn".into());
        }
        Ok(())
    })
}

struct SlotGuard(Arc<HubCtx>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0
            .spawning_now
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}
