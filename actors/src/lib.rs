//! Galilean's actors: one per user and per server, the router that finds the owner of a
//! user and reaches it on any node, membership (who is live, who may serve), the store
//! operations actors make, and the spawners that run single-user servers. Decisions
//! (placement, the server state machine, scopes, naming rules) are plain functions in
//! `policy`, which does not import ractor.
//!
//! This crate does not speak HTTP: the node turns requests into calls.

#![deny(unsafe_code)]

pub mod context;
pub mod crypt;
pub mod error;
pub mod membership;
pub mod metrics;
pub mod policy;
pub mod replica;
pub mod router;
pub mod secrets;
pub mod server;
pub mod settings;
pub mod spawner;
pub mod store;
pub mod user;

pub use context::HubCtx;
pub use error::OpError;
pub use replica::Replica;
pub use router::Router;
pub use settings::SpawnSettings;
pub use store::keys;
