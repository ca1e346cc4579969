//! Readiness (protocol §5.2): a started server is up once `GET {url}{prefix}api` (no
//! trailing slash, no credentials, redirects not followed, sent straight to the server,
//! not through the proxy) answers with any status below 500. Connection errors and
//! answers of 500 and above are retried with exponential backoff until a timeout, or
//! until the caller gives up (typically because the process exited).

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// First pause between two probes; it doubles up to [`MAX_BACKOFF`]. A refused
/// connection costs next to nothing, while every probe interval adds half of itself, on
/// average, to the time a user waits for a server that takes seconds to start
/// (JupyterLab): probes stay frequent.
const FIRST_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_millis(250);
/// Per-request limits of [`probe_client`]: a server that accepts but does not answer
/// is asked again rather than waited for.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// What the probe learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyInfo {
    /// The server's `X-JupyterHub-Version`, if it sent one.
    pub version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReady {
    /// Not up within the timeout.
    Timeout(Duration),
    /// The caller gave up (e.g. the process exited), with its reason.
    GaveUp(String),
}

/// A client for probes: no redirects, no cookies, no proxy from the environment, short
/// per-request timeouts, and no idle connections kept (probes are rare, servers many).
///
/// # Panics
///
/// Never in practice: building fails only for TLS or proxy set-up, neither of which this
/// client uses.
pub fn probe_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .pool_max_idle_per_host(0)
        .no_proxy()
        .build()
        .expect("a plain-HTTP client without proxies always builds")
}

/// Probes `GET {url}{prefix}api` until it answers below 500 (→ `Ok`), `timeout` passes
/// (→ [`NotReady::Timeout`]), or `give_up` resolves (→ [`NotReady::GaveUp`] with its
/// reason, at once). `url` is the server's origin (`http://127.0.0.1:41123`), `prefix`
/// its URL prefix with both slashes (`/user/alice/`). `client` should come from
/// [`probe_client`], which does not follow redirects.
pub async fn wait_until_ready(
    client: &reqwest::Client,
    url: &str,
    prefix: &str,
    timeout: Duration,
    give_up: impl Future<Output = String>,
) -> Result<ReadyInfo, NotReady> {
    let probe_url = format!("{}{prefix}api", url.trim_end_matches('/'));
    let t0 = Instant::now();
    let probing = async {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            match client.get(&probe_url).send().await {
                Ok(resp) if resp.status().as_u16() < 500 => {
                    let version = resp
                        .headers()
                        .get("x-jupyterhub-version")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    tracing::debug!(
                        url = %probe_url,
                        status = resp.status().as_u16(),
                        attempt,
                        elapsed_ms = t0.elapsed().as_millis() as u64,
                        "server is ready"
                    );
                    return ReadyInfo { version };
                }
                Ok(resp) => {
                    tracing::debug!(url = %probe_url, status = resp.status().as_u16(), attempt, "server not ready yet");
                }
                Err(e) => {
                    tracing::trace!(url = %probe_url, error = %e, attempt, "server not answering yet");
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    };
    tokio::select! {
        biased;
        reason = give_up => Err(NotReady::GaveUp(reason)),
        info = probing => Ok(info),
        () = tokio::time::sleep_until(t0 + timeout) => Err(NotReady::Timeout(timeout)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A one-request-per-connection HTTP server that answers the n-th request with
    /// `answer(n)` (status line and headers, without the final blank line) and records
    /// each request's head.
    struct TinyHttp {
        url: String,
        requests: Arc<Mutex<Vec<String>>>,
    }

    impl TinyHttp {
        /// Starts listening on a free port after `delay`.
        async fn start(
            delay: Duration,
            answer: impl Fn(usize) -> String + Send + Sync + 'static,
        ) -> TinyHttp {
            let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = std_listener.local_addr().unwrap();
            drop(std_listener);
            let requests = Arc::new(Mutex::new(Vec::new()));
            let seen = requests.clone();
            let count = Arc::new(AtomicUsize::new(0));
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let listener = TcpListener::bind(addr).await.unwrap();
                loop {
                    let (mut sock, _) = listener.accept().await.unwrap();
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.ends_with(b"\r\n\r\n") {
                        let n = sock.read(&mut buf).await.unwrap();
                        if n == 0 {
                            break;
                        }
                        head.extend_from_slice(&buf[..n]);
                    }
                    seen.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&head).into_owned());
                    let n = count.fetch_add(1, Ordering::SeqCst);
                    let reply = format!(
                        "{}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        answer(n)
                    );
                    let _ = sock.write_all(reply.as_bytes()).await;
                }
            });
            TinyHttp {
                url: format!("http://{addr}"),
                requests,
            }
        }

        fn requests(&self) -> Vec<String> {
            self.requests.lock().unwrap().clone()
        }
    }

    fn never() -> std::future::Pending<String> {
        std::future::pending()
    }

    #[tokio::test]
    async fn ready_once_the_server_answers() {
        let server = TinyHttp::start(Duration::from_millis(400), |_| {
            "HTTP/1.1 200 OK\r\nx-jupyterhub-version: 5.2.1".into()
        })
        .await;
        let t0 = Instant::now();
        let info = wait_until_ready(
            &probe_client(),
            &server.url,
            "/user/alice/",
            Duration::from_secs(10),
            never(),
        )
        .await
        .unwrap();
        assert!(t0.elapsed() >= Duration::from_millis(400));
        assert!(t0.elapsed() < Duration::from_secs(3), "backoff stays short");
        assert_eq!(info.version.as_deref(), Some("5.2.1"));
        let requests = server.requests();
        assert_eq!(requests.len(), 1);
        let head = requests[0].to_ascii_lowercase();
        assert!(
            head.starts_with("get /user/alice/api http/1.1\r\n"),
            "{head}"
        );
        assert!(
            !head.contains("authorization") && !head.contains("cookie"),
            "{head}"
        );
    }

    #[tokio::test]
    async fn errors_are_retried_and_any_status_below_500_is_ready() {
        let server = TinyHttp::start(Duration::ZERO, |n| match n {
            0 => "HTTP/1.1 500 Internal Server Error".into(),
            1 => "HTTP/1.1 503 Service Unavailable".into(),
            _ => "HTTP/1.1 404 Not Found".into(),
        })
        .await;
        let info = wait_until_ready(
            &probe_client(),
            &format!("{}/", server.url),
            "/user/bob/",
            Duration::from_secs(10),
            never(),
        )
        .await
        .unwrap();
        assert_eq!(info, ReadyInfo { version: None });
        assert_eq!(server.requests().len(), 3);
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let server = TinyHttp::start(Duration::ZERO, |_| {
            "HTTP/1.1 302 Found\r\nlocation: /elsewhere".into()
        })
        .await;
        let ready = wait_until_ready(
            &probe_client(),
            &server.url,
            "/user/carol/",
            Duration::from_secs(10),
            never(),
        )
        .await;
        assert!(ready.is_ok());
        assert_eq!(server.requests().len(), 1, "the redirect was not followed");
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let timeout = Duration::from_millis(500);
        let t0 = Instant::now();
        let ready = wait_until_ready(
            &probe_client(),
            &format!("http://127.0.0.1:{port}"),
            "/user/dave/",
            timeout,
            never(),
        )
        .await;
        assert_eq!(ready, Err(NotReady::Timeout(timeout)));
        assert!(t0.elapsed() >= timeout && t0.elapsed() < timeout * 3);
    }

    #[tokio::test]
    async fn giving_up_ends_the_wait_at_once() {
        let server = TinyHttp::start(Duration::ZERO, |_| "HTTP/1.1 502 Bad Gateway".into()).await;
        let t0 = Instant::now();
        let ready = wait_until_ready(
            &probe_client(),
            &server.url,
            "/user/erin/",
            Duration::from_secs(30),
            async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                "the server process exited with status 1".to_owned()
            },
        )
        .await;
        assert_eq!(
            ready,
            Err(NotReady::GaveUp(
                "the server process exited with status 1".into()
            ))
        );
        assert!(t0.elapsed() < Duration::from_secs(2));
        assert!(!server.requests().is_empty());
    }
}
