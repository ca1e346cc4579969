//! The `galilean` node: configuration, the HTTP surfaces (REST API, pages, OAuth
//! provider), the built-in proxy, and the bootstrap that wires them to the actors and the
//! store.

#![deny(unsafe_code)]

pub mod api;
pub mod app;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod error;
pub mod front;
pub mod hub;
pub mod next_url;
pub mod oauth;
pub mod pages;
pub mod proxy;
pub mod settings;

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
