//! [`Reader`]: walks one TOML table of the config, reading typed values and collecting a
//! [`ConfigError`] with its dotted key for every problem.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use toml::{Table, Value};

use super::errors::ConfigError;

/// Reads one table of the config, pushing a problem for every unknown key on opening and
/// for every wrong type or invalid value as values are read. Getters return `None` when
/// the key is absent or its value is wrong, so the caller falls back to the default.
pub(super) struct Reader<'t, 'e> {
    /// Dotted key of this table, `""` for the root.
    prefix: String,
    /// `None` when the table is absent or not a table.
    pub(super) table: Option<&'t Table>,
    pub(super) errors: &'e mut Vec<ConfigError>,
}

impl<'t, 'e> Reader<'t, 'e> {
    pub(super) fn open(
        errors: &'e mut Vec<ConfigError>,
        prefix: String,
        value: Option<&'t Value>,
        known: &[&str],
    ) -> Reader<'t, 'e> {
        let mut reader = Reader {
            prefix,
            table: None,
            errors,
        };
        match value {
            None => {}
            Some(Value::Table(table)) => {
                reader.table = Some(table);
                for key in table.keys().filter(|k| !known.contains(&k.as_str())) {
                    reader.error(
                        key,
                        format!("unknown key (expected one of: {})", known.join(", ")),
                    );
                }
            }
            Some(other) => {
                let message = format!("expected a table, found {}", found(other));
                reader.errors.push(ConfigError {
                    key: reader.prefix.clone(),
                    message,
                });
            }
        }
        reader
    }

    fn key(&self, name: &str) -> String {
        let name = key_segment(name);
        if self.prefix.is_empty() {
            name.into_owned()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    pub(super) fn error(&mut self, name: &str, message: impl Into<String>) {
        let key = self.key(name);
        self.errors.push(ConfigError {
            key,
            message: message.into(),
        });
    }

    pub(super) fn get(&self, name: &str) -> Option<&'t Value> {
        self.table.and_then(|t| t.get(name))
    }

    fn wrong_type(&mut self, name: &str, expected: &str, value: &Value) {
        self.error(name, format!("expected {expected}, found {}", found(value)));
    }

    pub(super) fn boolean(&mut self, name: &str) -> Option<bool> {
        match self.get(name)? {
            Value::Boolean(b) => Some(*b),
            other => {
                self.wrong_type(name, "a boolean", other);
                None
            }
        }
    }

    /// An integer in `min..=max`.
    pub(super) fn integer(&mut self, name: &str, min: i64, max: i64) -> Option<i64> {
        match self.get(name)? {
            Value::Integer(n) if *n < min => self.invalid(name, format!("must be {min} or more")),
            Value::Integer(n) if *n > max => self.invalid(name, format!("must be at most {max}")),
            Value::Integer(n) => Some(*n),
            other => {
                self.wrong_type(name, "an integer", other);
                None
            }
        }
    }

    /// A positive number of `unit` seconds, integer or float.
    pub(super) fn duration(&mut self, name: &str, unit: f64) -> Option<Duration> {
        let n = match self.get(name)? {
            Value::Integer(n) => *n as f64,
            Value::Float(f) => *f,
            other => {
                self.wrong_type(name, "a number", other);
                return None;
            }
        };
        if n.is_nan() || n <= 0.0 {
            return self.invalid(name, "must be greater than 0".into());
        }
        match Duration::try_from_secs_f64(n * unit) {
            Ok(d) => Some(d),
            Err(_) => self.invalid(name, "is too large".into()),
        }
    }

    fn invalid<T>(&mut self, name: &str, message: String) -> Option<T> {
        self.error(name, message);
        None
    }

    /// A string, checked and converted by `parse`, whose `Err` is the message.
    pub(super) fn parsed<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        match self.get(name)? {
            Value::String(s) => match parse(s) {
                Ok(v) => Some(v),
                Err(message) => self.invalid(name, message),
            },
            other => {
                self.wrong_type(name, "a string", other);
                None
            }
        }
    }

    /// An array of strings, each checked by `parse`; a problem with any item is reported
    /// with the item's index, and makes the whole list `None`.
    pub(super) fn list<T>(
        &mut self,
        name: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<Vec<T>> {
        let items = match self.get(name)? {
            Value::Array(items) => items,
            other => {
                self.wrong_type(name, "an array of strings", other);
                return None;
            }
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let result = match item {
                Value::String(s) => parse(s),
                other => Err(format!("expected a string, found {}", found(other))),
            };
            match result {
                Ok(v) => out.push(v),
                Err(message) => {
                    let key = format!("{}[{i}]", self.key(name));
                    self.errors.push(ConfigError { key, message });
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// A table of environment variable names to string values.
    pub(super) fn environment(&mut self, name: &str) -> Option<BTreeMap<String, String>> {
        let table = match self.get(name)? {
            Value::Table(t) => t,
            other => {
                self.wrong_type(name, "a table of strings", other);
                return None;
            }
        };
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (var, value) in table {
            let problem = match value {
                Value::String(_) if var.is_empty() || var.contains(['=', '\0']) => {
                    Some("not a valid environment variable name".to_owned())
                }
                Value::String(s) if s.contains('\0') => {
                    Some("must not contain a NUL character".to_owned())
                }
                Value::String(s) => {
                    out.insert(var.clone(), s.clone());
                    None
                }
                other => Some(format!("expected a string, found {}", found(other))),
            };
            if let Some(message) = problem {
                let key = format!("{}.{}", self.key(name), key_segment(var));
                self.errors.push(ConfigError { key, message });
                ok = false;
            }
        }
        ok.then_some(out)
    }

    /// The value of environment variable `var`, if set, checked by `parse`; a problem is
    /// reported under `name` and names the variable. Never echoes the value.
    pub(super) fn env_override<T>(
        &mut self,
        env: &BTreeMap<String, String>,
        var: &str,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        match parse(env.get(var)?) {
            Ok(v) => Some(v),
            Err(message) => self.invalid(name, format!("from {var}: {message}")),
        }
    }
}

/// The entries of a `[[name]]` section (an array of tables); an absent section is empty,
/// and any other value is reported under `name` and read as empty. Each entry is still
/// checked to be a table when it is opened with [`Reader::open`].
pub(super) fn array_of_tables<'t>(
    errors: &mut Vec<ConfigError>,
    name: &str,
    value: Option<&'t Value>,
) -> &'t [Value] {
    match value {
        None => &[],
        Some(Value::Array(items)) => items,
        Some(other) => {
            let message = format!(
                "expected an array of tables ([[{name}]]), found {}",
                found(other)
            );
            errors.push(ConfigError {
                key: name.to_owned(),
                message,
            });
            &[]
        }
    }
}

/// A key as written in a dotted path: bare if TOML allows, quoted otherwise.
pub(super) fn key_segment(key: &str) -> Cow<'_, str> {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        Cow::Borrowed(key)
    } else {
        Cow::Owned(format!("{key:?}"))
    }
}

pub(super) fn found(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date-time",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}
