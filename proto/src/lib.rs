//! Galilean's vocabulary: names, node ids, persisted records (the live set among them),
//! the calls and replies that cross between nodes, JupyterHub API models, scopes and roles
//! as data, and error codes.
//!
//! This crate is serde only: no tokio, no sockets, no storage. Everything that crosses
//! the network or is persisted is defined here, with golden-bytes tests so that an old
//! encoding still decodes after a change.

#![forbid(unsafe_code)]

pub mod codec;
pub mod env;
pub mod error;
pub mod live;
pub mod models;
pub mod names;
pub mod node;
pub mod records;
pub mod scopes;
pub mod time;
pub mod wire;

pub use error::ApiError;
pub use names::{NameError, ServerName, UserName};

/// The JupyterHub protocol version Galilean implements (reported as `version`).
pub const JUPYTERHUB_VERSION: &str = "6.1.1";
/// Galilean's own version.
pub const GALILEAN_VERSION: &str = env!("CARGO_PKG_VERSION");
