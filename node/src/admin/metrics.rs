//! `GET /hub/metrics` (and `/hub/api/metrics`, as JupyterHub routes both): this node's
//! measurements in Prometheus' text format: JupyterHub's metric names where they apply
//! (`jupyterhub_*`, from its `metrics.py`), then Galilean's own (`galilean_*`). Behind
//! `read:metrics` unless `hub.authenticate_prometheus = false`.
//!
//! Counts of users and servers are the cluster's (every node's replica holds them all);
//! durations are this node's. Not exported, having no meaning here: the external
//! proxy's timings (`proxy_poll`, `proxy_add`, `proxy_delete`), `server_poll`, and
//! `csp_reports` (this hub takes no CSP reports). Unlike prometheus_client, no
//! `_created` series are written.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use galilean_actors::metrics::{HistogramSnapshot, SPAWN_SERIES, STOP_SERIES};
use galilean_actors::policy::scopes::Target;
use galilean_proto::records::ServerPhase;
use galilean_proto::time::now_micros;

use crate::api::caller::Caller;
use crate::app::AppState;
use crate::error::{ApiResult, HttpError};

type App = State<Arc<AppState>>;

/// The text format's content type, as prometheus_client's `CONTENT_TYPE_LATEST`.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// JupyterHub's `active_users` periods: label and length in seconds.
const PERIODS: [(&str, i64); 3] = [("24h", 86_400), ("7d", 7 * 86_400), ("30d", 30 * 86_400)];

pub async fn metrics(State(app): App, caller: Option<Caller>) -> ApiResult<Response> {
    if app.config.hub.authenticate_prometheus {
        let allowed = caller.is_some_and(|Caller(id)| {
            app.replica
                .read(|s| id.scopes.check_in("read:metrics", Target::Global, s))
                == galilean_actors::policy::scopes::Access::Allowed
        });
        if !allowed {
            return Err(HttpError::new(
                StatusCode::FORBIDDEN,
                "Access to metrics requires scope 'read:metrics'",
            ));
        }
    }
    let body = render(&app);
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response())
}

/// Writes the text format.
struct Text(String);

impl Text {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", escape(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    fn gauge(&mut self, name: &str, help: &str, value: usize) {
        self.head(name, "gauge", help);
        self.sample(name, &[], float(value as f64));
    }

    /// One series of a histogram (its `# HELP`/`# TYPE` written once before).
    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &HistogramSnapshot) {
        let bucket = format!("{name}_bucket");
        for (le, count) in &h.buckets {
            let le = float(*le);
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, float(*count as f64));
        }
        let mut with_le = labels.to_vec();
        with_le.push(("le", "+Inf"));
        self.sample(&bucket, &with_le, float(h.count as f64));
        self.sample(&format!("{name}_count"), labels, float(h.count as f64));
        self.sample(&format!("{name}_sum"), labels, float(h.sum_seconds));
    }
}

/// A label value in the text format: backslash, quote and newline escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A number as prometheus_client writes it (`1.0`, `0.005`).
fn float(v: f64) -> String {
    format!("{v:?}")
}

/// Everything the page shows.
fn render(app: &AppState) -> String {
    let now = now_micros();
    let (users, active_servers, running, active) = app.replica.read(|s| {
        let active = PERIODS.map(|(_, secs)| {
            let cutoff = now - secs * 1_000_000;
            s.users
                .values()
                .filter(|u| u.last_activity.is_some_and(|t| t >= cutoff))
                .count()
        });
        let count =
            |phase: fn(ServerPhase) -> bool| s.servers.values().filter(|r| phase(r.phase)).count();
        (
            s.users.len(),
            // JupyterHub's "running" servers are its active ones: ready or pending
            count(|p| p != ServerPhase::Stopped),
            count(|p| p == ServerPhase::Running),
            active,
        )
    });
    let mut t = Text(String::with_capacity(16 * 1024));
    let m = &app.measures;

    t.head(
        "jupyterhub_request_duration_seconds",
        "histogram",
        "Request duration for all HTTP requests",
    );
    for r in m.requests() {
        let code = r.code.to_string();
        let labels = [
            ("method", r.method),
            ("handler", r.handler.as_str()),
            ("code", code.as_str()),
        ];
        t.histogram("jupyterhub_request_duration_seconds", &labels, &r.durations);
    }
    let spawn = "jupyterhub_server_spawn_duration_seconds";
    t.head(
        spawn,
        "histogram",
        "Time taken for server spawning operation",
    );
    for ((status, reason), h) in SPAWN_SERIES.iter().zip(&app.ctx.timings.spawns) {
        let labels = [("status", *status), ("reason", *reason)];
        t.histogram(spawn, &labels, &h.snapshot());
    }
    t.gauge(
        "jupyterhub_running_servers",
        "The number of user servers currently running",
        active_servers,
    );
    t.gauge("jupyterhub_total_users", "Total number of users", users);
    t.head(
        "jupyterhub_active_users",
        "gauge",
        "Number of users who were active in the given time period",
    );
    for ((period, _), n) in PERIODS.iter().zip(active) {
        t.sample(
            "jupyterhub_active_users",
            &[("period", period)],
            float(n as f64),
        );
    }
    let plain = [
        (
            "jupyterhub_check_routes_duration_seconds",
            "Time taken to validate all routes in proxy",
            &m.check_routes,
        ),
        (
            "jupyterhub_hub_startup_duration_seconds",
            "Time taken for Hub to start",
            &m.hub_startup,
        ),
        (
            "jupyterhub_init_spawners_duration_seconds",
            "Time taken for spawners to initialize",
            &m.init_spawners,
        ),
        (
            "jupyterhub_logout_duration_seconds",
            "duration for all logout requests",
            &m.logout,
        ),
        (
            "jupyterhub_event_loop_interval_seconds",
            "Distribution of measured event loop intervals",
            &m.event_loop,
        ),
    ];
    for (name, help, h) in plain {
        t.head(name, "histogram", help);
        t.histogram(name, &[], &h.snapshot());
    }
    let login = "jupyterhub_login_duration_seconds";
    t.head(
        login,
        "histogram",
        "duration for all authentication attempts",
    );
    for (status, h) in ["success", "failure"].iter().zip(&m.login) {
        t.histogram(login, &[("status", status)], &h.snapshot());
    }
    let stop = "jupyterhub_server_stop_seconds";
    t.head(
        stop,
        "histogram",
        "Time taken for server stopping operation",
    );
    for (status, h) in STOP_SERIES.iter().zip(&app.ctx.timings.stops) {
        t.histogram(stop, &[("status", status)], &h.snapshot());
    }

    let c = app.store.counters().snapshot();
    let peak = app
        .ctx
        .spawning_peak
        .load(std::sync::atomic::Ordering::SeqCst);
    let counters = [
        ("galilean_store_reads_total", "counter", c.reads),
        (
            "galilean_store_write_commits_total",
            "counter",
            c.write_commits,
        ),
        ("galilean_store_mutations_total", "counter", c.mutations),
        ("galilean_store_conflicts_total", "counter", c.conflicts),
        ("galilean_users", "gauge", users as u64),
        ("galilean_running_servers", "gauge", running as u64),
        ("galilean_spawns_concurrent_peak", "gauge", peak as u64),
    ];
    for (name, kind, value) in counters {
        let _ = writeln!(t.0, "# TYPE {name} {kind}\n{name} {value}");
    }
    t.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use galilean_actors::metrics::Histogram;

    #[test]
    fn a_histogram_is_written_as_prometheus_client_writes_it() {
        let h = Histogram::new(&[0.5, 1.0]);
        h.observe(std::time::Duration::from_millis(250));
        h.observe(std::time::Duration::from_secs(2));
        let mut t = Text(String::new());
        t.head("x_seconds", "histogram", "help text");
        t.histogram("x_seconds", &[("status", "a\"b")], &h.snapshot());
        assert_eq!(
            t.0,
            "# HELP x_seconds help text\n# TYPE x_seconds histogram\n\
             x_seconds_bucket{status=\"a\\\"b\",le=\"0.5\"} 1.0\n\
             x_seconds_bucket{status=\"a\\\"b\",le=\"1.0\"} 1.0\n\
             x_seconds_bucket{status=\"a\\\"b\",le=\"+Inf\"} 2.0\n\
             x_seconds_count{status=\"a\\\"b\"} 2.0\n\
             x_seconds_sum{status=\"a\\\"b\"} 2.25\n"
        );
    }
}
