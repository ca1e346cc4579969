//! `[storage]`: [`StorageConfig`] and [`StorageBackendKind`] (where state is kept), and
//! reading the section, which checks the backend against `[cluster]` and the build.

use std::path::PathBuf;

use toml::Value;

use super::errors::ConfigError;
use super::reader::Reader;
use super::values::choice;

/// `[storage]`.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageConfig {
    /// `storage.backend`: `"redb"` (one node, the embedded default), `"raft"` (replicated
    /// across `[cluster]`, its default) or `"fdb"` (a FoundationDB cluster the nodes share;
    /// only in a `galilean` built with the `fdb` feature).
    pub backend: StorageBackendKind,
    /// `storage.fdb_cluster_file`: FoundationDB's cluster file (its default location when
    /// unset).
    pub fdb_cluster_file: Option<PathBuf>,
    /// `storage.fdb_root`: the key prefix the hub's data lives under, so that several hubs
    /// can share one FoundationDB (default `"galilean"`).
    pub fdb_root: String,
}

/// `storage.fdb_root`'s default.
pub const DEFAULT_FDB_ROOT: &str = "galilean";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageBackendKind {
    Redb,
    Raft,
    Fdb,
}

impl StorageBackendKind {
    const ALL: &'static [(&'static str, StorageBackendKind)] = &[
        ("redb", StorageBackendKind::Redb),
        ("raft", StorageBackendKind::Raft),
        ("fdb", StorageBackendKind::Fdb),
    ];
}

pub(super) fn read_storage(
    errors: &mut Vec<ConfigError>,
    value: Option<&Value>,
    clustered: bool,
) -> StorageConfig {
    let mut r = Reader::open(
        errors,
        "storage".into(),
        value,
        &["backend", "fdb_cluster_file", "fdb_root"],
    );
    let default = if clustered {
        StorageBackendKind::Raft
    } else {
        StorageBackendKind::Redb
    };
    let backend = r
        .parsed("backend", |s| choice(s, StorageBackendKind::ALL))
        .unwrap_or(default);
    match (backend, clustered) {
        (StorageBackendKind::Redb, true) => r.error(
            "backend",
            "\"redb\" keeps state on one node; a [cluster] needs \"raft\" or \"fdb\"",
        ),
        (StorageBackendKind::Raft, false) => r.error(
            "backend",
            "\"raft\" replicates across a [cluster]; add one, or use \"redb\"",
        ),
        (StorageBackendKind::Fdb, _) if !cfg!(feature = "fdb") => r.error(
            "backend",
            "this galilean was built without FoundationDB support (build it with \
             `cargo build --release -p galilean-node --features fdb`, which needs \
             libfdb_c), or use \"raft\"",
        ),
        _ => {}
    }
    let fdb_cluster_file = r.parsed("fdb_cluster_file", |s| {
        if s.is_empty() {
            Err("must not be empty (leave it out for FoundationDB's default)".to_owned())
        } else {
            Ok(PathBuf::from(s))
        }
    });
    let fdb_root = r
        .parsed("fdb_root", |s| {
            if s.is_empty() {
                Err("must not be empty".to_owned())
            } else if s.len() > 100 {
                Err("must be at most 100 bytes".to_owned())
            } else if s.starts_with('\u{ff}') || s.chars().any(char::is_control) {
                Err("must be printable text".to_owned())
            } else {
                Ok(s.to_owned())
            }
        })
        .unwrap_or_else(|| DEFAULT_FDB_ROOT.to_owned());
    if backend != StorageBackendKind::Fdb {
        for key in ["fdb_cluster_file", "fdb_root"] {
            if r.get(key).is_some() {
                r.error(key, "only used with backend = \"fdb\"");
            }
        }
    }
    StorageConfig {
        backend,
        fdb_cluster_file,
        fdb_root,
    }
}
