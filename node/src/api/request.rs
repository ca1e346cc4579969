//! Reading what a request names: a user from the URL path, and an optional JSON body.

use galilean_actors::policy::text::clip;
use galilean_proto::names::UserName;

use crate::error::{ApiResult, HttpError};

/// Parses a user name from a URL path; invalid names cannot exist, so 404.
pub fn path_user(name: &str) -> ApiResult<UserName> {
    UserName::parse(name).map_err(|_| HttpError::not_found(format!("No such user: {}", clip(name))))
}

/// Parses an optional JSON body: empty means none; bad JSON is a 400.
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<Option<T>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice::<serde_json::Value>(body)
        .map_err(|_| HttpError::bad_request("Invalid JSON in body of request"))
        .and_then(|v| {
            serde_json::from_value(v)
                .map(Some)
                .map_err(|e| HttpError::bad_request(format!("Invalid JSON data: {e}")))
        })
}
