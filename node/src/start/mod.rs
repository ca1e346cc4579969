//! Bootstrapping a node: open the store, start the replica and the router, reconcile
//! config-owned state (admin users, service tokens), re-adopt servers left running, then
//! serve HTTP until asked to stop.

mod background;
mod boot;
mod build;
pub mod control;
mod listen;
mod node;
mod peers;
mod purge;
mod reconcile;
mod stores;

pub use boot::{run, start, start_with_options, start_with_store, StartOptions};
pub use node::{init_tracing, Node};
