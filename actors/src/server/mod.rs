//! One server's actor: its messages, the actor that drives its lifecycle, the state it
//! keeps, the judging of a server it did not start, and the spawn task.

pub mod actor;
mod judge;
pub mod messages;
mod spawn;
mod state;

pub use messages::{Progress, ServerMsg};
