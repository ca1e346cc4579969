//! The load generator: HTTP/1.1 over kept-alive connections, one request in flight per
//! connection, bodies read to the end.
//!
//! - [`closed_loop`]: `concurrency` connections, each sending its next request as soon
//!   as the last is answered, for a duration: the most a system serves, and the latency
//!   it takes to serve it.
//! - [`open_loop`]: requests scheduled at a fixed rate whatever the answers do, latency
//!   counted from the scheduled time (so a stall is charged to every request it delays,
//!   not hidden by sending fewer) — except when the connection sat idle until then: the
//!   timer's own lateness (up to a millisecond in tokio) is not charged.
//!
//! A figure counts only answers with the expected status and a complete body; anything
//! else marks the run failed, with the first such answer kept to say why.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One request to send.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The status that counts as success.
    pub expect: StatusCode,
}

impl Call {
    pub fn get(path: impl Into<String>) -> Call {
        Call {
            method: Method::GET,
            path: path.into(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
            expect: StatusCode::OK,
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Call {
        if let Ok(v) = value.parse() {
            self.headers.insert(name, v);
        }
        self
    }

    pub fn token(self, token: &str) -> Call {
        self.header("authorization", &format!("token {token}"))
    }
}

/// What a load run measured.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// Answers that met the expectation.
    pub ok: u64,
    /// Everything else: wrong status, connection errors, truncated bodies.
    pub errors: u64,
    pub first_error: Option<String>,
    /// Latencies of the successful requests, in microseconds, sorted.
    pub latencies_us: Vec<u32>,
    pub body_bytes: u64,
    pub elapsed: Duration,
}

impl Measured {
    pub fn failed(&self) -> bool {
        self.errors > 0 || self.ok == 0
    }

    pub fn per_sec(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// `cpu` (CPU time spent on this run) per successful request, in microseconds.
    pub fn cpu_us_per_request(&self, cpu: Duration) -> f64 {
        cpu.as_secs_f64() * 1e6 / self.ok.max(1) as f64
    }

    /// The `q` quantile (0..=1) of the latencies, in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.latencies_us.is_empty() {
            return None;
        }
        let i = ((self.latencies_us.len() - 1) as f64 * q).round() as usize;
        Some(self.latencies_us[i] as f64 / 1000.0)
    }

    fn merge(&mut self, other: Measured) {
        self.ok += other.ok;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies_us.extend(other.latencies_us);
        self.body_bytes += other.body_bytes;
    }

    /// One success that took `latency` and read `bytes` of body.
    pub fn success(&mut self, latency: Duration, bytes: u64) {
        self.ok += 1;
        self.body_bytes += bytes;
        self.latencies_us.push(latency.as_micros() as u32);
    }

    /// One failure; the first is kept to say why.
    pub fn error(&mut self, e: impl std::fmt::Display) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e.to_string());
        }
    }
}

/// An answer, whatever its status.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    /// The answer's body if its status is what `call` expects, else why not.
    fn expected(self, call: &Call) -> Result<Bytes, String> {
        if self.status != call.expect {
            let text = String::from_utf8_lossy(&self.body[..self.body.len().min(300)]).into_owned();
            return Err(format!(
                "{} {}: {} (expected {}): {text}",
                call.method, call.path, self.status, call.expect
            ));
        }
        Ok(self.body)
    }
}

/// A kept-alive HTTP/1.1 connection to `addr`, opened on first use and again after the
/// server closed it.
pub struct Conn {
    addr: SocketAddr,
    host: String,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    pub fn new(addr: SocketAddr) -> Conn {
        Conn {
            addr,
            host: addr.to_string(),
            sender: None,
        }
    }

    async fn sender(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, String> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = TcpStream::connect(self.addr)
                .await
                .map_err(|e| format!("connect {}: {e}", self.addr))?;
            let _ = stream.set_nodelay(true);
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("handshake: {e}"))?;
            tokio::spawn(conn);
            self.sender = Some(sender);
        }
        self.sender
            .as_mut()
            .ok_or_else(|| "no connection".to_owned())
    }

    /// Sends `call` and reads the whole answer, whatever its status.
    pub async fn exchange(&mut self, call: &Call) -> Result<Answer, String> {
        let mut req = Request::builder()
            .method(call.method.clone())
            .uri(&call.path)
            .header("host", &self.host)
            .body(Full::new(call.body.clone()))
            .map_err(|e| e.to_string())?;
        req.headers_mut().extend(call.headers.clone());
        let sender = self.sender().await?;
        sender.ready().await.map_err(|e| e.to_string())?;
        let res = match sender.send_request(req).await {
            Ok(r) => r,
            Err(e) => {
                self.sender = None;
                return Err(format!("{} {}: {e}", call.method, call.path));
            }
        };
        let (parts, body) = res.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// Sends `call`; the body's length if the status is the expected one.
    async fn send(&mut self, call: &Call) -> Result<u64, String> {
        let body = self.exchange(call).await?.expected(call)?;
        Ok(body.len() as u64)
    }
}

/// Sends one request on a new connection (for set-up steps); the body, if the status is
/// the expected one.
pub async fn once(addr: SocketAddr, call: &Call) -> Result<Bytes, String> {
    Conn::new(addr).exchange(call).await?.expected(call)
}

/// The call for the `i`-th request of worker `w`.
pub type MakeCall = Arc<dyn Fn(usize, u64) -> Call + Send + Sync>;

/// `concurrency` connections (connection `w` to `addrs[w % addrs.len()]`), each
/// sending back to back for `duration`.
pub async fn closed_loop(
    addrs: &[SocketAddr],
    make: MakeCall,
    concurrency: usize,
    duration: Duration,
) -> Measured {
    closed_loop_with(addrs, concurrency, duration, move |mut conn, w, i| {
        let call = make(w, i);
        async move {
            let sent = conn.send(&call).await;
            (conn, sent)
        }
    })
    .await
}

/// `concurrency` workers, each on its own kept-alive connection (worker `w`'s to
/// `addrs[w % addrs.len()]`), running `step` back to back for `duration`.
/// `step(conn, w, i)` is worker `w`'s `i`-th operation, timed as a whole; it hands the
/// connection back with the body bytes it read, or why it failed.
pub async fn closed_loop_with<F, Fut>(
    addrs: &[SocketAddr],
    concurrency: usize,
    duration: Duration,
    step: F,
) -> Measured
where
    F: Fn(Conn, usize, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = (Conn, Result<u64, String>)> + Send,
{
    if addrs.is_empty() {
        return nowhere();
    }
    let start = Instant::now();
    let end = start + duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let step = step.clone();
            let addr = addrs[w % addrs.len()];
            tokio::spawn(async move {
                let mut conn = Conn::new(addr);
                let mut m = Measured::default();
                let mut i = 0u64;
                while Instant::now() < end {
                    let t = Instant::now();
                    let (back, result) = step(conn, w, i).await;
                    conn = back;
                    i += 1;
                    match result {
                        Ok(n) => m.success(t.elapsed(), n),
                        Err(e) => m.error(e),
                    }
                }
                m
            })
        })
        .collect();
    gather(workers, start).await
}

/// `rate` requests a second for `duration`, over `connections` connections (spread
/// over `addrs` as in [`closed_loop`]), each taking every `connections`-th slot of the
/// schedule (as wrk2 does); latency from each request's scheduled time, so a connection
/// that falls behind charges the delay to the requests it sends late.
pub async fn open_loop(
    addrs: &[SocketAddr],
    make: MakeCall,
    rate: f64,
    duration: Duration,
    connections: usize,
) -> Measured {
    if addrs.is_empty() {
        return nowhere();
    }
    let start = Instant::now();
    let total = (rate * duration.as_secs_f64()) as u64;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let workers: Vec<_> = (0..connections)
        .map(|w| {
            let make = make.clone();
            let addr = addrs[w % addrs.len()];
            tokio::spawn(async move {
                let mut conn = Conn::new(addr);
                let mut m = Measured::default();
                let mut i = w as u64;
                while i < total {
                    let at = start + interval.mul_f64(i as f64);
                    // Latency counts from the scheduled time when this connection was
                    // still busy with its last request then (the system's delay), and
                    // from the moment of sending when it was idle and waiting: tokio's
                    // timer wakes up to a millisecond late, which is not the system's.
                    let origin = if Instant::now() < at {
                        tokio::time::sleep_until(at.into()).await;
                        Instant::now()
                    } else {
                        at
                    };
                    let call = make(w, i);
                    match conn.send(&call).await {
                        Ok(n) => m.success(origin.elapsed(), n),
                        Err(e) => m.error(e),
                    }
                    i += connections as u64;
                }
                m
            })
        })
        .collect();
    gather(workers, start).await
}

/// A run with no address to send to: failed.
fn nowhere() -> Measured {
    let mut m = Measured::default();
    m.error("no address to send to");
    m
}

async fn gather(workers: Vec<tokio::task::JoinHandle<Measured>>, start: Instant) -> Measured {
    let mut all = Measured::default();
    for w in workers {
        match w.await {
            Ok(m) => all.merge(m),
            Err(e) => all.error(format!("a load worker failed: {e}")),
        }
    }
    all.elapsed = start.elapsed();
    all.latencies_us.sort_unstable();
    all
}

/// `count` WebSocket echo round trips of `size`-byte messages on one connection to
/// `url` (`ws://...`); round-trip times, sorted.
pub async fn websocket_echo(url: &str, count: usize, size: usize) -> Measured {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let start = Instant::now();
    let mut m = Measured::default();
    let (mut ws, _) = match tokio_tungstenite::connect_async(url).await {
        Ok(c) => c,
        Err(e) => {
            m.error(format!("websocket {url}: {e}"));
            return m;
        }
    };
    let payload = Bytes::from(vec![b'x'; size]);
    for _ in 0..count {
        let t = Instant::now();
        if let Err(e) = ws.send(Message::Binary(payload.to_vec())).await {
            m.error(e);
            break;
        }
        match ws.next().await {
            Some(Ok(Message::Binary(b))) if b.len() == size => {
                m.ok += 1;
                m.latencies_us.push(t.elapsed().as_micros() as u32);
            }
            other => {
                m.error(format!("websocket echo: {other:?}"));
                break;
            }
        }
    }
    let _ = ws.close(None).await;
    m.elapsed = start.elapsed();
    m.latencies_us.sort_unstable();
    m
}
