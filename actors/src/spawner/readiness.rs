//! Readiness (§5.2): a server is up once `GET {url}{prefix}api` (no trailing slash, no
//! credentials, redirects not followed) answers with any status below 500.

use std::future::Future;
use std::time::Duration;

/// What the probe learned.
#[derive(Debug, Clone)]
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

/// A client for probes: no redirects, short timeouts, no proxy from the environment.
pub fn probe_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .unwrap_or_default()
}

/// Probes until ready, `timeout`, or `give_up` resolves.
pub async fn wait_until_ready(
    client: &reqwest::Client,
    url: &str,
    prefix: &str,
    timeout: Duration,
    give_up: impl Future<Output = String>,
) -> Result<ReadyInfo, NotReady> {
    let probe_url = format!("{}{}api", url.trim_end_matches('/'), prefix);
    let probing = async {
        let mut delay = Duration::from_millis(50);
        loop {
            if let Ok(resp) = client.get(&probe_url).send().await {
                if resp.status().as_u16() < 500 {
                    let version = resp
                        .headers()
                        .get("x-jupyterhub-version")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    return ReadyInfo { version };
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(1));
        }
    };
    tokio::select! {
        info = probing => Ok(info),
        reason = give_up => Err(NotReady::GaveUp(reason)),
        _ = tokio::time::sleep(timeout) => Err(NotReady::Timeout(timeout)),
    }
}
