//! What a `POST /users/{name}/tokens` body may hold (§2.8), checked as JupyterHub 6.1.1's
//! `UserTokenListAPIHandler.post` and `APIToken.new` check it: each field's type, one of
//! `scopes` and `roles`, and the expiry within `hub.token_expires_in_max_seconds`. Every
//! refusal is a 400 with JupyterHub's message, values shown as Python's `repr` shows them.

use galilean_actors::policy::text::clip;
use serde_json::{Map, Value};

/// A token request that passed every check of its shape.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TokenRequest {
    /// `None` when absent, null or empty (the handler writes its default).
    pub note: Option<String>,
    /// In seconds, at least 1; `None` never expires. The maximum is already applied.
    pub expires_in: Option<u64>,
    pub scopes: Option<Vec<String>>,
    pub roles: Option<Vec<String>>,
}

/// Checks `body` (JSON, or empty) against the rules of a new token; `expires_in_max` is
/// `hub.token_expires_in_max_seconds` (0: none). `Err` is the 400's message.
///
/// As in JupyterHub, keys it does not know are ignored, and a body that is empty or
/// JSON's false-ish values (`null`, `{}`, `[]`, `0`, `""`, `false`) asks for every
/// default. Two checks JupyterHub leaves to Python's loose typing are strict here: a
/// `note` must be a string (JupyterHub stores whatever it is given), and `true` is no
/// integer for `expires_in` (Python takes it for 1).
pub fn parse_token_request(body: &Value, expires_in_max: u64) -> Result<TokenRequest, String> {
    let empty = Map::new();
    let body = match body {
        Value::Object(map) => map,
        v if falsy(v) => &empty,
        _ => return Err("Body must be a JSON dict or empty".into()),
    };
    let note = match body.get("note") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(format!(
                "token note must be null or a string, not {}",
                py_repr(other)
            ))
        }
    };
    let roles = string_list(body, "roles")?;
    let scopes = string_list(body, "scopes")?;
    let requested = match body.get("expires_in") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(n.clone()),
        Some(other) => {
            return Err(format!(
                "token expires_in must be null or integer, not {}",
                py_repr(other)
            ))
        }
    };
    let expires_in = expiry(requested.as_ref(), expires_in_max)?;
    if scopes.is_some() && roles.is_some() {
        return Err("Can only assign one of scopes or roles when creating tokens.".into());
    }
    Ok(TokenRequest {
        note,
        expires_in,
        scopes,
        roles,
    })
}

/// The expiry of a new token: what was asked (`None`: nothing), within `max` (0: no
/// maximum), which is also the default when set; at least one second.
fn expiry(requested: Option<&serde_json::Number>, max: u64) -> Result<Option<u64>, String> {
    let Some(n) = requested else {
        return Ok((max > 0).then_some(max));
    };
    if max > 0 && n.as_u64().is_some_and(|s| s > max) {
        return Err(format!("token expires_in: {n} must not exceed {max}"));
    }
    match n.as_u64() {
        Some(s) if s >= 1 => Ok(Some(s)),
        _ => Err(format!(
            "expires_in must be a positive integer or null, not {n}"
        )),
    }
}

/// `body[key]`: absent or null, or a list of strings.
fn string_list(body: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, String> {
    let bad = |v: &Value| {
        format!(
            "token {key} must be null or a list of strings, not {}",
            py_repr(v)
        )
    };
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect::<Option<Vec<String>>>()
            .map(Some)
            .ok_or_else(|| bad(&body[key])),
        Some(other) => Err(bad(other)),
    }
}

/// Whether Python takes the decoded `v` for false (`body or {}`).
fn falsy(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// `v` as Python's `repr` shows the value `json.loads` makes of it (`None`, `True`,
/// `'text'`, `['a', 1]`, `{'k': 2.5}`), clipped for a message.
pub fn py_repr(v: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        // long values need not be written out whole: the message shows their start
        if out.len() > 256 {
            return;
        }
        match v {
            Value::Null => out.push_str("None"),
            Value::Bool(true) => out.push_str("True"),
            Value::Bool(false) => out.push_str("False"),
            Value::Number(n) => out.push_str(&n.to_string()),
            Value::String(s) => out.push_str(&py_str(s)),
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write(item, out);
                }
                out.push(']');
            }
            Value::Object(map) => {
                out.push('{');
                for (i, (k, item)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&py_str(k));
                    out.push_str(": ");
                    write(item, out);
                }
                out.push('}');
            }
        }
    }
    let mut out = String::new();
    write(v, &mut out);
    clip(&out)
}

/// A string as Python's `repr` writes it: single quotes, unless it holds one and no
/// double quote.
fn py_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
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
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(body: Value, max: u64) -> Result<TokenRequest, String> {
        parse_token_request(&body, max)
    }

    #[test]
    fn values_are_shown_as_python_shows_them() {
        assert_eq!(py_repr(&json!(null)), "None");
        assert_eq!(py_repr(&json!(true)), "True");
        assert_eq!(py_repr(&json!(1.5)), "1.5");
        assert_eq!(py_repr(&json!("an hour")), "'an hour'");
        assert_eq!(py_repr(&json!("it's")), "\"it's\"");
        assert_eq!(py_repr(&json!("a'b\"c\n")), "'a\\'b\"c\\n'");
        assert_eq!(py_repr(&json!(["read:users", 1])), "['read:users', 1]");
        assert_eq!(py_repr(&json!({"a": [null]})), "{'a': [None]}");
        assert!(py_repr(&json!("x".repeat(10_000))).chars().count() <= 65);
    }

    #[test]
    fn every_field_may_be_absent_null_or_of_its_type() {
        assert_eq!(parse(json!({}), 0), Ok(TokenRequest::default()));
        for empty in [json!(null), json!([]), json!(0), json!(""), json!(false)] {
            assert_eq!(parse(empty, 0), Ok(TokenRequest::default()));
        }
        let all_null = json!({"note": null, "expires_in": null, "scopes": null, "roles": null});
        assert_eq!(parse(all_null, 0), Ok(TokenRequest::default()));
        assert_eq!(parse(json!({"note": ""}), 0), Ok(TokenRequest::default()));
        let full = parse(
            json!({"note": "n", "expires_in": 60, "scopes": ["read:users"], "unknown": 1}),
            0,
        )
        .unwrap();
        assert_eq!(
            full,
            TokenRequest {
                note: Some("n".into()),
                expires_in: Some(60),
                scopes: Some(vec!["read:users".into()]),
                roles: None,
            }
        );
        assert_eq!(parse(json!({"roles": []}), 0).unwrap().roles, Some(vec![]));
    }

    #[test]
    fn a_field_of_another_type_is_refused_with_jupyterhubs_message() {
        let cases = [
            (json!([1]), "Body must be a JSON dict or empty"),
            (json!("x"), "Body must be a JSON dict or empty"),
            (
                json!({"expires_in": "3600"}),
                "token expires_in must be null or integer, not '3600'",
            ),
            (
                json!({"expires_in": 1.5}),
                "token expires_in must be null or integer, not 1.5",
            ),
            (
                json!({"expires_in": true}),
                "token expires_in must be null or integer, not True",
            ),
            (
                json!({"expires_in": [60]}),
                "token expires_in must be null or integer, not [60]",
            ),
            (
                json!({"scopes": "read:users"}),
                "token scopes must be null or a list of strings, not 'read:users'",
            ),
            (
                json!({"scopes": ["read:users", 2]}),
                "token scopes must be null or a list of strings, not ['read:users', 2]",
            ),
            (
                json!({"roles": {"a": 1}}),
                "token roles must be null or a list of strings, not {'a': 1}",
            ),
            (
                json!({"note": 5}),
                "token note must be null or a string, not 5",
            ),
            (
                json!({"note": ["a"]}),
                "token note must be null or a string, not ['a']",
            ),
            (
                json!({"scopes": [], "roles": []}),
                "Can only assign one of scopes or roles when creating tokens.",
            ),
        ];
        for (body, message) in cases {
            assert_eq!(parse(body.clone(), 0), Err(message.to_owned()), "{body}");
        }
    }

    #[test]
    fn the_expiry_is_positive_and_within_the_maximum_which_is_also_the_default() {
        assert_eq!(parse(json!({}), 0).unwrap().expires_in, None);
        assert_eq!(parse(json!({}), 3600).unwrap().expires_in, Some(3600));
        assert_eq!(
            parse(json!({"expires_in": null}), 3600).unwrap().expires_in,
            Some(3600)
        );
        assert_eq!(
            parse(json!({"expires_in": 3600}), 3600).unwrap().expires_in,
            Some(3600)
        );
        assert_eq!(
            parse(json!({"expires_in": 60}), 3600).unwrap().expires_in,
            Some(60)
        );
        assert_eq!(
            parse(json!({"expires_in": 3601}), 3600),
            Err("token expires_in: 3601 must not exceed 3600".into())
        );
        assert_eq!(
            parse(json!({"expires_in": u64::MAX}), 0)
                .unwrap()
                .expires_in,
            Some(u64::MAX)
        );
        for (n, max) in [(0, 0), (0, 3600), (-5, 0), (-5, 3600)] {
            assert_eq!(
                parse(json!({ "expires_in": n }), max),
                Err(format!(
                    "expires_in must be a positive integer or null, not {n}"
                )),
                "{n} with maximum {max}"
            );
        }
    }
}
