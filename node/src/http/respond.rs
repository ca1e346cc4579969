//! Small answers every HTTP surface gives: redirects, cookies set and cleared, the
//! redirect to the login page, JSON errors, and reading query arguments.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use cookie::Cookie;

use crate::app::AppState;

pub(crate) fn redirect(status: StatusCode, location: &str) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    match HeaderValue::from_str(location) {
        Ok(v) => {
            r.headers_mut().insert(header::LOCATION, v);
        }
        Err(_) => {
            *r.status_mut() = StatusCode::BAD_REQUEST;
        }
    }
    r
}

pub(crate) fn set_cookie(r: &mut Response, c: &Cookie<'_>) {
    if let Ok(v) = HeaderValue::from_str(&c.to_string()) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

pub(crate) fn clear_cookie(r: &mut Response, name: &'static str, path: String) {
    let mut c = Cookie::new(name, "");
    c.set_path(path);
    c.make_removal();
    set_cookie(r, &c);
}

/// `P + "hub/login?next=<uri>"`.
pub(crate) fn login_redirect(app: &AppState, uri: &Uri) -> Response {
    let next = uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
    let location = format!("{}login?next={}", app.hub_prefix, urlencode(next));
    redirect(StatusCode::FOUND, &location)
}

pub(crate) fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Query parameters as pairs (malformed ones are ignored).
pub(crate) fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    q.and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .unwrap_or_default()
}

pub(crate) fn query_arg(q: Option<&str>, name: &str) -> Option<String> {
    query_pairs(q)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

pub(crate) fn json_error(status: StatusCode, message: &str) -> Response {
    crate::error::HttpError::new(status, message).into_response()
}
