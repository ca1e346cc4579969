//! openraft's own storage test suite against the redb-backed raft log and state machine.

use galilean_storage::raft::{self, LogStore, NodeId, StateMachine, TypeConfig};
use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;

/// Each test gets a fresh store file; the guard keeps its directory alive.
struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<NodeId>> {
        let dir = tempfile::tempdir().expect("tempdir");
        let (log, sm) = raft::open(&dir.path().join("raft.redb"))?;
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_suite() {
    Suite::test_all(Builder).unwrap();
}
