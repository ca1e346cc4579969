//! Judging a server the actor did not start (re-adoption): a running server whose
//! process lives on is re-adopted; any other is stopped and recorded stopped, following
//! the record to a newer instance when this node's replica lagged.

use galilean_proto::records::{ServerPhase, ServerRecord};

use crate::server::state::ServerState;
use crate::spawner::PollStatus;

impl ServerState {
    /// Judges the server's record: re-adopts a running server that answers, and stops
    /// (and records stopped) any other. When the record turns out to be another instance
    /// than the one judged (this node's replica lagged), judges that one in turn.
    pub(super) async fn adopt(&mut self) -> bool {
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

/// How many newer instances adoption follows before it gives up (each needs another
/// owner to have started the server meanwhile).
pub(super) const ADOPT_ROUNDS: usize = 5;
