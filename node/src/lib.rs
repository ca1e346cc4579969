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
