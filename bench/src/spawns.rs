//! W5, the spawn storm: `n` users ask for their default server at the same moment, each
//! on its own connection, as a class does at the start of a lesson; the figure is the
//! time until the hub reports all `n` ready. A refusal (429, JupyterHub's answer past its
//! `concurrent_spawn_limit`) is counted and retried after the `Retry-After` the hub gave,
//! as a well-behaved client does. Then all are stopped at once, timed the same way.
//!
//! Readiness is watched through one paginated list request (`state=ready`, `limit=1`,
//! reading the envelope's total) every 100 ms, not one poll per user, so that watching
//! costs the hub next to nothing.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};

use crate::load::{once, Call, Conn};
use crate::systems::BOOTSTRAP_TOKEN;
use crate::table::{Figure, Table};
use crate::workloads::Subject;

/// How long one storm (or its stop) may take before the run counts as failed.
const DEADLINE: Duration = Duration::from_secs(300);
/// The longest `Retry-After` honoured (JupyterHub's default range is 60–120 s).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(130);

/// The storm users' names: `storm0`, `storm1`, …
fn storm_user(i: usize) -> String {
    format!("storm{i}")
}

/// Creates the users the largest storm needs (not timed).
pub async fn create_storm_users(subjects: &[Subject], n: usize) -> anyhow::Result<()> {
    crate::workloads::create_named(subjects, (0..n).map(storm_user), 100).await
}

/// The number of users in `state` (`ready`, `active`), from the list's pagination total.
async fn count(s: &Subject, state: &str) -> Result<u64, String> {
    let call = Call::get(format!("/hub/api/users?state={state}&limit=1"))
        .token(BOOTSTRAP_TOKEN)
        .header("accept", "application/jupyterhub-pagination+json");
    let body = once(s.hub.addr, &call).await?;
    let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    v["_pagination"]["total"]
        .as_u64()
        .ok_or_else(|| format!("no _pagination.total in {v}"))
}

/// Waits until `count(state)` satisfies `done`; the time it took since `start`.
async fn watch(
    s: &Subject,
    state: &str,
    start: Instant,
    done: impl Fn(u64) -> bool,
) -> Result<Duration, String> {
    loop {
        let now = count(s, state).await?;
        if done(now) {
            return Ok(start.elapsed());
        }
        if start.elapsed() > DEADLINE {
            return Err(format!(
                "not done in {} s ({now} {state})",
                DEADLINE.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Tasks that are stopped when this is dropped: a storm that failed (or whose watch
/// ended it) leaves no request behind to start a server after its clean-up.
struct Tasks(Vec<tokio::task::JoinHandle<Result<(), String>>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// One request per user, all at once, each retried after a 429 as the hub asks; the
/// number of refusals, or the first unexpected answer.
async fn all_at_once(
    s: &Subject,
    n: usize,
    method: Method,
    accepted: &'static [StatusCode],
) -> Result<u64, String> {
    let refused = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let addr = s.hub.addrs[i % s.hub.addrs.len()];
            let method = method.clone();
            let refused = refused.clone();
            tokio::spawn(async move {
                let call = Call {
                    method,
                    path: format!("/hub/api/users/{}/server", storm_user(i)),
                    headers: Default::default(),
                    body: Bytes::new(),
                    expect: StatusCode::CREATED,
                }
                .token(BOOTSTRAP_TOKEN);
                let start = Instant::now();
                loop {
                    let answer = Conn::new(addr).exchange(&call).await?;
                    if accepted.contains(&answer.status) {
                        return Ok(());
                    }
                    if answer.status != StatusCode::TOO_MANY_REQUESTS {
                        return Err(format!(
                            "{} {}: {}: {}",
                            call.method,
                            call.path,
                            answer.status,
                            // long enough for the server's log a failed spawn quotes
                            String::from_utf8_lossy(&answer.body[..answer.body.len().min(1_500)])
                        ));
                    }
                    refused.fetch_add(1, Ordering::Relaxed);
                    if start.elapsed() > DEADLINE {
                        return Err(format!("{}: still refused after 300 s", call.path));
                    }
                    let wait = answer
                        .headers
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<f64>().ok())
                        .filter(|s| s.is_finite() && *s >= 0.0)
                        .map_or(Duration::from_secs(1), Duration::from_secs_f64)
                        .min(MAX_RETRY_AFTER);
                    tokio::time::sleep(wait).await;
                }
            })
        })
        .collect();
    let mut tasks = Tasks(tasks);
    for t in &mut tasks.0 {
        t.await.map_err(|e| e.to_string())??;
    }
    Ok(refused.load(Ordering::Relaxed))
}

/// W5 with `n` users on every system: time until all ready, refusals, time until all
/// stopped. `while_running` runs with all `n` servers up (the W6 memory figure).
pub async fn storm(
    table: &mut Table,
    subjects: &[Subject],
    n: usize,
    mut while_running: impl FnMut(&mut Table, &[Subject]),
) {
    let workload = format!("W5 spawn storm, {n} servers");
    for s in subjects {
        let (ready, refused, stopped) = match storm_one(s, n).await {
            Ok(start) => {
                eprintln!(
                    "  {workload} on {}: ready in {:.2} s ({} refused)",
                    s.name(),
                    start.ready.as_secs_f64(),
                    start.refused
                );
                while_running(table, std::slice::from_ref(s));
                let stopped = match stop_all(s, n, start.before.active, STOPPED).await {
                    Ok(d) => {
                        eprintln!(
                            "  {workload} on {}: stopped in {:.2} s",
                            s.name(),
                            d.as_secs_f64()
                        );
                        Figure::value(d.as_secs_f64())
                    }
                    Err(e) => Figure::failed(e),
                };
                (
                    Figure::value(start.ready.as_secs_f64()),
                    Figure::value(start.refused as f64),
                    stopped,
                )
            }
            Err((e, before)) => {
                eprintln!("  {workload} on {}: FAILED: {e}", s.name());
                // the next storm on this system starts from no running servers, so
                // one failure is reported once, not again as "already running"
                if let Some(before) = before {
                    if let Err(e) = stop_all(s, n, before.active, STOPPED_OR_NOT_RUNNING).await {
                        eprintln!("  {workload} on {}: could not stop all: {e}", s.name());
                    }
                }
                let f = Figure::failed(&e);
                (f.clone(), f.clone(), f)
            }
        };
        table.put(&workload, "all ready", "s", false, s.name(), ready);
        table.put(&workload, "refused (429)", "", false, s.name(), refused);
        table.put(&workload, "all stopped", "s", false, s.name(), stopped);
    }
}

/// Servers counted before a storm.
#[derive(Clone, Copy)]
struct Before {
    ready: u64,
    active: u64,
}

struct Started {
    ready: Duration,
    refused: u64,
    before: Before,
}

/// One storm; on failure, why, and the counts before it if they were taken.
async fn storm_one(s: &Subject, n: usize) -> Result<Started, (String, Option<Before>)> {
    let before = async {
        Ok::<_, String>(Before {
            ready: count(s, "ready").await?,
            active: count(s, "active").await?,
        })
    }
    .await
    .map_err(|e| (e, None))?;
    let start = Instant::now();
    let answered = AtomicBool::new(false);
    let asks = async {
        let refused = all_at_once(
            s,
            n,
            Method::POST,
            &[StatusCode::CREATED, StatusCode::ACCEPTED],
        )
        .await;
        answered.store(true, Ordering::Relaxed);
        refused
    };
    // an unexpected answer ends the storm at once, not after the watch's deadline
    let (refused, ready) = tokio::try_join!(asks, watch_ready(s, n, before, &answered, start))
        .map_err(|e| (e, Some(before)))?;
    Ok(Started {
        ready,
        refused,
        before,
    })
}

/// Waits until `n` more servers than `before` are ready; the time since `start`. Once
/// every start was answered, fewer than `n` more active servers (ready or starting) mean
/// that a start the hub accepted failed later (JupyterHub answers 202 before the server
/// is up, and a failed server stops counting as active): that ends the wait at once.
async fn watch_ready(
    s: &Subject,
    n: usize,
    before: Before,
    answered: &AtomicBool,
    start: Instant,
) -> Result<Duration, String> {
    let n = n as u64;
    loop {
        let ready = count(s, "ready").await?;
        if ready >= before.ready + n {
            return Ok(start.elapsed());
        }
        if answered.load(Ordering::Relaxed) {
            let active = count(s, "active").await?;
            if active < before.active + n {
                return Err(format!(
                    "{} of {n} servers failed after their start was accepted ({} ready)",
                    before.active + n - active,
                    ready.saturating_sub(before.ready)
                ));
            }
        }
        if start.elapsed() > DEADLINE {
            return Err(format!(
                "not done in {} s ({} of {n} ready)",
                DEADLINE.as_secs(),
                ready.saturating_sub(before.ready)
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a stop may answer: 204 or 202 after a storm; after a failed one, whatever state
/// a server is in (a server that is not running answers 204 on both hubs, or 400 or 404).
const STOPPED: &[StatusCode] = &[StatusCode::NO_CONTENT, StatusCode::ACCEPTED];
const STOPPED_OR_NOT_RUNNING: &[StatusCode] = &[
    StatusCode::NO_CONTENT,
    StatusCode::ACCEPTED,
    StatusCode::BAD_REQUEST,
    StatusCode::NOT_FOUND,
];

/// Stops every storm server at once, each answering one of `accepted`, and waits until
/// no more are active than before the storm; the time it took.
async fn stop_all(
    s: &Subject,
    n: usize,
    active_before: u64,
    accepted: &'static [StatusCode],
) -> Result<Duration, String> {
    let start = Instant::now();
    let asks = all_at_once(s, n, Method::DELETE, accepted);
    let (_, stopped) = tokio::try_join!(asks, watch(s, "active", start, |a| a <= active_before))?;
    Ok(stopped)
}
