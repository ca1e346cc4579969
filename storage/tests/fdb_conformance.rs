//! The storage conformance suite against the FoundationDB backend.
//!
//! It runs only where `FDB_CLUSTER_FILE` names the cluster file of a FoundationDB cluster
//! to test against; without it the test prints that it was skipped and passes. The CI
//! machines have no libfdb_c (this binary does not even link there), so CI only
//! compile-checks this file (`scripts/check-fdb`). Each case gets a fresh store under a
//! random root prefix, cleared afterwards.
//!
//! The cases run one after another inside one test, not as one test each as
//! `store_conformance!` makes them: FoundationDB's client network can start once per
//! process and must be stopped before the process exits (`fdb::with_network`), and
//! libtest offers no place that runs after its last test. The list below is the macro's,
//! except that `size_limits` runs with this store's key limit (`fdb_size_limits`): keys
//! of `set` are limited to `FdbStore::max_key_bytes`, a few bytes under `MAX_KEY_BYTES`
//! (see `fdb`'s docs).
//! A case added to the suite must be added here too.

#![cfg(feature = "fdb")]

use std::future::Future;
use std::sync::Arc;

use galilean_storage::conformance;
use galilean_storage::fdb::{self, FdbStore};
use galilean_storage::tuple::{self, Key};

#[test]
fn conformance_against_fdb() {
    let Ok(cluster_file) = std::env::var("FDB_CLUSTER_FILE") else {
        eprintln!("skipped: FDB_CLUSTER_FILE is not set (no FoundationDB cluster to test against)");
        return;
    };
    let failed =
        fdb::with_network(|| run_cases(&cluster_file)).expect("starting the FoundationDB client");
    assert!(failed.is_empty(), "failed cases: {failed:?}");
}

/// Runs every case; returns the names of those that failed.
fn run_cases(cluster_file: &str) -> Vec<&'static str> {
    let mut failed = Vec::new();
    macro_rules! cases {
        ($($case:path),* $(,)?) => {
            $(
                if !run_case(cluster_file, stringify!($case), |store| $case(store)) {
                    failed.push(stringify!($case));
                }
            )*
        };
    }
    cases!(
        conformance::get_set_clear,
        conformance::clear_range_clears_half_open_range,
        conformance::range_reads_respect_bounds_and_order,
        conformance::range_reads_with_limits,
        conformance::many_rows,
        conformance::read_your_writes_points,
        conformance::read_your_writes_ranges,
        conformance::snapshot_isolation,
        conformance::conflict_on_a_read_key,
        conformance::conflict_on_a_read_range,
        conformance::limited_range_read_conflicts_only_up_to_its_last_row,
        conformance::disjoint_transactions_do_not_conflict,
        conformance::blind_writes_do_not_conflict,
        conformance::explicit_read_conflict_ranges,
        conformance::versions_increase,
        conformance::transact_retries_until_serializable,
        conformance::change_feed_delivers_commits_in_order,
        fdb_size_limits,
        conformance::counters,
    );
    failed
}

/// Runs `case` on a fresh store on its own runtime, then clears the store's root.
fn run_case<C, F>(cluster_file: &str, name: &str, case: C) -> bool
where
    C: FnOnce(Arc<FdbStore>) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("building a tokio runtime");
    runtime.block_on(async {
        let root = Key::new()
            .str("galilean-conformance")
            .bytes(&rand::random::<[u8; 16]>())
            .build();
        let store = FdbStore::open(Some(cluster_file), &root)
            .await
            .expect("opening the fdb store");
        // a panicking case fails its task, not this function
        let outcome = tokio::spawn(case(Arc::new(store))).await;
        clear(cluster_file, &root).await;
        match outcome {
            Ok(()) => true,
            Err(error) => {
                eprintln!("{name} failed: {error}");
                false
            }
        }
    })
}

/// Removes everything under `root`.
async fn clear(cluster_file: &str, root: &[u8]) {
    let db = foundationdb::Database::new(Some(cluster_file)).expect("opening the cluster");
    let trx = db.create_trx().expect("a transaction");
    trx.clear_range(root, &tuple::prefix_end(root));
    if let Err(error) = trx.commit().await {
        eprintln!("clearing the test root {root:?} failed: {error}");
    }
}

/// `size_limits`, with the key limit of this store.
async fn fdb_size_limits(store: Arc<FdbStore>) {
    let max_key = store.max_key_bytes();
    conformance::size_limits_with_max_key(store, max_key).await;
}
