//! The keyspace and every store operation, grouped by record: each operation is one
//! short transaction, retried on conflict; the writes an owner makes are fenced by the
//! live set (`fence`). Actors call these to serialize a key's writes; nothing here holds
//! state.

pub mod activity;
pub mod fence;
pub mod groups;
pub mod keys;
pub mod meta;
pub mod oauth;
pub mod rename;
pub mod server_edits;
pub mod servers;
pub mod shares;
pub mod tokens;
pub mod txn;
pub mod users;
