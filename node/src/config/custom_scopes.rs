//! `[custom_scopes]`: a deployment's own scopes (JupyterHub's `custom_scopes`), read into
//! the actors' [`CustomScope`], and the scope [`Catalog`] built once from them, against
//! which `[[roles]]` scopes are checked.

use std::collections::BTreeMap;

use galilean_actors::policy::scopes::{Catalog, CustomScope};
use galilean_proto::scopes as builtin;
use toml::Value;

use super::errors::ConfigError;
use super::reader::{found, key_segment, Reader};

/// What `[custom_scopes]` gave: the scopes, and the catalog built from them; `catalog` is
/// `None` when any scope was refused, so that role scopes naming them are not reported a
/// second time.
pub(super) struct CustomScopes {
    pub(super) scopes: BTreeMap<String, CustomScope>,
    pub(super) catalog: Option<Catalog>,
}

/// Reads `[custom_scopes]`: a table whose keys are scope names and whose values are
/// tables with `description` (required) and `subscopes` (default `[]`). JupyterHub's
/// rules (`jupyterhub/scopes.py`, `define_custom_scopes`): the name matches
/// `^custom:[a-z0-9][a-z0-9_\-\*:]+[a-z0-9_\*]$`; every sub-scope is another custom scope
/// defined here. JupyterHub ignores other keys with a warning; here they are refused.
pub(super) fn read_custom_scopes(
    errors: &mut Vec<ConfigError>,
    value: Option<&Value>,
) -> CustomScopes {
    let before = errors.len();
    let table = match value {
        None => None,
        Some(Value::Table(table)) => Some(table),
        Some(other) => {
            errors.push(ConfigError {
                key: "custom_scopes".into(),
                message: format!(
                    "expected a table of scope definitions ([custom_scopes.\"custom:...\"]), found {}",
                    found(other)
                ),
            });
            None
        }
    };
    let mut scopes = BTreeMap::new();
    for (name, definition) in table.into_iter().flatten() {
        let prefix = format!("custom_scopes.{}", key_segment(name));
        if let Err(message) = check_name(name) {
            errors.push(ConfigError {
                key: prefix.clone(),
                message,
            });
        }
        let mut r = Reader::open(
            errors,
            prefix,
            Some(definition),
            &["description", "subscopes"],
        );
        if r.table.is_none() {
            continue;
        }
        let description = r.parsed("description", |s| Ok(s.to_owned()));
        if r.get("description").is_none() {
            r.error(
                "description",
                "missing: every custom scope needs a description (it is shown on the authorization page)",
            );
        }
        let defined = |sub: &str| table.is_some_and(|t| t.contains_key(sub));
        let subscopes = r
            .list("subscopes", |sub| check_subscope(sub, defined(sub)))
            .unwrap_or_default();
        scopes.insert(
            name.clone(),
            CustomScope {
                description,
                subscopes,
            },
        );
    }
    if errors.len() > before {
        return CustomScopes {
            scopes,
            catalog: None,
        };
    }
    match Catalog::with_custom(&scopes) {
        Ok(catalog) => CustomScopes {
            scopes,
            catalog: Some(catalog),
        },
        Err(e) => {
            errors.push(ConfigError {
                key: "custom_scopes".into(),
                message: e.to_string(),
            });
            CustomScopes {
                scopes,
                catalog: None,
            }
        }
    }
}

/// JupyterHub's `_custom_scope_pattern`, `^custom:[a-z0-9][a-z0-9_\-\*:]+[a-z0-9_\*]$`.
fn check_name(name: &str) -> Result<(), String> {
    let rest = name.strip_prefix("custom:").unwrap_or("");
    let chars: Vec<char> = rest.chars().collect();
    let ok = name.starts_with("custom:")
        && chars.len() >= 3
        && matches!(chars[0], 'a'..='z' | '0'..='9')
        && chars[1..chars.len() - 1]
            .iter()
            .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '-' | '*' | ':'))
        && matches!(chars[chars.len() - 1], 'a'..='z' | '0'..='9' | '_' | '*');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid custom scope name {name:?}: it must start with \"custom:\", followed by at \
             least 3 of lowercase ASCII letters, digits and \"-_:*\", the first a letter or \
             digit, the last not \"-\" or \":\""
        ))
    }
}

/// A sub-scope must be a custom scope defined in the same table.
fn check_subscope(sub: &str, defined: bool) -> Result<String, String> {
    if defined {
        Ok(sub.to_owned())
    } else if builtin::subscopes(sub).is_some() || sub == builtin::SELF || sub == builtin::INHERIT {
        Err(format!(
            "{sub:?} is not a custom scope: custom scopes may only have custom sub-scopes \
             (a role grants several scopes together)"
        ))
    } else {
        Err(format!("{sub:?} is not defined in [custom_scopes]"))
    }
}

/// Whether `scope` (a role's, perhaps filtered: `custom:x!user=ada`) names one of the
/// `[custom_scopes]`.
pub(super) fn names_custom(scope: &str, custom: &BTreeMap<String, CustomScope>) -> bool {
    let base = scope.split_once('!').map_or(scope, |(base, _)| base);
    custom.contains_key(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_jupyterhubs_pattern() {
        for good in [
            "custom:abc",
            "custom:grades:read",
            "custom:jupyter_server:read:*",
            "custom:0-a_b*",
        ] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        for bad in [
            "custom:ab",
            "custom:-abc",
            "custom:abc-",
            "custom:abc:",
            "custom:Abc",
            "custom:a b c",
            "grades:read",
            "read:users",
            "custom:",
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
