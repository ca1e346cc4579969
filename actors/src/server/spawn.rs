//! The work of one spawn, off the server actor: wait for a spawn slot, confirm the start
//! is still this node's to make, launch through the spawner, record the process, and
//! wait until the server answers; the actor hears how it ended. And the launch check
//! the spawner asks at the moment of the launch.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use galilean_proto::models::ProgressEvent;
use galilean_proto::records::{ServerPhase, SpawnerState};
use ractor::ActorRef;
use tokio::sync::watch;

use crate::context::HubCtx;
use crate::error::OpError;
use crate::membership::lease::ServeLease;
use crate::membership::live_set::read_live_set;
use crate::metrics::SpawnOutcome;
use crate::policy::placement::{LiveSetRules, Owned};
use crate::server::messages::{push_progress, Progress, ServerMsg};
use crate::spawner::logs::tail_log;
use crate::spawner::readiness::{wait_until_ready, NotReady};
use crate::spawner::{LaunchCheck, PollStatus, SpawnRequest, Started};
use crate::store::servers::ServerKey;

/// One spawn of one instance of a server.
pub struct SpawnTask {
    pub ctx: Arc<HubCtx>,
    /// The server's record, fenced by the actor's ownership.
    pub key: ServerKey,
    pub myself: ActorRef<ServerMsg>,
    pub instance: u64,
    pub req: SpawnRequest,
    pub progress: watch::Sender<Arc<Progress>>,
    /// Set as soon as a process exists, so a stop during the spawn can find it.
    pub launched: Arc<Mutex<Option<SpawnerState>>>,
}

impl SpawnTask {
    /// Writes the launched process into this spawn's record (still Starting), fenced:
    /// an owner that lost the user cannot write. Without a process, only confirms that
    /// this node still owns the user and the record is still this spawn's.
    async fn record_launch(&self, state: Option<&SpawnerState>) -> Result<(), OpError> {
        let v = self
            .key
            .record_launch(self.ctx.store.as_ref(), self.instance, state)
            .await?;
        self.ctx.replica.wait_for(v).await;
        Ok(())
    }

    /// Runs the spawn, counts how long it took and how it ended, and tells the actor.
    pub async fn run(self) {
        let began = std::time::Instant::now();
        let result = self.spawn().await;
        let outcome = match &result {
            Ok(_) => SpawnOutcome::Success,
            Err(f) if f.exited => SpawnOutcome::Exited,
            Err(_) => SpawnOutcome::Error,
        };
        self.ctx.timings.spawned(outcome, began.elapsed());
        let _ = self.myself.cast(ServerMsg::SpawnFinished {
            instance: self.instance,
            result: result.map_err(|f| f.message),
        });
    }

    fn push(&self, ev: ProgressEvent) {
        push_progress(&self.progress, ev);
    }

    async fn spawn(&self) -> Result<Started, SpawnFailure> {
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
            return Err(format!("Spawn failed: could not record the server: {e}").into());
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
                let exited = matches!(e, NotReady::GaveUp(_));
                let why = match e {
                    // only the process's exit gives up the wait
                    NotReady::GaveUp(reason) => reason,
                    NotReady::Timeout(_) => format!(
                        "the server did not answer at {}{}api within {} seconds",
                        started.url,
                        self.req.prefix,
                        ready_timeout.as_secs_f64().round()
                    ),
                };
                let log = tail_log(&log_path, log_from, 20, 4096);
                let message = if log.trim().is_empty() {
                    format!("Spawn failed: {why}")
                } else {
                    format!("Spawn failed: {why}. Last lines of the server's log:\n{log}")
                };
                Err(SpawnFailure { message, exited })
            }
        }
    }
}

/// Why a spawn failed, and whether because its process exited before it answered.
struct SpawnFailure {
    message: String,
    exited: bool,
}

impl From<String> for SpawnFailure {
    fn from(message: String) -> SpawnFailure {
        SpawnFailure {
            message,
            exited: false,
        }
    }
}

/// Whether this node may launch the process of `instance` of `key`'s server, which it
/// owns as `key.owned`, by what it knows first-hand: a spawn's confirmation in the store
/// may be an old one (a commit sent again after a partition gets its first answer back,
/// from before the partition), and ownership may have moved since. While the serving
/// lease runs, the replica has everything committed before the node's last proof of
/// being caught up, and a user moves away only after its owner's lease ran out
/// (`membership::timing::LIVE_DEADLINE`): so the replica shows any move that could make
/// this launch a second process. Reads only this node's memory, so that the spawner can
/// ask it at the moment of the launch.
pub fn launch_check(
    lease: Weak<ServeLease>,
    ctx: Arc<HubCtx>,
    key: &ServerKey,
    instance: u64,
) -> LaunchCheck {
    let owned: Owned = key.owned;
    let record = (key.user.clone(), key.server.clone());
    LaunchCheck::new(move || {
        let lease = lease
            .upgrade()
            .ok_or_else(|| "the hub is shutting down".to_owned())?;
        if !lease.valid() {
            return Err("this node is out of touch with its cluster".into());
        }
        let user = record.0.as_str();
        if let Some(set) = read_live_set(&ctx.replica) {
            set.check_owner(user, owned)
                .map_err(|_| format!("{user} is no longer this node's to start"))?;
        }
        let ours = ctx.replica.read(|s| {
            s.servers
                .get(&record)
                .is_some_and(|r| r.instance == instance && r.phase == ServerPhase::Starting)
        });
        if !ours {
            return Err("the server's record changed during the spawn".into());
        }
        Ok(())
    })
}

/// Counts a spawn holding a slot, until dropped.
struct SlotGuard(Arc<HubCtx>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0
            .spawning_now
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}
