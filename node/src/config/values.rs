//! The value types of the config and the text parsers that more than one key or section
//! uses: [`Secret`], [`BindUrl`], [`LogLevel`], the URL checks behind `hub.bind_url`,
//! `hub.base_url`, `hub.public_url` and `hub.connect_url`, paths, user and group names, and
//! a choice among named values.

use std::fmt;
use std::net::Ipv6Addr;
use std::path::PathBuf;

/// Where to listen: an `http` host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindUrl {
    /// A name or IP address; an IPv6 address without its brackets.
    pub host: String,
    /// May be 0 to let the OS choose.
    pub port: u16,
}

impl BindUrl {
    /// `host:port`, with brackets around an IPv6 address; suitable for `TcpListener::bind`.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    pub(super) fn parse(text: &str) -> Result<BindUrl, String> {
        let url = UrlParts::split(text)?;
        match url.scheme.as_str() {
            "http" => {}
            "https" => return Err("https is not supported yet; use http".into()),
            other => return Err(format!("scheme must be http, not {other:?}")),
        }
        if url.query_or_fragment {
            return Err("must not have a query or fragment".into());
        }
        let Some(port) = url.port else {
            return Err(format!("must have a port, e.g. http://{}:8000/", url.host));
        };
        if !(url.path.is_empty() || url.path == "/") {
            return Err(format!(
                "path must be \"/\", not {:?}: put a path prefix in hub.base_url",
                url.path
            ));
        }
        Ok(BindUrl {
            host: url.host,
            port,
        })
    }
}

/// `http://host:port/`.
impl fmt::Display for BindUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}/", self.authority())
    }
}

/// `hub.log_level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub(super) const ALL: &[(&str, LogLevel)] = &[
        ("error", LogLevel::Error),
        ("warn", LogLevel::Warn),
        ("info", LogLevel::Info),
        ("debug", LogLevel::Debug),
        ("trace", LogLevel::Trace),
    ];

    /// The name as written in the config, which is also a `tracing` filter directive.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, l)| *l == self)
            .map_or("info", |(s, _)| s)
    }
}

/// A secret string: `Debug` prints `"***"`, there is no `Display`, and the value is read
/// with [`Secret::expose`] where it is really needed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

pub(super) fn choice<T: Copy>(text: &str, options: &[(&str, T)]) -> Result<T, String> {
    match options.iter().find(|(name, _)| *name == text) {
        Some((_, v)) => Ok(*v),
        None => {
            let names: Vec<String> = options
                .iter()
                .map(|(name, _)| format!("{name:?}"))
                .collect();
            Err(format!(
                "{text:?} is not one of the accepted values: {}",
                names.join(", ")
            ))
        }
    }
}

/// A user or group name as the config lists them (`what` is `"user"` or `"group"`): any
/// string but the empty one, kept as written.
pub(super) fn parse_name(text: &str, what: &str) -> Result<String, String> {
    if text.is_empty() {
        Err(format!("{what} names must not be empty"))
    } else {
        Ok(text.to_owned())
    }
}

pub(super) fn parse_path(text: &str) -> Result<PathBuf, String> {
    match text {
        "" => Err("must not be empty".into()),
        _ if text.contains('\0') => Err("must not contain a NUL character".into()),
        _ => Ok(PathBuf::from(text)),
    }
}

pub(super) fn parse_base_url(text: &str) -> Result<String, String> {
    if text.contains("://") {
        return Err(format!(
            "must be a path such as \"/jupyter/\", not a URL: {text:?}"
        ));
    }
    if text.contains(['?', '#']) || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "must be a plain path such as \"/jupyter/\", without ?, # or spaces: {text:?}"
        ));
    }
    let inner = text.trim_matches('/');
    if !inner.is_empty()
        && inner
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(format!(
            "must not contain empty, \".\" or \"..\" segments: {text:?}"
        ));
    }
    Ok(if inner.is_empty() {
        "/".into()
    } else {
        format!("/{inner}/")
    })
}

pub(super) fn parse_public_url(text: &str) -> Result<String, String> {
    let url = UrlParts::split(text)?;
    if url.scheme != "http" && url.scheme != "https" {
        return Err(format!(
            "scheme must be http or https, not {:?}",
            url.scheme
        ));
    }
    if url.query_or_fragment {
        return Err("must not have a query or fragment".into());
    }
    Ok(text.to_owned())
}

/// The parts of `scheme://host[:port][/path][?query][#fragment]` this module checks.
struct UrlParts {
    scheme: String,
    host: String,
    port: Option<u16>,
    path: String,
    query_or_fragment: bool,
}

impl UrlParts {
    fn split(text: &str) -> Result<UrlParts, String> {
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(format!(
                "not a URL (expected scheme://host:port/): {text:?}"
            ));
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, rest) = rest.split_at(end);
        let path_end = rest.find(['?', '#']).unwrap_or(rest.len());
        if authority.contains('@') {
            return Err("must not contain a user name or password".into());
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(v6) => {
                let (host, after) = v6
                    .split_once(']')
                    .ok_or_else(|| format!("unclosed '[' in {text:?}"))?;
                host.parse::<Ipv6Addr>()
                    .map_err(|_| format!("{host:?} is not an IPv6 address"))?;
                match after {
                    "" => (host, None),
                    _ => (
                        host,
                        Some(
                            after
                                .strip_prefix(':')
                                .ok_or_else(|| format!("unexpected {after:?} after ']'"))?,
                        ),
                    ),
                }
            }
            None => match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            },
        };
        if host.is_empty() {
            return Err(format!("must have a host: {text:?}"));
        }
        let valid_name = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
        if !authority.starts_with('[') && !host.chars().all(valid_name) {
            return Err(format!("{host:?} is not a valid host name"));
        }
        let port = match port {
            None => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .map_err(|_| format!("{p:?} is not a valid port (0 to 65535)"))?,
            ),
        };
        Ok(UrlParts {
            scheme: scheme.to_ascii_lowercase(),
            host: host.to_owned(),
            port,
            path: rest[..path_end].to_owned(),
            query_or_fragment: path_end < rest.len(),
        })
    }
}
