//! `/share-codes/...` (§2.12): codes that whoever holds one exchanges for a share of a
//! server (on the accept-share page), listed without the code, shown once at creation,
//! and deleted one by one or all at once.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use galilean_actors::policy::scopes::Target;
use galilean_actors::policy::shares::{code_life, share_scopes};
use galilean_actors::replica::State as Replicated;
use galilean_actors::secrets::sha256_hex;
use galilean_actors::store::shares::{self, Codes};
use galilean_proto::records::ShareCodeRecord;
use galilean_proto::time::{iso, now_micros};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::caller::{require, Caller};
use crate::api::paging::Page;
use crate::api::request::{json_body, path_user};
use crate::api::shares::{no_content, no_server, server_exists, server_stub, PageQuery};
use crate::app::AppState;
use crate::error::{ApiResult, HttpError};

type App = State<Arc<AppState>>;

/// The share-code model (§2.13), without the code.
fn code_model(app: &AppState, state: &Replicated, code: &ShareCodeRecord) -> Value {
    json!({
        "server": server_stub(app, state, &code.owner, &code.server),
        "scopes": code.scopes,
        "id": format!("sc_{}", code.id),
        "created_at": iso(code.created),
        "expires_at": iso(code.expires_at),
        "exchange_count": code.exchange_count,
        "last_exchanged_at": code.last_exchanged_at.map(iso),
    })
}

fn code_list(
    app: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    q: &PageQuery,
    pick: impl FnOnce(&Replicated) -> ApiResult<Vec<Arc<ShareCodeRecord>>>,
) -> ApiResult<Response> {
    let page = Page::of(q.offset(), q.limit(), headers, true)?;
    let now = now_micros();
    let (items, total) = app.replica.read(|s| {
        let mut list: Vec<Arc<ShareCodeRecord>> = pick(s)?
            .into_iter()
            .filter(|c| c.expires_at > now)
            .collect();
        list.sort_by_key(|c| c.id);
        let total = list.len();
        let items: Vec<Value> = page
            .slice(list.iter())
            .map(|c| code_model(app, s, c))
            .collect();
        Ok::<_, HttpError>((items, total))
    })?;
    Ok(page.respond(items, total, headers, uri))
}

/// `GET /share-codes/{owner}`.
pub async fn list_owner(
    State(app): App,
    Caller(id): Caller,
    Path(owner): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<PageQuery>,
) -> ApiResult<Response> {
    let owner = path_user(&owner)?;
    require(&app, &id, &["read:shares"], Target::User(owner.as_str()))?;
    code_list(&app, &headers, &uri, &q, |s| {
        if !s.users.contains_key(owner.as_str()) {
            return Err(HttpError::not_found(format!("No such user: {owner}")));
        }
        Ok(s.shares
            .codes_of_owner(owner.as_str())
            .map(|(_, c)| c.clone())
            .collect())
    })
}

/// `GET /share-codes/{owner}/{server}`.
pub async fn list_server(
    State(app): App,
    Caller(id): Caller,
    Path((owner, server)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<PageQuery>,
) -> ApiResult<Response> {
    let target = Target::Server {
        user: &owner,
        server: &server,
    };
    require(&app, &id, &["read:shares"], target)?;
    code_list(&app, &headers, &uri, &q, |s| {
        if !server_exists(s, &owner, &server) {
            return Err(no_server(&owner, &server));
        }
        Ok(s.shares
            .codes_of_server(&owner, &server)
            .map(|(_, c)| c.clone())
            .collect())
    })
}

pub async fn list_default(
    app: App,
    id: Caller,
    Path(owner): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    q: Query<PageQuery>,
) -> ApiResult<Response> {
    list_server(app, id, Path((owner, String::new())), headers, uri, q).await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NewCode {
    scopes: Option<Vec<String>>,
    expires_in: Option<i64>,
}

/// `POST /share-codes/{owner}/{server}`: a new code, shown this once, with the URL of
/// the page that accepts it.
pub async fn create(
    State(app): App,
    Caller(id): Caller,
    Path((owner, server)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let target = Target::Server {
        user: &owner,
        server: &server,
    };
    require(&app, &id, &["shares"], target)?;
    let req: NewCode = json_body(&body)?.unwrap_or_default();
    let seconds = code_life(req.expires_in).map_err(HttpError::bad_request)?;
    let scopes =
        share_scopes(req.scopes.as_deref(), &owner, &server).map_err(HttpError::bad_request)?;
    crate::api::shares::may_grant(&app, &id, &owner, &server, &scopes)?;
    if !app.replica.read(|s| server_exists(s, &owner, &server)) {
        return Err(no_server(&owner, &server));
    }
    let (rec, code, v) =
        shares::new_code(app.store.as_ref(), &owner, &server, &scopes, seconds).await?;
    app.replica.wait_for(v).await;
    let mut model = app.replica.read(|s| code_model(&app, s, &rec));
    let accept_url = format!("{}accept-share?code={code}", app.hub_prefix);
    let full = app
        .config
        .hub
        .public_url
        .as_ref()
        .map(|p| format!("{}{}", p.as_str().trim_end_matches('/'), accept_url));
    if let Value::Object(m) = &mut model {
        m.insert("code".into(), code.into());
        m.insert("accept_url".into(), accept_url.into());
        m.insert(
            "full_accept_url".into(),
            full.map_or(Value::Null, Value::from),
        );
    }
    Ok(Json(model).into_response())
}

pub async fn create_default(
    app: App,
    id: Caller,
    Path(owner): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    create(app, id, Path((owner, String::new())), body).await
}

#[derive(Deserialize, Default)]
pub struct Which {
    code: Option<String>,
    id: Option<String>,
}

/// `DELETE /share-codes/{owner}/{server}[?code=...|?id=sc_N]`: one code, or all.
pub async fn delete(
    State(app): App,
    Caller(id): Caller,
    Path((owner, server)): Path<(String, String)>,
    Query(which): Query<Which>,
) -> ApiResult<Response> {
    let target = Target::Server {
        user: &owner,
        server: &server,
    };
    require(&app, &id, &["shares"], target)?;
    let which = match (which.code, which.id) {
        (Some(code), _) => Codes::Hash(sha256_hex(&code)),
        (None, Some(sid)) => {
            let n = sid
                .strip_prefix("sc_")
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(|| {
                    HttpError::not_found(format!(
                        "No code found matching id={}",
                        galilean_actors::policy::text::clip(&sid)
                    ))
                })?;
            Codes::Id(n)
        }
        (None, None) => Codes::All,
    };
    let v = shares::delete_codes(app.store.as_ref(), &owner, &server, &which).await?;
    app.replica.wait_for(v).await;
    Ok(no_content())
}

pub async fn delete_default(
    app: App,
    id: Caller,
    Path(owner): Path<String>,
    which: Query<Which>,
) -> ApiResult<Response> {
    delete(app, id, Path((owner, String::new())), which).await
}
