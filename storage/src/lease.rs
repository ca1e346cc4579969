//! A leader lease kept in one key of a shared [`Store`], for stores that are not
//! replicated by the nodes themselves (FoundationDB): raft elects a leader for the raft
//! store, and this does for the rest.
//!
//! The key holds `(holder, term, beat)`. The holder rewrites it every `renew_every` with
//! the beat advanced. Another node takes the lease over (with the next term) once it has
//! seen the same record for `duration` of its own clock, measured from the end of the
//! read that first showed it. Only durations on each node's monotonic clock are
//! compared, never one node's time with another's, and no store version is read as a
//! time (FoundationDB's versions jump at a recovery).
//!
//! Why two nodes never both lead: the holder counts its proof from the *start* of its
//! last successful renewal, which committed before any read that shows it ended, so a
//! successor takes over at least `duration` after that start. The holder stops claiming
//! the lease `margin` earlier than that, for clock-rate differences and scheduling. A
//! transaction that takes the lease over reads the key, so a renewal that commits in
//! between makes it conflict instead of both succeeding. A holder paused past its proof
//! (SIGSTOP) has stopped leading when it resumes: its monotonic clock counts the pause.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::{Store, StoreError};

/// How long a lease lasts, and how often its holder renews it.
#[derive(Debug, Clone, Copy)]
pub struct LeaseTiming {
    /// How long a record must stay unchanged before another node takes the lease over.
    pub duration: Duration,
    /// How often the holder renews, and the others look.
    pub renew_every: Duration,
    /// How much earlier than `duration` the holder stops claiming the lease.
    pub margin: Duration,
}

impl LeaseTiming {
    /// The hub's: leadership moves about a second after its holder dies or hangs.
    pub const HUB: LeaseTiming = LeaseTiming {
        duration: Duration::from_millis(1000),
        renew_every: Duration::from_millis(200),
        margin: Duration::from_millis(300),
    };
}

/// The lease's record in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Record {
    holder: u64,
    term: u64,
    beat: u64,
}

/// What this node knows of the lease.
#[derive(Debug, Default)]
struct View {
    /// Who held it at the last look.
    holder: Option<u64>,
    term: u64,
    /// The start of this node's last successful renewal, while it holds the lease.
    proof: Option<Instant>,
}

/// One node's side of the lease; cheap to clone.
#[derive(Clone)]
pub struct StoreLease {
    view: Arc<Mutex<View>>,
    timing: LeaseTiming,
}

impl std::fmt::Debug for StoreLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreLease")
            .field("holder", &self.holder())
            .field("term", &self.term())
            .finish()
    }
}

enum Look {
    /// This node holds the lease (renewed it, or took it).
    Held(Record),
    /// Another node holds it (the record as stored, and decoded when it decodes).
    Other(Vec<u8>, Option<Record>),
}

impl StoreLease {
    /// Starts competing for the lease in `key` of `store` as `node_id`; the task runs
    /// until aborted (then this node stops renewing, and another takes over).
    pub fn run(
        store: Arc<dyn Store>,
        key: Vec<u8>,
        node_id: u64,
        timing: LeaseTiming,
    ) -> (StoreLease, JoinHandle<()>) {
        let lease = StoreLease {
            view: Arc::default(),
            timing,
        };
        let task = tokio::spawn(lease.clone().compete(store, key, node_id));
        (lease, task)
    }

    fn view(&self) -> std::sync::MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// While this node holds the lease: how old its proof is (the start of its last
    /// renewal). `None` when another node holds it, or the proof is too old to count.
    pub fn leadership(&self) -> Option<Duration> {
        let age = self.view().proof?.elapsed();
        (age < self.timing.duration.saturating_sub(self.timing.margin)).then_some(age)
    }

    /// The holder at this node's last look.
    pub fn holder(&self) -> Option<u64> {
        self.view().holder
    }

    /// The lease's term at this node's last look: it grows by one per takeover.
    pub fn term(&self) -> u64 {
        self.view().term
    }

    /// At least how long ago a predecessor's last proof started when this node takes the
    /// lease over (the router counts the leases that predecessor gave from it).
    pub fn handover(&self) -> Duration {
        self.timing.duration
    }

    async fn compete(self, store: Arc<dyn Store>, key: Vec<u8>, me: u64) {
        // the term this process holds; a record of an earlier run of this node is
        // someone else's
        let mut mine: Option<u64> = None;
        // a record held by another (as stored), and when it was first seen
        let mut seen: Option<(Vec<u8>, Instant)> = None;
        let mut failing = false;
        loop {
            let started = Instant::now();
            let expired = seen
                .as_ref()
                .filter(|(_, at)| at.elapsed() >= self.timing.duration)
                .map(|(r, _)| r.as_slice());
            match look(store.as_ref(), &key, me, mine, expired).await {
                Ok(Look::Held(record)) => {
                    if mine != Some(record.term) {
                        tracing::info!(term = record.term, "took the leader lease");
                    }
                    mine = Some(record.term);
                    seen = None;
                    let mut view = self.view();
                    view.holder = Some(me);
                    view.term = record.term;
                    view.proof = Some(started);
                    failing = false;
                }
                Ok(Look::Other(raw, record)) => {
                    if mine.take().is_some() {
                        tracing::warn!(?record, "lost the leader lease");
                    }
                    if record.is_none() && seen.is_none() {
                        tracing::warn!(
                            "the leader lease record does not decode; taking it over once \
                             it has not changed for a whole lease"
                        );
                    }
                    if seen.as_ref().map(|(r, _)| r) != Some(&raw) {
                        seen = Some((raw, Instant::now()));
                    }
                    let mut view = self.view();
                    view.holder = record.map(|r| r.holder);
                    view.term = record.map_or(0, |r| r.term);
                    view.proof = None;
                    failing = false;
                }
                // the proof ages by itself; a conflict is someone else's write
                Err(StoreError::Conflict) => {}
                Err(e) => {
                    if !failing {
                        tracing::warn!("cannot reach the leader lease: {e}");
                    }
                    failing = true;
                }
            }
            tokio::time::sleep(self.timing.renew_every).await;
        }
    }
}

/// One look at the lease: renews it when this process holds it, takes it when it is
/// free or `expired` (a record seen unchanged for a whole lease) is still there.
async fn look(
    store: &dyn Store,
    key: &[u8],
    me: u64,
    mine: Option<u64>,
    expired: Option<&[u8]>,
) -> Result<Look, StoreError> {
    let mut tx = store.begin().await?;
    let raw = tx.get(key).await?;
    let current: Option<Record> = raw.as_deref().and_then(|b| rmp_serde::from_slice(b).ok());
    let next = match (&raw, current) {
        (None, _) => Record {
            holder: me,
            term: 1,
            beat: 0,
        },
        (Some(_), Some(r)) if r.holder == me && Some(r.term) == mine => Record {
            beat: r.beat.wrapping_add(1),
            ..r
        },
        (Some(bytes), r) if Some(bytes.as_slice()) == expired => Record {
            holder: me,
            term: r.map_or(1, |r| r.term + 1),
            beat: 0,
        },
        (Some(bytes), r) => {
            let bytes = bytes.clone();
            tx.commit().await?;
            return Ok(Look::Other(bytes, r));
        }
    };
    let bytes =
        rmp_serde::to_vec(&next).map_err(|e| StoreError::Io(format!("lease record: {e}")))?;
    tx.set(key, &bytes);
    tx.commit().await?;
    Ok(Look::Held(next))
}

/// The tests run under tokio's paused clock: the memory store answers without waiting
/// on real time or on other threads, so the lease's timing is exact and takes no time.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{eventually, POLL_INTERVAL};
    use crate::MemoryStore;

    const FAST: LeaseTiming = LeaseTiming {
        duration: Duration::from_millis(300),
        renew_every: Duration::from_millis(40),
        margin: Duration::from_millis(60),
    };
    const KEY: &[u8] = b"lease";

    #[tokio::test(start_paused = true)]
    async fn the_first_node_takes_the_lease_and_the_others_wait_while_it_renews() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let (a, _ta) = StoreLease::run(store.clone(), KEY.to_vec(), 1, FAST);
        eventually("node 1 leads", Duration::from_secs(2), || async {
            a.leadership().is_some()
        })
        .await;
        let (b, _tb) = StoreLease::run(store.clone(), KEY.to_vec(), 2, FAST);
        let (c, _tc) = StoreLease::run(store.clone(), KEY.to_vec(), 3, FAST);
        // several lease durations: the holder keeps it
        let end = Instant::now() + FAST.duration * 4;
        while Instant::now() < end {
            assert!(b.leadership().is_none() && c.leadership().is_none());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // in virtual time a look takes none: the proof is at most one renewal old
        assert!(a.leadership().unwrap() <= FAST.renew_every);
        assert_eq!((b.holder(), c.holder()), (Some(1), Some(1)));
        assert_eq!((a.term(), b.term()), (1, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn when_the_holder_stops_one_other_takes_over_and_never_while_it_still_claims() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let (a, ta) = StoreLease::run(store.clone(), KEY.to_vec(), 1, FAST);
        eventually("node 1 leads", Duration::from_secs(2), || async {
            a.leadership().is_some()
        })
        .await;
        let (b, _tb) = StoreLease::run(store.clone(), KEY.to_vec(), 2, FAST);
        let (c, _tc) = StoreLease::run(store.clone(), KEY.to_vec(), 3, FAST);
        tokio::time::sleep(FAST.renew_every * 3).await;
        ta.abort();
        let stopped = Instant::now();
        // watch all three: at no moment do two claim the lease
        let mut taken = None;
        while Instant::now() < stopped + FAST.duration * 5 {
            let claims = [&a, &b, &c]
                .iter()
                .filter(|l| l.leadership().is_some())
                .count();
            assert!(claims <= 1, "two nodes claim the lease");
            if taken.is_none() && (b.leadership().is_some() || c.leadership().is_some()) {
                taken = Some(stopped.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let taken = taken.expect("nobody took the lease over");
        assert!(taken >= FAST.duration, "taken over after {taken:?}");
        assert!(taken < FAST.duration * 3, "taken over after {taken:?}");
        let new = if b.leadership().is_some() { &b } else { &c };
        assert_eq!(new.term(), 2);
        assert!(a.leadership().is_none());
        let other = if b.leadership().is_some() { &c } else { &b };
        assert_eq!(other.holder(), new.holder());
    }

    #[tokio::test(start_paused = true)]
    async fn a_restarted_holder_waits_out_its_earlier_run_like_anyone() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let (a, ta) = StoreLease::run(store.clone(), KEY.to_vec(), 1, FAST);
        eventually("node 1 leads", Duration::from_secs(2), || async {
            a.leadership().is_some()
        })
        .await;
        ta.abort();
        let restarted = Instant::now();
        let (again, _t) = StoreLease::run(store.clone(), KEY.to_vec(), 1, FAST);
        eventually("node 1 leads again", Duration::from_secs(2), || async {
            again.leadership().is_some()
        })
        .await;
        // it takes over at its first look once the record stood a whole lease, and the
        // wait sees that within one poll
        assert!(restarted.elapsed() >= FAST.duration);
        assert!(restarted.elapsed() <= FAST.duration + FAST.renew_every + POLL_INTERVAL);
        assert_eq!(again.term(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_record_that_does_not_decode_is_taken_over_only_once_it_stands_still() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let write = |value: &'static [u8]| {
            let store = store.clone();
            async move {
                let mut tx = store.begin().await.unwrap();
                tx.set(KEY, value);
                tx.commit().await.unwrap();
            }
        };
        write(b"from a newer version, 1").await;
        let (a, _ta) = StoreLease::run(store.clone(), KEY.to_vec(), 1, FAST);
        // a holder this node cannot read, still renewing
        for beat in [&b"from a newer version, 2"[..], b"from a newer version, 3"] {
            tokio::time::sleep(FAST.duration * 2 / 3).await;
            assert!(a.leadership().is_none());
            write(beat).await;
        }
        let stood = Instant::now();
        eventually("node 1 leads", Duration::from_secs(2), || async {
            a.leadership().is_some()
        })
        .await;
        assert!(stood.elapsed() >= FAST.duration);
        assert_eq!(a.term(), 1);
    }
}
