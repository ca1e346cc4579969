//! The page renderer: our built-in HTML templates and the operator's overrides.
//!
//! The built-in templates live in `node/templates/` and are compiled into the binary. Each
//! directory of `hub.template_paths` is searched first, in order, so an operator's
//! `login.html` replaces ours while every other page still comes from the built-ins
//! (JupyterHub's `template_paths`); an override may `{% extends "page.html" %}`.
//!
//! Autoescaping is on for `.html`, `.htm` and `.xml` templates: everything a handler passes in
//! is HTML-escaped unless a template marks it safe, and ours never mark user data safe. Data for
//! scripts goes through `tojson`, which is safe inside `<script type="application/json">`.
//!
//! This module only renders. Building each page's context, choosing the HTTP status and
//! setting headers belong to the handlers in `pages/`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::value::Kwargs;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, Output, State, Value};

/// The built-in templates, by name.
const BUILTIN: &[(&str, &str)] = &[
    ("page.html", include_str!("../../templates/page.html")),
    ("login.html", include_str!("../../templates/login.html")),
    ("logout.html", include_str!("../../templates/logout.html")),
    ("home.html", include_str!("../../templates/home.html")),
    (
        "spawn_pending.html",
        include_str!("../../templates/spawn_pending.html"),
    ),
    (
        "not_running.html",
        include_str!("../../templates/not_running.html"),
    ),
    ("error.html", include_str!("../../templates/error.html")),
    ("token.html", include_str!("../../templates/token.html")),
    ("oauth.html", include_str!("../../templates/oauth.html")),
    (
        "accept_share.html",
        include_str!("../../templates/accept_share.html"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// A directory of `template_paths` does not exist (or is not a directory).
    #[error("template directory {} does not exist or is not a directory", path.display())]
    MissingDirectory { path: PathBuf },
    /// A template failed to load, compile or render.
    #[error("template {name}: {source}")]
    Render {
        name: String,
        #[source]
        source: Error,
    },
}

/// The page templates, cheap to clone and shared by every handler.
#[derive(Clone)]
pub struct Templates {
    env: Arc<Environment<'static>>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates").finish_non_exhaustive()
    }
}

impl Templates {
    /// Built-in templates, with every directory in `template_paths` searched first, in order.
    /// A missing directory is an error naming it. Every page we render is compiled here, so a
    /// syntax error in an operator's override is reported at start-up rather than per request.
    pub fn new(template_paths: &[PathBuf]) -> Result<Templates, TemplateError> {
        if let Some(path) = template_paths.iter().find(|p| !p.is_dir()) {
            return Err(TemplateError::MissingDirectory { path: path.clone() });
        }
        let overrides: Vec<_> = template_paths
            .iter()
            .map(|dir| minijinja::path_loader(dir.clone()))
            .collect();

        let mut env = Environment::new();
        env.set_loader(move |name| {
            for load in &overrides {
                if let Some(source) = load(name)? {
                    return Ok(Some(source));
                }
            }
            Ok(builtin(name).map(str::to_owned))
        });
        env.set_auto_escape_callback(auto_escape);
        env.set_formatter(format_value);
        // Registered here rather than through minijinja's `urlencode`/`json` features so the
        // behaviour does not depend on which features the workspace happens to enable.
        env.add_filter("urlencode", urlencode);
        env.add_filter("tojson", tojson);

        let templates = Templates { env: Arc::new(env) };
        for (name, _) in BUILTIN {
            templates
                .env
                .get_template(name)
                .map_err(|source| render_error(name, source))?;
        }
        Ok(templates)
    }

    /// Renders `name` with `ctx` (see each template's header comment for its context).
    pub fn render(&self, name: &str, ctx: Value) -> Result<String, TemplateError> {
        self.env
            .get_template(name)
            .and_then(|template| template.render(ctx))
            .map_err(|source| render_error(name, source))
    }
}

fn render_error(name: &str, source: Error) -> TemplateError {
    TemplateError::Render {
        name: name.to_owned(),
        source,
    }
}

fn builtin(name: &str) -> Option<&'static str> {
    BUILTIN
        .iter()
        .find(|(builtin, _)| *builtin == name)
        .map(|(_, source)| *source)
}

fn auto_escape(name: &str) -> AutoEscape {
    let extension = Path::new(name).extension().and_then(|e| e.to_str());
    match extension {
        Some("html" | "htm" | "xml") => AutoEscape::Html,
        _ => AutoEscape::None,
    }
}

/// Prints a value. Strings in HTML templates are escaped as Jinja2 (markupsafe) does:
/// `& < > " '`, leaving `/` readable in URLs; everything else is minijinja's default.
fn format_value(out: &mut Output, state: &State, value: &Value) -> Result<(), Error> {
    let text = match value.as_str() {
        Some(text) if state.auto_escape() == AutoEscape::Html && !value.is_safe() => text,
        _ => return minijinja::escape_formatter(out, state, value),
    };
    let mut rest = text;
    while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
        out.write_str(&rest[..at])?;
        out.write_str(match rest.as_bytes()[at] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&#34;",
            _ => "&#39;",
        })?;
        rest = &rest[at + 1..];
    }
    out.write_str(rest)?;
    Ok(())
}

/// Jinja2's `urlencode`: a string is percent-encoded keeping `/`, `.`, `-` and `_`; a map
/// becomes a query string; none or undefined is empty.
fn urlencode(value: &Value) -> Result<String, Error> {
    fn encode(out: &mut String, s: &str) {
        for byte in s.bytes() {
            match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'.' | b'-' | b'_' => {
                    out.push(byte as char)
                }
                _ => {
                    let _ = write!(out, "%{byte:02X}");
                }
            }
        }
    }
    fn text(value: &Value) -> String {
        match value.as_str() {
            Some(s) => s.to_owned(),
            None => value.to_string(),
        }
    }
    let mut out = String::new();
    if value.is_none() || value.is_undefined() {
        return Ok(out);
    }
    if value.kind() == minijinja::value::ValueKind::Map {
        for key in value.try_iter()? {
            let item = value.get_item(&key)?;
            if item.is_none() || item.is_undefined() {
                continue;
            }
            if !out.is_empty() {
                out.push('&');
            }
            encode(&mut out, &text(&key));
            out.push('=');
            encode(&mut out, &text(&item));
        }
    } else {
        encode(&mut out, &text(value));
    }
    Ok(out)
}

/// Jinja2's `tojson`: JSON with `<`, `>`, `&` and `'` escaped, so the result is safe both in
/// a `<script>` element and in a single-quoted attribute. Optional `indent` (int or bool).
fn tojson(value: &Value, indent: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let indent = match indent {
        Some(indent) => Some(indent),
        None => kwargs.get::<Option<Value>>("indent")?,
    };
    kwargs.assert_all_used()?;
    let indent = match indent {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) => match bool::try_from(v.clone()) {
            Ok(true) => Some(2),
            Ok(false) => None,
            Err(_) => Some(usize::try_from(v)?),
        },
    };
    let json = match indent {
        None => serde_json::to_string(value),
        Some(width) => {
            let mut out = Vec::new();
            let indentation = " ".repeat(width);
            let formatter = serde_json::ser::PrettyFormatter::with_indent(indentation.as_bytes());
            let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
            serde::Serialize::serialize(value, &mut serializer)
                .map(|()| String::from_utf8(out).expect("serde_json writes UTF-8"))
        }
    }
    .map_err(|err| {
        Error::new(ErrorKind::InvalidOperation, "cannot serialize to JSON").with_source(err)
    })?;
    let mut escaped = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => escaped.push_str("\\u003c"),
            '>' => escaped.push_str("\\u003e"),
            '&' => escaped.push_str("\\u0026"),
            '\'' => escaped.push_str("\\u0027"),
            _ => escaped.push(c),
        }
    }
    Ok(Value::from_safe_string(escaped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    const EVIL: &str = r#"<script>alert(1)</script>"onmouseover="#;

    /// What every page receives.
    fn common(user: Option<&str>) -> Value {
        context! {
            base_url => "/",
            hub_prefix => "/hub/",
            user => user,
            admin => false,
            xsrf => "2|abc:def|xsrf-token",
            version => "0.1.0",
            jupyterhub_version => "5.3.0",
        }
    }

    fn server(name: &str, ready: bool, pending: Option<&str>) -> Value {
        let path = if name.is_empty() {
            String::new()
        } else {
            format!("/{name}")
        };
        context! {
            name => name,
            display_name => name,
            url => format!("/user/alice{path}/"),
            ready => ready,
            pending => pending,
            last_activity => ready.then_some("2026-01-02T03:04:05.000000Z"),
            spawn_url => format!("/hub/spawn/alice{path}"),
            progress_url => format!("/hub/api/users/alice/server{path}/progress"),
        }
    }

    /// One representative context per built-in page, for `user`.
    fn contexts(user: &str) -> Vec<(&'static str, Value)> {
        let me = Some(user);
        vec![
            ("page.html", common(me)),
            (
                "login.html",
                context! { next => "/user/alice/lab", username => user, login_error => "Invalid username or password", login_message => "Use your campus account.", ..common(None) },
            ),
            ("logout.html", common(None)),
            (
                "home.html",
                context! {
                    servers => vec![server("", true, None), server("nb1", false, None), server("nb2", false, Some("spawn")), server(user, true, None)],
                    allow_named_servers => true, named_server_limit => 5, api_base => "/hub/api/",
                    ..common(me)
                },
            ),
            (
                "spawn_pending.html",
                context! {
                    server_name => "nb1", display_name => user, progress_url => "/hub/api/users/alice/servers/nb1/progress",
                    next_url => "/user/alice/nb1/lab", failed_message => (), spawn_url => "/hub/spawn/alice/nb1",
                    ..common(me)
                },
            ),
            (
                "not_running.html",
                context! { server_name => "", owner => user, spawn_url => "/hub/spawn/x?next=%2Fuser%2Fx%2F", message => (), ..common(Some("admin-bob")) },
            ),
            (
                "error.html",
                context! { status_code => 404, status_message => "Not Found", message => user, ..common(me) },
            ),
            (
                "token.html",
                context! { api_base => "/hub/api/", ..common(me) },
            ),
        ]
    }

    fn builtins() -> Templates {
        Templates::new(&[]).expect("built-in templates compile")
    }

    /// The HTML with the contents of `<script type="application/json">` elements removed, after
    /// checking that each parses as JSON and cannot end its element early.
    fn outside_json(html: &str) -> String {
        let open = r#"type="application/json">"#;
        let mut rest = html;
        let mut out = String::new();
        while let Some(start) = rest.find(open) {
            let body_start = start + open.len();
            out.push_str(&rest[..body_start]);
            let len = rest[body_start..]
                .find("</script>")
                .expect("json script is closed");
            let body = &rest[body_start..body_start + len];
            serde_json::from_str::<serde_json::Value>(body).expect("json script parses");
            assert!(!body.contains('<'), "raw < in json script: {body}");
            rest = &rest[body_start + len..];
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn every_page_renders() {
        let templates = builtins();
        for (name, ctx) in contexts("alice") {
            let html = templates
                .render(name, ctx)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(html.starts_with("<!DOCTYPE html>"), "{name}");
            assert!(
                html.contains(r#"<a class="brand" href="/hub/home">"#),
                "{name}"
            );
            assert!(
                !html.contains("innerHTML"),
                "{name} writes HTML from script"
            );
            outside_json(&html);
        }
    }

    #[test]
    fn pages_show_what_their_context_says() {
        let templates = builtins();
        let pages: std::collections::HashMap<_, _> = contexts("alice")
            .into_iter()
            .map(|(name, ctx)| (name, templates.render(name, ctx).unwrap()))
            .collect();
        let login = &pages["login.html"];
        for needle in [
            r#"method="post""#,
            r#"name="username""#,
            r#"name="password""#,
            r#"<input type="hidden" name="_xsrf" value="2|abc:def|xsrf-token">"#,
            "Invalid username or password",
            "Use your campus account.",
            r#"value="alice""#,
            ">Sign in</button>",
        ] {
            assert!(login.contains(needle), "login lacks {needle}");
        }
        let home = &pages["home.html"];
        assert!(home.contains(r#"href="/user/alice/">My Server</a>"#));
        assert!(home.contains("Stop My Server"));
        assert!(home.contains(r#"data-action="start" data-server="nb1""#));
        assert!(home.contains(r#"data-action="stop" data-server="nb2""#));
        assert!(home.contains(r#"id="new-server-form""#));
        assert!(pages["page.html"].contains(r#"href="/hub/logout">Logout</a>"#));
        assert!(!pages["logout.html"].contains("Logout</a>"));
        let pending = &pages["spawn_pending.html"];
        assert!(pending.contains("new EventSource") && pending.contains("<noscript>"));
        assert!(pending.contains(r#""next_url":"/user/alice/nb1/lab""#));
        let not_running = &pages["not_running.html"];
        assert!(
            !not_running.contains("Launch"),
            "not the owner and not admin: no launch link"
        );
        assert!(pages["error.html"].contains("Not Found"));
        assert!(pages["token.html"].contains(r#"<option value="604800">1 week</option>"#));
    }

    #[test]
    fn stopped_default_server_offers_start_and_failed_spawn_offers_retry() {
        let templates = builtins();
        let home = context! {
            servers => vec![server("", false, None)], allow_named_servers => false,
            named_server_limit => 0, api_base => "/hub/api/", ..common(Some("alice"))
        };
        let html = templates.render("home.html", home).unwrap();
        assert!(html.contains(r#"href="/hub/spawn/alice">Start My Server</a>"#));
        assert!(
            !html.contains(">Stop My Server</button>") && !html.contains(r#"id="named-servers""#)
        );

        let stopping = context! {
            servers => vec![server("", false, Some("stop")), server("nb1", false, None)],
            allow_named_servers => true, named_server_limit => 1, api_base => "/hub/api/",
            ..common(Some("alice"))
        };
        let html = templates.render("home.html", stopping).unwrap();
        assert!(html.contains(r#"data-stopping="true" disabled>Stopping…</button>"#));
        assert!(
            html.contains("reached the limit of 1 named server.")
                && !html.contains(r#"id="new-server-form""#)
        );

        let failed = context! {
            server_name => "", display_name => "", progress_url => "/hub/api/users/alice/server/progress",
            next_url => "", failed_message => "Spawn failed: boom\nline 2 <b>", spawn_url => "/hub/spawn/alice",
            ..common(Some("alice"))
        };
        let html = templates.render("spawn_pending.html", failed).unwrap();
        assert!(
            html.contains("<pre id=\"failed-message\">Spawn failed: boom\nline 2 &lt;b&gt;</pre>")
        );
        assert!(html.contains(r#"href="/hub/spawn/alice">Try again</a>"#));
        assert!(!html.contains("EventSource"));

        let admin = context! {
            server_name => "nb1", owner => "carol", spawn_url => "/hub/spawn/carol/nb1", message => (),
            user => "bob", admin => true, ..common(None)
        };
        let html = templates.render("not_running.html", admin).unwrap();
        assert!(html.contains(r#"href="/hub/spawn/carol/nb1">Launch server for carol</a>"#));
        let own = context! { server_name => "", owner => "bob", spawn_url => "/hub/spawn/bob", ..common(Some("bob")) };
        let html = templates.render("not_running.html", own).unwrap();
        assert!(html.contains(r#"href="/hub/spawn/bob">Launch Server</a>"#));
    }

    #[test]
    fn user_data_is_escaped_everywhere() {
        let templates = builtins();
        for (name, ctx) in contexts(EVIL) {
            let html = templates.render(name, ctx).unwrap();
            let markup = outside_json(&html);
            assert!(!markup.contains("<script>alert"), "{name}: {markup}");
            assert!(!markup.contains(r#""onmouseover="#), "{name}: {markup}");
            if name != "logout.html" {
                assert!(
                    markup.contains("&lt;script&gt;alert(1)&lt;"),
                    "{name} lacks the name"
                );
            }
        }
        // The page data still carries the exact name for scripts.
        let html = templates.render("page.html", common(Some(EVIL))).unwrap();
        let start = html
            .find(r#"id="galilean-page" type="application/json">"#)
            .unwrap();
        let body = &html[start..];
        let body = &body[body.find('>').unwrap() + 1..body.find("</script>").unwrap()];
        let data: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(data["user"], EVIL);
        assert_eq!(data["api_base"], "/hub/api/");
    }

    #[test]
    fn next_is_urlencoded_in_the_login_action() {
        let ctx = context! { next => r#"/user/a/?x=1&y="2" z"#, ..common(None) };
        let html = builtins().render("login.html", ctx).unwrap();
        assert!(
            html.contains(r#"action="/hub/login?next=/user/a/%3Fx%3D1%26y%3D%222%22%20z""#),
            "{html}"
        );
        let html = builtins().render("login.html", common(None)).unwrap();
        assert!(html.contains(r#"action="/hub/login?next=""#));
    }

    #[test]
    fn filters_match_jinja2() {
        let urlencode = |v: Value| super::urlencode(&v).unwrap();
        assert_eq!(urlencode(Value::from("a b/é?&")), "a%20b/%C3%A9%3F%26");
        assert_eq!(urlencode(Value::from(())), "");
        assert_eq!(
            urlencode(context! { q => "x y", n => 1, skip => () }),
            "q=x%20y&n=1"
        );
        let env = Templates::new(&[]).unwrap().env;
        let json = env
            .render_str(
                r#"{{ {"a": "</script>'&"}|tojson }}|{{ [1]|tojson(indent=2) }}"#,
                (),
            )
            .unwrap();
        assert_eq!(
            json,
            r#"{"a":"\u003c/script\u003e\u0027\u0026"}|[
  1
]"#
        );
    }

    #[test]
    fn override_directories_come_first_and_may_extend_page() {
        let first = tempfile::tempdir().unwrap();
        let second = tempfile::tempdir().unwrap();
        std::fs::write(
            first.path().join("login.html"),
            r#"{% extends "page.html" %}{% block main %}<p id="custom">Welcome {{ username }}</p>{% endblock %}"#,
        )
        .unwrap();
        std::fs::write(second.path().join("login.html"), "shadowed").unwrap();
        std::fs::write(second.path().join("error.html"), "second {{ status_code }}").unwrap();
        let templates =
            Templates::new(&[first.path().to_path_buf(), second.path().to_path_buf()]).unwrap();

        let login = templates
            .render("login.html", context! { username => EVIL, ..common(None) })
            .unwrap();
        assert!(
            login.contains(r#"<p id="custom">Welcome &lt;script&gt;"#),
            "{login}"
        );
        assert!(
            login.contains(r#"<a class="brand" href="/hub/home">"#),
            "extends our page.html"
        );
        assert!(!login.contains(r#"name="password""#));

        let error = templates
            .render("error.html", context! { status_code => 500 })
            .unwrap();
        assert_eq!(error, "second 500");
        let home = templates
            .render("home.html", contexts("alice").swap_remove(3).1)
            .unwrap();
        assert!(home.contains("My Server"), "other pages are still ours");
    }

    #[test]
    fn missing_override_directory_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-templates");
        let err = Templates::new(&[dir.path().to_path_buf(), missing.clone()]).unwrap_err();
        assert!(matches!(&err, TemplateError::MissingDirectory { path } if *path == missing));
        assert!(err.to_string().contains("no-such-templates"));
    }

    #[test]
    fn broken_override_fails_at_start_and_unknown_page_at_render() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("home.html"), "{% block main %}").unwrap();
        let err = Templates::new(&[dir.path().to_path_buf()]).unwrap_err();
        assert!(err.to_string().starts_with("template home.html:"), "{err}");
        let err = builtins().render("nope.html", common(None)).unwrap_err();
        assert!(matches!(err, TemplateError::Render { name, .. } if name == "nope.html"));
    }

    #[test]
    fn templates_are_shareable() {
        fn assert_shareable<T: Clone + Send + Sync + 'static>() {}
        assert_shareable::<Templates>();
    }

    /// Writes every page to `<tmp>/templates-preview/` for a look in a browser:
    /// `cargo test write_previews -- --ignored`.
    #[test]
    #[ignore]
    fn write_previews() {
        let out = std::env::temp_dir().join("templates-preview");
        std::fs::create_dir_all(&out).unwrap();
        let templates = builtins();
        for (name, ctx) in contexts("alice") {
            std::fs::write(out.join(name), templates.render(name, ctx).unwrap()).unwrap();
        }
    }
}
