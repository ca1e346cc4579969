//! `[[roles]]`: [`RoleConfig`] (JupyterHub's `load_roles`), JupyterHub's default roles and
//! what redefining one may change, and reading the entries, checking their scopes against
//! the catalog built from `[custom_scopes]`.

use std::collections::{BTreeMap, BTreeSet};

use galilean_actors::policy::scopes::{Catalog, CustomScope};
use galilean_proto::scopes::{
    ADMIN_ROLE_SCOPES, SERVER_ROLE_SCOPES, TOKEN_ROLE_SCOPES, USER_ROLE_SCOPES,
};
use toml::Value;

use super::custom_scopes::names_custom;
use super::errors::ConfigError;
use super::reader::{array_of_tables, Reader};
use super::values::parse_name;

/// One `[[roles]]` entry: a named set of scopes and who holds it. Only `name` is required.
///
/// A role named after one of JupyterHub's default roles (`user`, `admin`, `server`,
/// `token`) redefines it: what it leaves out keeps the default's value (JupyterHub merges
/// the entry into the default, `jupyterhub/app.py`, `init_role_creation`). The `admin`
/// role's `description` and `scopes` cannot be changed: if given they must be exactly
/// JupyterHub's (`jupyterhub/roles.py`, `create_role`). Redefining a default role changes
/// what it grants, not who holds it by default: every user still holds `user`, admins
/// `admin`; the users, groups and services listed hold it too, as with any role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleConfig {
    /// `name` (required): 3 to 255 characters of lowercase ASCII letters, digits and
    /// `-_~.`, starting with a letter and ending with a letter or digit (JupyterHub's
    /// `^[a-z][a-z0-9\-_~\.]{1,253}[a-z0-9]$`); unique among roles.
    pub name: String,
    /// `description`: free text. Default: none, or the default role's.
    pub description: Option<String>,
    /// `scopes`: what the role grants, each known to the catalog (JupyterHub's scopes, the
    /// `[custom_scopes]`, `self`, `inherit`), optionally with one filter
    /// (`read:users!group=physics`). Default: the default role's scopes, or none: a role
    /// without scopes grants nothing (JupyterHub warns "Role ... will have no scopes").
    pub scopes: Vec<String>,
    /// `users`: names of users who hold the role. Default `[]`.
    pub users: Vec<String>,
    /// `groups`: names of groups whose members hold the role; a group need not be in
    /// `[[groups]]` (JupyterHub creates it). Default `[]`.
    pub groups: Vec<String>,
    /// `services`: names of `[[services]]` entries that hold the role (JupyterHub refuses
    /// an undefined service). Default `[]`.
    pub services: Vec<String>,
}

/// One of JupyterHub's default roles (`jupyterhub/roles.py`, `get_default_roles`).
struct DefaultRole {
    name: &'static str,
    description: &'static str,
    scopes: &'static [&'static str],
}

const ADMIN: &str = "admin";

const DEFAULT_ROLES: &[DefaultRole] = &[
    DefaultRole {
        name: "user",
        description: "Standard user privileges",
        scopes: USER_ROLE_SCOPES,
    },
    DefaultRole {
        name: ADMIN,
        description: "Elevated privileges (can do anything)",
        scopes: ADMIN_ROLE_SCOPES,
    },
    DefaultRole {
        name: "server",
        description: "Post activity only",
        scopes: SERVER_ROLE_SCOPES,
    },
    DefaultRole {
        name: "token",
        description: "Token with same permissions as its owner",
        scopes: TOKEN_ROLE_SCOPES,
    },
];

const KEYS: &[&str] = &[
    "name",
    "description",
    "scopes",
    "users",
    "groups",
    "services",
];

/// Reads `[[roles]]`. `catalog` is `None` when `[custom_scopes]` was refused: scopes
/// naming one of `custom` are then not checked again. `services` are the names of the
/// `[[services]]` entries.
pub(super) fn read_roles(
    errors: &mut Vec<ConfigError>,
    value: Option<&Value>,
    catalog: Option<&Catalog>,
    custom: &BTreeMap<String, CustomScope>,
    services: &BTreeSet<String>,
) -> Vec<RoleConfig> {
    let items = array_of_tables(errors, "roles", value);
    let mut roles = Vec::new();
    // role name → index, to report duplicates
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let mut r = Reader::open(errors, format!("roles[{i}]"), Some(item), KEYS);
        if r.table.is_none() {
            continue;
        }
        let name = r.parsed("name", parse_role_name);
        if r.get("name").is_none() {
            r.error("name", "missing: every role needs a name");
        }
        if let Some(name) = &name {
            if let Some(first) = names.insert(name.clone(), i) {
                r.error(
                    "name",
                    format!("duplicate role name {name:?} (also roles[{first}])"),
                );
            }
        }
        let default = name
            .as_deref()
            .and_then(|n| DEFAULT_ROLES.iter().find(|d| d.name == n));
        let description = r.parsed("description", |s| Ok(s.to_owned()));
        let scopes = r.list("scopes", |s| check_scope(s, catalog, custom));
        if let Some(admin) = default.filter(|d| d.name == ADMIN) {
            if description.as_ref().is_some_and(|d| d != admin.description) {
                let message = format!(
                    "the admin role's description cannot be changed: leave it out, or write \
                     JupyterHub's {:?}",
                    admin.description
                );
                r.error("description", message);
            }
            if scopes.as_ref().is_some_and(|s| !s.iter().eq(admin.scopes)) {
                let message = format!(
                    "the admin role's scopes cannot be changed: leave them out, or list \
                     JupyterHub's, in this order: {:?}",
                    admin.scopes
                );
                r.error("scopes", message);
            }
        }
        let users = r
            .list("users", |s| parse_name(s, "user"))
            .unwrap_or_default();
        let groups = r
            .list("groups", |s| parse_name(s, "group"))
            .unwrap_or_default();
        let services = r
            .list("services", |s| {
                if services.contains(s) {
                    Ok(s.to_owned())
                } else {
                    Err(format!("no [[services]] entry is named {s:?}"))
                }
            })
            .unwrap_or_default();
        roles.push(RoleConfig {
            name: name.unwrap_or_default(),
            description: description.or_else(|| default.map(|d| d.description.to_owned())),
            scopes: scopes.unwrap_or_else(|| {
                default.map_or_else(Vec::new, |d| {
                    d.scopes.iter().map(|s| s.to_string()).collect()
                })
            }),
            users,
            groups,
            services,
        });
    }
    roles
}

/// JupyterHub's `_validate_role_name`: `^[a-z][a-z0-9\-_~\.]{1,253}[a-z0-9]$`.
fn parse_role_name(name: &str) -> Result<String, String> {
    let chars: Vec<char> = name.chars().collect();
    let ok = (3..=255).contains(&chars.len())
        && chars[0].is_ascii_lowercase()
        && chars[1..chars.len() - 1]
            .iter()
            .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-' | '_' | '~' | '.'))
        && matches!(chars[chars.len() - 1], 'a'..='z' | '0'..='9');
    if ok {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "invalid role name {name:?}: it must be 3 to 255 characters of lowercase ASCII \
             letters, digits and \"-_~.\", start with a letter and end with a letter or digit"
        ))
    }
}

/// A role scope known to `catalog`; without one (`[custom_scopes]` was refused, and says
/// why), a scope naming a custom scope is let through and the others are checked against
/// JupyterHub's.
fn check_scope(
    scope: &str,
    catalog: Option<&Catalog>,
    custom: &BTreeMap<String, CustomScope>,
) -> Result<String, String> {
    let checked = match catalog {
        Some(catalog) => catalog.validate(&[scope]),
        None if names_custom(scope, custom) => Ok(()),
        None => Catalog::builtin().validate(&[scope]),
    };
    checked
        .map(|()| scope.to_owned())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_follow_jupyterhubs_pattern() {
        for good in ["abc", "idle-culler", "a.b~c_d-e", "user", "r00"] {
            assert_eq!(parse_role_name(good).as_deref(), Ok(good), "{good}");
        }
        let longest = format!("a{}z", "b".repeat(253));
        assert!(parse_role_name(&longest).is_ok());
        for bad in [
            "ab",
            "1abc",
            "Abc",
            "abc-",
            "abc.",
            "a bc",
            "ab/c",
            "",
            &format!("a{}z", "b".repeat(254)),
        ] {
            assert!(parse_role_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_default_roles_are_jupyterhubs() {
        let names: Vec<&str> = DEFAULT_ROLES.iter().map(|d| d.name).collect();
        assert_eq!(names, ["user", "admin", "server", "token"]);
    }
}
