//! Where a spawned server lives and what it is told (§5.1 of the protocol reference):
//! its URL prefix, home directory, log file and environment, from the spawn settings.

use std::collections::BTreeMap;
use std::path::PathBuf;

use galilean_proto::env;
use galilean_proto::names::{quote, server_client_id, server_prefix, ServerName, UserName};

use crate::settings::SpawnSettings;

/// The server's URL prefix (`/user/alice/`, `/user/alice/nb1/`).
pub fn prefix(s: &SpawnSettings, user: &UserName, server: &ServerName) -> String {
    server_prefix(&s.base_url, user, server)
}

/// The user's home directory: the template with `{username}` filled in (escaped).
pub fn home_dir(s: &SpawnSettings, user: &UserName) -> PathBuf {
    PathBuf::from(
        s.home_dir_template
            .replace("{username}", &quote(user.as_str(), b"@~")),
    )
}

/// The file a server's output goes to: `<user>.log`, `<user>--<server>.log`.
pub fn log_path(s: &SpawnSettings, user: &UserName, server: &ServerName) -> PathBuf {
    s.log_dir.join(format!(
        "{}{}{}.log",
        user.escaped(),
        if server.is_default() { "" } else { "--" },
        server.escaped()
    ))
}

/// The environment of a spawned server (§5.1), before `JUPYTERHUB_SERVICE_URL`.
pub fn server_env(
    s: &SpawnSettings,
    user: &UserName,
    server: &ServerName,
    token: &str,
) -> BTreeMap<String, String> {
    let prefix = prefix(s, user, server);
    let client_id = server_client_id(user, server);
    let access = serde_json::json!([
        format!(
            "access:servers!server={}/{}",
            user.as_str(),
            server.as_str()
        ),
        format!("access:servers!user={}", user.as_str()),
    ])
    .to_string();
    let mut out = BTreeMap::new();
    for k in env::ENV_KEEP {
        if let Some(v) = s.hub_env.get(*k) {
            out.insert((*k).to_owned(), v.clone());
        }
    }
    let mut set = |k: &str, v: String| {
        out.insert(k.to_owned(), v);
    };
    set(env::API_TOKEN, token.to_owned());
    set(env::JPY_API_TOKEN, token.to_owned());
    set(env::CLIENT_ID, client_id);
    set(env::API_URL, s.hub_api_url.clone());
    set(
        env::ACTIVITY_URL,
        format!("{}/users/{}/activity", s.hub_api_url, user.escaped()),
    );
    set(env::BASE_URL, s.base_url.clone());
    set(env::SERVICE_PREFIX, prefix.clone());
    set(env::OAUTH_CALLBACK_URL, format!("{prefix}oauth_callback"));
    set(env::OAUTH_ACCESS_SCOPES, access.clone());
    set(env::OAUTH_SCOPES, access);
    set(env::OAUTH_CLIENT_ALLOWED_SCOPES, "[]".to_owned());
    set(env::USER, user.as_str().to_owned());
    set(env::SERVER_NAME, server.as_str().to_owned());
    set(env::HOST, s.public_host.clone());
    set(env::PUBLIC_URL, String::new());
    set(env::PUBLIC_HUB_URL, String::new());
    set(env::COOKIE_HOST_PREFIX_ENABLED, "0".to_owned());
    if let Some(d) = &s.default_url {
        set("JUPYTERHUB_DEFAULT_URL", d.clone());
    }
    let home = home_dir(s, user);
    set("USER", user.as_str().to_owned());
    set("HOME", home.to_string_lossy().into_owned());
    set("SHELL", "/bin/bash".to_owned());
    for (k, v) in &s.environment {
        out.insert(k.clone(), v.clone());
    }
    out
}
