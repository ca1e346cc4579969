//! Scope expansion, filtering and intersection (§4 of the protocol reference), as plain
//! functions over data from `galilean_proto::scopes`; nothing here does I/O.
//!
//! A [`ScopeSet`] maps a base scope (`read:users`) to the filters it is held with: either
//! unfiltered, or a set of `user=`, `server=`, `group=`, `service=` filters.
//!
//! The files, each using only those listed before it:
//! * `filter`: the vocabulary (filters, owners, targets, answers, group membership);
//! * `catalog`: which scopes exist (JupyterHub's and a deployment's custom ones) and
//!   the checks of raw scopes;
//! * `set`: [`ScopeSet`], its expansion from raw scopes and its checks against a target;
//! * `intersect`: the scopes two sets both hold;
//! * `visible`: what a list endpoint may show under a filtered list scope;
//! * `grants`: what users, services and tokens hold, and what a new token may be given.

mod catalog;
mod filter;
mod grants;
mod intersect;
mod set;
mod visible;

pub use catalog::{Catalog, CustomScope, ScopeError};
pub use filter::{Access, Filter, FilterKind, Membership, ScopeOwner, Target};
pub use grants::{
    identify_scopes, resolve_requested_scopes, token_excess, token_scopes, token_scopes_in,
};
pub use set::ScopeSet;
pub use visible::{list_filter_kinds, Visible, LIST_FILTER_KINDS};

#[cfg(test)]
mod ported;
#[cfg(test)]
mod tests;
