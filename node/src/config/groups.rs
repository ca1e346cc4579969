//! `[[groups]]`: [`GroupConfig`] (JupyterHub's `load_groups`) and reading the entries,
//! with their `properties` turned from TOML into JSON.

use std::collections::BTreeMap;

use serde_json::{Map, Number, Value as Json};
use toml::Value;

use super::errors::ConfigError;
use super::reader::{array_of_tables, found, key_segment, Reader};
use super::values::parse_name;

/// One `[[groups]]` entry. JupyterHub only adds: a group or member that is no longer
/// listed is not removed (that is done through the API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// `name` (required): unique among groups; not empty. JupyterHub checks nothing else
    /// (`jupyterhub/app.py`, `init_groups`).
    pub name: String,
    /// `users`: names of the group's members (added to it). Default `[]`.
    pub users: Vec<String>,
    /// `properties`: any table, kept as a JSON object (the group model's `properties`);
    /// a TOML date-time becomes its RFC 3339 string; a float must be finite. JupyterHub
    /// replaces a group's properties with these when they are given. Default `{}`.
    pub properties: Map<String, Json>,
}

pub(super) fn read_groups(
    errors: &mut Vec<ConfigError>,
    value: Option<&Value>,
) -> Vec<GroupConfig> {
    let items = array_of_tables(errors, "groups", value);
    let mut groups = Vec::new();
    // group name → index, to report duplicates
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let prefix = format!("groups[{i}]");
        let mut r = Reader::open(
            errors,
            prefix.clone(),
            Some(item),
            &["name", "users", "properties"],
        );
        if r.table.is_none() {
            continue;
        }
        let name = r.parsed("name", |s| parse_name(s, "group"));
        if r.get("name").is_none() {
            r.error("name", "missing: every group needs a name");
        }
        if let Some(name) = &name {
            if let Some(first) = names.insert(name.clone(), i) {
                r.error(
                    "name",
                    format!("duplicate group name {name:?} (also groups[{first}])"),
                );
            }
        }
        let users = r
            .list("users", |s| parse_name(s, "user"))
            .unwrap_or_default();
        let properties = match r.get("properties") {
            None => Map::new(),
            Some(Value::Table(table)) => {
                let key = format!("{prefix}.properties");
                object(table, &key, r.errors)
            }
            Some(other) => {
                r.error(
                    "properties",
                    format!("expected a table, found {}", found(other)),
                );
                Map::new()
            }
        };
        groups.push(GroupConfig {
            name: name.unwrap_or_default(),
            users,
            properties,
        });
    }
    groups
}

/// A TOML table as a JSON object; a value JSON cannot hold is reported with its key and
/// left out.
fn object(table: &toml::Table, key: &str, errors: &mut Vec<ConfigError>) -> Map<String, Json> {
    let mut out = Map::new();
    for (name, value) in table {
        let key = format!("{key}.{}", key_segment(name));
        if let Some(json) = json(value, &key, errors) {
            out.insert(name.clone(), json);
        }
    }
    out
}

fn json(value: &Value, key: &str, errors: &mut Vec<ConfigError>) -> Option<Json> {
    Some(match value {
        Value::String(s) => Json::String(s.clone()),
        Value::Integer(n) => Json::Number(Number::from(*n)),
        Value::Float(f) => match Number::from_f64(*f) {
            Some(n) => Json::Number(n),
            None => {
                errors.push(ConfigError {
                    key: key.to_owned(),
                    message: format!("{f} cannot be held in JSON: use a finite number"),
                });
                return None;
            }
        },
        Value::Boolean(b) => Json::Bool(*b),
        Value::Datetime(d) => Json::String(d.to_string()),
        Value::Array(items) => Json::Array(
            items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| json(item, &format!("{key}[{i}]"), errors))
                .collect(),
        ),
        Value::Table(table) => Json::Object(object(table, key, errors)),
    })
}
