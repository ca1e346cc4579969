//! The conformance suite every [`Store`] backend must pass, instantiated per backend by
//! [`store_conformance!`](crate::store_conformance).
//!
//! ```ignore
//! // in a backend's tests (another crate: enable this crate's `conformance` feature)
//! galilean_storage::store_conformance!(conformance, || async {
//!     let dir = tempfile::tempdir().unwrap();
//!     let store = MyStore::open(dir.path()).await.unwrap();
//!     (store, dir) // the guard (here the temp dir) lives until the test ends
//! });
//! ```
//!
//! Each case is a public async function taking a fresh, empty store; the macro makes one
//! `#[test]` per case, running it on a two-thread tokio runtime. Cases assert only what
//! the [`Store`] contract promises (versions increase but need not be consecutive, the
//! feed is checked by what arrives next rather than by an empty queue), so that remote
//! backends can pass them too.

mod commits;
mod reads;

use std::future::Future;
use std::sync::Arc;

pub use self::commits::*;
pub use self::reads::*;
use crate::{KeyValue, Store, Version};

/// Generates the conformance suite as a test module named `$module`, each test getting a
/// store from `$factory`: a closure returning a future of `(store, guard)`, where `store`
/// implements [`Store`] and `guard` is dropped after the test (use `()` for none). The
/// expansion site's names are visible in the factory.
#[macro_export]
macro_rules! store_conformance {
    ($module:ident, $factory:expr $(,)?) => {
        $crate::store_conformance!(@cases $module, $factory;
            get_set_clear,
            clear_range_clears_half_open_range,
            range_reads_respect_bounds_and_order,
            range_reads_with_limits,
            many_rows,
            read_your_writes_points,
            read_your_writes_ranges,
            snapshot_isolation,
            conflict_on_a_read_key,
            conflict_on_a_read_range,
            limited_range_read_conflicts_only_up_to_its_last_row,
            disjoint_transactions_do_not_conflict,
            blind_writes_do_not_conflict,
            explicit_read_conflict_ranges,
            versions_increase,
            transact_retries_until_serializable,
            change_feed_delivers_commits_in_order,
            size_limits,
            counters,
        );
    };
    (@cases $module:ident, $factory:expr; $($case:ident),* $(,)?) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $case() {
                    $crate::conformance::run($factory, $crate::conformance::$case);
                }
            )*
        }
    };
}

/// Runs one case on a fresh store from `factory`, on a two-thread tokio runtime.
pub fn run<F, Fut, S, G, C, CFut>(factory: F, case: C)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = (S, G)>,
    S: Store,
    C: FnOnce(Arc<dyn Store>) -> CFut,
    CFut: Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("building a tokio runtime");
    runtime.block_on(async move {
        let (store, guard) = factory().await;
        case(Arc::new(store)).await;
        drop(guard);
    });
}

/// Commits one transaction that sets `pairs`.
async fn put(store: &dyn Store, pairs: &[(&[u8], &[u8])]) -> Version {
    let mut tx = store.begin().await.unwrap();
    for (k, v) in pairs {
        tx.set(k, v);
    }
    tx.commit().await.unwrap()
}

/// Reads `[begin, end)` in a fresh transaction.
async fn scan(store: &dyn Store, begin: &[u8], end: &[u8]) -> Vec<KeyValue> {
    let mut tx = store.begin().await.unwrap();
    tx.get_range(begin, end, 0, false).await.unwrap()
}

/// Reads one key in a fresh transaction.
async fn get(store: &dyn Store, key: &[u8]) -> Option<Vec<u8>> {
    store.begin().await.unwrap().get(key).await.unwrap()
}

fn keys(rows: &[KeyValue]) -> Vec<&[u8]> {
    rows.iter().map(|(k, _)| k.as_slice()).collect()
}
