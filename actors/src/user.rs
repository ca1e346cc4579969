//! The UserActor: owns one user, serializes the writes to the user's record and tokens,
//! and coordinates the user's server actors when the user is deleted.
//!
//! Persists: `("u", name)` and the user's tokens `("t", hash)`.

use std::sync::{Arc, Weak};

use galilean_proto::names::{ServerName, UserName};
use galilean_proto::records::{Owner, TokenRecord, UserRecord};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::context::HubCtx;
use crate::error::OpError;
use crate::ops::{self, get, put, NewToken};
use crate::remote::Owned;
use crate::router::{ask, Router};
use crate::server::ServerMsg;
use crate::{in_txn, keys};

#[derive(ractor_cluster::RactorMessage)]
pub enum UserMsg {
    /// Create the user; 409 if it exists.
    Create {
        admin: bool,
        reply: RpcReplyPort<Result<UserRecord, OpError>>,
    },
    /// Change `admin`.
    SetAdmin {
        admin: bool,
        reply: RpcReplyPort<Result<UserRecord, OpError>>,
    },
    /// Stop every server, then delete the user, its servers, tokens and OAuth clients.
    Delete {
        reply: RpcReplyPort<Result<(), OpError>>,
    },
    CreateToken {
        spec: NewToken,
        reply: RpcReplyPort<Result<(TokenRecord, String), OpError>>,
    },
    /// Delete one token by id (and, for an OAuth token, every token of this user from
    /// the same client).
    DeleteToken {
        id: u64,
        reply: RpcReplyPort<Result<(), OpError>>,
    },
    /// Delete every token issued under a browser session (logout).
    EndSession {
        session_id: String,
        reply: RpcReplyPort<Result<(), OpError>>,
    },
}

pub struct UserActor;

pub struct UserArgs {
    pub ctx: Arc<HubCtx>,
    pub router: Weak<Router>,
    pub name: UserName,
    /// What this actor's writes are fenced by.
    pub owned: Owned,
}

pub struct UserState {
    ctx: Arc<HubCtx>,
    router: Weak<Router>,
    name: UserName,
    owned: Owned,
}

impl Actor for UserActor {
    type Msg = UserMsg;
    type State = UserState;
    type Arguments = UserArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<UserMsg>,
        args: UserArgs,
    ) -> Result<UserState, ActorProcessingErr> {
        Ok(UserState {
            ctx: args.ctx,
            router: args.router,
            name: args.name,
            owned: args.owned,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<UserMsg>,
        msg: UserMsg,
        st: &mut UserState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            UserMsg::Create { admin, reply } => {
                let _ = reply.send(st.create(admin).await);
            }
            UserMsg::SetAdmin { admin, reply } => {
                let _ = reply.send(st.set_admin(admin).await);
            }
            UserMsg::Delete { reply } => {
                let _ = reply.send(st.delete().await);
            }
            UserMsg::CreateToken { spec, reply } => {
                let r = match ops::create_token(st.ctx.store.as_ref(), spec, st.fence()).await {
                    Ok((out, v)) => {
                        st.ctx.replica.wait_for(v).await;
                        Ok(out)
                    }
                    Err(e) => Err(e),
                };
                let _ = reply.send(r);
            }
            UserMsg::DeleteToken { id, reply } => {
                let _ = reply.send(st.delete_token(id).await);
            }
            UserMsg::EndSession { session_id, reply } => {
                let _ = reply.send(st.end_session(&session_id).await);
            }
        }
        Ok(())
    }
}

impl UserState {
    /// This actor's writes are fenced by its ownership of the user.
    fn fence(&self) -> ops::Fence<'_> {
        Some((self.name.as_str(), self.owned))
    }

    fn owner(&self) -> Owner {
        Owner::User(self.name.as_str().to_owned())
    }

    async fn create(&self, admin: bool) -> Result<UserRecord, OpError> {
        let name = self.name.as_str().to_owned();
        let (created, v) = ops::create_users(
            self.ctx.store.as_ref(),
            std::slice::from_ref(&name),
            admin,
            self.fence(),
        )
        .await?;
        self.ctx.replica.wait_for(v).await;
        created
            .into_iter()
            .next()
            .ok_or_else(|| OpError::Exists(format!("User {name} already exists")))
    }

    async fn set_admin(&self, admin: bool) -> Result<UserRecord, OpError> {
        let key = keys::user(self.name.as_str());
        let (rec, v) = in_txn!(self.ctx.store.as_ref(), |tx| {
            crate::remote::fence(tx.as_mut(), self.name.as_str(), self.owned).await?;
            let Some(mut rec) = get::<UserRecord>(tx.as_mut(), &key).await? else {
                return Err(OpError::NotFound(format!("No such user: {}", self.name)));
            };
            if rec.admin != admin {
                rec.admin = admin;
                put(tx.as_mut(), &key, &rec)?;
            }
            rec
        })?;
        self.ctx.replica.wait_for(v).await;
        Ok(rec)
    }

    async fn delete(&self) -> Result<(), OpError> {
        let name = self.name.as_str().to_owned();
        if !self.ctx.replica.read(|s| s.users.contains_key(&name)) {
            return Err(OpError::NotFound(format!("No such user: {name}")));
        }
        let router = self
            .router
            .upgrade()
            .ok_or_else(|| OpError::Unavailable("shutting down".into()))?;
        let server_names: Vec<String> = self
            .ctx
            .replica
            .read(|s| s.servers_of(&name).map(|r| r.name.clone()).collect());
        for sname in server_names {
            let Ok(server) =
                ServerName::parse(&sname).or_else(|_| Ok::<_, ()>(ServerName::default()))
            else {
                continue;
            };
            let actor = router.server(&self.name, &server).await?;
            let mut done = ask(&actor, |reply| ServerMsg::Stop {
                remove: true,
                reply,
            })
            .await??;
            let _ = done.wait_for(|d| *d).await;
        }
        let owner = self.owner();
        let tokens: Vec<String> = self.ctx.replica.read(|s| {
            s.tokens
                .iter()
                .filter(|(_, t)| t.owner == owner)
                .map(|(h, _)| h.clone())
                .collect()
        });
        let (begin, end) = keys::servers_of(&name);
        let ((), v) = in_txn!(self.ctx.store.as_ref(), |tx| {
            crate::remote::fence(tx.as_mut(), &name, self.owned).await?;
            tx.clear(&keys::user(&name));
            tx.clear_range(&begin, &end);
            for h in &tokens {
                tx.clear(&keys::token(h));
            }
        })?;
        self.ctx.replica.wait_for(v).await;
        Ok(())
    }

    async fn delete_token(&self, id: u64) -> Result<(), OpError> {
        let owner = self.owner();
        let doomed: Vec<String> = self.ctx.replica.read(|s| {
            let Some(hash) = s.token_ids.get(&id) else {
                return Vec::new();
            };
            let Some(tok) = s.tokens.get(hash) else {
                return Vec::new();
            };
            if tok.owner != owner {
                return Vec::new();
            }
            if tok.client_id == "jupyterhub" {
                return vec![hash.clone()];
            }
            s.tokens
                .iter()
                .filter(|(_, t)| t.owner == owner && t.client_id == tok.client_id)
                .map(|(h, _)| h.clone())
                .collect()
        });
        if doomed.is_empty() {
            return Err(OpError::NotFound(format!(
                "No such token a{id} for user {}",
                self.name
            )));
        }
        let v = ops::delete_tokens(self.ctx.store.as_ref(), &doomed, self.fence()).await?;
        self.ctx.replica.wait_for(v).await;
        Ok(())
    }

    async fn end_session(&self, session_id: &str) -> Result<(), OpError> {
        let owner = self.owner();
        let doomed: Vec<String> = self.ctx.replica.read(|s| {
            s.tokens
                .iter()
                .filter(|(_, t)| t.owner == owner && t.session_id.as_deref() == Some(session_id))
                .map(|(h, _)| h.clone())
                .collect()
        });
        if doomed.is_empty() {
            return Ok(());
        }
        let v = ops::delete_tokens(self.ctx.store.as_ref(), &doomed, self.fence()).await?;
        self.ctx.replica.wait_for(v).await;
        Ok(())
    }
}
