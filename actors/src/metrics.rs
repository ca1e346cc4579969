//! What a node measures for its metrics page, kept in atomics so that recording takes no
//! lock: [`Histogram`] (fixed buckets, Prometheus' shape), and the durations of the
//! spawns and stops this node's server actors run ([`ServerTimings`], JupyterHub's
//! `server_spawn_duration_seconds` and `server_stop_seconds`). Rendering is the node's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// prometheus_client's default buckets (seconds), which JupyterHub's request, stop and
/// other timings use.
pub const DEFAULT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// JupyterHub's buckets for `server_spawn_duration_seconds`: spawns can take a while.
pub const SPAWN_BUCKETS: &[f64] = &[
    0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0,
];

/// A histogram of durations in fixed buckets (upper bounds in seconds, `+Inf` implied).
/// Observing is two atomic additions; a reader sees each counter exactly, though not
/// all of them at one instant.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One counter per bound, then the overflow (above every bound); not cumulative.
    counts: Box<[AtomicU64]>,
    sum_nanos: AtomicU64,
}

/// What a [`Histogram`] held when read.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// `(upper bound, observations at or below it)`, cumulative, without `+Inf`.
    pub buckets: Vec<(f64, u64)>,
    /// Every observation (the `+Inf` bucket).
    pub count: u64,
    pub sum_seconds: f64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Counts one observation of `d`.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = self.bounds.partition_point(|&b| b < secs);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut total = 0;
        let mut buckets = Vec::with_capacity(self.bounds.len());
        for (bound, count) in self.bounds.iter().zip(self.counts.iter()) {
            total += count.load(Ordering::Relaxed);
            buckets.push((*bound, total));
        }
        if let Some(overflow) = self.counts.last() {
            total += overflow.load(Ordering::Relaxed);
        }
        HistogramSnapshot {
            buckets,
            count: total,
            sum_seconds: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }
}

/// How a spawn ended, as JupyterHub labels it (`status`, `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpawnOutcome {
    /// The server answered.
    Success,
    /// The spawn failed (the launch, the timeout, the readiness wait): JupyterHub's
    /// `error` for an exception that is not a `SpawnException`.
    Error,
    /// The process exited before it answered (JupyterHub's `error`, `exited`).
    Exited,
}

/// The `(status, reason)` label pairs of `server_spawn_duration_seconds`: JupyterHub's
/// pre-created ones (the failures Galilean never records, a throttle or the user
/// limits, stay at zero so that dashboards find them), then `error`/`exited`.
pub const SPAWN_SERIES: [(&str, &str); 7] = [
    ("success", ""),
    ("failure", ""),
    ("error", ""),
    ("failure", "throttled"),
    ("failure", "too-many-users"),
    ("failure", "already-pending"),
    ("error", "exited"),
];

/// The `status` labels of `server_stop_seconds`.
pub const STOP_SERIES: [&str; 2] = ["success", "failure"];

/// The spawns and stops of this node's server actors.
#[derive(Debug)]
pub struct ServerTimings {
    /// One per [`SPAWN_SERIES`] entry.
    pub spawns: [Histogram; 7],
    /// One per [`STOP_SERIES`] entry.
    pub stops: [Histogram; 2],
}

impl Default for ServerTimings {
    fn default() -> ServerTimings {
        ServerTimings {
            spawns: std::array::from_fn(|_| Histogram::new(SPAWN_BUCKETS)),
            stops: std::array::from_fn(|_| Histogram::new(DEFAULT_BUCKETS)),
        }
    }
}

impl ServerTimings {
    /// A spawn that ended after `d`, from its start request to its end.
    pub fn spawned(&self, outcome: SpawnOutcome, d: Duration) {
        let i = match outcome {
            SpawnOutcome::Success => 0,
            SpawnOutcome::Error => 2,
            SpawnOutcome::Exited => 6,
        };
        self.spawns[i].observe(d);
    }

    /// A stop that ended after `d`; `ok` when every process stopped without error.
    pub fn stopped(&self, ok: bool, d: Duration) {
        self.stops[usize::from(!ok)].observe(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_fall_in_the_first_bucket_that_holds_them() {
        let h = Histogram::new(&[0.1, 1.0]);
        h.observe(Duration::from_millis(100)); // on the bound: le="0.1"
        h.observe(Duration::from_millis(500));
        h.observe(Duration::from_secs(3)); // only +Inf
        let s = h.snapshot();
        assert_eq!(s.buckets, vec![(0.1, 1), (1.0, 2)]);
        assert_eq!(s.count, 3);
        assert!((s.sum_seconds - 3.6).abs() < 1e-9);
    }

    #[test]
    fn a_huge_duration_saturates_instead_of_panicking() {
        let h = Histogram::new(DEFAULT_BUCKETS);
        h.observe(Duration::MAX);
        h.observe(Duration::MAX);
        assert_eq!(h.snapshot().count, 2);
    }

    #[test]
    fn outcomes_land_in_their_series() {
        let t = ServerTimings::default();
        t.spawned(SpawnOutcome::Success, Duration::from_secs(2));
        t.spawned(SpawnOutcome::Exited, Duration::from_secs(1));
        t.stopped(false, Duration::from_millis(5));
        let counts: Vec<u64> = t.spawns.iter().map(|h| h.snapshot().count).collect();
        assert_eq!(counts, [1, 0, 0, 0, 0, 0, 1]);
        assert_eq!(SPAWN_SERIES[6], ("error", "exited"));
        assert_eq!(t.stops[1].snapshot().count, 1);
        assert_eq!(t.stops[0].snapshot().count, 0);
    }
}
