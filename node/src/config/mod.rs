//! Galilean's configuration: one TOML file plus a few environment variables, parsed once
//! at start into plain structs, one file per section (see [Files](#files)). Their doc
//! comments are the reference documentation for every key.
//!
//! ```toml
//! [hub]
//! bind_url = "http://0.0.0.0:8000/"
//! base_url = "/jupyter/"
//! data_dir = "/var/lib/galilean"
//!
//! [authenticator]
//! class = "dummy"
//! admin_users = ["ada"]
//!
//! [spawner]
//! cmd = ["jupyterhub-singleuser"]
//! start_timeout = 120
//!
//! [[services]]
//! name = "idle-culler"
//!
//! [[roles]]                       # JupyterHub's load_roles
//! name = "idle-culler"
//! description = "cull idle servers"
//! scopes = ["list:users", "read:users:activity", "read:servers", "delete:servers"]
//! services = ["idle-culler"]      # and/or users = [...], groups = [...]
//!
//! [[groups]]                      # JupyterHub's load_groups
//! name = "physics"
//! users = ["alice", "bob"]
//! properties = { course = "PHY101" }
//!
//! [custom_scopes."custom:grades:read"]    # JupyterHub's custom_scopes
//! description = "read grades"
//! subscopes = []
//! ```
//!
//! # Roles, groups and custom scopes
//!
//! `[[roles]]`, `[[groups]]` and `[custom_scopes]` are JupyterHub's `load_roles`,
//! `load_groups` and `custom_scopes`, with its rules: role names and custom scope names
//! follow its patterns, a role's scopes must be known (JupyterHub's, the custom ones,
//! `self`, `inherit`), a role's services must be `[[services]]` entries, and a custom
//! scope's sub-scopes must be custom scopes defined alongside. A role named `user`,
//! `admin`, `server` or `token` redefines that default role (see [`RoleConfig`]). Every
//! node of a cluster must have the same roles, groups and custom scopes.
//!
//! # Environment
//!
//! These variables replace the file's value (the environment wins). The file's value, if
//! any, is still checked, so `galilean config check` reports a broken file either way.
//!
//! | variable | replaces |
//! | --- | --- |
//! | `GALILEAN_HUB_BIND_URL` | `hub.bind_url` |
//! | `GALILEAN_HUB_DATA_DIR` | `hub.data_dir` |
//! | `GALILEAN_AUTHENTICATOR_PASSWORD` | `authenticator.password` |
//! | `GALILEAN_SERVICE_<NAME>_API_TOKEN` | `api_token` of the `[[services]]` entry named NAME, upper-cased, `-` written `_` (see [`service_token_env_var`]) |
//! | `JUPYTERHUB_CRYPT_KEY` | the keys that encrypt users' `auth_state` (JupyterHub's name and format: `;`-separated 32-byte keys, hex or base64; the first encrypts, all decrypt); environment only, the same on every node of a cluster (compared by a digest); without it `auth_state` is refused |
//! | `GALILEAN_TEST_PURGE_EXPIRED_INTERVAL` | no key: how often expired tokens are purged, in seconds, for tests only (see [`HubConfig::purge_expired_interval`]) |
//!
//! Keeping secrets in the environment keeps them out of a file that is often world-readable
//! or checked in.
//!
//! # Relative paths
//!
//! Paths (`hub.data_dir`, `hub.template_paths`, `spawner.home_dir_template`) are kept as
//! written. A relative path is relative to the working directory of the `galilean` process,
//! as in JupyterHub, not to the directory holding the config file.
//!
//! # Errors
//!
//! Parsing reports every problem at once, each with its dotted key: unknown keys at any
//! level, wrong types, invalid and missing values. A TOML syntax error is the exception: it
//! is reported alone, with its line and column, as nothing after it can be read.
//!
//! Parsing does no I/O: it does not create `hub.data_dir`, so checking a config has no side
//! effects. Secrets never appear in error messages or in `Debug` output.
//!
//! This module is not the place for behaviour: the node decides what each value means.
//!
//! # Files
//!
//! | file | owns |
//! | --- | --- |
//! | `file.rs` | [`Config`], the whole configuration: [`Config::parse`], [`Config::load`], TOML syntax errors |
//! | `hub.rs` | `[hub]`: [`HubConfig`], `GALILEAN_HUB_*` |
//! | `authenticator.rs` | `[authenticator]`: [`AuthenticatorConfig`], [`AuthenticatorClass`] |
//! | `spawner.rs` | `[spawner]`: [`SpawnerConfig`], [`SpawnerClass`] |
//! | `services.rs` | `[[services]]`: [`ServiceConfig`], [`service_token_env_var`] |
//! | `cluster.rs` | `[cluster]`: [`ClusterConfig`], [`ClusterTls`], [`Peer`] |
//! | `storage.rs` | `[storage]`: [`StorageConfig`], [`StorageBackendKind`] |
//! | `roles.rs` | `[[roles]]`: [`RoleConfig`], JupyterHub's default roles and what redefining one may change |
//! | `groups.rs` | `[[groups]]`: [`GroupConfig`], properties as JSON |
//! | `custom_scopes.rs` | `[custom_scopes]`: their checks, and the catalog of scopes built from them ([`Config::scopes_catalog`]) |
//! | `values.rs` | value types, and parsers used by several keys or sections: [`Secret`], [`BindUrl`], [`LogLevel`], URLs, paths, names |
//! | `reader.rs` | the helper that reads one TOML table, collecting every problem with its key |
//! | `errors.rs` | [`ConfigError`], [`ConfigErrors`] |

mod authenticator;
mod cluster;
mod custom_scopes;
mod errors;
mod file;
mod groups;
mod hub;
mod reader;
mod roles;
mod services;
mod spawner;
mod storage;
mod values;

#[cfg(test)]
mod rbac_tests;
#[cfg(test)]
mod tests;

pub use authenticator::{AuthenticatorClass, AuthenticatorConfig, ENV_AUTHENTICATOR_PASSWORD};
pub use cluster::{ClusterConfig, ClusterTls, Peer, ENV_CLUSTER_SECRET};
pub use errors::{ConfigError, ConfigErrors};
pub use file::{Config, ENV_CRYPT_KEY};
pub use galilean_actors::policy::scopes::{Catalog, CustomScope};
pub use groups::GroupConfig;
pub use hub::{
    HubConfig, DEFAULT_PURGE_EXPIRED_INTERVAL, ENV_HUB_BIND_URL, ENV_HUB_DATA_DIR,
    ENV_TEST_PURGE_EXPIRED_INTERVAL,
};
pub use roles::RoleConfig;
pub use services::{service_token_env_var, ServiceConfig};
pub use spawner::{SpawnerClass, SpawnerConfig};
pub use storage::{StorageBackendKind, StorageConfig, DEFAULT_FDB_ROOT};
pub use values::{BindUrl, LogLevel, Secret};
