//! The rules, as plain functions over data: where users are placed and the live set's
//! rules, the server lifecycle's state machine, scope expansion and checks, roles and
//! who holds them, the rules of shares, what a token is granted, the rules for naming servers, and what a spawned server is told.
//! Nothing here imports ractor or touches the store.

pub mod lifecycle;
pub mod placement;
pub mod rbac;
pub mod scopes;
pub mod server_env;
pub mod servers;
pub mod shares;
pub mod text;
pub mod tokens;
