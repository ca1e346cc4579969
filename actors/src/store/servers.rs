//! Server records through a server's life, each write fenced by the owner of the
//! server's user: a start (the record `Starting`, with the server's own API token and
//! OAuth client), the launched process, ready, stopping, and the clean-up that marks it
//! stopped (or removes it) and deletes its token, client and the client's tokens.

use galilean_proto::records::{OAuthClientRecord, ServerPhase, ServerRecord, SpawnerState, FORMAT};
use galilean_proto::time::now_micros;
use galilean_proto::wire::NewToken;
use galilean_storage::{Store, Version};

use crate::error::OpError;
use crate::in_txn;
use crate::policy::placement::Owned;
use crate::secrets::sha256_hex;
use crate::store::fence::fence;
use crate::store::keys;
use crate::store::tokens::insert_token;
use crate::store::txn::{get, put};

/// One server's record key and the ownership its writes are fenced by.
#[derive(Debug, Clone)]
pub struct ServerKey {
    pub user: String,
    pub server: String,
    pub owned: Owned,
}

/// A start to record.
pub struct NewStart<'a> {
    /// The server's API token's secret (also its OAuth client's secret).
    pub secret: &'a str,
    pub token: NewToken,
    pub client: OAuthClientRecord,
    /// `None` keeps the stored display name (or the server's name).
    pub display_name: Option<String>,
    /// `None` keeps the stored options (or `null`).
    pub user_options: Option<String>,
}

/// How recording a start went.
pub enum Begun {
    /// The record is `Starting`, for this new instance, at this store version.
    Started(Box<ServerRecord>, Version),
    /// The store shows a server that is not stopped: an earlier owner started it, and
    /// this node's replica had not shown it. Nothing was written.
    Occupied(ServerPhase),
}

impl ServerKey {
    fn key(&self) -> Vec<u8> {
        keys::server(&self.user, &self.server)
    }

    /// Records a start: a new instance `Starting`, with its token and OAuth client.
    pub async fn begin_start(
        &self,
        store: &dyn Store,
        start: &NewStart<'_>,
    ) -> Result<Begun, OpError> {
        let key = self.key();
        let (user, name) = (&self.user, &self.server);
        let now = now_micros();
        let (rec, v) = in_txn!(store, |tx| {
            fence(tx.as_mut(), user, self.owned).await?;
            if tx.get(&keys::user(user)).await?.is_none() {
                return Err(OpError::NotFound(format!("No such user: {user}")));
            }
            let old = get::<ServerRecord>(tx.as_mut(), &key).await?;
            if let Some(o) = old.as_ref().filter(|o| o.phase != ServerPhase::Stopped) {
                return Ok(Begun::Occupied(o.phase));
            }
            let token = insert_token(store, tx.as_mut(), start.secret, &start.token).await?;
            let rec = ServerRecord {
                v: FORMAT,
                user: user.clone(),
                name: name.clone(),
                display_name: start
                    .display_name
                    .clone()
                    .or_else(|| old.as_ref().map(|o| o.display_name.clone()))
                    .unwrap_or_else(|| name.clone()),
                phase: ServerPhase::Starting,
                instance: old.as_ref().map_or(1, |o| o.instance + 1),
                started: Some(now),
                last_activity: Some(now),
                user_options: start
                    .user_options
                    .clone()
                    .or_else(|| old.as_ref().map(|o| o.user_options.clone()))
                    .unwrap_or_else(|| "null".to_owned()),
                target: None,
                spawner: SpawnerState::default(),
                token_id: Some(token.id),
                last_failure: None,
            };
            put(tx.as_mut(), &key, &rec)?;
            put(
                tx.as_mut(),
                &keys::client(&start.client.client_id),
                &start.client,
            )?;
            rec
        })?;
        Ok(Begun::Started(Box::new(rec), v))
    }

    /// Writes the launched process into `instance`'s record (still `Starting`). Without
    /// a process, only confirms (in a write, so that the leader validates what it read)
    /// that this node still owns the user and the record is still this spawn's.
    pub async fn record_launch(
        &self,
        store: &dyn Store,
        instance: u64,
        state: Option<&SpawnerState>,
    ) -> Result<Version, OpError> {
        self.while_starting(store, instance, |rec| {
            if let Some(state) = state {
                rec.spawner = state.clone();
            }
        })
        .await
    }

    /// Marks `instance` running at `url`, launched as `state`.
    pub async fn mark_running(
        &self,
        store: &dyn Store,
        instance: u64,
        url: &str,
        state: &SpawnerState,
    ) -> Result<Version, OpError> {
        self.while_starting(store, instance, |rec| {
            rec.phase = ServerPhase::Running;
            rec.target = Some(url.to_owned());
            rec.spawner = state.clone();
        })
        .await
    }

    /// Writes `change` into `instance`'s record while it is that spawn's and `Starting`;
    /// refused once the record changed during the spawn.
    async fn while_starting(
        &self,
        store: &dyn Store,
        instance: u64,
        change: impl Fn(&mut ServerRecord),
    ) -> Result<Version, OpError> {
        let key = self.key();
        let ((), v) = in_txn!(store, |tx| {
            fence(tx.as_mut(), &self.user, self.owned).await?;
            match get::<ServerRecord>(tx.as_mut(), &key).await? {
                Some(mut rec) if rec.instance == instance && rec.phase == ServerPhase::Starting => {
                    change(&mut rec);
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

    /// Marks whatever instance the store shows `Stopping` (the route goes at once);
    /// that instance and its process, when there is a record.
    pub async fn mark_stopping(
        &self,
        store: &dyn Store,
    ) -> Result<(Option<(u64, SpawnerState)>, Version), OpError> {
        let key = self.key();
        in_txn!(store, |tx| {
            fence(tx.as_mut(), &self.user, self.owned).await?;
            match get::<ServerRecord>(tx.as_mut(), &key).await? {
                Some(mut rec) => {
                    rec.phase = ServerPhase::Stopping;
                    put(tx.as_mut(), &key, &rec)?;
                    Some((rec.instance, rec.spawner))
                }
                None => None,
            }
        })
    }

    /// Marks `instance` stopped (keeping `failure`), or removes the record when
    /// `remove`, and deletes the server's OAuth client and the tokens in `doomed` (the
    /// server's own and those issued to its client). A record of another instance that
    /// is not stopped is left alone and returned, with nothing written: an earlier owner
    /// started it, and marking it stopped would leave its process running unknown to
    /// every node.
    pub async fn clean_up(
        &self,
        store: &dyn Store,
        instance: u64,
        client_id: &str,
        doomed: &[String],
        failure: Option<String>,
        remove: bool,
    ) -> Result<(Option<ServerRecord>, Version), OpError> {
        let key = self.key();
        in_txn!(store, |tx| {
            fence(tx.as_mut(), &self.user, self.owned).await?;
            match get::<ServerRecord>(tx.as_mut(), &key).await? {
                Some(rec) if rec.instance != instance && rec.phase != ServerPhase::Stopped => {
                    Some(rec)
                }
                rec => {
                    if let Some(mut rec) = rec {
                        if remove {
                            tx.clear(&key);
                            crate::store::shares::forget_server(
                                tx.as_mut(),
                                &self.user,
                                &self.server,
                            )
                            .await?;
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
                    tx.clear(&keys::client(client_id));
                    for h in doomed {
                        tx.clear(&keys::token(h));
                    }
                    None
                }
            }
        })
    }
}

/// The OAuth client of a server: its id, the secret's hash, the exact redirect URI and
/// the one scope it may grant.
pub fn server_client(
    user: &str,
    server: &str,
    client_id: &str,
    prefix: &str,
    secret: &str,
) -> OAuthClientRecord {
    OAuthClientRecord {
        v: FORMAT,
        client_id: client_id.to_owned(),
        secret_hash: sha256_hex(secret),
        redirect_uri: format!("{prefix}oauth_callback"),
        description: format!("Server at {prefix}"),
        allowed_scopes: vec![format!("access:servers!server={user}/{server}")],
        server: Some((user.to_owned(), server.to_owned())),
        service: None,
    }
}
