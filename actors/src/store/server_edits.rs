//! Server records changed while their server is not running (JupyterHub 6's `PUT` and
//! `PATCH /users/{name}/servers/{server}`): a named server made without starting it, and
//! a stopped server's display name, options or name changed. Each is one transaction
//! that reads the record, so a start meanwhile (which reads it too) makes one of them
//! start over and see the other; a server that is not stopped is never changed.

use galilean_proto::records::{ServerPhase, ServerRecord, SpawnerState, FORMAT};
use galilean_storage::{Store, Version};

use crate::error::OpError;
use crate::in_txn;
use crate::store::keys;
use crate::store::txn::{get, put};

/// Makes `user`'s named server `name`, stopped (`PUT`): 404 without the user, 409 when
/// it exists.
pub async fn create_stopped(
    store: &dyn Store,
    user: &str,
    name: &str,
    display_name: Option<String>,
    user_options: Option<String>,
) -> Result<(ServerRecord, Version), OpError> {
    let key = keys::server(user, name);
    in_txn!(store, |tx| {
        if tx.get(&keys::user(user)).await?.is_none() {
            return Err(OpError::NotFound(format!("No such user: {user}")));
        }
        if tx.get(&key).await?.is_some() {
            return Err(OpError::Exists(format!(
                "User {user} already has server {name}"
            )));
        }
        let rec = ServerRecord {
            v: FORMAT,
            user: user.to_owned(),
            name: name.to_owned(),
            display_name: display_name.clone().unwrap_or_else(|| name.to_owned()),
            phase: ServerPhase::Stopped,
            instance: 0,
            started: None,
            last_activity: None,
            user_options: user_options.clone().unwrap_or_else(|| "null".to_owned()),
            target: None,
            spawner: SpawnerState::default(),
            token_id: None,
            last_failure: None,
        };
        put(tx.as_mut(), &key, &rec)?;
        rec
    })
}

/// What a `PATCH` changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edit {
    pub name: Option<String>,
    pub display_name: Option<String>,
    /// JSON text of the new `user_options` object.
    pub user_options: Option<String>,
}

/// Changes `user`'s stopped server `name` (`PATCH`): 404 without its record, 400 while
/// it is not stopped, 409 when the new name is taken. A rename moves the server's shares
/// and share codes with it.
pub async fn edit_stopped(
    store: &dyn Store,
    user: &str,
    name: &str,
    edit: &Edit,
) -> Result<(ServerRecord, Version), OpError> {
    let key = keys::server(user, name);
    in_txn!(store, |tx| {
        let Some(mut rec) = get::<ServerRecord>(tx.as_mut(), &key).await? else {
            return Err(OpError::NotFound(format!(
                "{user} has no server named '{name}'"
            )));
        };
        if rec.phase != ServerPhase::Stopped {
            let full = format!("{user}/{name}");
            return Err(OpError::BadRequest(format!(
                "Server {full} is active. Please stop it before modifying it."
            )));
        }
        if let Some(d) = &edit.display_name {
            rec.display_name = d.clone();
        }
        if let Some(o) = &edit.user_options {
            rec.user_options = o.clone();
        }
        match edit.name.as_deref().filter(|n| *n != name) {
            Some(new) => {
                let new_key = keys::server(user, new);
                if tx.get(&new_key).await?.is_some() {
                    return Err(OpError::Exists(format!(
                        "User {user} already has server {new}"
                    )));
                }
                // a name given without a display name takes the name as the display name
                // when the old one was the old name
                if edit.display_name.is_none() && rec.display_name == name {
                    rec.display_name = new.to_owned();
                }
                rec.name = new.to_owned();
                tx.clear(&key);
                put(tx.as_mut(), &new_key, &rec)?;
                crate::store::shares::rename_server(tx.as_mut(), user, name, new).await?;
            }
            None => put(tx.as_mut(), &key, &rec)?,
        }
        rec
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{shares, users};
    use galilean_proto::records::ShareWith;
    use galilean_storage::memory::MemoryStore;

    #[tokio::test]
    async fn a_stopped_server_is_made_changed_and_renamed_with_its_shares() {
        let store = MemoryStore::new();
        let names = vec!["alice".to_owned(), "bob".to_owned()];
        users::create_users(&store, &names, false, None)
            .await
            .unwrap();
        assert!(matches!(
            create_stopped(&store, "nobody", "nb", None, None).await,
            Err(OpError::NotFound(_))
        ));
        let (rec, _) = create_stopped(&store, "alice", "nb", None, Some("{\"a\":1}".into()))
            .await
            .unwrap();
        assert_eq!(
            (rec.display_name.as_str(), rec.phase),
            ("nb", ServerPhase::Stopped)
        );
        assert!(matches!(
            create_stopped(&store, "alice", "nb", None, None).await,
            Err(OpError::Exists(_))
        ));
        let bob = ShareWith::User("bob".into());
        let scopes = vec!["access:servers!server=alice/nb".to_owned()];
        shares::grant(&store, "alice", "nb", &bob, &scopes)
            .await
            .unwrap();
        create_stopped(&store, "alice", "taken", None, None)
            .await
            .unwrap();
        let taken = Edit {
            name: Some("taken".into()),
            ..Edit::default()
        };
        assert!(matches!(
            edit_stopped(&store, "alice", "nb", &taken).await,
            Err(OpError::Exists(_))
        ));
        let rename = Edit {
            name: Some("nb2".into()),
            user_options: Some("{\"b\":2}".into()),
            ..Edit::default()
        };
        let (rec, _) = edit_stopped(&store, "alice", "nb", &rename).await.unwrap();
        assert_eq!(
            (
                rec.name.as_str(),
                rec.display_name.as_str(),
                rec.user_options.as_str()
            ),
            ("nb2", "nb2", "{\"b\":2}")
        );
        let mut tx = store.begin().await.unwrap();
        assert!(tx
            .get(&keys::server("alice", "nb"))
            .await
            .unwrap()
            .is_none());
        let moved = get::<galilean_proto::records::ShareRecord>(
            tx.as_mut(),
            &keys::share("alice", "nb2", &bob),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(moved.scopes, vec!["access:servers!server=alice/nb2"]);
        assert!(tx
            .get(&keys::share("alice", "nb", &bob))
            .await
            .unwrap()
            .is_none());
        assert!(matches!(
            edit_stopped(&store, "alice", "nb", &Edit::default()).await,
            Err(OpError::NotFound(_))
        ));
    }
}
