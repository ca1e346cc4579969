//! What the server actor is told and answers: its messages (commands from the router,
//! and the facts its spawn and stop tasks report back), and the progress of a spawn as
//! watchers see it.

use std::sync::Arc;

use galilean_proto::models::ProgressEvent;
use galilean_proto::records::ServerPhase;
use ractor::RpcReplyPort;
use tokio::sync::watch;

use crate::error::OpError;
use crate::spawner::Started;

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
    Status { reply: RpcReplyPort<ServerStatus> },
    /// Check a server found running at start-up: re-adopt it if its process runs, else
    /// mark it stopped. Replies whether it was re-adopted.
    Adopt { reply: RpcReplyPort<bool> },
    /// The spawn task of `instance` ended.
    SpawnFinished {
        instance: u64,
        result: Result<Started, String>,
    },
    /// The stop task of `instance` ended.
    StopFinished { instance: u64 },
}

/// A server's phase and progress, as its actor answers [`ServerMsg::Status`].
#[derive(Debug, Clone)]
pub struct ServerStatus {
    pub phase: ServerPhase,
    pub progress: watch::Receiver<Arc<Progress>>,
    pub last_failure: Option<String>,
}

/// Adds `ev` to the progress watchers see.
pub fn push_progress(progress: &watch::Sender<Arc<Progress>>, ev: ProgressEvent) {
    progress.send_modify(|p| {
        let mut next = (**p).clone();
        next.events.push(ev);
        *p = Arc::new(next);
    });
}

/// The event that ends a failed spawn's progress.
pub fn failed_event(message: &str) -> ProgressEvent {
    ProgressEvent {
        failed: Some(true),
        ..ProgressEvent::step(100, message)
    }
}
