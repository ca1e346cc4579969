//! Which server a spawn-like page is about, and whether the logged-in user may act on
//! it: the server name by the same rule as the API's, the user's scopes, the user's
//! existence.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use galilean_actors::policy::scopes::{Access, Target};
use galilean_actors::policy::servers::requested_server;
use galilean_actors::policy::text::clip;
use galilean_proto::names::{ServerName, UserName};

use crate::app::AppState;
use crate::pages::render::error_page_for;

/// Resolves the (user, server) a spawn-like page is about and checks that the logged-in
/// user may act on it with `scope`.
#[allow(clippy::result_large_err)]
pub(crate) fn page_target(
    app: &AppState,
    headers: &HeaderMap,
    me: &(String, bool),
    user: Option<&str>,
    server: Option<&str>,
    scope: &str,
) -> Result<(UserName, ServerName), Response> {
    let user_s = user.unwrap_or(&me.0);
    let user = UserName::parse(user_s).map_err(|_| {
        error_page_for(
            app,
            headers,
            StatusCode::NOT_FOUND,
            Some(&format!("No such user: {}", clip(user_s))),
        )
    })?;
    let server = requested_server(server.unwrap_or(""), app.config.hub.allow_named_servers)
        .map_err(|e| error_page_for(app, headers, StatusCode::BAD_REQUEST, Some(&e.to_string())))?;
    let target = Target::Server {
        user: user.as_str(),
        server: server.as_str(),
    };
    match app.user_may(&me.0, scope, target) {
        Access::Allowed => {}
        _ => {
            return Err(error_page_for(
                app,
                headers,
                StatusCode::FORBIDDEN,
                Some(&format!(
                    "You do not have permission to act on the server of {}",
                    clip(user.as_str())
                )),
            ))
        }
    }
    if !app.replica.read(|s| s.users.contains_key(user.as_str())) {
        return Err(error_page_for(
            app,
            headers,
            StatusCode::NOT_FOUND,
            Some(&format!("No such user: {}", clip(user.as_str()))),
        ));
    }
    Ok((user, server))
}
