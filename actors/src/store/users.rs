//! User records: created in batches or one by one (by the user's actor, fenced), made
//! sure of at login, changed and deleted with everything the user owns.

use galilean_proto::records::{UserRecord, FORMAT};
use galilean_proto::time::now_micros;
use galilean_storage::{Store, Version};

use crate::error::OpError;
use crate::in_txn;
use crate::policy::placement::Owned;
use crate::secrets::random_alnum;
use crate::store::fence::{check_fence, fence, Fence};
use crate::store::keys;
use crate::store::txn::{get, next_id, next_ids, put};

/// A new user's record.
pub fn new_user(id: u64, name: &str, admin: bool) -> UserRecord {
    UserRecord {
        v: FORMAT,
        id,
        name: name.to_owned(),
        admin,
        created: now_micros(),
        last_activity: None,
        cookie_id: random_alnum(32),
    }
}

/// Creates the users that do not exist yet; returns the created ones. A user's actor
/// creates its user under its `fence`; a batch of the API, made where it was asked,
/// under none.
pub async fn create_users(
    store: &dyn Store,
    names: &[String],
    admin: bool,
    fence: Fence<'_>,
) -> Result<(Vec<UserRecord>, Version), OpError> {
    // one id per name, taken at once (a name that exists leaves its id unused)
    let ids = next_ids(store, "users", names.len()).await?;
    in_txn!(store, |tx| {
        check_fence(tx.as_mut(), fence).await?;
        let mut created = Vec::new();
        for (name, &id) in names.iter().zip(&ids) {
            let key = keys::user(name);
            if tx.get(&key).await?.is_some() {
                continue;
            }
            let rec = new_user(id, name, admin);
            put(tx.as_mut(), &key, &rec)?;
            created.push(rec);
        }
        created
    })
}

/// Ensures a user exists (login of an allowed user), updating `admin` when `admin` is
/// `Some`.
pub async fn ensure_user(
    store: &dyn Store,
    name: &str,
    admin: Option<bool>,
) -> Result<(UserRecord, Version), OpError> {
    in_txn!(store, |tx| {
        let key = keys::user(name);
        match get::<UserRecord>(tx.as_mut(), &key).await? {
            Some(mut rec) => {
                if let Some(a) = admin {
                    if rec.admin != a {
                        rec.admin = a;
                        put(tx.as_mut(), &key, &rec)?;
                    }
                }
                rec
            }
            None => {
                let id = next_id(store, "users").await?;
                let rec = new_user(id, name, admin.unwrap_or(false));
                put(tx.as_mut(), &key, &rec)?;
                rec
            }
        }
    })
}

/// Sets `admin` on an existing user, fenced by its owner.
pub async fn set_admin(
    store: &dyn Store,
    name: &str,
    admin: bool,
    owned: Owned,
) -> Result<(UserRecord, Version), OpError> {
    let key = keys::user(name);
    in_txn!(store, |tx| {
        fence(tx.as_mut(), name, owned).await?;
        let Some(mut rec) = get::<UserRecord>(tx.as_mut(), &key).await? else {
            return Err(OpError::NotFound(format!("No such user: {name}")));
        };
        if rec.admin != admin {
            rec.admin = admin;
            put(tx.as_mut(), &key, &rec)?;
        }
        rec
    })
}

/// Deletes a user's record, its servers' records, its group memberships, the shares and
/// share codes that name it and the tokens (by hash) it owns, in one transaction fenced
/// by its owner.
pub async fn delete_user(
    store: &dyn Store,
    name: &str,
    tokens: &[String],
    owned: Owned,
) -> Result<Version, OpError> {
    let (begin, end) = keys::servers_of(name);
    let ((), v) = in_txn!(store, |tx| {
        fence(tx.as_mut(), name, owned).await?;
        tx.clear(&keys::user(name));
        tx.clear_range(&begin, &end);
        crate::store::groups::leave_all_groups(tx.as_mut(), name).await?;
        crate::store::shares::forget_user(tx.as_mut(), name).await?;
        tx.clear(&keys::auth_state(name));
        for h in tokens {
            tx.clear(&keys::token(h));
        }
    })?;
    Ok(v)
}

/// Stores `user`'s encrypted `auth_state` (a Fernet token), or clears it (`None`); 404
/// without the user.
pub async fn set_auth_state(
    store: &dyn Store,
    user: &str,
    token: Option<&str>,
) -> Result<Version, OpError> {
    let ((), v) = in_txn!(store, |tx| {
        if tx.get(&keys::user(user)).await?.is_none() {
            return Err(OpError::NotFound(format!("No such user: {user}")));
        }
        match token {
            Some(t) => tx.set(&keys::auth_state(user), t.as_bytes()),
            None => tx.clear(&keys::auth_state(user)),
        }
    })?;
    Ok(v)
}
