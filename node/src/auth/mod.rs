//! Who is asking: API tokens (`Authorization: token|bearer`), the hub login cookie, the
//! session-id cookie, and XSRF (§2.1, §3.6, §8.7); what each owner holds through its
//! roles and groups. Token checks read only the local replica.

pub mod cookies;
pub mod grants;
pub mod identity;
pub mod tokens;
pub mod xsrf;

pub use cookies::{
    browser_session, cookie_user, identify_cookie, jar, login_cookie, new_session_id,
    session_cookie, LOGIN_COOKIE, SESSION_COOKIE,
};
pub use grants::{Grants, Held};
pub use identity::Identity;
pub use tokens::{header_token, Tokens};
pub use xsrf::{query_xsrf, xsrf_for, xsrf_ok, xsrf_token, XSRF_COOKIE};
