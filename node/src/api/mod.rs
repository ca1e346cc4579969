//! The REST API under `/hub/api/` (§2), one file per resource (the hub's own operations:
//! `proxy`, `shutdown`; the deprecated endpoints: `legacy`), plus who calls it (`caller`),
//! what a request names (`request`) and the models it answers with.

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

use crate::app::AppState;

mod activity;
pub mod caller;
mod groups;
mod info;
mod legacy;
pub mod models;
mod paging;
mod progress;
mod proxy;
pub mod request;
mod servers;
mod shutdown;
mod tokens;
mod users;
mod whoami;

/// The API routes; `api` is the API prefix without its trailing slash (`/hub/api`).
pub fn routes(api: &str) -> Router<Arc<AppState>> {
    let r = |path: &str| format!("{api}{path}");
    Router::new()
        .route(api, get(info::root))
        .route(&r("/"), get(info::root))
        .route(&r("/info"), get(info::info))
        .route(&r("/user"), get(whoami::whoami))
        .route(&r("/users"), get(users::list).post(users::create_many))
        .route(
            &r("/users/{name}"),
            get(users::get_one)
                .post(users::create_one)
                .patch(users::patch)
                .delete(users::delete),
        )
        .route(
            &r("/users/{name}/server"),
            post(servers::start_default).delete(servers::stop_default),
        )
        .route(
            &r("/users/{name}/server/progress"),
            get(progress::progress_default),
        )
        .route(
            &r("/users/{name}/servers/{server}"),
            post(servers::start_named).delete(servers::stop_named),
        )
        .route(
            &r("/users/{name}/servers/{server}/progress"),
            get(progress::progress_named),
        )
        .route(&r("/users/{name}/activity"), post(activity::activity))
        .route(
            &r("/users/{name}/tokens"),
            get(tokens::list).post(tokens::create),
        )
        .route(
            &r("/users/{name}/tokens/{token_id}"),
            get(tokens::get_one).delete(tokens::delete),
        )
        .route(&r("/groups"), get(groups::list).post(groups::create_many))
        .route(
            &r("/groups/{name}"),
            get(groups::get_one)
                .post(groups::create_one)
                .delete(groups::delete),
        )
        .route(
            &r("/groups/{name}/users"),
            post(groups::add_users).delete(groups::remove_users),
        )
        .route(
            &r("/groups/{name}/properties"),
            axum::routing::put(groups::set_properties),
        )
        .route(
            &r("/proxy"),
            get(proxy::get).post(proxy::post).patch(proxy::patch),
        )
        .route(&r("/shutdown"), post(shutdown::shutdown))
        .route(&r("/users/{name}/admin-access"), post(legacy::admin_access))
        .route(&r("/authorizations/token"), post(legacy::token_request))
        .route(
            &r("/authorizations/token/{token}"),
            get(legacy::token_owner).post(legacy::token_request),
        )
        .route(
            &r("/authorizations/cookie/{cookie_name}"),
            get(legacy::cookie_owner_in_body),
        )
        .route(
            &r("/authorizations/cookie/{cookie_name}/{cookie_value}"),
            get(legacy::cookie_owner_in_path),
        )
}
