//! What the node measures for `/hub/metrics` beside its actors' spawn and stop timings:
//! the duration of every hub request by method, handler and code (JupyterHub's
//! `request_duration_seconds`), and the node's own timings: its start, the re-adoption of
//! the servers a previous run left, route-table rebuilds, logins, logouts, and how late
//! the runtime wakes a sleeping task (JupyterHub's event-loop interval). Recording is
//! atomic additions; a request's series is found under a read lock held for the lookup
//! alone, never across an await.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::http::Method;
use galilean_actors::metrics::{Histogram, HistogramSnapshot, DEFAULT_BUCKETS};

/// JupyterHub's buckets for `event_loop_interval_seconds`: 5 ms steps from 50 ms to
/// 75 ms (its default resolution is 50 ms), then the default ones.
pub const EVENT_LOOP_BUCKETS: &[f64] = &[
    0.05, 0.055, 0.06, 0.065, 0.07, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// How often the runtime's responsiveness is sampled (JupyterHub's
/// `event_loop_interval_resolution`).
pub const EVENT_LOOP_RESOLUTION: Duration = Duration::from_millis(50);

/// The `handler` label of requests no route matched (the hub's 404 page).
pub const UNMATCHED: &str = "unmatched";

/// `method` and `code` of a request's series.
type MethodCode = (&'static str, u16);

/// The node's measurements.
#[derive(Debug)]
pub struct HubMeasures {
    /// handler (the route's path template) → (method, code) → durations.
    requests: RwLock<HashMap<String, HashMap<MethodCode, Arc<Histogram>>>>,
    /// Route-table rebuilds (`check_routes_duration_seconds`).
    pub check_routes: Histogram,
    /// This node's start (`hub_startup_duration_seconds`).
    pub hub_startup: Histogram,
    /// The re-adoption of servers at start (`init_spawners_duration_seconds`).
    pub init_spawners: Histogram,
    /// Login form posts: `[success, failure]` (`login_duration_seconds`).
    pub login: [Histogram; 2],
    /// Logouts (`logout_duration_seconds`).
    pub logout: Histogram,
    /// The runtime's responsiveness (`event_loop_interval_seconds`).
    pub event_loop: Histogram,
}

impl Default for HubMeasures {
    fn default() -> HubMeasures {
        HubMeasures {
            requests: RwLock::default(),
            check_routes: Histogram::new(DEFAULT_BUCKETS),
            hub_startup: Histogram::new(DEFAULT_BUCKETS),
            init_spawners: Histogram::new(DEFAULT_BUCKETS),
            login: [
                Histogram::new(DEFAULT_BUCKETS),
                Histogram::new(DEFAULT_BUCKETS),
            ],
            logout: Histogram::new(DEFAULT_BUCKETS),
            event_loop: Histogram::new(EVENT_LOOP_BUCKETS),
        }
    }
}

/// A method as a label: the standard ones by name, any other as `OTHER` (a client must
/// not be able to add series at will).
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// One request series when read: its labels and durations.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestSeries {
    pub method: &'static str,
    pub handler: String,
    pub code: u16,
    pub durations: HistogramSnapshot,
}

impl HubMeasures {
    /// A hub request answered with `code` after `d`; `handler` is the route's path
    /// template (bounded by the router's routes) or [`UNMATCHED`].
    pub fn request(&self, method: &Method, handler: &str, code: u16, d: Duration) {
        let key = (method_label(method), code);
        let found = {
            let series = self.requests.read().unwrap_or_else(|e| e.into_inner());
            series.get(handler).and_then(|m| m.get(&key)).cloned()
        };
        let histogram = match found {
            Some(h) => h,
            None => {
                let mut series = self.requests.write().unwrap_or_else(|e| e.into_inner());
                series
                    .entry(handler.to_owned())
                    .or_default()
                    .entry(key)
                    .or_insert_with(|| Arc::new(Histogram::new(DEFAULT_BUCKETS)))
                    .clone()
            }
        };
        histogram.observe(d);
    }

    /// Every request series, sorted by handler, method and code.
    pub fn requests(&self) -> Vec<RequestSeries> {
        let series = self.requests.read().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<RequestSeries> = series
            .iter()
            .flat_map(|(handler, by)| {
                by.iter().map(|(&(method, code), h)| RequestSeries {
                    method,
                    handler: handler.clone(),
                    code,
                    durations: h.snapshot(),
                })
            })
            .collect();
        drop(series);
        out.sort_by(|a, b| (&a.handler, a.method, a.code).cmp(&(&b.handler, b.method, b.code)));
        out
    }
}

/// Samples, forever, how late the runtime wakes a task that sleeps
/// [`EVENT_LOOP_RESOLUTION`], as JupyterHub measures its event loop: a delay under
/// twice the resolution counts as the resolution itself.
pub async fn measure_event_loop(measures: Arc<HubMeasures>) {
    let mut last = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(EVENT_LOOP_RESOLUTION).await;
        let now = tokio::time::Instant::now();
        let tick = now - last;
        last = now;
        let delay = if tick < 2 * EVENT_LOOP_RESOLUTION {
            EVENT_LOOP_RESOLUTION
        } else {
            tick - EVENT_LOOP_RESOLUTION
        };
        if delay >= Duration::from_secs(1) {
            tracing::warn!(
                seconds = delay.as_secs_f64(),
                "the runtime was unresponsive"
            );
        }
        measures.event_loop.observe(delay);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_method_handler_and_code() {
        let m = HubMeasures::default();
        let ms = Duration::from_millis;
        m.request(&Method::GET, "/hub/api/users", 200, ms(3));
        m.request(&Method::GET, "/hub/api/users", 200, ms(30));
        m.request(&Method::GET, "/hub/api/users", 403, ms(1));
        m.request(&Method::POST, UNMATCHED, 404, ms(1));
        let custom = Method::from_bytes(b"BREW").unwrap();
        m.request(&custom, UNMATCHED, 404, ms(1));
        let got: Vec<(&str, String, u16, u64)> = m
            .requests()
            .into_iter()
            .map(|s| (s.method, s.handler, s.code, s.durations.count))
            .collect();
        assert_eq!(
            got,
            [
                ("GET", "/hub/api/users".to_owned(), 200, 2),
                ("GET", "/hub/api/users".to_owned(), 403, 1),
                ("OTHER", UNMATCHED.to_owned(), 404, 1),
                ("POST", UNMATCHED.to_owned(), 404, 1),
            ]
        );
    }

    #[tokio::test]
    async fn a_blocked_runtime_shows_as_a_long_interval() {
        let m = Arc::new(HubMeasures::default());
        let task = tokio::spawn(measure_event_loop(m.clone()));
        tokio::time::sleep(Duration::from_millis(120)).await;
        // the test's runtime has one thread: blocking it blocks the sampler too
        std::thread::sleep(Duration::from_millis(1300));
        tokio::time::sleep(Duration::from_millis(120)).await;
        let s = m.event_loop.snapshot();
        let within_a_second = s.buckets.iter().find(|(le, _)| *le == 1.0).unwrap().1;
        assert!(s.count >= 2 && within_a_second < s.count, "{s:?}");
        assert!(s.sum_seconds >= 1.2, "{s:?}");
        task.abort();
    }
}
