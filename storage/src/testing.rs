//! Waiting in tests: [`eventually`] looks at a condition every [`POLL_INTERVAL`] until it
//! holds, and fails the test naming what it waited for when it does not within a bound.
//!
//! Built for this crate's tests, and for other crates' with the `testing` feature. Tests
//! wait with these, never with a loop of their own around `sleep`.
//!
//! A check answers with any [`Outcome`]: a `bool` (whether the condition holds), an
//! `Option<T>` (`Some` once there is a value to go on with), or a `Result<T, E>` whose
//! `Err` says what was seen instead, shown when the wait fails.
//!
//! ```
//! # async fn example(node: &std::sync::atomic::AtomicU64) {
//! use std::sync::atomic::Ordering;
//! use std::time::Duration;
//! use galilean_storage::testing::eventually;
//!
//! let leader = eventually("node 1 knows a leader", Duration::from_secs(10), || async {
//!     let seen = node.load(Ordering::Relaxed);
//!     if seen != 0 { Ok(seen) } else { Err("no leader yet") }
//! })
//! .await;
//! # }
//! ```
//!
//! [`eventually`] sleeps on tokio's clock, so under a paused clock
//! (`#[tokio::test(start_paused = true)]`) it waits in virtual time.
//! [`eventually_blocking`] is its twin for code that is not async (it sleeps the thread).

use std::fmt;
use std::future::Future;
use std::time::Duration;

/// How often [`eventually`] and [`eventually_blocking`] look.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// What a check answers: done (with a value), or not yet (perhaps with what it saw).
pub trait Outcome {
    /// What the wait gives back once the condition holds.
    type Value;
    /// What a check that is not done yet saw, for the failure message.
    type Seen: fmt::Display;
    /// `Ok` when done; `Err(Some(seen))` or `Err(None)` when not yet.
    fn outcome(self) -> Result<Self::Value, Option<Self::Seen>>;
}

/// Whether the condition holds.
impl Outcome for bool {
    type Value = ();
    type Seen = std::convert::Infallible;
    fn outcome(self) -> Result<(), Option<Self::Seen>> {
        if self {
            Ok(())
        } else {
            Err(None)
        }
    }
}

/// `Some(value)` once the condition holds.
impl<T> Outcome for Option<T> {
    type Value = T;
    type Seen = std::convert::Infallible;
    fn outcome(self) -> Result<T, Option<Self::Seen>> {
        self.ok_or(None)
    }
}

/// `Ok(value)` once the condition holds; `Err(seen)` says what was seen instead.
impl<T, E: fmt::Display> Outcome for Result<T, E> {
    type Value = T;
    type Seen = E;
    fn outcome(self) -> Result<T, Option<E>> {
        self.map_err(Some)
    }
}

/// Text that is made only when shown: a `what` for [`eventually`], or what a check saw,
/// with context that costs something to gather (a process's log), which only a failed
/// wait shows.
pub struct Lazy<F>(pub F);

impl<F: Fn() -> String> fmt::Display for Lazy<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&(self.0)())
    }
}

/// Runs `check` now and then every [`POLL_INTERVAL`] (tokio's clock) until its outcome is
/// done, and gives back its value. Panics with "timed out after {within:?} waiting until
/// {what}" (and what the last check saw, if it said) when it is not done `within` from
/// the start: the last check runs at that moment, and a check that runs past it is the
/// last one. `what` is formatted only then; phrase it as the condition ("node 1 leads").
pub async fn eventually<O, Fut>(
    what: impl fmt::Display,
    within: Duration,
    mut check: impl FnMut() -> Fut,
) -> O::Value
where
    O: Outcome,
    Fut: Future<Output = O>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match check().await.outcome() {
            Ok(value) => return value,
            Err(seen) if tokio::time::Instant::now() >= deadline => timed_out(what, within, seen),
            Err(_) => {}
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        tokio::time::sleep(POLL_INTERVAL.min(left)).await;
    }
}

/// [`eventually`] for code that is not async: the same checks and message, sleeping the
/// thread (`std::thread::sleep`) between them, on the real clock.
pub fn eventually_blocking<O: Outcome>(
    what: impl fmt::Display,
    within: Duration,
    mut check: impl FnMut() -> O,
) -> O::Value {
    let deadline = std::time::Instant::now() + within;
    loop {
        match check().outcome() {
            Ok(value) => return value,
            Err(seen) if std::time::Instant::now() >= deadline => timed_out(what, within, seen),
            Err(_) => {}
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        std::thread::sleep(POLL_INTERVAL.min(left));
    }
}

fn timed_out(what: impl fmt::Display, within: Duration, seen: Option<impl fmt::Display>) -> ! {
    match seen {
        Some(seen) => panic!("timed out after {within:?} waiting until {what}\nlast seen: {seen}"),
        None => panic!("timed out after {within:?} waiting until {what}"),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::sync::{Arc, Mutex};

    use tokio::time::Instant;

    use super::*;

    /// A check that is done at its `n`th call, and counts its calls.
    fn done_at(
        n: usize,
        calls: &Cell<usize>,
    ) -> impl FnMut() -> std::future::Ready<Option<usize>> + '_ {
        move || {
            calls.set(calls.get() + 1);
            std::future::ready((calls.get() >= n).then_some(calls.get()))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn it_gives_the_value_as_soon_as_the_check_does() {
        let calls = Cell::new(0);
        let began = Instant::now();
        let value = eventually("the third call", Duration::from_secs(1), done_at(3, &calls)).await;
        assert_eq!((value, calls.get()), (3, 3));
        assert_eq!(began.elapsed(), POLL_INTERVAL * 2);
        // done at once: no wait at all
        let began = Instant::now();
        eventually("true", Duration::from_secs(1), || async { true }).await;
        assert_eq!(began.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn bool_and_result_checks_work_too() {
        let calls = Cell::new(0);
        let is_ready = || {
            calls.set(calls.get() + 1);
            std::future::ready(calls.get() == 2)
        };
        eventually("the second call", Duration::from_secs(1), is_ready).await;
        assert_eq!(calls.get(), 2);
        let seen = Cell::new(0);
        let value = eventually("the count is 3", Duration::from_secs(1), || {
            seen.set(seen.get() + 1);
            std::future::ready(match seen.get() {
                3 => Ok("three"),
                n => Err(n),
            })
        })
        .await;
        assert_eq!(value, "three");
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "timed out after 100ms waiting until the answer is 42")]
    async fn it_panics_naming_what_it_waited_for() {
        eventually("the answer is 42", Duration::from_millis(100), || async {
            None::<u32>
        })
        .await;
    }

    /// The panic's message and moment, for a wait that fails.
    async fn failure<O: Outcome + Send + 'static, Fut>(
        within: Duration,
        check: impl FnMut() -> Fut + Send + 'static,
    ) -> (String, Duration)
    where
        O::Value: Send,
        Fut: Future<Output = O> + Send + 'static,
    {
        let began = Instant::now();
        let Err(failed) = tokio::spawn(eventually("it is done", within, check)).await else {
            panic!("the wait did not fail");
        };
        let panic = failed.into_panic();
        let message = match panic.downcast::<String>() {
            Ok(message) => *message,
            Err(panic) => panic.downcast_ref::<&str>().unwrap().to_string(),
        };
        (message, began.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn it_gives_up_exactly_after_within_with_what_the_last_check_saw() {
        let within = Duration::from_millis(110);
        let (message, took) = failure(within, || async { false }).await;
        assert_eq!(message, "timed out after 110ms waiting until it is done");
        assert_eq!(took, within);

        let count = Arc::new(Mutex::new(0));
        let (message, took) = failure(within, move || {
            let count = count.clone();
            async move {
                let mut count = count.lock().unwrap();
                *count += 1;
                Err::<(), _>(format!("{count} calls"))
            }
        })
        .await;
        // at 0, 20, ..., 100 ms and at the deadline
        assert_eq!(
            message,
            "timed out after 110ms waiting until it is done\nlast seen: 7 calls"
        );
        assert_eq!(took, within);
    }

    #[tokio::test(start_paused = true)]
    async fn it_looks_every_poll_interval_and_once_more_at_the_deadline() {
        let times = Arc::new(Mutex::new(Vec::new()));
        let began = Instant::now();
        let seen = times.clone();
        failure(Duration::from_millis(50), move || {
            seen.lock().unwrap().push(began.elapsed());
            async { None::<()> }
        })
        .await;
        let ms = |n| Duration::from_millis(n);
        assert_eq!(*times.lock().unwrap(), [ms(0), ms(20), ms(40), ms(50)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_check_that_runs_past_the_deadline_is_the_last() {
        let calls = Arc::new(Mutex::new(0));
        let counted = calls.clone();
        let (_, took) = failure(Duration::from_millis(30), move || {
            *counted.lock().unwrap() += 1;
            async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                false
            }
        })
        .await;
        assert_eq!(
            (*calls.lock().unwrap(), took),
            (1, Duration::from_millis(100))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn what_is_formatted_only_when_the_wait_fails() {
        let made = Cell::new(0);
        let what = Lazy(|| {
            made.set(made.get() + 1);
            "expensive".to_owned()
        });
        eventually(what, Duration::from_secs(1), || async { true }).await;
        assert_eq!(made.get(), 0);
        assert_eq!(Lazy(|| "made".to_owned()).to_string(), "made");
    }

    #[test]
    fn the_blocking_twin_waits_on_the_real_clock() {
        let calls = Cell::new(0);
        let began = std::time::Instant::now();
        let value = eventually_blocking("the third call", Duration::from_secs(10), || {
            calls.set(calls.get() + 1);
            (calls.get() == 3).then_some("done")
        });
        assert_eq!((value, calls.get()), ("done", 3));
        assert!(began.elapsed() >= POLL_INTERVAL * 2);
    }

    #[test]
    #[should_panic(
        expected = "timed out after 50ms waiting until the file exists\nlast seen: no such file"
    )]
    fn the_blocking_twin_panics_naming_what_it_waited_for() {
        eventually_blocking("the file exists", Duration::from_millis(50), || {
            Err::<(), _>("no such file")
        });
    }
}
