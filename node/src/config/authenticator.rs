//! `[authenticator]`: [`AuthenticatorConfig`] (who may log in, and who is an admin), the
//! [`AuthenticatorClass`] choices, its defaults, and reading the section.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use toml::Value;

use super::errors::ConfigError;
use super::reader::Reader;
use super::values::{choice, parse_name, Secret};

/// Replaces `authenticator.password`.
pub const ENV_AUTHENTICATOR_PASSWORD: &str = "GALILEAN_AUTHENTICATOR_PASSWORD";

/// `[authenticator]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthenticatorConfig {
    /// `authenticator.class`: which authenticator checks logins. Only `"dummy"` for now,
    /// which accepts any user name (subject to `allowed_users` / `allow_all`) with
    /// `password`. Default `"dummy"`.
    pub class: AuthenticatorClass,
    /// `authenticator.password`: the one password the dummy authenticator accepts; when
    /// absent any password is accepted. Must not be empty. A secret: prefer
    /// `GALILEAN_AUTHENTICATOR_PASSWORD`, which overrides it. Default: none.
    pub password: Option<Secret>,
    /// `authenticator.admin_users`: user names that are admins. They may always log in.
    /// Default `[]`.
    pub admin_users: BTreeSet<String>,
    /// `authenticator.allowed_users`: user names allowed to log in (besides admins).
    /// Default `[]`.
    pub allowed_users: BTreeSet<String>,
    /// `authenticator.allow_all`: let every user who authenticates log in, ignoring
    /// `allowed_users`. Default `false`.
    pub allow_all: bool,
}

/// `authenticator.class`; serializes as its config name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthenticatorClass {
    /// `"dummy"`: any user name, one shared password (or none).
    Dummy,
}

impl AuthenticatorClass {
    const ALL: &[(&str, AuthenticatorClass)] = &[("dummy", AuthenticatorClass::Dummy)];
}

impl Default for AuthenticatorConfig {
    fn default() -> AuthenticatorConfig {
        AuthenticatorConfig {
            class: AuthenticatorClass::Dummy,
            password: None,
            admin_users: BTreeSet::new(),
            allowed_users: BTreeSet::new(),
            allow_all: false,
        }
    }
}

pub(super) fn read_authenticator(
    errors: &mut Vec<ConfigError>,
    value: Option<&Value>,
    env: &BTreeMap<String, String>,
) -> AuthenticatorConfig {
    const KEYS: &[&str] = &[
        "class",
        "password",
        "admin_users",
        "allowed_users",
        "allow_all",
    ];
    let d = AuthenticatorConfig::default();
    let mut r = Reader::open(errors, "authenticator".into(), value, KEYS);
    let mut password = r.parsed("password", parse_password);
    if let Some(p) = r.env_override(env, ENV_AUTHENTICATOR_PASSWORD, "password", parse_password) {
        password = Some(p);
    }
    let user_name = |s: &str| parse_name(s, "user");
    AuthenticatorConfig {
        class: r
            .parsed("class", |s| choice(s, AuthenticatorClass::ALL))
            .unwrap_or(d.class),
        password,
        admin_users: r
            .list("admin_users", user_name)
            .map_or(d.admin_users, |v| v.into_iter().collect()),
        allowed_users: r
            .list("allowed_users", user_name)
            .map_or(d.allowed_users, |v| v.into_iter().collect()),
        allow_all: r.boolean("allow_all").unwrap_or(d.allow_all),
    }
}

fn parse_password(text: &str) -> Result<Secret, String> {
    if text.is_empty() {
        return Err("must not be empty; leave it out to accept any password".into());
    }
    Ok(Secret::new(text))
}
