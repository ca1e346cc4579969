//! Renaming a user (`PATCH /users/{name}` with `name`): one transaction that moves
//! everything keyed or owned by the old name to the new one: the user's record, its
//! (stopped) servers, its tokens, its group memberships, the shares of its servers and
//! those granted to it, its share codes and its `auth_state`. A user with a server that
//! is not stopped is not renamed: its routes, its server's token and environment carry
//! the old name (JupyterHub renames anyway, and such servers break).

use galilean_proto::records::{
    Owner, ServerPhase, ServerRecord, ShareCodeRecord, ShareRecord, ShareWith, TokenRecord,
    UserRecord,
};
use galilean_storage::{Store, Transaction, Version};

use crate::error::OpError;
use crate::in_txn;
use crate::policy::shares::refiltered;
use crate::store::keys::{self, KeyKind};
use crate::store::txn::{get, put};

/// Renames `old` to `new`, with its tokens: `tokens_at(version)` lists the hashes of
/// `old`'s tokens as of a store version (the replica, once it has applied that version:
/// the store keeps no index of tokens by owner). The transaction reads the whole token
/// range for conflicts, so a token made meanwhile anywhere makes it start over and list
/// again: no token of `old` is left behind to grant a later user of that name. 404
/// without `old`, 400 when `new` exists or a server of `old` is not stopped.
pub async fn rename_user<F, Fut>(
    store: &dyn Store,
    old: &str,
    new: &str,
    tokens_at: F,
) -> Result<(UserRecord, Version), OpError>
where
    F: Fn(Version) -> Fut,
    Fut: std::future::Future<Output = Vec<String>>,
{
    let (tokens_begin, tokens_end) =
        galilean_storage::tuple::range(&galilean_storage::tuple::pack(&[
            galilean_storage::tuple::Element::from(keys::TOKEN),
        ]));
    in_txn!(store, |tx| {
        tx.add_read_conflict_range(&tokens_begin, &tokens_end);
        let token_hashes = tokens_at(tx.read_version()).await;
        let Some(mut user) = get::<UserRecord>(tx.as_mut(), &keys::user(old)).await? else {
            return Err(OpError::NotFound(format!("No such user: {old}")));
        };
        if tx.get(&keys::user(new)).await?.is_some() {
            return Err(OpError::BadRequest(format!(
                "User {new} already exists, username must be unique"
            )));
        }
        move_servers(tx.as_mut(), old, new).await?;
        user.name = new.to_owned();
        tx.clear(&keys::user(old));
        put(tx.as_mut(), &keys::user(new), &user)?;
        move_tokens(tx.as_mut(), old, new, &token_hashes).await?;
        move_memberships(tx.as_mut(), old, new).await?;
        move_shares(tx.as_mut(), old, new).await?;
        if let Some(state) = tx.get(&keys::auth_state(old)).await? {
            tx.clear(&keys::auth_state(old));
            tx.set(&keys::auth_state(new), &state);
        }
        user
    })
}

async fn move_servers(tx: &mut dyn Transaction, old: &str, new: &str) -> Result<(), OpError> {
    let (begin, end) = keys::servers_of(old);
    for (key, _) in tx.get_range(&begin, &end, 0, false).await? {
        let Some(mut rec) = get::<ServerRecord>(tx, &key).await? else {
            continue;
        };
        if rec.phase != ServerPhase::Stopped {
            return Err(OpError::BadRequest(format!(
                "{old}'s server '{}' is active: stop it before renaming {old}",
                rec.name
            )));
        }
        tx.clear(&key);
        rec.user = new.to_owned();
        put(tx, &keys::server(new, &rec.name), &rec)?;
    }
    Ok(())
}

async fn move_tokens(
    tx: &mut dyn Transaction,
    old: &str,
    new: &str,
    hashes: &[String],
) -> Result<(), OpError> {
    for h in hashes {
        let key = keys::token(h);
        let Some(mut tok) = get::<TokenRecord>(tx, &key).await? else {
            continue;
        };
        if tok.owner == Owner::User(old.to_owned()) {
            tok.owner = Owner::User(new.to_owned());
            put(tx, &key, &tok)?;
        }
    }
    Ok(())
}

async fn move_memberships(tx: &mut dyn Transaction, old: &str, new: &str) -> Result<(), OpError> {
    let (begin, end) = keys::groups_of(old);
    for (key, _) in tx.get_range(&begin, &end, 0, false).await? {
        if let KeyKind::UserGroup(_, group) = keys::classify(&key) {
            tx.clear(&key);
            tx.clear(&keys::member(&group, old));
            tx.set(&keys::user_group(new, &group), b"");
            tx.set(&keys::member(&group, new), b"");
        }
    }
    Ok(())
}

async fn move_shares(tx: &mut dyn Transaction, old: &str, new: &str) -> Result<(), OpError> {
    // the shares of old's servers: their owner and their filters change
    let (begin, end) = keys::shares_of_owner(old);
    for (key, _) in tx.get_range(&begin, &end, 0, false).await? {
        let Some(mut rec) = get::<ShareRecord>(tx, &key).await? else {
            continue;
        };
        tx.clear(&key);
        tx.clear(&keys::share_to(&rec.with, old, &rec.server));
        rec.owner = new.to_owned();
        rec.scopes = refiltered(&rec.scopes, new, &rec.server);
        put(tx, &keys::share(new, &rec.server, &rec.with), &rec)?;
        tx.set(&keys::share_to(&rec.with, new, &rec.server), b"");
    }
    // the shares granted to old: their recipient changes
    let was = ShareWith::User(old.to_owned());
    let now = ShareWith::User(new.to_owned());
    let (begin, end) = keys::shares_to(&was);
    for (key, _) in tx.get_range(&begin, &end, 0, false).await? {
        let KeyKind::ShareTo(_, owner, server) = keys::classify(&key) else {
            continue;
        };
        tx.clear(&key);
        let primary = keys::share(&owner, &server, &was);
        if let Some(mut rec) = get::<ShareRecord>(tx, &primary).await? {
            tx.clear(&primary);
            rec.with = now.clone();
            put(tx, &keys::share(&owner, &server, &now), &rec)?;
            tx.set(&keys::share_to(&now, &owner, &server), b"");
        }
    }
    // old's codes
    let (begin, end) = keys::share_codes_of_owner(old);
    for (key, _) in tx.get_range(&begin, &end, 0, false).await? {
        let KeyKind::ShareCodeOf(_, server, hash) = keys::classify(&key) else {
            continue;
        };
        tx.clear(&key);
        if let Some(mut code) = get::<ShareCodeRecord>(tx, &keys::share_code(&hash)).await? {
            code.owner = new.to_owned();
            code.scopes = refiltered(&code.scopes, new, &server);
            put(tx, &keys::share_code(&hash), &code)?;
            tx.set(&keys::share_code_of(new, &server, &hash), b"");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{groups, server_edits, shares, tokens, users};
    use galilean_proto::wire::NewToken;
    use galilean_storage::memory::MemoryStore;

    async fn count(store: &dyn Store, prefix: &str, first: &str) -> usize {
        let mut tx = store.begin().await.unwrap();
        let (b, e) = galilean_storage::tuple::range(&galilean_storage::tuple::pack(&[
            galilean_storage::tuple::Element::from(prefix),
            galilean_storage::tuple::Element::from(first),
        ]));
        tx.get_range(&b, &e, 0, false).await.unwrap().len()
    }

    #[tokio::test]
    async fn everything_that_names_a_user_moves_with_its_rename() {
        let store = MemoryStore::new();
        let names: Vec<String> = ["alice", "bob"].iter().map(|s| s.to_string()).collect();
        users::create_users(&store, &names, false, None)
            .await
            .unwrap();
        server_edits::create_stopped(&store, "alice", "nb", None, None)
            .await
            .unwrap();
        groups::create_groups(&store, &["g".into()], &["alice".into()], "{}")
            .await
            .unwrap();
        let bob = ShareWith::User("bob".into());
        shares::grant(
            &store,
            "alice",
            "nb",
            &bob,
            &["access:servers!server=alice/nb".into()],
        )
        .await
        .unwrap();
        shares::grant(
            &store,
            "bob",
            "",
            &ShareWith::User("alice".into()),
            &["access:servers!server=bob/".into()],
        )
        .await
        .unwrap();
        shares::new_code(
            &store,
            "alice",
            "nb",
            &["access:servers!server=alice/nb".into()],
            60,
        )
        .await
        .unwrap();
        users::set_auth_state(&store, "alice", Some("gAAAA-token"))
            .await
            .unwrap();
        let ((rec, _secret), _) = tokens::create_token(
            &store,
            NewToken {
                owner: Owner::User("alice".into()),
                scopes: vec!["inherit".into()],
                note: "n".into(),
                expires_in: None,
                session_id: None,
                client_id: "jupyterhub".into(),
            },
            None,
        )
        .await
        .unwrap();
        let hash = {
            let mut tx = store.begin().await.unwrap();
            let (b, e) = galilean_storage::tuple::range(&galilean_storage::tuple::pack(&[
                galilean_storage::tuple::Element::from(keys::TOKEN),
            ]));
            let all = tx.get_range(&b, &e, 0, false).await.unwrap();
            all.iter()
                .find_map(|(k, _)| match keys::classify(k) {
                    KeyKind::Token(h) => Some(h),
                    _ => None,
                })
                .unwrap()
        };
        let none = |_| async { Vec::new() };
        assert!(matches!(
            rename_user(&store, "alice", "bob", none).await,
            Err(OpError::BadRequest(_))
        ));
        let listed = |_| {
            let h = hash.clone();
            async move { vec![h] }
        };
        let (user, _) = rename_user(&store, "alice", "carla", listed).await.unwrap();
        assert_eq!(user.name, "carla");
        let mut tx = store.begin().await.unwrap();
        assert!(tx.get(&keys::user("alice")).await.unwrap().is_none());
        let server = get::<ServerRecord>(tx.as_mut(), &keys::server("carla", "nb"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(server.user, "carla");
        let tok = get::<TokenRecord>(tx.as_mut(), &keys::token(&hash))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((tok.id, tok.owner), (rec.id, Owner::User("carla".into())));
        assert!(tx.get(&keys::member("g", "carla")).await.unwrap().is_some());
        let moved = get::<ShareRecord>(tx.as_mut(), &keys::share("carla", "nb", &bob))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(moved.scopes, vec!["access:servers!server=carla/nb"]);
        let received = keys::share("bob", "", &ShareWith::User("carla".into()));
        assert!(tx.get(&received).await.unwrap().is_some());
        assert!(tx.get(&keys::auth_state("carla")).await.unwrap().is_some());
        for prefix in [
            keys::SERVER,
            keys::USER_GROUP,
            keys::SHARE,
            keys::SHARE_CODE_OF,
            keys::AUTH_STATE,
        ] {
            assert_eq!(
                count(&store, prefix, "alice").await,
                0,
                "{prefix} still names alice"
            );
        }
        assert_eq!(count(&store, keys::SHARE_CODE_OF, "carla").await, 1);
    }
}
