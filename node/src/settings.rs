//! Settings every node of a cluster must share (authenticator, spawner, services, cookie
//! and URL policies, the member list). The first node to start records them in the store;
//! a node whose config differs is refused with the keys that differ, unless it is started
//! with `--update-cluster-settings`, which makes its settings the recorded ones.
//!
//! Secrets are compared by their SHA-256, so the store never holds them.

use std::collections::BTreeMap;

use galilean_actors::ops::sha256_hex;
use galilean_actors::{keys, OpError};
use galilean_storage::Store;

use crate::config::Config;

/// The store key of the recorded settings.
pub const SETTINGS_KEY: &str = "cluster_settings";

/// The settings that must agree, by config key, as canonical strings.
pub fn agreed(config: &Config) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        m.insert(k.to_owned(), v);
    };
    let a = &config.authenticator;
    put("authenticator.class", format!("{:?}", a.class));
    put(
        "authenticator.password",
        a.password.as_ref().map_or("none".into(), |p| {
            format!("sha256:{}", sha256_hex(p.expose()))
        }),
    );
    put("authenticator.admin_users", format!("{:?}", a.admin_users));
    put(
        "authenticator.allowed_users",
        format!("{:?}", a.allowed_users),
    );
    put("authenticator.allow_all", a.allow_all.to_string());
    let sp = &config.spawner;
    put("spawner.class", format!("{:?}", sp.class));
    put("spawner.cmd", format!("{:?}", sp.cmd));
    put("spawner.args", format!("{:?}", sp.args));
    put("spawner.environment", format!("{:?}", sp.environment));
    put("spawner.start_timeout", format!("{:?}", sp.start_timeout));
    put("spawner.http_timeout", format!("{:?}", sp.http_timeout));
    put("spawner.stop_grace", format!("{:?}", sp.stop_grace));
    put("spawner.default_url", format!("{:?}", sp.default_url));
    let h = &config.hub;
    put("hub.base_url", h.base_url.clone());
    put("hub.allow_named_servers", h.allow_named_servers.to_string());
    put(
        "hub.named_server_limit_per_user",
        h.named_server_limit_per_user.to_string(),
    );
    put("hub.cookie_max_age_days", format!("{:?}", h.cookie_max_age));
    put("hub.public_url", format!("{:?}", h.public_url));
    for (i, s) in config.services.iter().enumerate() {
        let token = s.api_token.as_ref().map_or("none".into(), |t| {
            format!("sha256:{}", sha256_hex(t.expose()))
        });
        put(
            &format!("services[{i}]"),
            format!("name={:?} admin={} api_token={token}", s.name, s.admin),
        );
    }
    // not cluster.peers: they only seed the membership, which raft keeps and
    // `galilean cluster add|remove` changes, so a node added later lists more peers
    m
}

/// Why a node may not join.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("this node's settings differ from the cluster's in: {}; make them equal, or start this node with --update-cluster-settings to make its settings the cluster's", .0.join(", "))]
    Differ(Vec<String>),
    #[error("cannot compare settings with the cluster: {0}")]
    Store(#[from] OpError),
}

impl From<galilean_storage::StoreError> for SettingsError {
    fn from(e: galilean_storage::StoreError) -> SettingsError {
        SettingsError::Store(OpError::from(e))
    }
}

/// Records `mine` when nothing is recorded (or `update`), else checks it against the
/// record and names every key that differs.
pub async fn agree(
    store: &dyn Store,
    mine: &BTreeMap<String, String>,
    update: bool,
) -> Result<(), SettingsError> {
    let key = keys::meta(SETTINGS_KEY);
    let encoded = rmp_serde::to_vec(mine).map_err(|e| OpError::Corrupt(e.to_string()))?;
    let (differ, _) = galilean_actors::in_txn!(store, |tx| {
        let recorded = tx.get(&key).await?;
        let recorded: Option<BTreeMap<String, String>> = match recorded {
            Some(bytes) => {
                Some(rmp_serde::from_slice(&bytes).map_err(|e| OpError::Corrupt(e.to_string()))?)
            }
            None => None,
        };
        match recorded {
            Some(theirs) if !update => {
                let keys: std::collections::BTreeSet<&String> =
                    theirs.keys().chain(mine.keys()).collect();
                keys.into_iter()
                    .filter(|k| theirs.get(*k) != mine.get(*k))
                    .cloned()
                    .collect::<Vec<String>>()
            }
            _ => {
                tx.set(&key, &encoded);
                Vec::new()
            }
        }
    })?;
    if differ.is_empty() {
        Ok(())
    } else {
        Err(SettingsError::Differ(differ))
    }
}
