//! Where the pages send a browser for one server: its spawn, spawn-pending and
//! progress URLs, named as the pages name a server (`<user>[/<server>]`).

use galilean_proto::names::{ServerName, UserName};

use crate::app::AppState;

/// `<esc user>[/<esc server>]`, as the spawn and pending pages name a server.
pub(crate) fn server_suffix(user: &UserName, server: &ServerName) -> String {
    if server.is_default() {
        user.escaped()
    } else {
        format!("{}/{}", user.escaped(), server.escaped())
    }
}

pub(crate) fn pending_url(app: &AppState, user: &UserName, server: &ServerName) -> String {
    format!(
        "{}spawn-pending/{}",
        app.hub_prefix,
        server_suffix(user, server)
    )
}

pub(crate) fn spawn_url(app: &AppState, user: &UserName, server: &ServerName) -> String {
    format!("{}spawn/{}", app.hub_prefix, server_suffix(user, server))
}

/// The §5.6 progress stream of a server.
pub(crate) fn progress_url(app: &AppState, user: &UserName, server: &ServerName) -> String {
    if server.is_default() {
        format!(
            "{}api/users/{}/server/progress",
            app.hub_prefix,
            user.escaped()
        )
    } else {
        format!(
            "{}api/users/{}/servers/{}/progress",
            app.hub_prefix,
            user.escaped(),
            server.escaped()
        )
    }
}
