//! The whole configuration: [`Config`], one field per section, parsed from TOML text
//! ([`Config::parse`]) or read from a file ([`Config::load`]); and the TOML syntax error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use galilean_actors::crypt::CryptKeys;
use galilean_actors::policy::scopes::{Catalog, CustomScope};
use toml::{Table, Value};

use super::authenticator::{read_authenticator, AuthenticatorConfig};
use super::cluster::{read_cluster, ClusterConfig};
use super::custom_scopes::read_custom_scopes;
use super::errors::{ConfigError, ConfigErrors};
use super::groups::{read_groups, GroupConfig};
use super::hub::{read_hub, HubConfig};
use super::reader::Reader;
use super::roles::{read_roles, RoleConfig};
use super::services::{read_services, ServiceConfig};
use super::spawner::{default_home_dir_template, read_spawner, SpawnerConfig};
use super::storage::{read_storage, StorageBackendKind, StorageConfig, DEFAULT_FDB_ROOT};

/// The environment variable of the keys that encrypt `auth_state` (JupyterHub's name).
pub const ENV_CRYPT_KEY: &str = "JUPYTERHUB_CRYPT_KEY";

/// The whole configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `[hub]`: the hub's own HTTP surface, storage and policies.
    pub hub: HubConfig,
    /// `[authenticator]`: who may log in, and who is an admin.
    pub authenticator: AuthenticatorConfig,
    /// `[spawner]`: how single-user servers are started and stopped.
    pub spawner: SpawnerConfig,
    /// `[[services]]`: external programs that talk to the hub API with their own token.
    pub services: Vec<ServiceConfig>,
    /// `[cluster]`: this node's place in a multi-node hub; `None` for a single node.
    pub cluster: Option<ClusterConfig>,
    /// `[storage]`: where state is kept.
    pub storage: StorageConfig,
    /// `[[roles]]`: named sets of scopes and who holds them, JupyterHub's `load_roles`;
    /// only the roles the file defines or redefines (the default roles it leaves alone
    /// are JupyterHub's).
    pub roles: Vec<RoleConfig>,
    /// `[[groups]]`: groups of users, JupyterHub's `load_groups`.
    pub groups: Vec<GroupConfig>,
    /// `[custom_scopes]`: the deployment's own scopes, JupyterHub's `custom_scopes`, by
    /// name. [`Config::scopes_catalog`] is built from them when the config is parsed.
    pub custom_scopes: BTreeMap<String, CustomScope>,
    /// Every scope known here: JupyterHub's and `custom_scopes`; the roles' scopes were
    /// checked against it.
    pub(super) scopes_catalog: Catalog,
    /// The file this was read from; empty for [`Config::default_for_tests`].
    /// `JUPYTERHUB_CRYPT_KEY` (environment only, JupyterHub's name): the keys that
    /// encrypt users' `auth_state`; without it `auth_state` cannot be stored.
    pub crypt_keys: Option<CryptKeys>,
    pub source: PathBuf,
}

impl Config {
    /// Parses config text. `path` names the file in messages and becomes `source`; nothing
    /// is read from it. `env` supplies the overrides listed in the module docs. Returns
    /// every problem found, not just the first.
    pub fn parse(
        text: &str,
        path: &Path,
        env: &BTreeMap<String, String>,
    ) -> Result<Config, ConfigErrors> {
        let fail = |errors| ConfigErrors {
            file: path.to_path_buf(),
            errors,
        };
        let root: Table = text
            .parse()
            .map_err(|e| fail(vec![syntax_error(text, &e)]))?;
        let mut errors = Vec::new();
        let root_value = Value::Table(root);
        let top = Reader::open(
            &mut errors,
            String::new(),
            Some(&root_value),
            &[
                "hub",
                "authenticator",
                "spawner",
                "services",
                "cluster",
                "storage",
                "roles",
                "groups",
                "custom_scopes",
            ],
        );
        let root = top.table.expect("the root is a table");
        let hub = read_hub(&mut errors, root.get("hub"), env);
        let authenticator = read_authenticator(&mut errors, root.get("authenticator"), env);
        let spawner = read_spawner(&mut errors, root.get("spawner"), &hub.data_dir);
        let services = read_services(&mut errors, root.get("services"), env);
        let custom = read_custom_scopes(&mut errors, root.get("custom_scopes"));
        let service_names = services.iter().map(|s| s.name.clone()).collect();
        let roles = read_roles(
            &mut errors,
            root.get("roles"),
            custom.catalog.as_ref(),
            &custom.scopes,
            &service_names,
        );
        let groups = read_groups(&mut errors, root.get("groups"));
        let crypt_keys = match env.get(ENV_CRYPT_KEY).map(|k| k.trim()) {
            None | Some("") => None,
            Some(text) => match CryptKeys::parse(text) {
                Ok(keys) => Some(keys),
                Err(e) => {
                    errors.push(ConfigError {
                        key: String::new(),
                        message: e.to_string(),
                    });
                    None
                }
            },
        };
        let cluster = read_cluster(&mut errors, root.get("cluster"), env);
        let storage = read_storage(
            &mut errors,
            root.get("storage"),
            root.get("cluster").is_some(),
        );
        if !errors.is_empty() {
            return Err(fail(errors));
        }
        Ok(Config {
            hub,
            authenticator,
            spawner,
            services,
            cluster,
            storage,
            roles,
            groups,
            custom_scopes: custom.scopes,
            scopes_catalog: custom.catalog.unwrap_or_else(Catalog::builtin),
            crypt_keys,
            source: path.to_path_buf(),
        })
    }

    /// Every scope this deployment knows: JupyterHub's and [`Config::custom_scopes`], as
    /// built when the config was parsed.
    pub fn scopes_catalog(&self) -> &Catalog {
        &self.scopes_catalog
    }

    /// Reads and parses the file at `path`; an unreadable file is an error naming it.
    pub fn load(path: &Path, env: &BTreeMap<String, String>) -> Result<Config, ConfigErrors> {
        let whole_file = |message: String| ConfigErrors {
            file: path.to_path_buf(),
            errors: vec![ConfigError {
                key: String::new(),
                message,
            }],
        };
        let bytes = std::fs::read(path)
            .map_err(|e| whole_file(format!("cannot read the config file: {e}")))?;
        let text = String::from_utf8(bytes)
            .map_err(|e| whole_file(format!("the config file is not UTF-8: {e}")))?;
        Config::parse(&text, path, env)
    }

    /// Every default, with `hub.data_dir` (and so the default home directory template) set
    /// to `data_dir`, and an empty `source`.
    pub fn default_for_tests(data_dir: &Path) -> Config {
        let hub = HubConfig {
            data_dir: data_dir.to_path_buf(),
            ..HubConfig::default()
        };
        let spawner = SpawnerConfig {
            home_dir_template: default_home_dir_template(data_dir),
            ..SpawnerConfig::default()
        };
        Config {
            hub,
            authenticator: AuthenticatorConfig::default(),
            spawner,
            services: Vec::new(),
            cluster: None,
            storage: StorageConfig {
                backend: StorageBackendKind::Redb,
                fdb_cluster_file: None,
                fdb_root: DEFAULT_FDB_ROOT.to_owned(),
            },
            roles: Vec::new(),
            groups: Vec::new(),
            custom_scopes: BTreeMap::new(),
            scopes_catalog: Catalog::builtin(),
            crypt_keys: None,
            source: PathBuf::new(),
        }
    }
}

fn syntax_error(text: &str, error: &toml::de::Error) -> ConfigError {
    let message = error.message().trim().replace('\n', "; ");
    let message = match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            format!("TOML syntax error at line {line}, column {column}: {message}")
        }
        None => format!("TOML syntax error: {message}"),
    };
    ConfigError {
        key: String::new(),
        message,
    }
}
