//! `/users/{name}/shared/...` and `/groups/{name}/shared/...` (§2.12): what a user or a
//! group was shared (a user's own shares and its groups'), one share read, and a
//! recipient giving a share up.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use galilean_actors::policy::scopes::Target;
use galilean_actors::policy::text::clip;
use galilean_actors::store::shares;
use galilean_proto::records::ShareWith;

use crate::api::caller::{require, Caller};
use crate::api::request::path_user;
use crate::api::shares::{no_content, share_list, share_model, PageQuery};
use crate::app::AppState;
use crate::auth::Identity;
use crate::error::{ApiResult, HttpError};

type App = State<Arc<AppState>>;

/// `GET /users/{name}/shared`: the shares a user holds, its own and its groups'.
pub async fn list_user(
    State(app): App,
    Caller(id): Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<PageQuery>,
) -> ApiResult<Response> {
    let user = path_user(&name)?;
    require(
        &app,
        &id,
        &["read:users:shares"],
        Target::User(user.as_str()),
    )?;
    share_list(&app, &headers, &uri, &q, |s| {
        if !s.users.contains_key(user.as_str()) {
            return Err(HttpError::not_found(format!("No such user: {user}")));
        }
        Ok(s.shares_held_by(user.as_str()).cloned().collect())
    })
}

/// `GET /groups/{name}/shared`.
pub async fn list_group(
    State(app): App,
    Caller(id): Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<PageQuery>,
) -> ApiResult<Response> {
    require(&app, &id, &["read:groups:shares"], Target::Group(&name))?;
    share_list(&app, &headers, &uri, &q, |s| {
        if !s.groups.contains_key(&name) {
            return Err(HttpError::not_found(format!(
                "No such group: {}",
                clip(&name)
            )));
        }
        Ok(s.shares
            .to(&ShareWith::Group(name.clone()))
            .cloned()
            .collect())
    })
}

/// The recipient a `/users/{name}/shared/...` or `/groups/{name}/shared/...` path names,
/// and the scope its reads and deletions need.
#[derive(Clone, Copy)]
pub enum Recipient {
    User,
    Group,
}

impl Recipient {
    fn with(self, name: &str) -> ShareWith {
        match self {
            Recipient::User => ShareWith::User(name.to_owned()),
            Recipient::Group => ShareWith::Group(name.to_owned()),
        }
    }

    fn target(self, name: &str) -> Target<'_> {
        match self {
            Recipient::User => Target::User(name),
            Recipient::Group => Target::Group(name),
        }
    }

    fn scopes(self, write: bool) -> &'static str {
        match (self, write) {
            (Recipient::User, false) => "read:users:shares",
            (Recipient::User, true) => "users:shares",
            (Recipient::Group, false) => "read:groups:shares",
            (Recipient::Group, true) => "groups:shares",
        }
    }
}

fn no_share(with: &ShareWith, owner: &str, server: &str) -> HttpError {
    HttpError::not_found(format!(
        "No such share for {} {} on {}/{}",
        with.kind(),
        clip(with.name()),
        clip(owner),
        clip(server)
    ))
}

/// `GET /users/{name}/shared/{owner}/{server}` and the group's.
pub async fn get_one(
    app: &AppState,
    id: &Identity,
    recipient: Recipient,
    (name, owner, server): (String, String, String),
) -> ApiResult<Response> {
    require(app, id, &[recipient.scopes(false)], recipient.target(&name))?;
    let with = recipient.with(&name);
    let model = app.replica.read(|s| {
        s.shares
            .get(&owner, &server, &with)
            .map(|sh| share_model(app, s, sh))
    });
    model
        .map(|m| Json(m).into_response())
        .ok_or_else(|| no_share(&with, &owner, &server))
}

/// `DELETE /users/{name}/shared/{owner}/{server}` and the group's: the recipient gives
/// the share up.
pub async fn give_up(
    app: &AppState,
    id: &Identity,
    recipient: Recipient,
    (name, owner, server): (String, String, String),
) -> ApiResult<Response> {
    require(app, id, &[recipient.scopes(true)], recipient.target(&name))?;
    let with = recipient.with(&name);
    let v = shares::delete_share(app.store.as_ref(), &owner, &server, &with).await?;
    app.replica.wait_for(v).await;
    Ok(no_content())
}

/// The handlers of `/users/{name}/shared/{owner}/{server}` and
/// `/groups/{name}/shared/{owner}/{server}`, with the default server's forms (`.../`).
pub mod recipients {
    use super::*;

    type Three = Path<(String, String, String)>;
    type Two = Path<(String, String)>;

    pub async fn user_get(
        State(app): App,
        Caller(id): Caller,
        Path(p): Three,
    ) -> ApiResult<Response> {
        get_one(&app, &id, Recipient::User, p).await
    }

    pub async fn user_get_default(
        State(app): App,
        Caller(id): Caller,
        Path((n, o)): Two,
    ) -> ApiResult<Response> {
        get_one(&app, &id, Recipient::User, (n, o, String::new())).await
    }

    pub async fn user_delete(
        State(app): App,
        Caller(id): Caller,
        Path(p): Three,
    ) -> ApiResult<Response> {
        give_up(&app, &id, Recipient::User, p).await
    }

    pub async fn user_delete_default(
        State(app): App,
        Caller(id): Caller,
        Path((n, o)): Two,
    ) -> ApiResult<Response> {
        give_up(&app, &id, Recipient::User, (n, o, String::new())).await
    }

    pub async fn group_get(
        State(app): App,
        Caller(id): Caller,
        Path(p): Three,
    ) -> ApiResult<Response> {
        get_one(&app, &id, Recipient::Group, p).await
    }

    pub async fn group_get_default(
        State(app): App,
        Caller(id): Caller,
        Path((n, o)): Two,
    ) -> ApiResult<Response> {
        get_one(&app, &id, Recipient::Group, (n, o, String::new())).await
    }

    pub async fn group_delete(
        State(app): App,
        Caller(id): Caller,
        Path(p): Three,
    ) -> ApiResult<Response> {
        give_up(&app, &id, Recipient::Group, p).await
    }

    pub async fn group_delete_default(
        State(app): App,
        Caller(id): Caller,
        Path((n, o)): Two,
    ) -> ApiResult<Response> {
        give_up(&app, &id, Recipient::Group, (n, o, String::new())).await
    }
}
