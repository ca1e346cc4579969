//! XSRF (§2.1, §8.7): the token bound to the login state, and the check that a
//! cookie-authenticated request that may change something carries it.

use std::net::IpAddr;

use axum::http::{header, HeaderMap, Method};
use base64::Engine;
use sha2::Sha256;

use crate::app::AppState;
use crate::auth::cookies::{cookie_user, jar, SESSION_COOKIE};

pub const XSRF_COOKIE: &str = "_xsrf";

/// The XSRF token for the current login state (§8.7): bound to the session and user when
/// logged in, to an anonymous id (client address and `User-Agent`) otherwise.
pub fn xsrf_token(app: &AppState, headers: &HeaderMap, peer: Option<IpAddr>) -> String {
    let jar = jar(headers);
    match cookie_user(app, &jar) {
        Some((name, _)) => xsrf_for(
            app,
            jar.get(SESSION_COOKIE).map(|c| c.value()).unwrap_or(""),
            &name,
        ),
        None => {
            let ua = headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let ip = peer.map(|p| p.to_string()).unwrap_or_default();
            xsrf_digest(app, &format!(":anon:{ip}:{ua}"))
        }
    }
}

/// The XSRF token of a logged-in state.
pub fn xsrf_for(app: &AppState, session_id: &str, user: &str) -> String {
    xsrf_digest(app, &format!("{session_id}:{user}"))
}

/// HMAC-SHA256 of the login state under the hub's XSRF secret, truncated to 24 bytes.
fn xsrf_digest(app: &AppState, state: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(&hmac_sha256(&app.xsrf_secret, state)[..24])
}

fn hmac_sha256(key: &[u8], message: &str) -> [u8; 32] {
    use hmac::Mac;
    // HMAC takes a key of any length: new_from_slice cannot fail for it
    let mut mac = <hmac::Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"));
    mac.update(message.as_bytes());
    mac.finalize().into_bytes().into()
}

/// Whether a cookie-authenticated request passes XSRF (§2.1): navigation-style GETs
/// need nothing; everything else must carry the token as `_xsrf` (query or form) or
/// `X-XSRFToken` / `X-CSRFToken`.
pub fn xsrf_ok(
    app: &AppState,
    method: &Method,
    headers: &HeaderMap,
    query_or_form_xsrf: Option<&str>,
    peer: Option<IpAddr>,
) -> bool {
    if matches!(*method, Method::HEAD | Method::OPTIONS) {
        return true;
    }
    if *method == Method::GET {
        let mode = headers
            .get("sec-fetch-mode")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if mode.is_empty() || mode == "navigate" || mode == "websocket" {
            return true;
        }
    }
    let given = query_or_form_xsrf.or_else(|| {
        headers
            .get("x-xsrftoken")
            .or_else(|| headers.get("x-csrftoken"))
            .and_then(|v| v.to_str().ok())
    });
    let Some(given) = given else { return false };
    let expected = xsrf_token(app, headers, peer);
    subtle::ConstantTimeEq::ct_eq(given.as_bytes(), expected.as_bytes()).into()
}

/// The `_xsrf` argument from a query string.
pub fn query_xsrf(query: Option<&str>) -> Option<String> {
    let q = query?;
    serde_urlencoded::from_str::<Vec<(String, String)>>(q)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == "_xsrf")
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::hmac_sha256;

    #[test]
    fn the_token_is_rfc_4231_s_hmac_sha256() {
        // RFC 4231, test case 2
        let mac = hmac_sha256(b"Jefe", "what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
