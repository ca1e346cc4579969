//! Re-adoption: the servers this node owns whose records are not stopped, and no actor
//! of which runs here (at start-up, or after a live-set change moved their users here),
//! are each judged by a fresh server actor: re-adopted if the process runs, marked
//! stopped if not.

use std::sync::Arc;

use galilean_proto::names::{ServerName, UserName};
use galilean_proto::records::ServerPhase;

use crate::router::ask::ask;
use crate::router::registry::Router;
use crate::server::messages::ServerMsg;

impl Router {
    /// The servers this node owns whose records are not stopped (with valid names).
    pub fn unstopped_local_servers(&self) -> Vec<(UserName, ServerName)> {
        let found: Vec<(String, String)> = self.ctx().replica.read(|s| {
            s.servers
                .values()
                .filter(|r| r.phase != ServerPhase::Stopped)
                .map(|r| (r.user.clone(), r.name.clone()))
                .collect()
        });
        found
            .into_iter()
            .filter(|(u, _)| self.is_local(u))
            .filter_map(|(u, s)| match (UserName::parse(&u), ServerName::parse(&s)) {
                (Ok(user), Ok(server)) => Some((user, server)),
                _ => {
                    tracing::warn!(user = %u, server = %s, "a server record with an invalid name");
                    None
                }
            })
            .collect()
    }

    /// Checks every unstopped server this node owns and runs no actor for: re-adopted if
    /// its process runs, marked stopped if not.
    pub async fn adopt_servers(self: &Arc<Self>) {
        let checks = self
            .unstopped_local_servers()
            .into_iter()
            .map(|(user, server)| {
                let router = self.clone();
                async move {
                    if router.has_server_actor(&user, &server).await {
                        return;
                    }
                    match router.server(&user, &server).await {
                        Ok(actor) => match ask(&actor, |reply| ServerMsg::Adopt { reply }).await {
                            Ok(true) => tracing::info!(%user, %server, "re-adopted a server"),
                            Ok(false) => {
                                tracing::info!(%user, %server, "a server is gone; marked stopped")
                            }
                            Err(e) => tracing::warn!(%user, %server, "cannot re-adopt: {e}"),
                        },
                        Err(e) => tracing::warn!(%user, %server, "cannot re-adopt: {e}"),
                    }
                }
            });
        futures::future::join_all(checks).await;
    }
}
