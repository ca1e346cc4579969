//! The calls on a user's actors: the typed operations the node's handlers use, each a
//! [`Call`] run where the user's owner is ([`Router::call`]: here, or at the owner over
//! the cluster, following the user while its actors move), and what a call does at the
//! owner ([`Router::call_local`]: messages to the user's and servers' actors). The
//! operations that revoke or end something answer only once every live node has applied
//! it (`membership::await_everywhere`).

use std::sync::Arc;
use std::time::Duration;

use galilean_proto::names::{ServerName, UserName};
use galilean_proto::records::{TokenRecord, UserRecord};
use galilean_proto::wire::{Call, NewToken, Reply, ServerSummary, StartOutcome};

use crate::error::OpError;
use crate::membership::members::await_everywhere;
use crate::membership::timing::{unix_ms, PING_TIMEOUT, SERVE_LEASE};
use crate::policy::servers::{names_of_call, user_of_call};
use crate::router::ask::ask;
use crate::router::registry::Router;
use crate::server::messages::ServerMsg;
use crate::user::UserMsg;

impl Router {
    pub async fn create_user(
        self: &Arc<Self>,
        name: &UserName,
        admin: bool,
    ) -> Result<UserRecord, OpError> {
        match self
            .call(Call::CreateUser {
                name: name.as_str().into(),
                admin,
            })
            .await?
        {
            Reply::User(u) => Ok(u),
            other => Err(unexpected(other)),
        }
    }

    pub async fn set_admin(
        self: &Arc<Self>,
        name: &UserName,
        admin: bool,
    ) -> Result<UserRecord, OpError> {
        match self
            .call(Call::SetAdmin {
                name: name.as_str().into(),
                admin,
            })
            .await?
        {
            Reply::User(u) => Ok(u),
            other => Err(unexpected(other)),
        }
    }

    pub async fn delete_user(self: &Arc<Self>, name: &UserName) -> Result<(), OpError> {
        self.call(Call::DeleteUser {
            name: name.as_str().into(),
        })
        .await?;
        await_everywhere(self).await;
        Ok(())
    }

    pub async fn create_token(
        self: &Arc<Self>,
        name: &UserName,
        spec: NewToken,
    ) -> Result<(TokenRecord, String), OpError> {
        match self
            .call(Call::CreateToken {
                name: name.as_str().into(),
                spec,
            })
            .await?
        {
            Reply::Token(rec, secret) => Ok((rec, secret)),
            other => Err(unexpected(other)),
        }
    }

    pub async fn delete_token(self: &Arc<Self>, name: &UserName, id: u64) -> Result<(), OpError> {
        self.call(Call::DeleteToken {
            name: name.as_str().into(),
            id,
        })
        .await?;
        await_everywhere(self).await;
        Ok(())
    }

    pub async fn end_session(
        self: &Arc<Self>,
        name: &UserName,
        session_id: &str,
    ) -> Result<(), OpError> {
        self.call(Call::EndSession {
            name: name.as_str().into(),
            session_id: session_id.into(),
        })
        .await?;
        await_everywhere(self).await;
        Ok(())
    }

    /// Starts a server and waits up to `wait` for it to be ready or fail.
    pub async fn start_server(
        self: &Arc<Self>,
        user: &UserName,
        server: &ServerName,
        user_options: Option<String>,
        display_name: Option<String>,
        wait: Duration,
    ) -> Result<StartOutcome, OpError> {
        let call = Call::Start {
            user: user.as_str().into(),
            server: server.as_str().into(),
            user_options,
            display_name,
            wait_ms: wait.as_millis() as u64,
        };
        match self.call(call).await? {
            Reply::Started(o) => Ok(o),
            other => Err(unexpected(other)),
        }
    }

    /// Stops a server; `true` when it stopped within `wait`.
    pub async fn stop_server(
        self: &Arc<Self>,
        user: &UserName,
        server: &ServerName,
        remove: bool,
        wait: Duration,
    ) -> Result<bool, OpError> {
        let call = Call::Stop {
            user: user.as_str().into(),
            server: server.as_str().into(),
            remove,
            wait_ms: wait.as_millis() as u64,
        };
        match self.call(call).await? {
            Reply::Stopped(stopped) => {
                // the server's token and OAuth client are gone with it
                if stopped {
                    await_everywhere(self).await;
                }
                Ok(stopped)
            }
            other => Err(unexpected(other)),
        }
    }

    pub async fn server_status(
        self: &Arc<Self>,
        user: &UserName,
        server: &ServerName,
    ) -> Result<ServerSummary, OpError> {
        let call = Call::Status {
            user: user.as_str().into(),
            server: server.as_str().into(),
        };
        match self.call(call).await? {
            Reply::Status(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }
}

/// How long a call keeps following its user's actors while they move between nodes,
/// counted from the first refusal it meets: a call that waited long at the old owner (a
/// start, a stop) before the move still gets the whole of it.
const MOVE_WAIT: Duration = Duration::from_secs(3);
/// How long a call refused with "moved" waits for this node to see a new owner before
/// it goes again to the same one.
const MOVED_RETRY: Duration = Duration::from_millis(200);

/// `call` with `spent` taken off its wait: a call that goes again after a move still
/// answers within the wait its caller gave (a start then answers "pending").
fn less_wait(mut call: Call, spent: Duration) -> Call {
    if let Call::Start { wait_ms, .. } | Call::Stop { wait_ms, .. } = &mut call {
        let spent = u64::try_from(spent.as_millis()).unwrap_or(u64::MAX);
        *wait_ms = wait_ms.saturating_sub(spent);
    }
    call
}

impl Router {
    /// Runs `call` at the owner of its user: here, or over the cluster.
    pub async fn call(self: &Arc<Self>, call: Call) -> Result<Reply, OpError> {
        let Some(user) = call.user().map(str::to_owned) else {
            return self.call_local(call).await;
        };
        // a call that reaches a node which no longer owns the user was refused before it
        // did anything: it goes again to the owner, once this node has seen the move. A
        // call refused by a stale actor (its owner kept the user, or got it back) goes
        // again to the same owner, which replaces the actor.
        let began = tokio::time::Instant::now();
        let mut deadline = None;
        loop {
            let (owner, epoch) = self.route(&user)?;
            let attempt = less_wait(call.clone(), began.elapsed());
            let answer = if owner == self.node_id() {
                self.call_local(attempt).await
            } else {
                self.call_remote(owner, epoch, &user, attempt).await
            };
            let now = tokio::time::Instant::now();
            match answer {
                Err(OpError::Moved(why)) => {
                    let deadline = *deadline.get_or_insert(now + MOVE_WAIT);
                    if now >= deadline {
                        return Err(OpError::Moved(why));
                    }
                    tracing::debug!(%user, "retrying a call that met a move: {why}");
                    let again = (now + MOVED_RETRY).min(deadline);
                    while self.owner_of(&user).ok() == Some(owner)
                        && tokio::time::Instant::now() < again
                    {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                other => return other,
            }
        }
    }

    /// Runs `call` on this node's actors.
    pub async fn call_local(self: &Arc<Self>, call: Call) -> Result<Reply, OpError> {
        match call {
            Call::Ping {
                version,
                sent_unix_ms,
                proof_age_ms,
                grant,
            } => {
                // a ping that waited (in a socket, or while this process was stopped)
                // proves nothing about now: only a fresh one renews the lease, and the
                // lease counts from when the leader sent it
                let age = || Duration::from_millis(unix_ms().saturating_sub(sent_unix_ms));
                if age() > PING_TIMEOUT {
                    return Err(OpError::Unavailable(format!(
                        "a stale ping ({:?} old)",
                        age()
                    )));
                }
                if !grant {
                    // answering says this node is back; it serves once the leader has it
                    // in the live set again and grants a lease
                    return Ok(Reply::Done);
                }
                self.catch_up(version, PING_TIMEOUT / 2).await?;
                let age = age();
                if age > PING_TIMEOUT {
                    return Err(OpError::Unavailable(format!("a stale ping ({age:?} old)")));
                }
                self.lease()
                    .renew_since(age + Duration::from_millis(proof_age_ms));
                Ok(Reply::Done)
            }
            Call::WaitApplied { version } => {
                self.catch_up(version, SERVE_LEASE).await?;
                Ok(Reply::Done)
            }
            Call::CreateUser { name, admin } => {
                let actor = self.user(&user_of_call(&name)?).await?;
                Ok(Reply::User(
                    ask(&actor, |reply| UserMsg::Create { admin, reply }).await??,
                ))
            }
            Call::SetAdmin { name, admin } => {
                let actor = self.user(&user_of_call(&name)?).await?;
                Ok(Reply::User(
                    ask(&actor, |reply| UserMsg::SetAdmin { admin, reply }).await??,
                ))
            }
            Call::DeleteUser { name } => {
                self.delete_user_here(&name).await?;
                Ok(Reply::Done)
            }
            Call::CreateToken { name, spec } => {
                let actor = self.user(&user_of_call(&name)?).await?;
                let (rec, secret) =
                    ask(&actor, |reply| UserMsg::CreateToken { spec, reply }).await??;
                Ok(Reply::Token(rec, secret))
            }
            Call::DeleteToken { name, id } => {
                let actor = self.user(&user_of_call(&name)?).await?;
                ask(&actor, |reply| UserMsg::DeleteToken { id, reply }).await??;
                Ok(Reply::Done)
            }
            Call::EndSession { name, session_id } => {
                let actor = self.user(&user_of_call(&name)?).await?;
                ask(&actor, |reply| UserMsg::EndSession { session_id, reply }).await??;
                Ok(Reply::Done)
            }
            Call::Start {
                user,
                server,
                user_options,
                display_name,
                wait_ms,
            } => {
                let (user, server) = names_of_call(&user, &server)?;
                let actor = self.server(&user, &server).await?;
                let mut progress = ask(&actor, |reply| ServerMsg::Start {
                    user_options,
                    display_name,
                    reply,
                })
                .await??;
                let wait = Duration::from_millis(wait_ms);
                let outcome =
                    match tokio::time::timeout(wait, progress.wait_for(|p| p.finished())).await {
                        Ok(Ok(p)) => match p.events.last() {
                            Some(ev) if ev.ready == Some(true) => StartOutcome::Ready,
                            Some(ev) => StartOutcome::Failed(ev.message.clone()),
                            None => StartOutcome::Pending,
                        },
                        _ => StartOutcome::Pending,
                    };
                Ok(Reply::Started(outcome))
            }
            Call::Stop {
                user,
                server,
                remove,
                wait_ms,
            } => {
                let (user, server) = names_of_call(&user, &server)?;
                let actor = self.server(&user, &server).await?;
                let mut done = ask(&actor, |reply| ServerMsg::Stop { remove, reply }).await??;
                let wait = Duration::from_millis(wait_ms);
                let stopped = tokio::time::timeout(wait, done.wait_for(|d| *d))
                    .await
                    .is_ok();
                Ok(Reply::Stopped(stopped))
            }
            Call::Status { user, server } => {
                let (user, server) = names_of_call(&user, &server)?;
                let actor = self.server(&user, &server).await?;
                let status = ask(&actor, |reply| ServerMsg::Status { reply }).await?;
                let events = status.progress.borrow().events.clone();
                Ok(Reply::Status(ServerSummary {
                    phase: status.phase,
                    last_failure: status.last_failure,
                    events,
                }))
            }
        }
    }

    /// Deletes a user this node owns: stops and removes each of its servers through the
    /// server's actor, then has the user's actor delete the user and what it owns.
    async fn delete_user_here(self: &Arc<Self>, name: &str) -> Result<(), OpError> {
        let user = user_of_call(name)?;
        let actor = self.user(&user).await?;
        if !self.ctx().replica.read(|s| s.users.contains_key(name)) {
            return Err(OpError::NotFound(format!("No such user: {name}")));
        }
        let server_names: Vec<String> = self
            .ctx()
            .replica
            .read(|s| s.servers_of(name).map(|r| r.name.clone()).collect());
        for sname in server_names {
            // a record whose name breaks today's rule is reached as the default server's
            let server = ServerName::parse(&sname).unwrap_or_default();
            let actor = self.server(&user, &server).await?;
            let mut done = ask(&actor, |reply| ServerMsg::Stop {
                remove: true,
                reply,
            })
            .await??;
            let _ = done.wait_for(|d| *d).await;
        }
        ask(&actor, |reply| UserMsg::Delete { reply }).await?
    }
}

fn unexpected(reply: Reply) -> OpError {
    OpError::Corrupt(format!("unexpected reply {reply:?}"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use galilean_proto::wire::Call;

    use super::less_wait;

    #[test]
    fn a_call_that_goes_again_keeps_the_wait_its_caller_gave() {
        let start = Call::Start {
            user: "u".into(),
            server: String::new(),
            user_options: None,
            display_name: None,
            wait_ms: 10_000,
        };
        assert_eq!(
            less_wait(start.clone(), Duration::from_millis(4_200)).wait_ms(),
            5_800
        );
        // past the wait: answer at once (a start reports itself pending)
        assert_eq!(less_wait(start, Duration::from_secs(11)).wait_ms(), 0);
        let stop = Call::Stop {
            user: "u".into(),
            server: String::new(),
            remove: false,
            wait_ms: 2_000,
        };
        assert_eq!(less_wait(stop, Duration::from_millis(500)).wait_ms(), 1_500);
        // calls without a wait are unchanged
        let status = Call::Status {
            user: "u".into(),
            server: String::new(),
        };
        assert!(matches!(
            less_wait(status, Duration::from_secs(1)),
            Call::Status { .. }
        ));
    }
}
