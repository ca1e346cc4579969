//! The UserActor: owns one user and serializes the writes to the user's record and
//! tokens, each fenced by the node's ownership of the user. Started by the router on the
//! user's owner; the router's dispatch sends it the calls about the user (and, to delete
//! a user, first stops the user's servers through their actors).
//!
//! Persists: `("u", name)` and the user's tokens `("t", hash)`.

use std::sync::Arc;

use galilean_proto::names::UserName;
use galilean_proto::records::{Owner, TokenRecord, UserRecord};
use galilean_proto::wire::NewToken;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::context::HubCtx;
use crate::error::OpError;
use crate::policy::placement::Owned;
use crate::store::fence::Fence;
use crate::store::{tokens, users};

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
    /// Delete the user, its servers' records and its tokens (its servers are stopped
    /// first, by whoever asks).
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
    pub name: UserName,
    /// What this actor's writes are fenced by.
    pub owned: Owned,
}

pub struct UserState {
    ctx: Arc<HubCtx>,
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
                let r = match tokens::create_token(st.ctx.store.as_ref(), spec, st.fence()).await {
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
    fn fence(&self) -> Fence<'_> {
        Some((self.name.as_str(), self.owned))
    }

    fn owner(&self) -> Owner {
        Owner::User(self.name.as_str().to_owned())
    }

    async fn create(&self, admin: bool) -> Result<UserRecord, OpError> {
        let name = self.name.as_str().to_owned();
        let (created, v) = users::create_users(
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
        let (rec, v) = users::set_admin(
            self.ctx.store.as_ref(),
            self.name.as_str(),
            admin,
            self.owned,
        )
        .await?;
        self.ctx.replica.wait_for(v).await;
        Ok(rec)
    }

    async fn delete(&self) -> Result<(), OpError> {
        let name = self.name.as_str();
        if !self.ctx.replica.read(|s| s.users.contains_key(name)) {
            return Err(OpError::NotFound(format!("No such user: {name}")));
        }
        let owner = self.owner();
        let tokens: Vec<String> = self
            .ctx
            .replica
            .read(|s| s.tokens_of(&owner).map(|(h, _)| h.clone()).collect());
        let v = users::delete_user(self.ctx.store.as_ref(), name, &tokens, self.owned).await?;
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
            s.tokens_of(&owner)
                .filter(|(_, t)| t.client_id == tok.client_id)
                .map(|(h, _)| h.clone())
                .collect()
        });
        if doomed.is_empty() {
            return Err(OpError::NotFound(format!(
                "No such token a{id} for user {}",
                self.name
            )));
        }
        let v = tokens::delete_tokens(self.ctx.store.as_ref(), &doomed, self.fence()).await?;
        self.ctx.replica.wait_for(v).await;
        Ok(())
    }

    async fn end_session(&self, session_id: &str) -> Result<(), OpError> {
        let owner = self.owner();
        let doomed: Vec<String> = self.ctx.replica.read(|s| {
            s.tokens_of(&owner)
                .filter(|(_, t)| t.session_id.as_deref() == Some(session_id))
                .map(|(h, _)| h.clone())
                .collect()
        });
        if doomed.is_empty() {
            return Ok(());
        }
        let v = tokens::delete_tokens(self.ctx.store.as_ref(), &doomed, self.fence()).await?;
        self.ctx.replica.wait_for(v).await;
        Ok(())
    }
}
