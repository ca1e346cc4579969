//! Settings every node of a cluster must share (authenticator, spawner, services, roles,
//! groups and custom scopes, cookie, token and URL policies, the member list). The first
//! node to start records them in the store;
//! a node whose config differs is refused with the keys that differ, unless it is started
//! with `--update-cluster-settings`, which makes its settings the recorded ones.
//!
//! Secrets are compared by their SHA-256, so the store never holds them.

use std::collections::{BTreeMap, BTreeSet};

use galilean_actors::secrets::sha256_hex;
use galilean_actors::{keys, OpError};
use galilean_storage::Store;
use serde_json::Value as Json;

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
    // the same keys on every node, or a user's auth_state written through one node
    // would not decrypt on another: compared by a digest, never shown; only when set,
    // so settings recorded before this key agree with a hub that has none
    if let Some(keys) = config.crypt_keys.as_ref() {
        put(
            "JUPYTERHUB_CRYPT_KEY",
            format!("fingerprint:{}", keys.fingerprint()),
        );
    }
    // only when set: settings recorded before this key agree with its default
    if h.token_expires_in_max_seconds != 0 {
        put(
            "hub.token_expires_in_max_seconds",
            h.token_expires_in_max_seconds.to_string(),
        );
    }
    for (i, s) in config.services.iter().enumerate() {
        let token = s.api_token.as_ref().map_or("none".into(), |t| {
            format!("sha256:{}", sha256_hex(t.expose()))
        });
        put(
            &format!("services[{i}]"),
            format!("name={:?} admin={} api_token={token}", s.name, s.admin),
        );
    }
    // by name, each in a canonical form: the order of entries, of list items and of keys
    // in the file does not matter
    for r in &config.roles {
        put(
            &format!("roles[{:?}]", r.name),
            format!(
                "description={:?} scopes={:?} users={:?} groups={:?} services={:?}",
                r.description,
                sorted(&r.scopes),
                sorted(&r.users),
                sorted(&r.groups),
                sorted(&r.services)
            ),
        );
    }
    for g in &config.groups {
        put(
            &format!("groups[{:?}]", g.name),
            format!(
                "users={:?} properties={}",
                sorted(&g.users),
                canonical_json(&Json::Object(g.properties.clone()))
            ),
        );
    }
    for (name, scope) in &config.custom_scopes {
        put(
            &format!("custom_scopes[{name:?}]"),
            format!(
                "description={:?} subscopes={:?}",
                scope.description,
                sorted(&scope.subscopes)
            ),
        );
    }
    // with raft, not cluster.peers: they only seed the membership, which raft keeps and
    // `galilean cluster add|remove` changes, so a node added later lists more peers. On
    // a shared store the peers are the membership, and every node must route alike.
    if config.storage.backend == crate::config::StorageBackendKind::Fdb {
        if let Some(c) = &config.cluster {
            let mut peers: Vec<String> = c
                .peers
                .iter()
                .map(|p| format!("{}@{}", p.id, p.addr))
                .collect();
            peers.sort();
            m.insert("cluster.peers".to_owned(), format!("{peers:?}"));
        }
    }
    m
}

/// The distinct items, in order.
fn sorted(items: &[String]) -> BTreeSet<&str> {
    items.iter().map(String::as_str).collect()
}

/// `value` as JSON text with every object's keys in order, whatever order the map keeps.
fn canonical_json(value: &Json) -> String {
    match value {
        Json::Object(map) => {
            let entries: BTreeMap<&String, String> =
                map.iter().map(|(k, v)| (k, canonical_json(v))).collect();
            let entries: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{}:{v}", Json::String(k.clone())))
                .collect();
            format!("{{{}}}", entries.join(","))
        }
        Json::Array(items) => {
            let items: Vec<String> = items.iter().map(canonical_json).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
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
                let keys: BTreeSet<&String> = theirs.keys().chain(mine.keys()).collect();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StorageBackendKind;

    fn config(peers: &str) -> Config {
        let text = format!(
            "[cluster]\nnode_id = 1\nbind = \"127.0.0.1:7101\"\npeers = [{peers}]\n\
             secret = \"a-cluster-secret-of-some-length\"\n"
        );
        Config::parse(&text, std::path::Path::new("t.toml"), &BTreeMap::new()).unwrap()
    }

    #[test]
    fn peers_must_agree_only_where_they_are_the_membership() {
        let a = config(r#""1@127.0.0.1:7101", "2@127.0.0.1:7103""#);
        let b = config(r#""2@127.0.0.1:7103", "1@127.0.0.1:7101", "3@127.0.0.1:7105""#);
        // raft keeps the membership: a node added later may list more peers
        assert!(!agreed(&a).contains_key("cluster.peers"));
        assert_eq!(agreed(&a), agreed(&b));
        // on a shared store the peers are the membership: in any order, but the same
        let on_fdb = |mut c: Config| {
            c.storage.backend = StorageBackendKind::Fdb;
            agreed(&c)
        };
        let reordered = config(r#""2@127.0.0.1:7103", "1@127.0.0.1:7101""#);
        assert_eq!(on_fdb(a.clone()), on_fdb(reordered));
        assert_ne!(on_fdb(a)["cluster.peers"], on_fdb(b)["cluster.peers"]);
    }

    #[test]
    fn the_token_expiry_maximum_must_agree_and_its_default_is_not_recorded() {
        let unset = rbac("");
        let set = rbac("[hub]\ntoken_expires_in_max_seconds = 3600\n");
        assert!(!agreed(&unset).contains_key("hub.token_expires_in_max_seconds"));
        assert_eq!(agreed(&set)["hub.token_expires_in_max_seconds"], "3600");
    }

    fn rbac(text: &str) -> Config {
        Config::parse(text, std::path::Path::new("t.toml"), &BTreeMap::new()).unwrap()
    }

    const RBAC: &str = r#"
        [[services]]
        name = "culler"

        [[roles]]
        name = "grader"
        description = "grades"
        scopes = ["read:users", "list:users"]
        users = ["ada", "bob"]
        groups = ["staff"]
        services = ["culler"]

        [[roles]]
        name = "user"
        scopes = ["self", "access:services"]

        [[groups]]
        name = "physics"
        users = ["alice", "bob"]
        properties = { course = "PHY101", rooms = { main = "A1", lab = "B2" } }

        [custom_scopes."custom:grades:read"]
        description = "read grades"

        [custom_scopes."custom:grades"]
        description = "grades"
        subscopes = ["custom:grades:read"]
    "#;

    /// The same roles, groups and custom scopes, every list, table and entry in another
    /// order.
    const RBAC_REORDERED: &str = r#"
        [custom_scopes."custom:grades"]
        subscopes = ["custom:grades:read"]
        description = "grades"

        [custom_scopes."custom:grades:read"]
        description = "read grades"

        [[groups]]
        properties = { rooms = { lab = "B2", main = "A1" }, course = "PHY101" }
        users = ["bob", "alice"]
        name = "physics"

        [[roles]]
        name = "user"
        scopes = ["access:services", "self"]

        [[roles]]
        services = ["culler"]
        groups = ["staff"]
        users = ["bob", "ada"]
        scopes = ["list:users", "read:users"]
        description = "grades"
        name = "grader"

        [[services]]
        name = "culler"
    "#;

    #[tokio::test]
    async fn roles_groups_and_custom_scopes_must_agree_in_any_order() {
        let store = galilean_storage::MemoryStore::new();
        let mine = agreed(&rbac(RBAC));
        for key in [
            r#"roles["grader"]"#,
            r#"roles["user"]"#,
            r#"groups["physics"]"#,
            r#"custom_scopes["custom:grades"]"#,
            r#"custom_scopes["custom:grades:read"]"#,
        ] {
            assert!(mine.contains_key(key), "{key} missing from {mine:#?}");
        }
        agree(&store, &mine, false).await.unwrap();
        agree(&store, &agreed(&rbac(RBAC_REORDERED)), false)
            .await
            .unwrap();

        // a node whose roles, groups or custom scopes differ is refused, naming them
        let other = RBAC
            .replace(r#"users = ["ada", "bob"]"#, r#"users = ["ada"]"#)
            .replace(r#"course = "PHY101""#, r#"course = "PHY102""#)
            .replace(
                r#"description = "read grades""#,
                r#"description = "see grades""#,
            );
        let refused = agree(&store, &agreed(&rbac(&other)), false).await;
        match refused {
            Err(SettingsError::Differ(keys)) => assert_eq!(
                keys,
                [
                    r#"custom_scopes["custom:grades:read"]"#,
                    r#"groups["physics"]"#,
                    r#"roles["grader"]"#
                ]
            ),
            other => panic!("expected the settings to differ, got {other:?}"),
        }
        // and so is one without them
        let without = rbac("[[services]]\nname = \"culler\"\n");
        let refused = agree(&store, &agreed(&without), false).await;
        assert!(matches!(refused, Err(SettingsError::Differ(keys)) if keys.len() == 5));
    }
}
