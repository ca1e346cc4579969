//! `tiny_server`: a minimal single-user server that stands in for JupyterLab in tests,
//! the chaos harness and benchmarks. It is small enough that a thousand of them fit on
//! one machine: one thread, no buffers beyond hyper's, and its 1 MiB body lives in the
//! binary's read-only data, shared by every instance.
//!
//! Like `jupyterhub-singleuser` it listens on the host, port and path of
//! `JUPYTERHUB_SERVICE_URL` (an empty host means every interface); without it, on
//! `--ip` (default `127.0.0.1`) and `--port` under `JUPYTERHUB_SERVICE_PREFIX`
//! (default `/`). It does no authentication. Under the prefix it serves:
//!
//! | request | answer |
//! | --- | --- |
//! | `GET api` | 200 `{"version": "tiny"}` (the hub's readiness probe; no `X-JupyterHub-Version`) |
//! | `GET 1k`, `GET 1m` | 1 KiB, 1 MiB of text (a fixed pattern, each 64-byte line starting with its offset in hex) |
//! | `GET echo` (WebSocket) | echoes every text and binary message |
//! | `GET whoami` | JSON: `user`, `server` (from the environment), `pid`, and the request's `method`, `path`, `query`, `headers` |
//! | `POST upload` | reads the body as a stream; JSON `{"bytes": n, "sha256": "<hex>"}` |
//!
//! Anything else is a 404 (a known path with another method, 405).
//!
//! Knobs for failure tests, from the environment:
//! - `TINY_DELAY_READY_MS=n`: answer `api` with 503 until n ms after start;
//! - `TINY_EXIT_AT_ONCE=code`: print one line to stderr and exit with `code` at once
//!   (before anything else, so no event is recorded);
//! - `TINY_NEVER_LISTEN=1`: never bind, just wait for a signal;
//! - `TINY_EVENTS_FILE=path`: append `start <user> <server> <pid>` at start and
//!   `exit <user> <server> <pid>` when it ends on SIGTERM or SIGINT (or cannot bind);
//!   fields are separated by one space, the default server's name is empty, and each
//!   line is one `O_APPEND` write. A SIGKILLed server records no `exit`.
//!
//! Logs go to stderr (`listening on` once bound). SIGTERM and SIGINT end it with status 0;
//! bad configuration with status 2.

#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::header::{HeaderValue, CONNECTION, CONTENT_TYPE, UPGRADE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

type Body = Full<Bytes>;

/// `n` bytes of 64-byte lines, each `<offset as 8 hex digits> ` then filler and `\n`,
/// so that a reordered or truncated copy is easy to spot.
const fn pattern<const N: usize>() -> [u8; N] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b'.'; N];
    let mut line = 0;
    while line < N {
        let mut d = 0;
        while d < 8 && line + d < N {
            out[line + d] = HEX[(line >> (4 * (7 - d))) & 0xf];
            d += 1;
        }
        if line + 8 < N {
            out[line + 8] = b' ';
        }
        if line + 63 < N {
            out[line + 63] = b'\n';
        }
        line += 64;
    }
    out
}

static ONE_KIB: [u8; 1 << 10] = pattern();
static ONE_MIB: [u8; 1 << 20] = pattern();

/// Where to listen and what to serve, from the environment and arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Config {
    host: String,
    port: u16,
    /// Always starts and ends with `/`.
    prefix: String,
    user: String,
    server: String,
    delay_ready: Duration,
    exit_at_once: Option<u8>,
    never_listen: bool,
    events: Option<PathBuf>,
}

impl Config {
    fn parse(env: &HashMap<String, String>, args: &[String]) -> Result<Config, String> {
        let var = |k: &str| env.get(k).filter(|v| !v.is_empty());
        let flag = |name: &str| {
            let eq = format!("{name}=");
            args.iter().enumerate().find_map(|(i, a)| {
                if a == name {
                    Some(args.get(i + 1).cloned().unwrap_or_default())
                } else {
                    a.strip_prefix(&eq).map(str::to_owned)
                }
            })
        };
        let (host, port, prefix) = match var("JUPYTERHUB_SERVICE_URL") {
            Some(url) => parse_service_url(url)?,
            None => {
                let port = flag("--port").ok_or(
                    "JUPYTERHUB_SERVICE_URL is not set and no --port given: nowhere to listen",
                )?;
                let port = port
                    .parse()
                    .map_err(|_| format!("--port {port:?} is not a port number"))?;
                let host = flag("--ip").unwrap_or_else(|| "127.0.0.1".into());
                let prefix = var("JUPYTERHUB_SERVICE_PREFIX").map_or("/", |p| p.as_str());
                (host, port, slashed(prefix))
            }
        };
        let number = |k: &str| -> Result<Option<u64>, String> {
            var(k)
                .map(|v| v.parse().map_err(|_| format!("{k}={v:?} is not a number")))
                .transpose()
        };
        let exit_at_once = match var("TINY_EXIT_AT_ONCE") {
            Some(v) => Some(
                v.parse()
                    .map_err(|_| format!("TINY_EXIT_AT_ONCE={v:?} is not an exit code (0-255)"))?,
            ),
            None => None,
        };
        Ok(Config {
            host,
            port,
            prefix,
            user: env.get("JUPYTERHUB_USER").cloned().unwrap_or_default(),
            server: env
                .get("JUPYTERHUB_SERVER_NAME")
                .cloned()
                .unwrap_or_default(),
            delay_ready: Duration::from_millis(number("TINY_DELAY_READY_MS")?.unwrap_or(0)),
            exit_at_once,
            never_listen: var("TINY_NEVER_LISTEN").is_some_and(|v| v != "0"),
            events: var("TINY_EVENTS_FILE").map(PathBuf::from),
        })
    }
}

/// Splits `http://host:port/prefix/` into host (brackets of IPv6 removed; empty means
/// every interface), port (default 80) and prefix (with a trailing slash).
fn parse_service_url(url: &str) -> Result<(String, u16, String), String> {
    let bad = |why: &str| format!("JUPYTERHUB_SERVICE_URL={url:?}: {why}");
    let rest = match url.split_once("://") {
        Some(("http", rest)) => rest,
        Some(("https", _)) => return Err(bad("https is not supported")),
        _ => return Err(bad("not an http:// URL")),
    };
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
    let path = path.split(['?', '#']).next().unwrap_or("/");
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => p.parse().map_err(|_| bad("bad port"))?,
        None => 80,
    };
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    Ok((host.to_owned(), port, slashed(path)))
}

fn slashed(prefix: &str) -> String {
    let mut p = String::with_capacity(prefix.len() + 2);
    if !prefix.starts_with('/') {
        p.push('/');
    }
    p.push_str(prefix);
    if !p.ends_with('/') {
        p.push('/');
    }
    p
}

/// Appends one event line with a single write to a file opened with `O_APPEND`.
fn record_event(path: &Path, kind: &str, cfg: &Config) {
    let line = format!(
        "{kind} {} {} {}\n",
        cfg.user,
        cfg.server,
        std::process::id()
    );
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        tracing::error!(path = %path.display(), error = %e, "recording an event");
    }
}

/// What the request handlers share.
struct App {
    prefix: String,
    user: String,
    server: String,
    ready_at: Instant,
}

fn respond(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(CONTENT_TYPE, v);
    }
    resp
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    respond(status, "application/json", value.to_string())
}

fn error(status: StatusCode) -> Response<Body> {
    let message = status.canonical_reason().unwrap_or("error");
    json(
        status,
        &serde_json::json!({"status": status.as_u16(), "message": message}),
    )
}

async fn handle(app: Arc<App>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let Some(rest) = req.uri().path().strip_prefix(app.prefix.as_str()) else {
        return Ok(error(StatusCode::NOT_FOUND));
    };
    let get = req.method() == Method::GET;
    let resp = match rest {
        "api" if get && Instant::now() < app.ready_at => error(StatusCode::SERVICE_UNAVAILABLE),
        "api" if get => json(StatusCode::OK, &serde_json::json!({"version": "tiny"})),
        "1k" if get => respond(StatusCode::OK, "text/plain", &ONE_KIB[..]),
        "1m" if get => respond(StatusCode::OK, "text/plain", &ONE_MIB[..]),
        "whoami" if get => whoami(&app, &req),
        "echo" if get => echo(req),
        "upload" if req.method() == Method::POST => upload(req).await,
        "api" | "1k" | "1m" | "whoami" | "echo" | "upload" => error(StatusCode::METHOD_NOT_ALLOWED),
        _ => error(StatusCode::NOT_FOUND),
    };
    Ok(resp)
}

fn whoami(app: &App, req: &Request<Incoming>) -> Response<Body> {
    let mut headers: BTreeMap<&str, String> = BTreeMap::new();
    for (name, value) in req.headers() {
        let value = String::from_utf8_lossy(value.as_bytes());
        headers
            .entry(name.as_str())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    json(
        StatusCode::OK,
        &serde_json::json!({
            "user": app.user,
            "server": app.server,
            "pid": std::process::id(),
            "method": req.method().as_str(),
            "path": req.uri().path(),
            "query": req.uri().query(),
            "headers": headers,
        }),
    )
}

async fn upload(req: Request<Incoming>) -> Response<Body> {
    let mut body = req.into_body();
    let mut hash = Sha256::new();
    let mut bytes: u64 = 0;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    hash.update(data);
                    bytes += data.len() as u64;
                }
            }
            Err(e) => {
                tracing::info!(error = %e, bytes, "upload broken off");
                return error(StatusCode::BAD_REQUEST);
            }
        }
    }
    let sha256 = hex::encode(hash.finalize());
    json(
        StatusCode::OK,
        &serde_json::json!({"bytes": bytes, "sha256": sha256}),
    )
}

/// Answers a WebSocket handshake and echoes messages on the upgraded connection.
fn echo(mut req: Request<Incoming>) -> Response<Body> {
    let headers = req.headers();
    let has_token = |name, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    let key = headers.get("sec-websocket-key");
    let version_ok = headers
        .get("sec-websocket-version")
        .is_some_and(|v| v == "13");
    let (Some(key), true, true, true) = (
        key,
        version_ok,
        has_token(UPGRADE, "websocket"),
        has_token(CONNECTION, "upgrade"),
    ) else {
        return respond(
            StatusCode::BAD_REQUEST,
            "text/plain",
            "expected a WebSocket upgrade\n",
        );
    };
    let accept = derive_accept_key(key.as_bytes());
    // a client that offers subprotocols (Jupyter's kernel protocol, say) gets its first
    let protocol = headers
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|p| p.trim().to_owned());
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let upgraded = match upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::info!(error = %e, "websocket upgrade failed");
                return;
            }
        };
        let mut ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        // close and ping frames are answered by tungstenite itself
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(msg) if msg.is_text() || msg.is_binary() => {
                    if ws.send(msg).await.is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert("sec-websocket-accept", v);
    }
    if let Some(v) = protocol.and_then(|p| HeaderValue::from_str(&p).ok()) {
        h.insert("sec-websocket-protocol", v);
    }
    resp
}

/// Accepts connections forever, one task per connection.
async fn serve(listener: TcpListener, app: Arc<App>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // out of file descriptors, say: let some connections end
                tracing::warn!(error = %e, "accepting a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(app.clone(), req));
            let conn = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .init();
    let env: HashMap<String, String> = std::env::vars().collect();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match Config::parse(&env, &args) {
        Ok(cfg) => cfg,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Some(code) = cfg.exit_at_once {
        tracing::error!(code, "exiting at once as TINY_EXIT_AT_ONCE asks");
        return ExitCode::from(code);
    }
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "installing signal handlers");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = &cfg.events {
        record_event(path, "start", &cfg);
    }
    let app = Arc::new(App {
        prefix: cfg.prefix.clone(),
        user: cfg.user.clone(),
        server: cfg.server.clone(),
        ready_at: Instant::now() + cfg.delay_ready,
    });
    let serving = async {
        if cfg.never_listen {
            tracing::info!("not listening, as TINY_NEVER_LISTEN asks");
            return std::future::pending().await;
        }
        let listener = match TcpListener::bind((cfg.host.as_str(), cfg.port)).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(host = %cfg.host, port = cfg.port, error = %e, "cannot listen");
                return ExitCode::FAILURE;
            }
        };
        let addr = listener.local_addr().map_or_else(
            |_| format!("{}:{}", cfg.host, cfg.port),
            |a: SocketAddr| a.to_string(),
        );
        tracing::info!(%addr, prefix = %cfg.prefix, pid = std::process::id(), "listening on");
        serve(listener, app).await;
        ExitCode::SUCCESS
    };
    let code = tokio::select! {
        code = serving => code,
        _ = term.recv() => ExitCode::SUCCESS,
        _ = int.recv() => ExitCode::SUCCESS,
    };
    if let Some(path) = &cfg.events {
        record_event(path, "exit", &cfg);
    }
    tracing::info!("exiting");
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn listens_where_the_service_url_says() {
        let p = |u: &str| parse_service_url(u);
        let ok = |h: &str, port, prefix: &str| Ok((h.to_owned(), port, prefix.to_owned()));
        assert_eq!(
            p("http://127.0.0.1:42215/user/alice/"),
            ok("127.0.0.1", 42215, "/user/alice/")
        );
        assert_eq!(
            p("http://:8888/user/a%20b/nb2"),
            ok("0.0.0.0", 8888, "/user/a%20b/nb2/")
        );
        assert_eq!(p("http://[::1]:9/x/"), ok("::1", 9, "/x/"));
        assert_eq!(p("http://localhost"), ok("localhost", 80, "/"));
        assert!(p("https://127.0.0.1:1/").unwrap_err().contains("https"));
        assert!(p("127.0.0.1:1/").is_err());
        assert!(p("http://h:port/").is_err());
    }

    #[test]
    fn config_comes_from_the_environment_with_a_port_fallback() {
        let cfg = Config::parse(
            &env(&[
                (
                    "JUPYTERHUB_SERVICE_URL",
                    "http://127.0.0.1:5000/user/alice/",
                ),
                ("JUPYTERHUB_USER", "alice"),
                ("JUPYTERHUB_SERVER_NAME", "nb"),
                ("TINY_DELAY_READY_MS", "250"),
                ("TINY_EVENTS_FILE", "/tmp/ev"),
            ]),
            &[],
        )
        .unwrap();
        assert_eq!((cfg.port, cfg.prefix.as_str()), (5000, "/user/alice/"));
        assert_eq!((cfg.user.as_str(), cfg.server.as_str()), ("alice", "nb"));
        assert_eq!(cfg.delay_ready, Duration::from_millis(250));
        assert_eq!(cfg.events, Some(PathBuf::from("/tmp/ev")));
        assert!(!cfg.never_listen && cfg.exit_at_once.is_none());

        let args = ["--port".to_owned(), "6000".to_owned()];
        let cfg =
            Config::parse(&env(&[("JUPYTERHUB_SERVICE_PREFIX", "/user/bob")]), &args).unwrap();
        assert_eq!((cfg.host.as_str(), cfg.port), ("127.0.0.1", 6000));
        assert_eq!(cfg.prefix, "/user/bob/");
        let cfg = Config::parse(&env(&[]), &["--port=7".into(), "--ip=0.0.0.0".into()]).unwrap();
        assert_eq!(
            (cfg.host.as_str(), cfg.port, cfg.prefix.as_str()),
            ("0.0.0.0", 7, "/")
        );

        assert!(Config::parse(&env(&[]), &[]).is_err());
        let knobs = env(&[("TINY_EXIT_AT_ONCE", "3"), ("TINY_NEVER_LISTEN", "1")]);
        let cfg = Config::parse(&knobs, &["--port=1".into()]).unwrap();
        assert_eq!((cfg.exit_at_once, cfg.never_listen), (Some(3), true));
        let bad = env(&[("TINY_DELAY_READY_MS", "soon")]);
        assert!(Config::parse(&bad, &["--port=1".into()]).is_err());
    }

    #[test]
    fn bodies_carry_their_offsets() {
        assert_eq!(&ONE_MIB[..64], &ONE_KIB[..64]);
        assert!(ONE_MIB[..9].starts_with(b"00000000 "));
        assert_eq!(&ONE_MIB[64..73], b"00000040 ");
        assert_eq!(&ONE_MIB[(1 << 20) - 64..(1 << 20) - 55], b"000fffc0 ");
        assert_eq!(ONE_MIB[(1 << 20) - 1], b'\n');
        assert_eq!(
            ONE_MIB.iter().filter(|&&b| b == b'\n').count(),
            (1 << 20) / 64
        );
    }

    /// Serves on a free port; returns the base URL including the prefix.
    async fn start(delay_ready: Duration) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Arc::new(App {
            prefix: "/user/alice/".into(),
            user: "alice".into(),
            server: String::new(),
            ready_at: Instant::now() + delay_ready,
        });
        tokio::spawn(serve(listener, app));
        format!("http://{addr}/user/alice/")
    }

    #[tokio::test]
    async fn serves_its_endpoints_under_the_prefix() {
        let base = start(Duration::ZERO).await;
        let client = reqwest::Client::new();
        let get = |path: &str| client.get(format!("{base}{path}")).send();

        let api = get("api").await.unwrap();
        assert_eq!(api.status(), 200);
        assert!(api.headers().get("x-jupyterhub-version").is_none());
        assert_eq!(api.text().await.unwrap(), r#"{"version":"tiny"}"#);
        assert_eq!(
            get("1k").await.unwrap().bytes().await.unwrap(),
            &ONE_KIB[..]
        );
        assert_eq!(
            get("1m").await.unwrap().bytes().await.unwrap(),
            &ONE_MIB[..]
        );
        for missing in ["api/", "nope", "../api"] {
            assert_eq!(get(missing).await.unwrap().status(), 404, "{missing}");
        }
        let outside = base.replace("/user/alice/", "/user/bob/api");
        assert_eq!(client.get(outside).send().await.unwrap().status(), 404);
        let post = client.post(format!("{base}api")).send().await.unwrap();
        assert_eq!(post.status(), 405);

        let who: serde_json::Value = client
            .get(format!("{base}whoami?x=1"))
            .header("x-forwarded-for", "10.0.0.1")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(who["user"], "alice");
        assert_eq!(who["server"], "");
        assert_eq!(who["pid"], std::process::id());
        assert_eq!(who["path"], "/user/alice/whoami");
        assert_eq!(who["query"], "x=1");
        assert_eq!(who["headers"]["x-forwarded-for"], "10.0.0.1");

        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            (0..64u8).map(|i| Ok(vec![i; 16 * 1024])).collect();
        let all: Vec<u8> = (0..64u8).flat_map(|i| vec![i; 16 * 1024]).collect();
        let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
        let up: serde_json::Value = client
            .post(format!("{base}upload"))
            .body(body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(up["bytes"], all.len());
        assert_eq!(up["sha256"], hex::encode(Sha256::digest(&all)));
    }

    #[tokio::test]
    async fn readiness_can_be_delayed() {
        let base = start(Duration::from_millis(300)).await;
        let api = format!("{base}api");
        assert_eq!(reqwest::get(&api).await.unwrap().status(), 503);
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert_eq!(reqwest::get(&api).await.unwrap().status(), 200);
    }

    #[tokio::test]
    async fn echoes_websocket_messages() {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        use tokio_tungstenite::tungstenite::Message;

        let base = start(Duration::ZERO).await;
        let url = format!("{}echo", base.replacen("http", "ws", 1));
        let mut req = url.as_str().into_client_request().unwrap();
        req.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static("v1.kernel.websocket.jupyter.org, other"),
        );
        let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
        assert_eq!(
            resp.headers()["sec-websocket-protocol"],
            "v1.kernel.websocket.jupyter.org"
        );
        let big = vec![7u8; 300 * 1024];
        for msg in [Message::text("hello"), Message::binary(big)] {
            ws.send(msg.clone()).await.unwrap();
            assert_eq!(ws.next().await.unwrap().unwrap(), msg);
        }
        ws.close(None).await.unwrap();
        while let Some(Ok(_)) = ws.next().await {}

        let plain = reqwest::get(format!("{base}echo")).await.unwrap();
        assert_eq!(plain.status(), 400);
    }
}
