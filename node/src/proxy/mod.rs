//! The node's built-in reverse proxy: what configurable-http-proxy (CHP) does for
//! JupyterHub, in-process, on every node.
//!
//! Requests under `/user/<name>/[<server>/]` are streamed, unmodified, to the single-user
//! server that owns the longest matching route prefix, WebSockets included. The proxy does
//! not authenticate: the single-user server does, through the hub's OAuth (§1.1).
//!
//! The proxy is a stack of small stages, each in its own file:
//!
//! - [`routes`]: the route table, an immutable snapshot published through a
//!   `tokio::sync::watch` channel and read through a [`RouteReader`], so the request path
//!   takes no lock; [`diff`] compares two tables for the reconciler.
//! - [`forward`]: the forwarding stage, [`Proxy::forward`], with CHP's `xfwd` headers,
//!   hop-by-hop stripping (`headers.rs`) and upgrade splicing (`upgrade.rs`).
//! - [`activity`]: the last-activity recorder the node flushes to the store in batches.
//!
//! What is not here: choosing between the proxy and the hub's own handlers, rendering the
//! hub's error pages, and feeding the route table from the store; those belong to the node.
//!
//! A front end wires the stages together per connection:
//!
//! ```text
//! let route = reader.lookup(req.uri().path());          // RouteReader, one per connection
//! match route {
//!     Some(route) => proxy
//!         .forward(req, &route, client_addr)
//!         .await
//!         .unwrap_or_else(ProxyError::into_response),
//!     None => hub_handles(req).await,
//! }
//! ```

pub mod activity;
pub mod forward;
mod headers;
pub mod routes;
mod upgrade;

#[cfg(test)]
mod tests;

pub use activity::ActivityRecorder;
pub use forward::{Proxy, ProxyBody, ProxyConfig, ProxyError};
pub use routes::{
    diff, route_channel, Route, RouteChange, RouteDiff, RouteKey, RouteReader, RouteTable,
};
