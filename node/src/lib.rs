//! The `galilean` node: configuration, the HTTP surfaces (REST API, OAuth provider,
//! pages, admin endpoints) behind one front door with the built-in proxy, and the
//! bootstrap that wires them to the actors and the store.

#![deny(unsafe_code)]

pub mod admin;
pub mod api;
pub mod app;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod error;
pub mod http;
pub mod oauth;
pub mod pages;
pub mod proxy;
pub mod settings;
pub mod start;

/// Sets `map[key]`, allocating the key only when it is not there yet (the hot path
/// mostly overwrites).
pub(crate) fn set_entry<V>(map: &mut std::collections::HashMap<String, V>, key: &str, value: V) {
    match map.get_mut(key) {
        Some(v) => *v = value,
        None => {
            map.insert(key.to_owned(), value);
        }
    }
}
