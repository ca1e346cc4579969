//! The state config owns, made so at start-up (as JupyterHub does): service tokens from
//! `[[services]]` (and none of services gone from it), and `admin_users` existing as
//! administrators.

use std::collections::HashMap;

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

/// `authenticator.admin_users` exist and are admins (as JupyterHub does at start-up).
pub(crate) async fn reconcile_admins(
    config: &Config,
    store: &dyn Store,
    replica: &Replica,
) -> anyhow::Result<()> {
    for name in &config.authenticator.admin_users {
        let Ok(user) = UserName::normalize(name) else {
            tracing::warn!("authenticator.admin_users: {name:?} is not a valid user name; skipped");
            continue;
        };
        let (_, v) = users::ensure_user(store, user.as_str(), Some(true)).await?;
        replica.wait_for(v).await;
    }
    Ok(())
}
