//! `POST /hub/api/shutdown` (§2.3): this node stops as on SIGTERM, after answering 202;
//! the body's `servers` says whether it stops the servers it runs.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use galilean_actors::policy::scopes::Target;
use serde_json::{json, Value};

use crate::api::caller::{require, Caller};
use crate::app::AppState;
use crate::error::{ApiResult, HttpError};
use crate::start::control::StopRequest;

type App = State<Arc<AppState>>;

/// Stops this node (not the cluster: the other nodes serve on, and take over its
/// users). `servers: true` stops the servers this node runs, as `hub.cleanup_servers`
/// would; `false` leaves them running whatever the config says; absent, the config
/// decides. `proxy` is checked as JupyterHub checks it and otherwise means nothing: the
/// built-in proxy stops with its node. The 202 reaches the client before the node stops
/// (the front door finishes the answers in flight).
pub async fn shutdown(State(app): App, Caller(id): Caller, body: Bytes) -> ApiResult<Response> {
    require(&app, &id, &["shutdown"], Target::Global)?;
    let request = stop_request(&body)?;
    tracing::info!(
        by = ?id.owner,
        servers = ?request.cleanup_servers,
        "shutdown requested through the API"
    );
    app.control.request_stop(request);
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"message": "Shutting down Hub"})),
    )
        .into_response())
}

/// Reads the body as JupyterHub does: none (or JSON that Python finds false: `null`,
/// `{}`, `[]`, `0`, `""`, `false`) asks nothing; `proxy` and `servers` must be true or
/// false, which in Python includes `1` and `0`. Any other body is a 400 here (JupyterHub
/// ignores some and fails on others with a 500).
fn stop_request(body: &[u8]) -> ApiResult<StopRequest> {
    let mut request = StopRequest {
        cleanup_servers: None,
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(request);
    }
    let data: Value = serde_json::from_slice(body)
        .map_err(|_| HttpError::bad_request("Invalid JSON in body of request"))?;
    let data = match data {
        Value::Object(m) => m,
        v if !python_truthy(&v) => return Ok(request),
        _ => return Err(HttpError::bad_request("Request body must be a JSON object")),
    };
    for key in ["proxy", "servers"] {
        let Some(v) = data.get(key) else { continue };
        let flag = python_bool(v).ok_or_else(|| {
            HttpError::bad_request(format!("{key} must be true or false, got {}", py_repr(v)))
        })?;
        if key == "servers" {
            request.cleanup_servers = Some(flag);
        }
    }
    Ok(request)
}

/// Whether Python's `bool()` of the decoded JSON is true.
fn python_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// The value when Python's `v in {True, False}` holds (`1 == True`, `0.0 == False`).
fn python_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_f64() {
            Some(1.0) => Some(true),
            Some(0.0) => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Python's `repr` of the decoded JSON, as JupyterHub's message shows it (clipped).
fn py_repr(v: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Null => out.push_str("None"),
            Value::Bool(true) => out.push_str("True"),
            Value::Bool(false) => out.push_str("False"),
            Value::Number(n) => out.push_str(&n.to_string()),
            Value::String(s) => {
                let quote = if s.contains('\'') && !s.contains('"') {
                    '"'
                } else {
                    '\''
                };
                out.push(quote);
                for c in s.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        '\t' => out.push_str("\\t"),
                        c if c == quote => {
                            out.push('\\');
                            out.push(c);
                        }
                        c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
                        c => out.push(c),
                    }
                }
                out.push(quote);
            }
            Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write(x, out);
                }
                out.push(']');
            }
            Value::Object(o) => {
                out.push('{');
                for (i, (k, x)) in o.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write(&Value::String(k.clone()), out);
                    out.push_str(": ");
                    write(x, out);
                }
                out.push('}');
            }
        }
    }
    let mut out = String::new();
    write(v, &mut out);
    galilean_actors::policy::text::clip(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(body: &str) -> Result<Option<bool>, String> {
        stop_request(body.as_bytes())
            .map(|r| r.cleanup_servers)
            .map_err(|e| e.message.unwrap_or_default())
    }

    #[test]
    fn servers_and_proxy_read_as_jupyterhub_reads_them() {
        assert_eq!(asked(""), Ok(None));
        assert_eq!(asked(" \n"), Ok(None));
        assert_eq!(asked("{}"), Ok(None));
        assert_eq!(asked("null"), Ok(None));
        assert_eq!(asked("[]"), Ok(None));
        assert_eq!(asked(r#"{"servers": true}"#), Ok(Some(true)));
        assert_eq!(
            asked(r#"{"servers": false, "proxy": true}"#),
            Ok(Some(false))
        );
        // Python's 1 == True
        assert_eq!(asked(r#"{"servers": 1}"#), Ok(Some(true)));
        assert_eq!(asked(r#"{"proxy": 0.0}"#), Ok(None));
        assert_eq!(
            asked(r#"{"servers": "yes"}"#),
            Err("servers must be true or false, got 'yes'".into())
        );
        assert_eq!(
            asked(r#"{"servers": null}"#),
            Err("servers must be true or false, got None".into())
        );
        // proxy is checked first, as in JupyterHub
        assert_eq!(
            asked(r#"{"servers": 2, "proxy": [1, "it's"]}"#),
            Err(r#"proxy must be true or false, got [1, "it's"]"#.into())
        );
        assert_eq!(
            asked(r#"{"servers": {"a": 2}}"#),
            Err("servers must be true or false, got {'a': 2}".into())
        );
        assert_eq!(asked("{"), Err("Invalid JSON in body of request".into()));
        assert_eq!(
            asked(r#"["servers"]"#),
            Err("Request body must be a JSON object".into())
        );
    }
}
