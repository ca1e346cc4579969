//! Shares and share codes in the store (§2.12): granted, narrowed, revoked, exchanged,
//! and forgotten with the server, user or group they name. Each operation is one
//! transaction that reads what it depends on (the server, the recipient), so a deletion
//! meanwhile makes it start over. Like groups, shares are written where the request
//! arrives; the store orders the writes.

use galilean_proto::records::{ServerRecord, ShareCodeRecord, ShareRecord, ShareWith, FORMAT};
use galilean_proto::time::now_micros;
use galilean_storage::{Store, Transaction, Version};

use crate::error::OpError;
use crate::in_txn;
use crate::policy::shares::after_revoking;
use crate::secrets::{random_alnum, sha256_hex};
use crate::store::keys::{self, KeyKind};
use crate::store::txn::{get, next_id, put};

/// The length of a share code: 43 letters and digits, about 256 bits.
const CODE_LENGTH: usize = 43;

/// Fails unless `owner`'s `server` exists: a named server needs its record, the default
/// server its user.
async fn server_exists(tx: &mut dyn Transaction, owner: &str, server: &str) -> Result<(), OpError> {
    let exists = if server.is_empty() {
        tx.get(&keys::user(owner)).await?.is_some()
    } else {
        get::<ServerRecord>(tx, &keys::server(owner, server))
            .await?
            .is_some()
    };
    if exists {
        Ok(())
    } else {
        Err(OpError::NotFound(format!(
            "No such server: {owner}/{server}"
        )))
    }
}

/// Fails (400) unless the recipient exists.
async fn recipient_exists(tx: &mut dyn Transaction, with: &ShareWith) -> Result<(), OpError> {
    let (key, what) = match with {
        ShareWith::User(n) => (keys::user(n), "user"),
        ShareWith::Group(n) => (keys::group(n), "group"),
    };
    if tx.get(&key).await?.is_none() {
        return Err(OpError::BadRequest(format!(
            "No such {what}: {}",
            with.name()
        )));
    }
    Ok(())
}

fn put_share(tx: &mut dyn Transaction, rec: &ShareRecord) -> Result<(), OpError> {
    put(tx, &keys::share(&rec.owner, &rec.server, &rec.with), rec)?;
    tx.set(&keys::share_to(&rec.with, &rec.owner, &rec.server), b"");
    Ok(())
}

fn clear_share(tx: &mut dyn Transaction, owner: &str, server: &str, with: &ShareWith) {
    tx.clear(&keys::share(owner, server, with));
    tx.clear(&keys::share_to(with, owner, server));
}

/// Grants `scopes` (already filtered to the server) on `owner`'s `server` to `with`,
/// adding them to a share that exists (JupyterHub's `Share.grant`).
async fn grant_in(
    tx: &mut dyn Transaction,
    owner: &str,
    server: &str,
    with: &ShareWith,
    scopes: &[String],
) -> Result<ShareRecord, OpError> {
    let key = keys::share(owner, server, with);
    match get::<ShareRecord>(tx, &key).await? {
        Some(mut rec) => {
            let before = rec.scopes.len();
            rec.scopes.extend(scopes.iter().cloned());
            rec.scopes.sort();
            rec.scopes.dedup();
            if rec.scopes.len() != before {
                put_share(tx, &rec)?;
            }
            Ok(rec)
        }
        None => {
            let rec = ShareRecord {
                v: FORMAT,
                owner: owner.to_owned(),
                server: server.to_owned(),
                with: with.clone(),
                scopes: scopes.to_vec(),
                created: now_micros(),
            };
            put_share(tx, &rec)?;
            Ok(rec)
        }
    }
}

/// Grants `scopes` on `owner`'s `server` to `with` (`POST /shares/{owner}/{server}`).
pub async fn grant(
    store: &dyn Store,
    owner: &str,
    server: &str,
    with: &ShareWith,
    scopes: &[String],
) -> Result<(ShareRecord, Version), OpError> {
    in_txn!(store, |tx| {
        server_exists(tx.as_mut(), owner, server).await?;
        recipient_exists(tx.as_mut(), with).await?;
        grant_in(tx.as_mut(), owner, server, with, scopes).await?
    })
}

/// Revokes `scopes` (all when `None`) of the share of `owner`'s `server` with `with`
/// (`PATCH /shares/{owner}/{server}`): the share left, `None` when it is gone or never
/// was.
pub async fn revoke(
    store: &dyn Store,
    owner: &str,
    server: &str,
    with: &ShareWith,
    scopes: Option<&[String]>,
) -> Result<(Option<ShareRecord>, Version), OpError> {
    in_txn!(store, |tx| {
        server_exists(tx.as_mut(), owner, server).await?;
        let key = keys::share(owner, server, with);
        match get::<ShareRecord>(tx.as_mut(), &key).await? {
            None => None,
            Some(mut rec) => {
                let left = after_revoking(&rec.scopes, scopes);
                if left.is_empty() {
                    clear_share(tx.as_mut(), owner, server, with);
                    None
                } else {
                    if left != rec.scopes {
                        rec.scopes = left;
                        put_share(tx.as_mut(), &rec)?;
                    }
                    Some(rec)
                }
            }
        }
    })
}

/// Deletes the share of `owner`'s `server` with `with` (a recipient giving it up); 404
/// when there is none.
pub async fn delete_share(
    store: &dyn Store,
    owner: &str,
    server: &str,
    with: &ShareWith,
) -> Result<Version, OpError> {
    let ((), v) = in_txn!(store, |tx| {
        if tx.get(&keys::share(owner, server, with)).await?.is_none() {
            return Err(OpError::NotFound(format!(
                "No such share for {} {} on {owner}/{server}",
                with.kind(),
                with.name()
            )));
        }
        clear_share(tx.as_mut(), owner, server, with);
    })?;
    Ok(v)
}

/// Deletes every share of `owner`'s `server` (`DELETE /shares/{owner}/{server}`).
pub async fn delete_server_shares(
    store: &dyn Store,
    owner: &str,
    server: &str,
) -> Result<Version, OpError> {
    let ((), v) = in_txn!(store, |tx| {
        server_exists(tx.as_mut(), owner, server).await?;
        forget_shares_of_server(tx.as_mut(), owner, server).await?;
    })?;
    Ok(v)
}

async fn forget_shares_of_server(
    tx: &mut dyn Transaction,
    owner: &str,
    server: &str,
) -> Result<(), OpError> {
    let (begin, end) = keys::shares_of_server(owner, server);
    for (key, _) in tx.get_range(&begin, &end, 0, false).await? {
        if let KeyKind::Share(o, s, with) = keys::classify(&key) {
            clear_share(tx, &o, &s, &with);
        }
    }
    Ok(())
}

/// A new code for `owner`'s `server` granting `scopes`, living `seconds`: the record and
/// the code, which is shown this once and never stored.
pub async fn new_code(
    store: &dyn Store,
    owner: &str,
    server: &str,
    scopes: &[String],
    seconds: i64,
) -> Result<(ShareCodeRecord, String, Version), OpError> {
    let id = next_id(store, "share_codes").await?;
    let code = random_alnum(CODE_LENGTH);
    let hash = sha256_hex(&code);
    let (rec, v) = in_txn!(store, |tx| {
        server_exists(tx.as_mut(), owner, server).await?;
        let now = now_micros();
        let rec = ShareCodeRecord {
            v: FORMAT,
            id,
            owner: owner.to_owned(),
            server: server.to_owned(),
            scopes: scopes.to_vec(),
            created: now,
            expires_at: now.saturating_add(seconds.saturating_mul(1_000_000)),
            exchange_count: 0,
            last_exchanged_at: None,
        };
        put(tx.as_mut(), &keys::share_code(&hash), &rec)?;
        tx.set(&keys::share_code_of(owner, server, &hash), b"");
        rec
    })?;
    Ok((rec, code, v))
}

/// Which codes of a server to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Codes {
    /// The code with this hash.
    Hash(String),
    /// The code `sc_<id>`.
    Id(u64),
    All,
}

/// Deletes codes of `owner`'s `server`; 404 when a named one is not there.
pub async fn delete_codes(
    store: &dyn Store,
    owner: &str,
    server: &str,
    which: &Codes,
) -> Result<Version, OpError> {
    let ((), v) = in_txn!(store, |tx| {
        server_exists(tx.as_mut(), owner, server).await?;
        let (begin, end) = keys::share_codes_of_server(owner, server);
        let mut found = false;
        for (key, _) in tx.get_range(&begin, &end, 0, false).await? {
            let KeyKind::ShareCodeOf(_, _, hash) = keys::classify(&key) else {
                continue;
            };
            let doomed = match which {
                Codes::All => true,
                Codes::Hash(h) => *h == hash,
                Codes::Id(id) => get::<ShareCodeRecord>(tx.as_mut(), &keys::share_code(&hash))
                    .await?
                    .is_some_and(|c| c.id == *id),
            };
            if doomed {
                found = true;
                tx.clear(&key);
                tx.clear(&keys::share_code(&hash));
            }
        }
        if !found && *which != Codes::All {
            return Err(OpError::NotFound(match which {
                Codes::Id(id) => format!("No code found matching id=sc_{id}"),
                _ => "No matching code found".to_owned(),
            }));
        }
    })?;
    Ok(v)
}

/// Exchanges the code whose hash is `hash` for a share with `user` (the accept-share
/// page): 400 for an unknown or expired code (an expired one is deleted) or the
/// server's own owner.
pub async fn exchange_code(
    store: &dyn Store,
    hash: &str,
    user: &str,
) -> Result<(ShareRecord, Version), OpError> {
    let expired = in_txn!(store, |tx| {
        let Some(mut code) = get::<ShareCodeRecord>(tx.as_mut(), &keys::share_code(hash)).await?
        else {
            return Err(OpError::BadRequest("Invalid share code".into()));
        };
        let now = now_micros();
        if code.expires_at <= now {
            tx.clear(&keys::share_code(hash));
            tx.clear(&keys::share_code_of(&code.owner, &code.server, hash));
            None
        } else {
            if code.owner == user {
                return Err(OpError::BadRequest("You can't share with yourself!".into()));
            }
            let with = ShareWith::User(user.to_owned());
            recipient_exists(tx.as_mut(), &with).await?;
            server_exists(tx.as_mut(), &code.owner, &code.server).await?;
            let share =
                grant_in(tx.as_mut(), &code.owner, &code.server, &with, &code.scopes).await?;
            code.exchange_count += 1;
            code.last_exchanged_at = Some(now);
            put(tx.as_mut(), &keys::share_code(hash), &code)?;
            Some(share)
        }
    })?;
    match expired {
        (Some(share), v) => Ok((share, v)),
        (None, _) => Err(OpError::BadRequest("Share code expired".into())),
    }
}

/// Forgets what names `owner`'s `server`, in the caller's transaction (the server's
/// record is removed): its shares and its codes.
pub async fn forget_server(
    tx: &mut dyn Transaction,
    owner: &str,
    server: &str,
) -> Result<(), OpError> {
    forget_shares_of_server(tx, owner, server).await?;
    let (begin, end) = keys::share_codes_of_server(owner, server);
    for (key, _) in tx.get_range(&begin, &end, 0, false).await? {
        if let KeyKind::ShareCodeOf(_, _, hash) = keys::classify(&key) {
            tx.clear(&keys::share_code(&hash));
        }
        tx.clear(&key);
    }
    Ok(())
}

/// Moves what names `owner`'s server `from` to `to`, in the caller's transaction (the
/// server is renamed): its shares and codes, their scopes' filter rewritten for the new
/// name, as JupyterHub's shares follow their server.
pub async fn rename_server(
    tx: &mut dyn Transaction,
    owner: &str,
    from: &str,
    to: &str,
) -> Result<(), OpError> {
    let refilter = |scopes: &[String]| crate::policy::shares::refiltered(scopes, owner, to);
    let (begin, end) = keys::shares_of_server(owner, from);
    for (key, _) in tx.get_range(&begin, &end, 0, false).await? {
        let Some(mut rec) = get::<ShareRecord>(tx, &key).await? else {
            continue;
        };
        clear_share(tx, &rec.owner.clone(), from, &rec.with.clone());
        rec.server = to.to_owned();
        rec.scopes = refilter(&rec.scopes);
        put_share(tx, &rec)?;
    }
    let (begin, end) = keys::share_codes_of_server(owner, from);
    for (key, _) in tx.get_range(&begin, &end, 0, false).await? {
        let KeyKind::ShareCodeOf(_, _, hash) = keys::classify(&key) else {
            continue;
        };
        tx.clear(&key);
        if let Some(mut code) = get::<ShareCodeRecord>(tx, &keys::share_code(&hash)).await? {
            code.server = to.to_owned();
            code.scopes = refilter(&code.scopes);
            put(tx, &keys::share_code(&hash), &code)?;
            tx.set(&keys::share_code_of(owner, to, &hash), b"");
        }
    }
    Ok(())
}

/// Forgets every share and code that names `user`, in the caller's transaction (the
/// user is deleted): its servers' shares and codes, and the shares granted to it.
pub async fn forget_user(tx: &mut dyn Transaction, user: &str) -> Result<(), OpError> {
    let (begin, end) = keys::shares_of_owner(user);
    for (key, _) in tx.get_range(&begin, &end, 0, false).await? {
        if let KeyKind::Share(o, s, with) = keys::classify(&key) {
            clear_share(tx, &o, &s, &with);
        }
    }
    let (begin, end) = keys::share_codes_of_owner(user);
    for (key, _) in tx.get_range(&begin, &end, 0, false).await? {
        if let KeyKind::ShareCodeOf(_, _, hash) = keys::classify(&key) {
            tx.clear(&keys::share_code(&hash));
        }
        tx.clear(&key);
    }
    forget_shares_to(tx, &ShareWith::User(user.to_owned())).await
}

/// Forgets the shares granted to `with`, in the caller's transaction.
pub async fn forget_shares_to(tx: &mut dyn Transaction, with: &ShareWith) -> Result<(), OpError> {
    let (begin, end) = keys::shares_to(with);
    for (key, _) in tx.get_range(&begin, &end, 0, false).await? {
        if let KeyKind::ShareTo(w, o, s) = keys::classify(&key) {
            clear_share(tx, &o, &s, &w);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{groups, users};
    use galilean_storage::memory::MemoryStore;

    fn bob() -> ShareWith {
        ShareWith::User("bob".into())
    }

    fn access(owner: &str) -> Vec<String> {
        vec![format!("access:servers!server={owner}/")]
    }

    async fn share_of(store: &dyn Store, owner: &str, with: &ShareWith) -> Option<ShareRecord> {
        let mut tx = store.begin().await.unwrap();
        get::<ShareRecord>(tx.as_mut(), &keys::share(owner, "", with))
            .await
            .unwrap()
    }

    async fn keys_under(store: &dyn Store, prefix: &str) -> usize {
        let mut tx = store.begin().await.unwrap();
        let (b, e) = galilean_storage::tuple::range(&galilean_storage::tuple::pack(&[
            galilean_storage::tuple::Element::from(prefix),
        ]));
        tx.get_range(&b, &e, 0, false).await.unwrap().len()
    }

    #[tokio::test]
    async fn grants_add_up_revokes_narrow_and_deletions_forget_shares() {
        let store = MemoryStore::new();
        let names: Vec<String> = ["alice", "bob", "carol"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        users::create_users(&store, &names, false, None)
            .await
            .unwrap();
        // an unknown recipient, an unknown server
        let e = grant(
            &store,
            "alice",
            "",
            &ShareWith::User("nobody".into()),
            &access("alice"),
        )
        .await;
        assert!(matches!(e, Err(OpError::BadRequest(_))), "{e:?}");
        let e = grant(&store, "alice", "nb", &bob(), &access("alice")).await;
        assert!(matches!(e, Err(OpError::NotFound(_))), "{e:?}");

        grant(&store, "alice", "", &bob(), &access("alice"))
            .await
            .unwrap();
        let read = vec!["read:servers!server=alice/".to_owned()];
        let (rec, _) = grant(&store, "alice", "", &bob(), &read).await.unwrap();
        assert_eq!(rec.scopes.len(), 2);
        let (left, _) = revoke(&store, "alice", "", &bob(), Some(&read))
            .await
            .unwrap();
        assert_eq!(left.unwrap().scopes, access("alice"));
        let (left, _) = revoke(&store, "alice", "", &bob(), None).await.unwrap();
        assert!(left.is_none());
        assert!(share_of(&store, "alice", &bob()).await.is_none());
        assert_eq!(keys_under(&store, keys::SHARE_TO).await, 0);

        // a code: exchanged by carol, never by its own owner; counted
        let (code_rec, code, _) = new_code(&store, "alice", "", &access("alice"), 60)
            .await
            .unwrap();
        assert_eq!(code_rec.exchange_count, 0);
        let hash = sha256_hex(&code);
        let e = exchange_code(&store, &hash, "alice").await;
        assert!(matches!(e, Err(OpError::BadRequest(_))));
        let (share, _) = exchange_code(&store, &hash, "carol").await.unwrap();
        assert_eq!(share.with, ShareWith::User("carol".into()));
        let mut tx = store.begin().await.unwrap();
        let stored = get::<ShareCodeRecord>(tx.as_mut(), &keys::share_code(&hash))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.exchange_count, 1);
        assert!(exchange_code(&store, &sha256_hex("wrong"), "carol")
            .await
            .is_err());

        // a group share goes with its group; alice's shares and codes go with alice
        groups::create_groups(&store, &["g".to_owned()], &[], "{}")
            .await
            .unwrap();
        let g = ShareWith::Group("g".into());
        grant(&store, "alice", "", &g, &access("alice"))
            .await
            .unwrap();
        groups::delete_group(&store, "g").await.unwrap();
        assert!(share_of(&store, "alice", &g).await.is_none());
        grant(
            &store,
            "bob",
            "",
            &ShareWith::User("alice".into()),
            &access("bob"),
        )
        .await
        .unwrap();
        let owned = crate::policy::placement::Owned {
            node: galilean_proto::node::NodeId(1),
            epoch: 0,
        };
        users::delete_user(&store, "alice", &[], owned)
            .await
            .unwrap();
        for prefix in [
            keys::SHARE,
            keys::SHARE_TO,
            keys::SHARE_CODE,
            keys::SHARE_CODE_OF,
        ] {
            assert_eq!(keys_under(&store, prefix).await, 0, "{prefix} left behind");
        }
    }

    #[tokio::test]
    async fn an_expired_code_is_refused_and_deleted() {
        let store = MemoryStore::new();
        let names: Vec<String> = ["alice", "bob"].iter().map(|s| s.to_string()).collect();
        users::create_users(&store, &names, false, None)
            .await
            .unwrap();
        let (_, code, _) = new_code(&store, "alice", "", &access("alice"), -1)
            .await
            .unwrap();
        let e = exchange_code(&store, &sha256_hex(&code), "bob").await;
        assert!(matches!(e, Err(OpError::BadRequest(m)) if m.contains("expired")));
        assert_eq!(keys_under(&store, keys::SHARE_CODE).await, 0);
        assert_eq!(keys_under(&store, keys::SHARE_CODE_OF).await, 0);
        assert!(share_of(&store, "alice", &bob()).await.is_none());
    }
}
