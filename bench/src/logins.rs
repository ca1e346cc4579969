//! W7, form logins: what a browser does to log in, for a new user each time. `GET
//! /hub/login` for the form (its `_xsrf` field, and the `_xsrf` cookie where the hub sets
//! one), then `POST /hub/login` with user name, password, `_xsrf` and that cookie; a login
//! counts when the hub answers 302 with its login cookie. Each of `concurrency`
//! connections logs in back to back for the duration.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};

use crate::load::{Call, Conn};
use crate::systems::PASSWORD;
use crate::table::Table;
use crate::workloads::Subject;

/// The value of `<input ... name="_xsrf" value="...">` in a page.
fn form_xsrf(page: &str) -> Option<String> {
    let at = page.find("name=\"_xsrf\"")?;
    let rest = &page[at..];
    let v = rest.find("value=\"")? + "value=\"".len();
    let end = rest[v..].find('"')?;
    // the template escapes the value for HTML; undo the escapes a token can contain
    Some(
        rest[v..v + end]
            .replace("&#x7C;", "|")
            .replace("&#124;", "|")
            .replace("&#x3A;", ":")
            .replace("&#58;", ":")
            .replace("&quot;", "\"")
            .replace("&amp;", "&"),
    )
}

/// The `name=value` of every `Set-Cookie` named `name`.
fn set_cookie(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|kv| kv.split_once('=').is_some_and(|(k, _)| k.trim() == name))
        .map(|kv| kv.trim().to_owned())
}

fn form_encode(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                k,
                percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// One login of `user` on `conn`.
async fn login(conn: &mut Conn, user: &str) -> Result<(), String> {
    let form = conn.exchange(&Call::get("/hub/login")).await?;
    if form.status != StatusCode::OK {
        return Err(format!("GET /hub/login: {}", form.status));
    }
    let page = String::from_utf8_lossy(&form.body);
    let xsrf = form_xsrf(&page).ok_or("GET /hub/login: no _xsrf field in the form")?;
    let mut post = Call {
        method: Method::POST,
        path: "/hub/login".into(),
        headers: Default::default(),
        body: Bytes::from(form_encode(&[
            ("username", user),
            ("password", PASSWORD),
            ("_xsrf", &xsrf),
        ])),
        expect: StatusCode::FOUND,
    }
    .header("content-type", "application/x-www-form-urlencoded");
    if let Some(cookie) = set_cookie(&form.headers, "_xsrf") {
        post = post.header("cookie", &cookie);
    }
    let answer = conn.exchange(&post).await?;
    if answer.status != StatusCode::FOUND {
        return Err(format!(
            "POST /hub/login as {user}: {} (expected 302): {}",
            answer.status,
            String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)])
        ));
    }
    if set_cookie(&answer.headers, "jupyterhub-hub-login").is_none() {
        return Err(format!(
            "POST /hub/login as {user}: 302 without a login cookie"
        ));
    }
    Ok(())
}

/// W7 at `concurrency` for `duration`: logins per second and their latency (both
/// requests).
pub async fn logins(
    table: &mut Table,
    subjects: &[Subject],
    concurrency: usize,
    duration: Duration,
) {
    let workload = format!("W7 form logins, new user each, c{concurrency}");
    for s in subjects {
        let prefix = Arc::new(format!("w7{}", s.name().chars().next().unwrap_or('x')));
        let m = crate::load::closed_loop_with(
            &s.hub.addrs,
            concurrency,
            duration,
            move |mut conn, w, i| {
                let user = format!("{prefix}-{w}-{i}");
                async move {
                    let done = login(&mut conn, &user).await.map(|()| 0);
                    (conn, done)
                }
            },
        )
        .await;
        eprintln!(
            "  {workload} on {}: {:.0} logins/s{}",
            s.name(),
            m.per_sec(),
            m.first_error
                .as_ref()
                .map(|e| format!(" — {} errors, first: {e}", m.errors))
                .unwrap_or_default()
        );
        table.put(
            &workload,
            "logins/s",
            "logins/s",
            true,
            s.name(),
            crate::table::Figure::of(&m, |m| Some(m.per_sec())),
        );
        table.latency(&workload, s.name(), &m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_form_token_and_the_cookie() {
        let page = r#"<form><input type="hidden" name="_xsrf" value="2&#x7C;ab&#x3A;cd"/></form>"#;
        assert_eq!(form_xsrf(page).as_deref(), Some("2|ab:cd"));
        assert_eq!(form_xsrf("<form></form>"), None);
        let mut h = http::HeaderMap::new();
        h.append("set-cookie", "other=1; Path=/".parse().unwrap());
        h.append("set-cookie", "_xsrf=2|x|y; Path=/hub/".parse().unwrap());
        assert_eq!(set_cookie(&h, "_xsrf").as_deref(), Some("_xsrf=2|x|y"));
        assert_eq!(set_cookie(&h, "missing"), None);
        assert_eq!(
            form_encode(&[("u", "a b"), ("x", "2|y")]),
            "u=a%20b&x=2%7Cy"
        );
    }
}
