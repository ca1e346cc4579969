//! The checker: judges a recorded history against the cluster's invariants.
//!
//! Every rule is conservative: an operation whose outcome is unknown, or one that
//! overlaps a conflicting operation, may have happened in either order, so it excuses
//! what it could explain. A correct cluster is therefore never flagged; a flagged one
//! broke a promise whatever the real order of the concurrent operations was.
//!
//! The invariants, from the project design:
//! - no acknowledged write is lost ([`ViolationKind::LostWrite`]);
//! - nothing deleted comes back ([`ViolationKind::ResurrectedDelete`]);
//! - no token is accepted after its revocation was acknowledged
//!   ([`ViolationKind::RevokedTokenAccepted`]);
//! - no node honours a group's grant on a user after the user's removal from the group
//!   was acknowledged ([`ViolationKind::RevokedGrantHonoured`]), nor refuses it after the
//!   user's addition was ([`ViolationKind::AddedGrantRefused`]);
//! - at most one live process per (user, server name) ([`ViolationKind::DoubleServer`]);
//! - every running server is reachable through every node ([`ViolationKind::Unreachable`]);
//! - all nodes converge ([`ViolationKind::NotConverged`], [`ViolationKind::Diverged`]);
//! - while a majority of the nodes is down, hung or cut off, no write is acknowledged: a
//!   write needs a quorum ([`ViolationKind::AckedWithoutQuorum`]).
//!
//! This file holds the verdict, the history's index the rules share and the run's
//! problems; each rule has a file of its own: `writes.rs` (rules 1 and 2), `tokens.rs`
//! (3), `servers.rs` (4 and 5), `convergence.rs` (6), `quorum.rs` (8), `grants.rs` (9).
//!
//! Besides violations the verdict holds run problems: reasons the run cannot support a
//! judgement (too few operations, too many unknown outcomes, no final states). They fail
//! the run too, because a run that judged nothing must not pass.

mod convergence;
mod grants;
mod quorum;
mod servers;
mod tokens;
mod writes;

use std::collections::{BTreeSet, HashSet};

use serde::Serialize;

use crate::history::{Entry, Fault, NodeState, Op, OpKind, Outcome, Reach, RunInfo, ServerEvent};

/// The checker's judgement of one history.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Verdict {
    /// Broken invariants: the cluster did something wrong.
    pub violations: Vec<Violation>,
    /// Reasons the run cannot be judged well (they fail the run, but say nothing about
    /// the cluster's correctness).
    pub run_problems: Vec<String>,
    /// Things worth knowing that are neither (a pid left out of a judgement, ...).
    pub notes: Vec<String>,
}

impl Verdict {
    /// Whether the run passed: no violation and no run problem.
    pub fn passed(&self) -> bool {
        self.violations.is_empty() && self.run_problems.is_empty()
    }

    /// The distinct kinds of the violations, in order.
    pub fn kinds(&self) -> BTreeSet<ViolationKind> {
        self.violations.iter().map(|v| v.kind).collect()
    }
}

/// One broken invariant, with the history lines that show it.
#[derive(Debug, Clone, Serialize)]
pub struct Violation {
    pub kind: ViolationKind,
    pub message: String,
    /// The history lines that show the violation. A node state is trimmed to the users
    /// the violation is about (a whole replica would bury the line that matters); its
    /// version and digest are kept.
    pub excerpt: Vec<Entry>,
}

/// The invariant a violation breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    /// An acknowledged create (user or token) is missing from a node's final state.
    LostWrite,
    /// An acknowledged delete (user or token revocation) is undone in a final state.
    ResurrectedDelete,
    /// A token was accepted after its revocation (or its user's deletion) was
    /// acknowledged.
    RevokedTokenAccepted,
    /// Two live processes for the same (user, server name) at once.
    DoubleServer,
    /// A running server did not answer through some node after healing.
    Unreachable,
    /// Nodes at the same version hold different states.
    Diverged,
    /// Nodes ended at different versions.
    NotConverged,
    /// A write was acknowledged while no quorum could have committed it.
    AckedWithoutQuorum,
    /// A group's grant on a user was honoured after the user's removal from the group (or
    /// deletion) was acknowledged.
    RevokedGrantHonoured,
    /// A group's grant on a user was refused after the user's addition to the group was
    /// acknowledged.
    AddedGrantRefused,
}

impl ViolationKind {
    pub const ALL: [ViolationKind; 10] = [
        ViolationKind::LostWrite,
        ViolationKind::ResurrectedDelete,
        ViolationKind::RevokedTokenAccepted,
        ViolationKind::DoubleServer,
        ViolationKind::Unreachable,
        ViolationKind::Diverged,
        ViolationKind::NotConverged,
        ViolationKind::AckedWithoutQuorum,
        ViolationKind::RevokedGrantHonoured,
        ViolationKind::AddedGrantRefused,
    ];

    /// The kind's name, as serialized (`lost_write`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ViolationKind::LostWrite => "lost_write",
            ViolationKind::ResurrectedDelete => "resurrected_delete",
            ViolationKind::RevokedTokenAccepted => "revoked_token_accepted",
            ViolationKind::DoubleServer => "double_server",
            ViolationKind::Unreachable => "unreachable",
            ViolationKind::Diverged => "diverged",
            ViolationKind::NotConverged => "not_converged",
            ViolationKind::AckedWithoutQuorum => "acked_without_quorum",
            ViolationKind::RevokedGrantHonoured => "revoked_grant_honoured",
            ViolationKind::AddedGrantRefused => "added_grant_refused",
        }
    }
}

/// Judges a history.
pub fn check(entries: &[Entry]) -> Verdict {
    let h = History::new(entries);
    let mut verdict = Verdict {
        run_problems: run_problems(&h),
        notes: run_notes(entries),
        ..Verdict::default()
    };
    verdict.violations.extend(writes::lost_users(&h));
    verdict.violations.extend(writes::lost_tokens(&h));
    verdict.violations.extend(writes::resurrected_users(&h));
    verdict.violations.extend(writes::resurrected_tokens(&h));
    verdict
        .violations
        .extend(tokens::revoked_tokens_accepted(&h));
    let (grants, grant_notes) = grants::grants(&h);
    verdict.violations.extend(grants);
    verdict.notes.extend(grant_notes);
    let (doubles, server_notes) = servers::double_servers(&h.server_events);
    verdict.violations.extend(doubles);
    verdict.notes.extend(server_notes);
    verdict.violations.extend(servers::unreachable(&h.reaches));
    verdict
        .violations
        .extend(convergence::convergence(&h.states));
    verdict.violations.extend(quorum::acked_without_quorum(&h));
    verdict
}

/// The history's entries sorted by type, each list in history order.
struct History<'a> {
    run: Option<&'a RunInfo>,
    ops: Vec<&'a Op>,
    server_events: Vec<&'a ServerEvent>,
    states: Vec<&'a NodeState>,
    reaches: Vec<&'a Reach>,
    faults: Vec<&'a Fault>,
}

impl<'a> History<'a> {
    /// The final node states for which `keep` holds.
    fn states_where(&self, keep: impl Fn(&NodeState) -> bool) -> Vec<&'a NodeState> {
        self.states.iter().copied().filter(|s| keep(s)).collect()
    }

    fn new(entries: &'a [Entry]) -> History<'a> {
        let mut h = History {
            run: None,
            ops: Vec::new(),
            server_events: Vec::new(),
            states: Vec::new(),
            reaches: Vec::new(),
            faults: Vec::new(),
        };
        for entry in entries {
            match entry {
                Entry::Run(run) => {
                    h.run.get_or_insert(run);
                }
                Entry::Op(op) => h.ops.push(op),
                Entry::Fault(fault) => h.faults.push(fault),
                Entry::ServerEvent(event) => h.server_events.push(event),
                Entry::NodeState(state) => h.states.push(state),
                Entry::Reach(reach) => h.reaches.push(reach),
            }
        }
        h
    }

    /// The acknowledged operations.
    fn ok_ops(&self) -> impl Iterator<Item = &'a Op> + '_ {
        self.ops
            .iter()
            .copied()
            .filter(|op| op.outcome == Outcome::Ok)
    }

    /// Whether some deletion of `user` (any outcome) may have been applied after an
    /// operation invoked at `since` (see [`may_apply_after`]).
    fn deleted_since(&self, user: &str, since: u64) -> bool {
        self.ops.iter().any(|op| {
            matches!(&op.kind, OpKind::DeleteUser { user: u } if u == user)
                && may_apply_after(op, since)
        })
    }

    /// Whether some creation of `user` (any outcome) may have been applied after an
    /// operation invoked at `since`.
    fn created_since(&self, user: &str, since: u64) -> bool {
        self.ops.iter().any(|op| {
            matches!(&op.kind, OpKind::CreateUser { user: u } if u == user)
                && may_apply_after(op, since)
        })
    }

    /// Whether some revocation of the token was attempted (any outcome, any time).
    fn revocation_attempted(&self, token_id: &str) -> bool {
        self.ops
            .iter()
            .any(|op| matches!(&op.kind, OpKind::RevokeToken { token_id: t, .. } if t == token_id))
    }

    /// The acknowledged creation of a token, if the history has it.
    fn token_creation(&self, token_id: &str) -> Option<&'a Op> {
        self.ok_ops().find(
            |op| matches!(&op.kind, OpKind::CreateToken { token_id: Some(t), .. } if t == token_id),
        )
    }
}

/// Whether `op` may have taken effect at or after `since`. An answered operation took
/// effect, if at all, before its answer: it may if it completed at or after `since`. One
/// the client stopped waiting for (unknown outcome) is still under way as far as anyone
/// knows: the hub may finish it at any later time (a node cut off from the cluster
/// carries it out once it is back), so it may apply after anything.
fn may_apply_after(op: &Op, since: u64) -> bool {
    op.outcome == Outcome::Unknown || op.complete_ms >= since
}

/// Reasons the run cannot support a judgement.
fn run_problems(h: &History) -> Vec<String> {
    let mut problems = Vec::new();
    let total = h.ops.len();
    if total == 0 {
        problems.push("no operations: nothing to judge".to_string());
    }
    match h.run {
        None => problems.push("no run info: the rate and unknown-share limits are unknown".into()),
        Some(run) => problems.extend(rate_problems(run, total, unknown_count(&h.ops))),
    }
    if h.states.is_empty() {
        problems.push("no final node states: nothing to judge".to_string());
    } else if let Some(run) = h.run {
        let reported: BTreeSet<u32> = h.states.iter().map(|s| s.node).collect();
        if (reported.len() as u64) < u64::from(run.nodes) {
            problems.push(format!(
                "final states from only {} of {} nodes ({}): the others cannot be judged",
                reported.len(),
                run.nodes,
                join(reported.iter())
            ));
        }
    }
    let backwards: Vec<u64> = h
        .ops
        .iter()
        .filter(|op| op.complete_ms < op.invoke_ms)
        .map(|op| op.id)
        .collect();
    if !backwards.is_empty() {
        problems.push(format!(
            "operation(s) {} complete before they were invoked: the times cannot be trusted",
            join(backwards.iter())
        ));
    }
    problems
}

fn unknown_count(ops: &[&Op]) -> usize {
    ops.iter()
        .filter(|op| op.outcome == Outcome::Unknown)
        .count()
}

/// The run's own limits: enough operations per second, few enough unknown outcomes.
fn rate_problems(run: &RunInfo, total: usize, unknown: usize) -> Vec<String> {
    let mut problems = Vec::new();
    if run.duration_ms == 0 {
        problems.push("the run's duration is 0 ms: the operation rate is undefined".into());
    } else if total > 0 {
        let rate = total as f64 / (run.duration_ms as f64 / 1000.0);
        if rate < run.min_ops_per_sec {
            problems.push(format!(
                "{rate:.2} operations per second, below the minimum {}: too little to judge",
                run.min_ops_per_sec
            ));
        }
    }
    if total > 0 {
        let share = unknown as f64 / total as f64;
        if share > run.max_unknown_share {
            problems.push(format!(
                "{unknown} of {total} outcomes unknown ({:.1}%), above the maximum {:.1}%",
                share * 100.0,
                run.max_unknown_share * 100.0
            ));
        }
    }
    problems
}

/// Oddities in the history's shape that do not stop the judgement.
fn run_notes(entries: &[Entry]) -> Vec<String> {
    let runs = entries
        .iter()
        .filter(|e| matches!(e, Entry::Run(_)))
        .count();
    let mut notes = Vec::new();
    if runs > 0 && !matches!(entries.first(), Some(Entry::Run(_))) {
        notes.push("the run info is not the first line".to_string());
    }
    if runs > 1 {
        notes.push(format!("{runs} run info lines: the first one is used"));
    }
    notes
}

/// An excerpt: the operations, then the node states trimmed to `users`.
fn excerpt(ops: &[&Op], states: &[&NodeState], users: &[&str]) -> Vec<Entry> {
    let wanted: HashSet<&str> = users.iter().copied().collect();
    let mut lines: Vec<Entry> = ops.iter().map(|op| Entry::Op((*op).clone())).collect();
    lines.extend(states.iter().map(|s| {
        Entry::NodeState(NodeState {
            node: s.node,
            version: s.version,
            digest: s.digest.clone(),
            users: s
                .users
                .iter()
                .filter(|(name, _)| wanted.contains(name.as_str()))
                .map(|(name, u)| (name.clone(), u.clone()))
                .collect(),
        })
    }));
    lines
}

/// `a, b, c`.
fn join<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
