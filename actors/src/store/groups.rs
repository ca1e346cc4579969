//! Groups and their members (§2.9): created, filled, emptied and deleted through the API
//! or from the config at startup. Each operation is one transaction that reads what it
//! depends on (the group, the users), so a user deleted meanwhile makes it start over
//! rather than leave a membership of nobody. Group writes are not owned by an actor: any
//! node makes them, and the store orders them.

use std::collections::BTreeSet;

use galilean_proto::records::{GroupRecord, FORMAT};
use galilean_proto::time::now_micros;
use galilean_storage::{Store, Transaction, Version};

use crate::error::OpError;
use crate::in_txn;
use crate::store::keys;
use crate::store::txn::{get, next_ids, put};

fn no_group(name: &str) -> OpError {
    OpError::NotFound(format!("No such group: {name}"))
}

/// Fails unless every one of `users` exists (read in `tx`, so a deletion meanwhile
/// conflicts).
async fn users_exist(tx: &mut dyn Transaction, users: &[String]) -> Result<(), OpError> {
    for u in users {
        if tx.get(&keys::user(u)).await?.is_none() {
            return Err(OpError::BadRequest(format!("No such user: {u}")));
        }
    }
    Ok(())
}

async fn group_of(tx: &mut dyn Transaction, name: &str) -> Result<GroupRecord, OpError> {
    get::<GroupRecord>(tx, &keys::group(name))
        .await?
        .ok_or_else(|| no_group(name))
}

fn add_member(tx: &mut dyn Transaction, group: &str, user: &str) {
    tx.set(&keys::member(group, user), b"");
    tx.set(&keys::user_group(user, group), b"");
}

fn remove_member(tx: &mut dyn Transaction, group: &str, user: &str) {
    tx.clear(&keys::member(group, user));
    tx.clear(&keys::user_group(user, group));
}

/// Creates the groups `names`, each with `users` as members (`POST /groups`, `POST
/// /groups/{name}`): all or none. 409 when one exists, 400 when a user does not.
pub async fn create_groups(
    store: &dyn Store,
    names: &[String],
    users: &[String],
    properties: &str,
) -> Result<(Vec<GroupRecord>, Version), OpError> {
    let ids = next_ids(store, "groups", names.len()).await?;
    in_txn!(store, |tx| {
        users_exist(tx.as_mut(), users).await?;
        let mut created = Vec::new();
        for (name, &id) in names.iter().zip(&ids) {
            let key = keys::group(name);
            if tx.get(&key).await?.is_some() {
                return Err(OpError::Exists(format!("Group {name} already exists")));
            }
            let rec = GroupRecord {
                v: FORMAT,
                id,
                name: name.clone(),
                properties: properties.to_owned(),
                created: now_micros(),
            };
            put(tx.as_mut(), &key, &rec)?;
            for u in users {
                add_member(tx.as_mut(), name, u);
            }
            created.push(rec);
        }
        created
    })
}

/// Adds `users` to `group` (members already in it stay). 404 without the group, 400
/// when a user does not exist.
pub async fn add_members(
    store: &dyn Store,
    group: &str,
    users: &[String],
) -> Result<(GroupRecord, Version), OpError> {
    in_txn!(store, |tx| {
        let rec = group_of(tx.as_mut(), group).await?;
        users_exist(tx.as_mut(), users).await?;
        for u in users {
            add_member(tx.as_mut(), group, u);
        }
        rec
    })
}

/// Removes `users` from `group` (one that is not a member is left alone). 404 without
/// the group, 400 when a user does not exist.
pub async fn remove_members(
    store: &dyn Store,
    group: &str,
    users: &[String],
) -> Result<(GroupRecord, Version), OpError> {
    in_txn!(store, |tx| {
        let rec = group_of(tx.as_mut(), group).await?;
        users_exist(tx.as_mut(), users).await?;
        for u in users {
            remove_member(tx.as_mut(), group, u);
        }
        rec
    })
}

/// Replaces the properties of `group` (JSON text of an object).
pub async fn set_properties(
    store: &dyn Store,
    group: &str,
    properties: &str,
) -> Result<(GroupRecord, Version), OpError> {
    in_txn!(store, |tx| {
        let mut rec = group_of(tx.as_mut(), group).await?;
        if rec.properties != properties {
            rec.properties = properties.to_owned();
            put(tx.as_mut(), &keys::group(group), &rec)?;
        }
        rec
    })
}

/// Deletes `group`, its memberships and the shares granted to it. 404 without the group.
pub async fn delete_group(store: &dyn Store, group: &str) -> Result<Version, OpError> {
    let (begin, end) = keys::members_of(group);
    let ((), v) = in_txn!(store, |tx| {
        group_of(tx.as_mut(), group).await?;
        for (key, _) in tx.get_range(&begin, &end, 0, false).await? {
            if let keys::KeyKind::Member(_, user) = keys::classify(&key) {
                tx.clear(&keys::user_group(&user, group));
            }
        }
        tx.clear(&keys::group(group));
        tx.clear_range(&begin, &end);
        crate::store::shares::forget_shares_to(
            tx.as_mut(),
            &galilean_proto::records::ShareWith::Group(group.to_owned()),
        )
        .await?;
    })?;
    Ok(v)
}

/// Takes `user` out of every group, in the caller's transaction (a user's deletion).
pub async fn leave_all_groups(tx: &mut dyn Transaction, user: &str) -> Result<(), OpError> {
    let (begin, end) = keys::groups_of(user);
    for (key, _) in tx.get_range(&begin, &end, 0, false).await? {
        if let keys::KeyKind::UserGroup(_, group) = keys::classify(&key) {
            tx.clear(&keys::member(&group, user));
        }
    }
    tx.clear_range(&begin, &end);
    Ok(())
}

/// A group of the config (`[[groups]]`, JupyterHub's `load_groups`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigGroup {
    pub name: String,
    pub users: Vec<String>,
    /// JSON text of the group's `properties` object.
    pub properties: String,
}

/// Loads the config's groups at startup, as JupyterHub's `load_groups` does: a missing
/// group is created, the named users become members (none is ever removed), and the
/// properties are replaced. The users must exist already.
pub async fn load_groups(store: &dyn Store, groups: &[ConfigGroup]) -> Result<Version, OpError> {
    let mut version = 0;
    for g in groups {
        let id = next_ids(store, "groups", 1).await?[0];
        let ((), v) = in_txn!(store, |tx| {
            users_exist(tx.as_mut(), &g.users).await?;
            let key = keys::group(&g.name);
            match get::<GroupRecord>(tx.as_mut(), &key).await? {
                Some(rec) if rec.properties == g.properties => {}
                Some(mut rec) => {
                    rec.properties = g.properties.clone();
                    put(tx.as_mut(), &key, &rec)?;
                }
                None => {
                    let rec = GroupRecord {
                        v: FORMAT,
                        id,
                        name: g.name.clone(),
                        properties: g.properties.clone(),
                        created: now_micros(),
                    };
                    put(tx.as_mut(), &key, &rec)?;
                }
            }
            let members: BTreeSet<&String> = g.users.iter().collect();
            for u in members {
                if tx.get(&keys::member(&g.name, u)).await?.is_none() {
                    add_member(tx.as_mut(), &g.name, u);
                }
            }
        })?;
        version = version.max(v);
    }
    Ok(version)
}
