//! `[[services]]`: [`ServiceConfig`], the variable that carries each service's token, and
//! reading the entries, with their name and token clashes.

use std::collections::BTreeMap;

use toml::Value;

use super::errors::ConfigError;
use super::reader::{array_of_tables, Reader};
use super::values::Secret;

/// The variable that replaces the `api_token` of the service named `service_name`:
/// `GALILEAN_SERVICE_<NAME>_API_TOKEN`, NAME upper-cased with `-` written `_`
/// (`idle-culler` → `GALILEAN_SERVICE_IDLE_CULLER_API_TOKEN`).
pub fn service_token_env_var(service_name: &str) -> String {
    let name = service_name.to_uppercase().replace('-', "_");
    format!("GALILEAN_SERVICE_{name}_API_TOKEN")
}

/// One `[[services]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    /// `name` (required): the service's name, unique among services; it appears in URLs
    /// (`/services/<name>/`), so it must not be empty, contain `/` or `%`, consist only of
    /// dots, or start or end with whitespace.
    pub name: String,
    /// `api_token`: the token the service uses for the hub API, 8 to 64 characters without
    /// whitespace. A secret: prefer `GALILEAN_SERVICE_<NAME>_API_TOKEN`, which overrides it.
    /// Default: none (the service has no token).
    pub api_token: Option<Secret>,
    /// `admin`: give the service the admin role. Default `false`.
    pub admin: bool,
}

pub(super) fn read_services(
    errors: &mut Vec<ConfigError>,
    value: Option<&Value>,
    env: &BTreeMap<String, String>,
) -> Vec<ServiceConfig> {
    let items = array_of_tables(errors, "services", value);
    let mut services = Vec::new();
    // service name → index, and token variable → index, to report clashes.
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    let mut token_vars: BTreeMap<String, usize> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let mut r = Reader::open(
            errors,
            format!("services[{i}]"),
            Some(item),
            &["name", "api_token", "admin"],
        );
        if r.table.is_none() {
            continue;
        }
        let name = r.parsed("name", parse_service_name);
        if r.get("name").is_none() {
            r.error("name", "missing: every service needs a name");
        }
        let mut token = r.parsed("api_token", parse_api_token);
        let admin = r.boolean("admin").unwrap_or(false);
        if let Some(name) = &name {
            let var = service_token_env_var(name);
            if let Some(first) = names.insert(name.clone(), i) {
                r.error(
                    "name",
                    format!("duplicate service name {name:?} (also services[{first}])"),
                );
            } else if let Some(first) = token_vars.insert(var.clone(), i) {
                if env.contains_key(&var) {
                    let message = format!(
                        "{var} would set the api_token of both services[{first}] and this one"
                    );
                    r.error("name", message);
                }
            } else if let Some(from_env) = r.env_override(env, &var, "api_token", parse_api_token) {
                token = Some(from_env);
            }
        }
        services.push(ServiceConfig {
            name: name.unwrap_or_default(),
            api_token: token,
            admin,
        });
    }
    for (j, service) in services.iter().enumerate() {
        let Some(token) = &service.api_token else {
            continue;
        };
        if let Some(i) = services[..j]
            .iter()
            .position(|s| s.api_token.as_ref() == Some(token))
        {
            let message = format!("the same token as services[{i}]; each service needs its own");
            errors.push(ConfigError {
                key: format!("services[{j}].api_token"),
                message,
            });
        }
    }
    services
}

pub(super) fn parse_service_name(name: &str) -> Result<String, String> {
    let problem = if name.is_empty() {
        "must not be empty"
    } else if name.trim() != name {
        "must not start or end with whitespace"
    } else if name.contains('/') {
        "must not contain '/'"
    } else if name.contains('%') {
        "must not contain '%'"
    } else if name.chars().all(|c| c == '.') {
        "must not consist only of dots"
    } else {
        return Ok(name.to_owned());
    };
    Err(format!("{problem}: {name:?}"))
}

/// Never echoes the token.
fn parse_api_token(token: &str) -> Result<Secret, String> {
    let len = token.chars().count();
    if !(8..=64).contains(&len) {
        return Err(format!("must be 8 to 64 characters long, found {len}"));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain whitespace or control characters".into());
    }
    Ok(Secret::new(token))
}
