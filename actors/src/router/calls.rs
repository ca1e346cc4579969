//! The typed operations the node's handlers use, each a [`Call`] run at the user's
//! owner; the ones that revoke or end something answer only once every live node has
//! applied it (`membership::await_everywhere`).

use std::sync::Arc;
use std::time::Duration;

use galilean_proto::names::{ServerName, UserName};
use galilean_proto::records::{TokenRecord, UserRecord};
use galilean_proto::wire::{Call, NewToken, Reply, ServerSummary, StartOutcome};

use crate::error::OpError;
use crate::membership::members::await_everywhere;
use crate::router::registry::Router;

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

fn unexpected(reply: Reply) -> OpError {
    OpError::Corrupt(format!("unexpected reply {reply:?}"))
}
