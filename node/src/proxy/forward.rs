//! The forwarding stage: one request, already routed, streamed to its backend and the
//! answer streamed back, as CHP does with `xfwd` on.
//!
//! - The full, unmodified path and query go to the route's target (§1.1); `Host` is kept.
//! - `X-Forwarded-For/Proto/Host/Port` are added (`headers.rs`); hop-by-hop headers
//!   are dropped in both directions, except what an upgrade needs.
//! - Bodies are passed through as hyper streams them: nothing is buffered.
//! - An upgrade request (WebSocket) is forwarded as such; when the backend switches
//!   protocols, the 101 goes back to the client and a task splices the two connections
//!   (`upgrade.rs`).
//! - Backend connections are pooled and kept alive by one shared client.
//! - A response with a status below 300 counts as activity on the route, as does traffic
//!   on an upgraded connection (CHP's rule).
//! - When the backend cannot be reached the caller gets a [`ProxyError`]: it can render its
//!   own page, or use [`ProxyError::into_response`], CHP's plain 503.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::uri::{PathAndQuery, Scheme};
use http::{header, Extensions, HeaderValue, Request, Response, StatusCode, Uri, Version};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::activity::ActivityRecorder;
use super::routes::Route;
use super::{headers, upgrade};

/// Body of every response the proxy produces: the backend's stream, passed through, or a
/// small page of its own.
pub type ProxyBody = UnsyncBoxBody<Bytes, hyper::Error>;

/// Tuning of the backend connection pool.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Give up connecting to a backend after this long; `None` leaves it to the OS.
    pub connect_timeout: Option<Duration>,
    /// Close pooled backend connections that stayed idle this long.
    pub pool_idle_timeout: Duration,
    /// Idle connections kept per backend.
    pub pool_max_idle_per_host: usize,
    /// TCP keepalive on backend connections, so a vanished backend under a long-lived
    /// WebSocket is noticed; `None` disables it.
    pub tcp_keepalive: Option<Duration>,
}

impl Default for ProxyConfig {
    fn default() -> ProxyConfig {
        ProxyConfig {
            connect_timeout: Some(Duration::from_secs(10)),
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 64,
            tcp_keepalive: Some(Duration::from_secs(60)),
        }
    }
}

/// Why a request could not be proxied. Every kind answers 503, as CHP does.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The route's target is not an `http://` origin.
    #[error("route target {target:?} is not a valid http url")]
    InvalidTarget { target: String },
    /// Nothing could be connected to at the target: refused, unreachable, timed out.
    #[error("backend {target} is unreachable")]
    Unreachable {
        target: String,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    /// The backend was connected but the exchange failed before a response arrived.
    #[error("request to backend {target} failed")]
    Backend {
        target: String,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
}

impl ProxyError {
    /// The status CHP answers with for any proxy failure.
    pub fn status(&self) -> StatusCode {
        StatusCode::SERVICE_UNAVAILABLE
    }

    /// CHP's plain answer: 503 with a small HTML page.
    pub fn into_response(self) -> Response<ProxyBody> {
        const PAGE: &str =
            "<!DOCTYPE html>\n<html><head><title>503 Service Unavailable</title></head>\
                            <body><h1>Service Unavailable</h1></body></html>\n";
        let mut response = Response::new(full(PAGE));
        *response.status_mut() = self.status();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        response
    }
}

/// The forwarding stage. Cheap to clone: clones share the connection pool and the
/// activity recorder.
#[derive(Debug, Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: Client<HttpConnector, Incoming>,
    activity: ActivityRecorder,
}

impl Proxy {
    /// A proxy with the default [`ProxyConfig`], recording activity into `activity`.
    pub fn new(activity: ActivityRecorder) -> Proxy {
        Proxy::with_config(activity, &ProxyConfig::default())
    }

    pub fn with_config(activity: ActivityRecorder, config: &ProxyConfig) -> Proxy {
        let mut connector = HttpConnector::new();
        connector.enforce_http(true);
        connector.set_nodelay(true);
        connector.set_connect_timeout(config.connect_timeout);
        connector.set_keepalive(config.tcp_keepalive);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .pool_max_idle_per_host(config.pool_max_idle_per_host)
            .build(connector);
        Proxy {
            inner: Arc::new(Inner { client, activity }),
        }
    }

    /// The recorder this proxy records activity into.
    pub fn activity(&self) -> &ActivityRecorder {
        &self.inner.activity
    }

    /// Forwards `req`, which `route` matched, from the client at `client_addr`, and returns
    /// the backend's response, its body still streaming.
    ///
    /// For an upgrade to work, `req` must come from a hyper server connection served
    /// `with_upgrades()`.
    pub async fn forward(
        &self,
        mut req: Request<Incoming>,
        route: &Route,
        client_addr: SocketAddr,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let Some(uri) = target_uri(&route.target, req.uri()) else {
            tracing::warn!(
                user = %route.key.user, server = %route.key.server, prefix = %route.prefix,
                target = %route.target, "route target is not a valid http url"
            );
            return Err(ProxyError::InvalidTarget {
                target: route.target.clone(),
            });
        };

        let upgrade = headers::is_upgrade(req.headers());
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
        let (mut parts, body) = req.into_parts();
        parts.uri = uri;
        parts.version = Version::HTTP_11;
        parts.extensions = Extensions::new();
        headers::strip_hop_by_hop(&mut parts.headers, upgrade);
        headers::add_forwarded(&mut parts.headers, client_addr.ip());
        tracing::trace!(
            user = %route.key.user, server = %route.key.server, target = %route.target,
            method = %parts.method, uri = %parts.uri, upgrade, "proxying"
        );

        let mut response = match self
            .inner
            .client
            .request(Request::from_parts(parts, body))
            .await
        {
            Ok(response) => response,
            Err(source) => {
                let target = route.target.clone();
                let error = if source.is_connect() {
                    ProxyError::Unreachable { target, source }
                } else {
                    ProxyError::Backend { target, source }
                };
                tracing::debug!(
                    user = %route.key.user, server = %route.key.server, prefix = %route.prefix,
                    target = %route.target, error = %ErrorChain(&error), "proxy request failed"
                );
                return Err(error);
            }
        };

        // As CHP: only a successful answer is activity, so a flood of 404s, or 503s from a
        // server that is down, does not make a server look busy.
        if response.status().as_u16() < 300 {
            self.inner.activity.record(&route.key);
        }

        if let Some(client_upgrade) = client_upgrade {
            if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                let backend_upgrade = hyper::upgrade::on(&mut response);
                tokio::spawn(upgrade::splice(
                    client_upgrade,
                    backend_upgrade,
                    route.key.clone(),
                    route.target.clone(),
                    self.inner.activity.clone(),
                ));
                let (mut parts, _) = response.into_parts();
                headers::strip_hop_by_hop(&mut parts.headers, true);
                return Ok(Response::from_parts(parts, empty()));
            }
        }
        headers::strip_hop_by_hop(response.headers_mut(), false);
        Ok(response.map(BodyExt::boxed_unsync))
    }
}

/// The request's path and query on `target`, if `target` is an `http://` URL. A path in
/// `target` is prepended, as CHP does.
fn target_uri(target: &str, uri: &Uri) -> Option<Uri> {
    let base: Uri = target.parse().ok()?;
    if base.scheme() != Some(&Scheme::HTTP) {
        return None;
    }
    let authority = base.authority()?.clone();
    let prefix = base.path().trim_end_matches('/');
    let path_and_query = match uri.path_and_query() {
        Some(pq) if prefix.is_empty() => pq.clone(),
        Some(pq) => format!("{prefix}{pq}").parse().ok()?,
        None => PathAndQuery::from_static("/"),
    };
    Uri::builder()
        .scheme(Scheme::HTTP)
        .authority(authority)
        .path_and_query(path_and_query)
        .build()
        .ok()
}

fn full(text: &'static str) -> ProxyBody {
    Full::new(Bytes::from_static(text.as_bytes()))
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn empty() -> ProxyBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// Displays an error followed by its sources: `a: b: c`.
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn target_uri_keeps_path_and_query() {
        let uri: Uri = "/user/alice/api/contents?x=1&y=%20z".parse().unwrap();
        let out = target_uri("http://127.0.0.1:41123", &uri).unwrap();
        assert_eq!(
            out.to_string(),
            "http://127.0.0.1:41123/user/alice/api/contents?x=1&y=%20z"
        );
        let out = target_uri("http://127.0.0.1:41123/", &uri).unwrap();
        assert_eq!(out.path(), "/user/alice/api/contents");
        let out = target_uri("http://backend/base/", &uri).unwrap();
        assert_eq!(
            out.to_string(),
            "http://backend/base/user/alice/api/contents?x=1&y=%20z"
        );
    }

    #[test]
    fn target_uri_rejects_non_http_targets() {
        let uri: Uri = "/user/alice/".parse().unwrap();
        assert!(target_uri("https://127.0.0.1:1", &uri).is_none());
        assert!(target_uri("127.0.0.1:1", &uri).is_none());
        assert!(target_uri("http://", &uri).is_none());
        assert!(target_uri("", &uri).is_none());
    }
}
