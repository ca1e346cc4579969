//! The REST API under `/hub/api/` (§2), one file per resource (the hub's own operations:
//! `proxy`, `shutdown`; the deprecated endpoints: `legacy`), plus who calls it (`caller`),
//! what a request names (`request`, and a new token's body: `token_request`) and the
//! models it answers with.

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

use crate::app::AppState;

mod activity;
mod auth_state;
pub mod caller;
mod groups;
mod info;
mod legacy;
pub mod models;
mod paging;
mod progress;
mod proxy;
pub mod request;
mod server_records;
mod servers;
mod services;
mod share_codes;
mod shared;
mod shares;
mod shutdown;
mod token_request;
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
            &r("/users/{name}/servers/"),
            get(server_records::get_default)
                .put(server_records::put_default)
                .patch(server_records::patch_default)
                .post(servers::start_default)
                .delete(servers::stop_default),
        )
        .route(
            &r("/users/{name}/servers/{server}"),
            get(server_records::get_named)
                .put(server_records::put_named)
                .patch(server_records::patch_named)
                .post(servers::start_named)
                .delete(servers::stop_named),
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
            &r("/shares/{owner}"),
            get(shares::list_owner)
                .post(shares::owner_method_not_allowed)
                .patch(shares::owner_method_not_allowed)
                .delete(shares::owner_method_not_allowed),
        )
        .route(
            &r("/shares/{owner}/"),
            get(shares::list_default)
                .post(shares::grant_default)
                .patch(shares::revoke_default)
                .delete(shares::revoke_all_default),
        )
        .route(
            &r("/shares/{owner}/{server}"),
            get(shares::list_server)
                .post(shares::grant)
                .patch(shares::revoke)
                .delete(shares::revoke_all),
        )
        .route(&r("/users/{name}/shared"), get(shared::list_user))
        .route(
            &r("/users/{name}/shared/{owner}/"),
            get(shared::recipients::user_get_default)
                .delete(shared::recipients::user_delete_default),
        )
        .route(
            &r("/users/{name}/shared/{owner}/{server}"),
            get(shared::recipients::user_get).delete(shared::recipients::user_delete),
        )
        .route(&r("/groups/{name}/shared"), get(shared::list_group))
        .route(
            &r("/groups/{name}/shared/{owner}/"),
            get(shared::recipients::group_get_default)
                .delete(shared::recipients::group_delete_default),
        )
        .route(
            &r("/groups/{name}/shared/{owner}/{server}"),
            get(shared::recipients::group_get).delete(shared::recipients::group_delete),
        )
        .route(
            &r("/share-codes/{owner}"),
            get(share_codes::list_owner)
                .post(shares::owner_method_not_allowed)
                .delete(shares::owner_method_not_allowed),
        )
        .route(
            &r("/share-codes/{owner}/"),
            get(share_codes::list_default)
                .post(share_codes::create_default)
                .delete(share_codes::delete_default),
        )
        .route(
            &r("/share-codes/{owner}/{server}"),
            get(share_codes::list_server)
                .post(share_codes::create)
                .delete(share_codes::delete),
        )
        .route(&r("/services"), get(services::list))
        .route(&r("/services/{name}"), get(services::get_one))
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
