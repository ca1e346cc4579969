//! Spawners run single-user servers: the contract every backend implements
//! (`backend`), the one place that picks a backend by its config name (`backends`), the
//! backends (`local`: `local-process`), and what they share (launching a process,
//! choosing ports, `/proc`, process groups, logs, readiness).

pub mod backend;
pub mod backends;
mod groups;
mod launch;
pub mod local;
pub mod logs;
mod ports;
pub mod procfs;
pub mod readiness;

pub use backend::{LaunchCheck, PollStatus, SpawnError, SpawnRequest, Spawner, Started};
