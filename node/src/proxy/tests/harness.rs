//! The end-to-end harness: a proxy front wired as the node wires it, backends, a client,
//! and test data.

use std::cell::RefCell;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use super::super::*;
use super::route;

pub(super) type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub(super) type TestBody = UnsyncBoxBody<Bytes, BoxError>;

pub(super) const WAIT: Duration = Duration::from_secs(10);
pub(super) const FIVE_MIB: usize = 5 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

pub(super) fn full(data: impl Into<Bytes>) -> TestBody {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A body that yields each message of `rx` as one frame, ending when the sender is dropped.
pub(super) fn channel_body(rx: mpsc::Receiver<Bytes>) -> TestBody {
    let frames = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|data| (Ok::<_, BoxError>(Frame::data(data)), rx))
    });
    StreamBody::new(frames).boxed_unsync()
}

pub(super) fn client() -> Client<HttpConnector, TestBody> {
    Client::builder(TokioExecutor::new()).build_http()
}

pub(super) async fn bind() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    (listener, addr)
}

/// The proxy as the node wires it: look up, forward, or answer 404 without a route. The
/// error kind goes into `x-test-error`.
pub(super) struct Front {
    pub(super) addr: SocketAddr,
    pub(super) routes: watch::Sender<Arc<RouteTable>>,
    pub(super) activity: ActivityRecorder,
}

impl Front {
    pub(super) async fn start(table: RouteTable) -> Front {
        let (routes, reader) = route_channel(table);
        let activity = ActivityRecorder::new();
        let proxy = Proxy::new(activity.clone());
        let (listener, addr) = bind().await;
        tokio::spawn(async move {
            while let Ok((stream, client_addr)) = listener.accept().await {
                let reader = RefCell::new(reader.clone());
                let proxy = proxy.clone();
                let service = service_fn(move |req: Request<Incoming>| {
                    let route = reader.borrow_mut().lookup(req.uri().path());
                    let proxy = proxy.clone();
                    async move {
                        Ok::<_, Infallible>(front_respond(proxy, route, req, client_addr).await)
                    }
                });
                tokio::spawn(async move {
                    let conn =
                        http1::Builder::new().serve_connection(TokioIo::new(stream), service);
                    let _ = conn.with_upgrades().await;
                });
            }
        });
        Front {
            addr,
            routes,
            activity,
        }
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

async fn front_respond(
    proxy: Proxy,
    route: Option<Arc<Route>>,
    req: Request<Incoming>,
    client_addr: SocketAddr,
) -> Response<ProxyBody> {
    let Some(route) = route else {
        let body = Full::new(Bytes::from_static(b"no route")).map_err(|never| match never {});
        let mut response = Response::new(body.boxed_unsync());
        *response.status_mut() = StatusCode::NOT_FOUND;
        return response;
    };
    match proxy.forward(req, &route, client_addr).await {
        Ok(response) => response,
        Err(error) => {
            let kind = match &error {
                ProxyError::InvalidTarget { .. } => "invalid-target",
                ProxyError::Unreachable { .. } => "unreachable",
                ProxyError::Backend { .. } => "backend",
            };
            let mut response = error.into_response();
            response
                .headers_mut()
                .insert("x-test-error", HeaderValue::from_static(kind));
            response
        }
    }
}

/// A backend answering every request with `handler`.
pub(super) async fn start_backend<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Response<TestBody>> + Send + 'static,
{
    let (listener, addr) = bind().await;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handler = handler.clone();
            let service = service_fn(move |req| {
                let answer = handler(req);
                async move { Ok::<_, Infallible>(answer.await) }
            });
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// A backend answering every request with `text`.
pub(super) async fn text_backend(text: &'static str) -> SocketAddr {
    start_backend(move |_req| async move { Response::new(full(text)) }).await
}

pub(super) fn user_route(prefix: &str, backend: SocketAddr, user: &str, server: &str) -> Route {
    route(prefix, &format!("http://{backend}"), user, server)
}

pub(super) async fn get_text(
    client: &Client<HttpConnector, TestBody>,
    url: &str,
) -> (StatusCode, String) {
    let response = client
        .get(url.parse::<Uri>().expect("url"))
        .await
        .expect("request");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Deterministic test data and a checksum (FNV-1a) over it.
fn data_chunk(seed: u8, index: usize) -> Bytes {
    (0..CHUNK)
        .map(|i| ((index * CHUNK + i) % 251) as u8 ^ seed)
        .collect::<Vec<u8>>()
        .into()
}

fn fnv1a(mut hash: u64, data: &[u8]) -> u64 {
    for &b in data {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

pub(super) fn expected_sum(seed: u8) -> u64 {
    (0..FIVE_MIB / CHUNK).fold(FNV_START, |h, i| fnv1a(h, &data_chunk(seed, i)))
}

pub(super) fn five_mib_body(seed: u8) -> TestBody {
    let frames = futures::stream::iter(
        (0..FIVE_MIB / CHUNK).map(move |i| Ok::<_, BoxError>(Frame::data(data_chunk(seed, i)))),
    );
    StreamBody::new(frames).boxed_unsync()
}

/// Reads a body frame by frame: (length, checksum).
pub(super) async fn measure<B>(mut body: B) -> (usize, u64)
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Debug,
{
    let (mut len, mut sum) = (0, FNV_START);
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.expect("frame").into_data() {
            len += data.len();
            sum = fnv1a(sum, &data);
        }
    }
    (len, sum)
}
