//! Galilean's actors: one per user and per server, the shard router that finds the owner
//! of a key, and the spawners that run single-user servers. Decisions (scope expansion,
//! placement, the server state machine) are plain functions in modules that do not
//! import ractor.
//!
//! This crate does not speak HTTP: the node turns requests into actor messages.

#![deny(unsafe_code)]

pub mod context;
pub mod error;
pub mod keys;
pub mod lifecycle;
pub mod ops;
pub mod placement;
pub mod remote;
pub mod replica;
pub mod router;
pub mod scopes;
pub mod server;
pub mod spawner;
pub mod user;

pub use context::{HubCtx, SpawnSettings};
pub use error::OpError;
pub use replica::Replica;
pub use router::Router;
