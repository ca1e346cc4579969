//! The state config owns, made so at start-up (as JupyterHub does): service tokens from
//! `[[services]]` (and none of services gone from it), `admin_users` existing as
//! administrators, the users the config names existing, and the config's groups loaded.

use std::collections::HashMap;

use galilean_actors::store::groups::{load_groups, ConfigGroup};
use galilean_actors::store::{tokens, users};
use galilean_actors::Replica;
use galilean_proto::names::UserName;
use galilean_proto::records::Owner;
use galilean_storage::Store;

use crate::app::ServiceInfo;
use crate::config::Config;

/// Service tokens from config: stored (hashed) as the config says, and tokens of
/// services that are no longer configured removed.
pub(crate) async fn reconcile_services(
    config: &Config,
    store: &dyn Store,
    replica: &Replica,
) -> anyhow::Result<HashMap<String, ServiceInfo>> {
    let mut services = HashMap::new();
    for svc in &config.services {
        services.insert(
            svc.name.clone(),
            ServiceInfo {
                name: svc.name.clone(),
                admin: svc.admin,
                url: None,
            },
        );
        let existing: Vec<String> = replica.read(|s| {
            s.tokens
                .iter()
                .filter(|(_, t)| t.owner == Owner::Service(svc.name.clone()))
                .map(|(h, _)| h.clone())
                .collect()
        });
        match &svc.api_token {
            Some(secret) => {
                let v = tokens::upsert_config_token(
                    store,
                    secret.expose(),
                    Owner::Service(svc.name.clone()),
                    existing,
                )
                .await?;
                replica.wait_for(v).await;
            }
            None if !existing.is_empty() => {
                let v = tokens::delete_tokens(store, &existing, None).await?;
                replica.wait_for(v).await;
            }
            None => {}
        }
    }
    let orphans: Vec<String> = replica.read(|s| {
        s.tokens
            .iter()
            .filter(|(_, t)| matches!(&t.owner, Owner::Service(n) if !services.contains_key(n)))
            .map(|(h, _)| h.clone())
            .collect()
    });
    if !orphans.is_empty() {
        tracing::info!(
            count = orphans.len(),
            "removing tokens of services no longer in the config"
        );
        let v = tokens::delete_tokens(store, &orphans, None).await?;
        replica.wait_for(v).await;
    }
    Ok(services)
}

/// `authenticator.admin_users` and the users of the `admin` role exist and are admins (as
/// JupyterHub does at start-up).
pub(crate) async fn reconcile_admins(
    config: &Config,
    store: &dyn Store,
    replica: &Replica,
) -> anyhow::Result<()> {
    // the users config gives the `admin` role are administrators, as admin_users are
    let admin_role = config.roles.iter().filter(|r| r.name == "admin");
    let named = config
        .authenticator
        .admin_users
        .iter()
        .map(|n| ("authenticator.admin_users", n))
        .chain(admin_role.flat_map(|r| r.users.iter().map(|n| ("roles.users", n))));
    for (key, name) in named {
        let Ok(user) = UserName::normalize(name) else {
            tracing::warn!("{key}: {name:?} is not a valid user name; skipped");
            continue;
        };
        let (_, v) = users::ensure_user(store, user.as_str(), Some(true)).await?;
        replica.wait_for(v).await;
    }
    Ok(())
}

/// The users the config names exist before the first request is answered, as JupyterHub
/// makes sure at start-up: `allowed_users`, the members of `[[groups]]` and the users of
/// `[[roles]]`. Then `[[groups]]` are loaded: created when missing, their members added
/// (never removed), their properties replaced.
pub(crate) async fn reconcile_users_and_groups(
    config: &Config,
    store: &dyn Store,
    replica: &Replica,
) -> anyhow::Result<()> {
    let named = config
        .authenticator
        .allowed_users
        .iter()
        .map(|n| ("authenticator.allowed_users", n))
        .chain(
            config
                .groups
                .iter()
                .flat_map(|g| g.users.iter().map(|n| ("groups.users", n))),
        )
        .chain(
            config
                .roles
                .iter()
                .flat_map(|r| r.users.iter().map(|n| ("roles.users", n))),
        );
    let mut names = std::collections::BTreeSet::new();
    for (key, name) in named {
        match UserName::normalize(name) {
            Ok(user) => {
                names.insert(user.as_str().to_owned());
            }
            Err(_) => tracing::warn!("{key}: {name:?} is not a valid user name; skipped"),
        }
    }
    let names: Vec<String> = names
        .into_iter()
        .filter(|n| replica.read(|s| !s.users.contains_key(n)))
        .collect();
    if !names.is_empty() {
        let (_, v) = users::create_users(store, &names, false, None).await?;
        replica.wait_for(v).await;
    }
    let groups: Vec<ConfigGroup> = config
        .groups
        .iter()
        .map(|g| ConfigGroup {
            name: g.name.clone(),
            users: g
                .users
                .iter()
                .filter_map(|n| UserName::normalize(n).ok())
                .map(|n| n.as_str().to_owned())
                .collect(),
            properties: serde_json::Value::Object(g.properties.clone()).to_string(),
        })
        .collect();
    if !groups.is_empty() {
        let v = load_groups(store, &groups).await?;
        replica.wait_for(v).await;
    }
    Ok(())
}
