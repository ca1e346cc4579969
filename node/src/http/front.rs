//! The node's HTTP front door: every connection is served by one hyper service that sends
//! requests matching a proxy route to the single-user server, unmodified, and everything
//! else to the hub's own handlers (axum), timing each of those. Route lookups read an
//! in-memory snapshot. A stopping node finishes the answers in flight.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::MatchedPath;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use galilean_actors::membership::await_everywhere;
use http_body_util::{BodyExt, Either};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::admin::measures::UNMATCHED;
use crate::app::AppState;
use crate::http::routes::{hub_router, MAX_HUB_BODY};
use crate::pages::error_page;
use crate::proxy::{ActivityRecorder, Proxy, ProxyBody, ProxyError, Route, RouteTable};

pub type FrontBody = Either<ProxyBody, Body>;

/// The longest a request under `P/user/` that finds no route waits for the route table
/// to catch up with the replica (normally microseconds: the feed is a local task).
const ROUTES_CATCH_UP: Duration = Duration::from_secs(2);

/// The route table the node's route feed publishes, with the replica's servers
/// generation it was built at.
#[derive(Debug, Default, Clone)]
pub struct PublishedRoutes {
    pub table: Arc<RouteTable>,
    pub servers_generation: u64,
}

/// Looks `path` up in a published table built at least at `servers_generation` (the
/// replica's, which only grows), waiting for the feed at most `wait` (then looking up in
/// the newest table there is).
async fn lookup_caught_up(
    routes: &watch::Receiver<PublishedRoutes>,
    path: &str,
    servers_generation: u64,
    wait: Duration,
) -> Option<Arc<Route>> {
    let mut rx = routes.clone();
    let caught_up = |p: &PublishedRoutes| p.servers_generation >= servers_generation;
    let _ = tokio::time::timeout(wait, rx.wait_for(caught_up)).await;
    // the borrow is released before any await
    let route = rx.borrow().table.lookup(path);
    route
}

/// What every connection shares.
pub struct Front {
    app: Arc<AppState>,
    routes: watch::Receiver<PublishedRoutes>,
    /// `P + "user/"`: where servers' routes live.
    user_prefix: String,
    proxy: Proxy,
    hub: axum::Router,
    version: HeaderValue,
    /// `H + "api"`: requests under it get JSON errors.
    api_prefix: String,
    /// Browsers reach the hub over https (`hub.public_url`): cookies get `Secure`.
    secure_cookies: bool,
}

impl Front {
    pub fn new(
        app: Arc<AppState>,
        routes: watch::Receiver<PublishedRoutes>,
        activity: ActivityRecorder,
    ) -> Front {
        let hub = hub_router(app.clone());
        // clients parse this as a version number: Galilean's own goes beside it
        let version = HeaderValue::from_static(galilean_proto::JUPYTERHUB_VERSION);
        let secure_cookies = app
            .config
            .hub
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"));
        Front {
            secure_cookies,
            api_prefix: format!("{}api", app.hub_prefix),
            user_prefix: format!("{}user/", app.base_url),
            app,
            routes,
            proxy: Proxy::new(activity),
            hub,
            version,
        }
    }

    /// Answers one request.
    pub async fn handle(
        &self,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Response<FrontBody>, Infallible> {
        // a node cut off from its cluster's majority has no authority to answer
        // anything, not even from its possibly stale routes: it serves only under the
        // lease the leader renews while it is caught up (a leader, only while a quorum
        // acknowledges it). A leader election alone does not stop it: writes wait for
        // the new leader.
        if !self.app.router.lease_valid() {
            return Ok(unavailable(
                "This hub node cannot reach its cluster's majority.",
            ));
        }
        // the borrow is released before any await
        let mut route = self.routes.borrow().table.lookup(req.uri().path());
        if route.is_none() && req.uri().path().starts_with(&self.user_prefix) {
            // The route feed is a task of its own, just behind the replica: a client told
            // by this node that a server is ready must reach it, not the hub's redirect.
            // Only missed server paths wait, and only while the table is behind.
            let generation = self.app.replica.read(|s| s.servers_generation);
            route =
                lookup_caught_up(&self.routes, req.uri().path(), generation, ROUTES_CATCH_UP).await;
        }
        if let Some(route) = route {
            let response = self
                .proxy
                .forward(req, &route, peer)
                .await
                .unwrap_or_else(ProxyError::into_response);
            return Ok(response.map(Either::Left));
        }
        let is_api = req.uri().path().starts_with(&self.api_prefix);
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_HUB_BODY as u64) {
            // refused before reading a byte of it
            let message = format!("Request body is larger than {MAX_HUB_BODY} bytes");
            let mut response = if is_api {
                axum::response::IntoResponse::into_response(crate::error::HttpError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    message,
                ))
            } else {
                error_page(&self.app, StatusCode::PAYLOAD_TOO_LARGE, Some(&message))
            };
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            self.stamp(&mut response, is_api);
            return Ok(response.map(Either::Right));
        }
        let began = std::time::Instant::now();
        let method = req.method().clone();
        let may_write = may_write(&method, req.uri().path(), &self.app.hub_prefix);
        let before = self.app.replica.version();
        let mut req = req.map(Body::new);
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        let mut response = match self.hub.clone().oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        if may_write && self.app.replica.version() > before {
            await_everywhere(&self.app.router).await;
        }
        let handler = response.extensions_mut().remove::<MatchedPath>();
        if response.status().is_client_error() || response.status().is_server_error() {
            response = describe_bare_error(&self.app, response, is_api).await;
        }
        self.stamp(&mut response, is_api);
        self.app.measures.request(
            &method,
            handler.as_ref().map_or(UNMATCHED, MatchedPath::as_str),
            response.status().as_u16(),
            began.elapsed(),
        );
        Ok(response.map(Either::Right))
    }

    /// The headers of every hub response: versions, `Secure` on cookies behind TLS, and
    /// JupyterHub's Content-Security-Policy (§2.1): pages may be framed by the hub's own
    /// pages only (the consent and token pages must not be framed by another site),
    /// API answers by nothing.
    fn stamp(&self, response: &mut Response<Body>, is_api: bool) {
        let h = response.headers_mut();
        if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
            let report = format!("report-uri {}security/csp-report", self.app.hub_prefix);
            let policy = if is_api {
                format!("frame-ancestors 'none'; {report}; default-src 'none'")
            } else {
                format!("frame-ancestors 'self'; {report}")
            };
            if let Ok(v) = HeaderValue::from_str(&policy) {
                h.insert(header::CONTENT_SECURITY_POLICY, v);
            }
        }
        if self.secure_cookies {
            let cookies: Vec<HeaderValue> = h.get_all(header::SET_COOKIE).iter().cloned().collect();
            h.remove(header::SET_COOKIE);
            for c in cookies {
                let v = format!("{}; Secure", c.to_str().unwrap_or_default());
                if let Ok(v) = HeaderValue::from_str(&v) {
                    h.append(header::SET_COOKIE, v);
                }
            }
        }
        h.insert("x-jupyterhub-version", self.version.clone());
        h.insert(
            "x-galilean-version",
            HeaderValue::from_static(galilean_proto::GALILEAN_VERSION),
        );
    }
}

/// Whether a hub request may write: any method but GET, HEAD and OPTIONS, and the GETs
/// that write (issuing an OAuth code, the spawn pages). In a cluster, one that wrote
/// answers only once every live node has applied what this one has (or has surely
/// stopped serving: see `membership::await_everywhere`), so that whatever the answer
/// reports is what every node answers next: a user created through one node is read
/// through any other as soon as the 201 arrives, and an OAuth code issued by one node is
/// redeemed at another. Reads never wait.
fn may_write(method: &axum::http::Method, path: &str, hub_prefix: &str) -> bool {
    use axum::http::Method;
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
        || path.ends_with("/oauth2/authorize")
        || path
            .strip_prefix(hub_prefix)
            .is_some_and(|rest| rest.starts_with("spawn"))
}

/// Turns error responses that axum produced without our formatting (body-limit, path
/// and method rejections, which are plain text) into JSON on the API and a page
/// elsewhere.
async fn describe_bare_error(
    app: &AppState,
    response: Response<Body>,
    is_api: bool,
) -> Response<Body> {
    let plain = match response.headers().get(header::CONTENT_TYPE) {
        None => true,
        Some(ct) => ct.to_str().unwrap_or("").starts_with("text/plain"),
    };
    if !plain {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match http_body_util::Limited::new(body, 16 * 1024)
        .collect()
        .await
    {
        Ok(c) => String::from_utf8_lossy(&c.to_bytes()).trim().to_owned(),
        Err(_) => String::new(),
    };
    let status = parts.status;
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("Error").to_owned()
    } else {
        text
    };
    let mut out = if is_api {
        axum::response::IntoResponse::into_response(crate::error::HttpError::new(status, message))
    } else {
        error_page(app, status, Some(&message))
    };
    for (name, value) in parts.headers.iter() {
        if name == header::ALLOW {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// How long a stopping node waits for the answers in flight on its connections.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Accepts connections until `shutdown` turns true. Until `front` holds the hub (while
/// the node starts, e.g. waiting for its cluster), every request gets 503. Then it stops
/// accepting, and waits (at most [`DRAIN_TIMEOUT`]) while each connection finishes the
/// request it is answering (idle connections close at once): an answer already decided,
/// such as the 202 of `POST /hub/api/shutdown`, reaches its client before the node ends.
pub async fn serve(
    listener: TcpListener,
    front: watch::Receiver<Option<Arc<Front>>>,
    shutdown: watch::Receiver<bool>,
) {
    let builder = Arc::new(hyper_util::server::conn::auto::Builder::new(
        TokioExecutor::new(),
    ));
    // every connection holds a receiver: the channel closes when the last one ends
    let (open, _) = watch::channel(());
    loop {
        let mut stop = shutdown.clone();
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // out of file descriptors and the like: back off instead of spinning
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let front = front.clone();
        let builder = builder.clone();
        let held = open.subscribe();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let current = front.borrow().clone();
                async move {
                    match current {
                        Some(front) => front.handle(req, peer).await,
                        None => Ok(unavailable(
                            "This hub node is starting (waiting for its store or cluster).",
                        )),
                    }
                }
            });
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let mut stopping = false;
            loop {
                tokio::select! {
                    ended = conn.as_mut() => {
                        if let Err(e) = ended {
                            tracing::debug!("connection from {peer} ended: {e}");
                        }
                        break;
                    }
                    _ = stop.wait_for(|s| *s), if !stopping => {
                        stopping = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(held);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, open.closed())
        .await
        .is_err()
    {
        tracing::info!(
            connections = open.receiver_count(),
            "stopping with answers still in flight after {DRAIN_TIMEOUT:?}"
        );
    }
}

/// 503 with a JSON message and `Retry-After`: this node cannot answer now.
fn unavailable(message: &str) -> Response<FrontBody> {
    let mut r = axum::response::IntoResponse::into_response(crate::error::HttpError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        message,
    ));
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r.map(Either::Right)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::RouteKey;

    fn alice() -> RouteTable {
        RouteTable::from_routes([Route::new(
            "/user/alice/",
            "http://127.0.0.1:9",
            RouteKey::new("alice", ""),
        )])
    }

    fn published(table: RouteTable, servers_generation: u64) -> PublishedRoutes {
        PublishedRoutes {
            table: Arc::new(table),
            servers_generation,
        }
    }

    #[tokio::test]
    async fn a_miss_waits_for_a_table_behind_the_replica() {
        let (tx, routes) = watch::channel(published(RouteTable::empty(), 6));
        // the replica is at generation 7, where alice's server runs; the feed publishes it late
        let publish = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            tx.send_replace(published(alice(), 7));
            tx
        });
        let route = lookup_caught_up(&routes, "/user/alice/lab", 7, Duration::from_secs(5)).await;
        assert_eq!(
            route.map(|r| r.target.clone()).as_deref(),
            Some("http://127.0.0.1:9")
        );
        let _ = publish.await;
    }

    #[tokio::test]
    async fn a_miss_in_a_caught_up_table_answers_at_once() {
        let (_tx, routes) = watch::channel(published(alice(), 7));
        // bob has no route: how long the miss takes to be answered
        let miss = |generation: u64, wait: Duration| {
            let routes = &routes;
            async move {
                let started = std::time::Instant::now();
                let route = lookup_caught_up(routes, "/user/bob/lab", generation, wait).await;
                assert!(route.is_none());
                started.elapsed()
            }
        };
        assert!(miss(7, Duration::from_secs(5)).await < Duration::from_secs(1));
        // a feed that stopped is waited for no longer than asked
        assert!(miss(8, Duration::from_millis(100)).await < Duration::from_secs(1));
    }
}
