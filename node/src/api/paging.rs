//! Pagination of list endpoints (§2.2): `offset` and `limit` as JupyterHub reads them
//! (`abs(int(x))`, the limit clamped), the opt-in envelope, and its `next` URL rebuilt
//! from the request.

use axum::http::{header, HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::error::{ApiResult, HttpError};

/// The largest page (`api_page_max_limit`).
pub const MAX_LIMIT: usize = 200;
/// The page of a request that asks for the envelope (`api_page_default_limit`).
pub const DEFAULT_LIMIT: usize = 50;

/// Which page a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub offset: usize,
    pub limit: usize,
    /// The request opted in to the envelope.
    pub envelope: bool,
}

fn wants_envelope(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT).iter().any(|v| {
        v.to_str().unwrap_or("").split(',').any(|item| {
            item.trim()
                .eq_ignore_ascii_case("application/jupyterhub-pagination+json")
        })
    })
}

/// `abs(int(x))`, saturating: `i64::MIN` reads as `i64::MAX`, never a panic.
fn int_arg(v: Option<&str>) -> ApiResult<Option<u64>> {
    match v {
        None => Ok(None),
        Some(s) => s
            .trim()
            .parse::<i64>()
            .map(|n| Some(n.unsigned_abs()))
            .map_err(|_| {
                HttpError::bad_request("Invalid argument type, offset and limit must be integers")
            }),
    }
}

impl Page {
    /// The page `offset` and `limit` name; `always_envelope` for the endpoints that
    /// answer with the envelope whatever the `Accept` header says (sharing lists).
    pub fn of(
        offset: Option<&str>,
        limit: Option<&str>,
        headers: &HeaderMap,
        always_envelope: bool,
    ) -> ApiResult<Page> {
        let asked = wants_envelope(headers);
        let offset = usize::try_from(int_arg(offset)?.unwrap_or(0)).unwrap_or(usize::MAX);
        let limit = int_arg(limit)?
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
            .unwrap_or(if asked { DEFAULT_LIMIT } else { MAX_LIMIT })
            .clamp(1, MAX_LIMIT);
        Ok(Page {
            offset,
            limit,
            envelope: asked || always_envelope,
        })
    }

    /// The page's items out of `all`.
    pub fn slice<T>(&self, all: impl Iterator<Item = T>) -> impl Iterator<Item = T> {
        all.skip(self.offset).take(self.limit)
    }

    /// The answer: the bare list, or the envelope with `total` and the next page's URL.
    pub fn respond(
        &self,
        items: Vec<Value>,
        total: usize,
        headers: &HeaderMap,
        uri: &Uri,
    ) -> Response {
        if !self.envelope {
            return Json(Value::Array(items)).into_response();
        }
        Json(self.envelope(Value::Array(items), total, headers, uri)).into_response()
    }

    /// The envelope around `items` (a list, or an object for `/proxy`).
    pub fn envelope(&self, items: Value, total: usize, headers: &HeaderMap, uri: &Uri) -> Value {
        let (offset, limit) = (self.offset, self.limit);
        let next_offset = offset.saturating_add(limit);
        let next = (next_offset < total).then(|| {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("127.0.0.1");
            let proto = headers
                .get("x-forwarded-proto")
                .and_then(|h| h.to_str().ok())
                .unwrap_or("http");
            let mut pairs: Vec<(String, String)> = uri
                .query()
                .and_then(|q| serde_urlencoded::from_str(q).ok())
                .unwrap_or_default();
            pairs.retain(|(k, _)| k != "offset" && k != "limit");
            pairs.push(("limit".into(), limit.to_string()));
            pairs.push(("offset".into(), next_offset.to_string()));
            let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
            json!({"offset": next_offset, "limit": limit,
                   "url": format!("{proto}://{host}{}?{query}", uri.path())})
        });
        json!({
            "items": items,
            "_pagination": {"offset": offset, "limit": limit, "total": total, "next": next},
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_limits_read_as_jupyterhub_reads_them() {
        let h = HeaderMap::new();
        let p = Page::of(Some("-5"), Some("-3"), &h, false).unwrap();
        assert_eq!((p.offset, p.limit, p.envelope), (5, 3, false));
        // i64::MIN saturates instead of overflowing abs()
        let p = Page::of(
            Some("-9223372036854775808"),
            Some("-9223372036854775808"),
            &h,
            false,
        )
        .unwrap();
        assert_eq!((p.offset, p.limit), (1 << 63, MAX_LIMIT));
        assert!(Page::of(Some("x"), None, &h, false).is_err());
        assert_eq!(Page::of(None, Some("0"), &h, false).unwrap().limit, 1);
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT,
            "text/html, application/jupyterhub-pagination+json"
                .parse()
                .unwrap(),
        );
        let p = Page::of(None, None, &h, false).unwrap();
        assert_eq!((p.limit, p.envelope), (DEFAULT_LIMIT, true));
        assert_eq!(p.slice(0..10).count(), 10);
        let far = Page {
            offset: usize::MAX,
            limit: 200,
            envelope: true,
        };
        assert_eq!(far.slice(0..10).count(), 0);
        let v = far.envelope(
            Value::Array(vec![]),
            3,
            &h,
            &"/hub/api/users".parse().unwrap(),
        );
        assert_eq!(v["_pagination"]["next"], Value::Null);
    }
}
