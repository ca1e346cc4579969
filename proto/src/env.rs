//! Names of the environment variables a hub sets for spawned single-user servers
//! (JupyterHub's `Spawner.get_env`), and those copied from the hub's own environment.

pub const API_TOKEN: &str = "JUPYTERHUB_API_TOKEN";
pub const JPY_API_TOKEN: &str = "JPY_API_TOKEN";
pub const CLIENT_ID: &str = "JUPYTERHUB_CLIENT_ID";
pub const API_URL: &str = "JUPYTERHUB_API_URL";
pub const ACTIVITY_URL: &str = "JUPYTERHUB_ACTIVITY_URL";
pub const BASE_URL: &str = "JUPYTERHUB_BASE_URL";
pub const SERVICE_PREFIX: &str = "JUPYTERHUB_SERVICE_PREFIX";
pub const SERVICE_URL: &str = "JUPYTERHUB_SERVICE_URL";
pub const OAUTH_CALLBACK_URL: &str = "JUPYTERHUB_OAUTH_CALLBACK_URL";
pub const OAUTH_ACCESS_SCOPES: &str = "JUPYTERHUB_OAUTH_ACCESS_SCOPES";
pub const OAUTH_SCOPES: &str = "JUPYTERHUB_OAUTH_SCOPES";
pub const OAUTH_CLIENT_ALLOWED_SCOPES: &str = "JUPYTERHUB_OAUTH_CLIENT_ALLOWED_SCOPES";
pub const USER: &str = "JUPYTERHUB_USER";
pub const SERVER_NAME: &str = "JUPYTERHUB_SERVER_NAME";
pub const HOST: &str = "JUPYTERHUB_HOST";
pub const PUBLIC_URL: &str = "JUPYTERHUB_PUBLIC_URL";
pub const PUBLIC_HUB_URL: &str = "JUPYTERHUB_PUBLIC_HUB_URL";
pub const COOKIE_HOST_PREFIX_ENABLED: &str = "JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED";

/// Variables the local-process spawner copies from the hub's environment
/// (`Spawner.env_keep` plus `LocalProcessSpawner`'s additions).
pub const ENV_KEEP: &[&str] = &[
    "PATH",
    "PYTHONPATH",
    "CONDA_ROOT",
    "CONDA_DEFAULT_ENV",
    "VIRTUAL_ENV",
    "LANG",
    "LC_ALL",
    "LD_LIBRARY_PATH",
    "JUPYTERHUB_SINGLEUSER_APP",
];
