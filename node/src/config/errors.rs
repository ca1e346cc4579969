//! The problems a config file can have: [`ConfigError`] (one problem, with its dotted key)
//! and [`ConfigErrors`] (every problem of one file), and how they are shown.

use std::fmt;
use std::path::{Path, PathBuf};

/// Every problem found in one config file. `Display` gives one line per problem:
/// `<file>: <key>: <message>` (or `<file>: <message>` for the file as a whole).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", render(.file, .errors))]
pub struct ConfigErrors {
    pub file: PathBuf,
    pub errors: Vec<ConfigError>,
}

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The dotted key, e.g. `spawner.start_timeout` or `services[1].name`; empty for the
    /// file as a whole (unreadable, TOML syntax).
    pub key: String,
    pub message: String,
}

/// `<key>: <message>`, or `<message>` for the file as a whole.
impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.key.as_str() {
            "" => f.write_str(&self.message),
            key => write!(f, "{key}: {}", self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

fn render(file: &Path, errors: &[ConfigError]) -> String {
    let lines: Vec<String> = errors
        .iter()
        .map(|e| format!("{}: {e}", file.display()))
        .collect();
    lines.join("\n")
}
