//! The chaos harness's library: the history format, the checker and the report (used by
//! the `cluster-tests` command and its tests), and the runner that starts nodes, injects
//! faults and drives the workload.

pub mod checker;
pub mod faults;
pub mod history;
pub mod net;
pub mod nodes;
pub mod relay;
pub mod report;
pub mod run;
pub mod workload;
