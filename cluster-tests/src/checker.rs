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
//! - at most one live process per (user, server name) ([`ViolationKind::DoubleServer`]);
//! - every running server is reachable through every node ([`ViolationKind::Unreachable`]);
//! - all nodes converge ([`ViolationKind::NotConverged`], [`ViolationKind::Diverged`]);
//! - while a majority of the nodes is down, hung or cut off, no write is acknowledged: a
//!   write needs a quorum ([`ViolationKind::AckedWithoutQuorum`]).
//!
//! Besides violations the verdict holds run problems: reasons the run cannot support a
//! judgement (too few operations, too many unknown outcomes, no final states). They fail
//! the run too, because a run that judged nothing must not pass.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::Serialize;

use crate::history::{
    Entry, Fault, FaultKind, NodeState, Op, OpKind, Outcome, Reach, RunInfo, ServerEvent,
    ServerEventKind,
};

/// How many differing users a divergence message names before it says "and N more".
const USERS_SHOWN: usize = 5;

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
}

impl ViolationKind {
    pub const ALL: [ViolationKind; 8] = [
        ViolationKind::LostWrite,
        ViolationKind::ResurrectedDelete,
        ViolationKind::RevokedTokenAccepted,
        ViolationKind::DoubleServer,
        ViolationKind::Unreachable,
        ViolationKind::Diverged,
        ViolationKind::NotConverged,
        ViolationKind::AckedWithoutQuorum,
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
    verdict.violations.extend(lost_users(&h));
    verdict.violations.extend(lost_tokens(&h));
    verdict.violations.extend(resurrected_users(&h));
    verdict.violations.extend(resurrected_tokens(&h));
    verdict.violations.extend(revoked_tokens_accepted(&h));
    let (doubles, server_notes) = double_servers(&h.server_events);
    verdict.violations.extend(doubles);
    verdict.notes.extend(server_notes);
    verdict.violations.extend(unreachable(&h.reaches));
    verdict.violations.extend(convergence(&h.states));
    verdict.violations.extend(acked_without_quorum(&h));
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

/// Rule 1, users: an acknowledged creation of a user that no deletion could have
/// followed must be in every final state.
fn lost_users(h: &History) -> Vec<Violation> {
    let mut creates: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in h.ok_ops() {
        if let OpKind::CreateUser { user } = &op.kind {
            if !h.deleted_since(user, op.invoke_ms) {
                creates.entry(user.as_str()).or_default().push(op);
            }
        }
    }
    let mut violations = Vec::new();
    for (user, ops) in creates {
        let missing: Vec<&NodeState> = h.states_where(|s| !s.users.contains_key(user));
        if missing.is_empty() {
            continue;
        }
        violations.push(Violation {
            kind: ViolationKind::LostWrite,
            message: format!(
                "user {user:?} was created (acknowledged by op {}) and never deleted \
                 afterwards, but is missing on node {}",
                join(ops.iter().map(|op| op.id)),
                join(missing.iter().map(|s| s.node))
            ),
            excerpt: excerpt(&ops, &missing, &[user]),
        });
    }
    violations
}

/// Rule 1, tokens: an acknowledged token creation that was never revoked, and whose
/// user no deletion could have removed afterwards, must be in every final state.
fn lost_tokens(h: &History) -> Vec<Violation> {
    let mut violations = Vec::new();
    for op in h.ok_ops() {
        let OpKind::CreateToken {
            user,
            token_id: Some(token_id),
            ..
        } = &op.kind
        else {
            continue;
        };
        if h.revocation_attempted(token_id) || h.deleted_since(user, op.invoke_ms) {
            continue;
        }
        let missing: Vec<&NodeState> = h.states_where(|s| !has_token(s, user, token_id));
        if missing.is_empty() {
            continue;
        }
        violations.push(Violation {
            kind: ViolationKind::LostWrite,
            message: format!(
                "token {token_id:?} of user {user:?} was created (acknowledged by op {}) and \
                 never revoked, but is missing on node {}",
                op.id,
                join(missing.iter().map(|s| s.node))
            ),
            excerpt: excerpt(&[op], &missing, &[user]),
        });
    }
    violations
}

fn has_token(state: &NodeState, user: &str, token_id: &str) -> bool {
    state
        .users
        .get(user)
        .is_some_and(|u| u.tokens.iter().any(|t| t == token_id))
}

/// Rule 2, users: an acknowledged deletion of a user that no creation could have
/// followed must leave the user absent from every final state.
fn resurrected_users(h: &History) -> Vec<Violation> {
    let mut deletes: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in h.ok_ops() {
        if let OpKind::DeleteUser { user } = &op.kind {
            if !h.created_since(user, op.invoke_ms) {
                deletes.entry(user.as_str()).or_default().push(op);
            }
        }
    }
    let mut violations = Vec::new();
    for (user, ops) in deletes {
        let present: Vec<&NodeState> = h.states_where(|s| s.users.contains_key(user));
        if present.is_empty() {
            continue;
        }
        violations.push(Violation {
            kind: ViolationKind::ResurrectedDelete,
            message: format!(
                "user {user:?} was deleted (acknowledged by op {}) and never created \
                 afterwards, but is present on node {}",
                join(ops.iter().map(|op| op.id)),
                join(present.iter().map(|s| s.node))
            ),
            excerpt: excerpt(&ops, &present, &[user]),
        });
    }
    violations
}

/// Rule 2, tokens: an acknowledged revocation must leave the token absent everywhere
/// (token ids are never reused, so no later creation excuses it).
fn resurrected_tokens(h: &History) -> Vec<Violation> {
    let mut revokes: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in h.ok_ops() {
        if let OpKind::RevokeToken { token_id, .. } = &op.kind {
            revokes.entry(token_id.as_str()).or_default().push(op);
        }
    }
    let mut violations = Vec::new();
    for (token_id, ops) in revokes {
        let mut holders: BTreeSet<&str> = BTreeSet::new();
        let mut present: Vec<&NodeState> = Vec::new();
        for state in h.states.iter().copied() {
            let owners: Vec<&str> = state
                .users
                .iter()
                .filter(|(_, u)| u.tokens.iter().any(|t| t == token_id))
                .map(|(name, _)| name.as_str())
                .collect();
            if !owners.is_empty() {
                holders.extend(owners);
                present.push(state);
            }
        }
        if present.is_empty() {
            continue;
        }
        let holders: Vec<&str> = holders.into_iter().collect();
        violations.push(Violation {
            kind: ViolationKind::ResurrectedDelete,
            message: format!(
                "token {token_id:?} was revoked (acknowledged by op {}), but is present on \
                 node {} (held by {})",
                join(ops.iter().map(|op| op.id)),
                join(present.iter().map(|s| s.node)),
                join(holders.iter())
            ),
            excerpt: excerpt(&ops, &present, &holders),
        });
    }
    violations
}

/// Rule 3: a token check invoked after an acknowledged revocation of the token (or an
/// acknowledged deletion of the user it was created for, after its creation) completed
/// must not be accepted. One violation per token, naming every late acceptance.
fn revoked_tokens_accepted(h: &History) -> Vec<Violation> {
    let mut late: BTreeMap<&str, (&Op, Vec<&Op>)> = BTreeMap::new();
    for op in h.ops.iter().copied() {
        let OpKind::CheckToken {
            token_id,
            accepted: Some(true),
            ..
        } = &op.kind
        else {
            continue;
        };
        if let Some(ender) = token_ended_before(h, token_id, op.invoke_ms) {
            late.entry(token_id.as_str())
                .or_insert_with(|| (ender, Vec::new()))
                .1
                .push(op);
        }
    }
    late.into_iter()
        .map(|(token_id, (ender, checks))| {
            let how = match &ender.kind {
                OpKind::DeleteUser { user } => format!("its user {user:?} was deleted"),
                _ => "it was revoked".to_string(),
            };
            let mut ops = vec![ender];
            ops.extend(checks.iter().copied());
            Violation {
                kind: ViolationKind::RevokedTokenAccepted,
                message: format!(
                    "token {token_id:?} was accepted by op {} after {how} (acknowledged by op \
                     {} at {} ms)",
                    join(checks.iter().map(|op| op.id)),
                    ender.id,
                    ender.complete_ms
                ),
                excerpt: excerpt(&ops, &[], &[]),
            }
        })
        .collect()
}

/// The earliest-completing acknowledged operation that ended the token before `before`:
/// its revocation, or the deletion of its user once the token surely existed (its
/// creation completed before the deletion was invoked, so the deletion removed it; a
/// token created later for a re-created user has another id).
fn token_ended_before<'a>(h: &History<'a>, token_id: &str, before: u64) -> Option<&'a Op> {
    let creation = h.token_creation(token_id);
    h.ok_ops()
        .filter(|op| op.complete_ms < before)
        .filter(|op| match &op.kind {
            OpKind::RevokeToken { token_id: t, .. } => t == token_id,
            OpKind::DeleteUser { user } => creation
                .is_some_and(|c| c.kind.user() == user.as_str() && c.complete_ms < op.invoke_ms),
            _ => false,
        })
        .min_by_key(|op| op.complete_ms)
}

/// Rule 4: at most one live process per (user, server name), walking the servers'
/// events in their file's order. A pid that vanished has no known exit time, so it
/// could have died before any later start: it is left out (with a note).
fn double_servers(events: &[&ServerEvent]) -> (Vec<Violation>, Vec<String>) {
    let mut notes = Vec::new();
    let vanished: BTreeSet<u32> = events
        .iter()
        .filter(|e| e.event == ServerEventKind::Vanished)
        .map(|e| e.pid)
        .collect();
    for event in events
        .iter()
        .filter(|e| e.event == ServerEventKind::Vanished)
    {
        notes.push(format!(
            "pid {} ({}) vanished: its exit time is unknown, so it is left out of the \
             double-server judgement",
            event.pid,
            server_name(event)
        ));
    }
    let mut violations = Vec::new();
    // pid -> its start event, for the live processes.
    let mut live: BTreeMap<u32, &ServerEvent> = BTreeMap::new();
    for event in events.iter().copied() {
        if vanished.contains(&event.pid) {
            continue;
        }
        match event.event {
            ServerEventKind::Start => {
                if live.contains_key(&event.pid) {
                    notes.push(format!(
                        "pid {} ({}) started twice without an exit in between",
                        event.pid,
                        server_name(event)
                    ));
                    continue;
                }
                let rivals = live
                    .values()
                    .filter(|s| s.user == event.user && s.server == event.server);
                for rival in rivals {
                    violations.push(Violation {
                        kind: ViolationKind::DoubleServer,
                        message: format!(
                            "server {} started as pid {} while pid {} was still running",
                            server_name(event),
                            event.pid,
                            rival.pid
                        ),
                        excerpt: vec![
                            Entry::ServerEvent((*rival).clone()),
                            Entry::ServerEvent(event.clone()),
                        ],
                    });
                }
                live.insert(event.pid, event);
            }
            ServerEventKind::Exit => {
                if live.remove(&event.pid).is_none() {
                    notes.push(format!(
                        "pid {} ({}) exited without a start",
                        event.pid,
                        server_name(event)
                    ));
                }
            }
            ServerEventKind::AliveAtEnd | ServerEventKind::Vanished => {}
        }
    }
    (violations, notes)
}

/// `user/server`, or `user/(default)` for the default server.
fn server_name(event: &ServerEvent) -> String {
    if event.server.is_empty() {
        format!("{}/(default)", event.user)
    } else {
        format!("{}/{}", event.user, event.server)
    }
}

/// Rule 5: every running server must answer through every node after healing.
fn unreachable(reaches: &[&Reach]) -> Vec<Violation> {
    reaches
        .iter()
        .filter(|r| !r.ok)
        .map(|r| {
            let server = if r.server.is_empty() {
                "(default)"
            } else {
                r.server.as_str()
            };
            Violation {
                kind: ViolationKind::Unreachable,
                message: format!(
                    "server {}/{server} did not answer through node {}{}",
                    r.user,
                    r.node,
                    r.detail
                        .as_deref()
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                ),
                excerpt: vec![Entry::Reach((*r).clone())],
            }
        })
        .collect()
}

/// Rule 6: all nodes end at the same version with the same state.
fn convergence(states: &[&NodeState]) -> Option<Violation> {
    let first = states.first()?;
    let differing = differing_users(states);
    let shown = shown_users(&differing);
    let trimmed: Vec<&str> = differing.iter().take(USERS_SHOWN).copied().collect();
    if states.iter().any(|s| s.version != first.version) {
        return Some(Violation {
            kind: ViolationKind::NotConverged,
            message: format!(
                "nodes ended at different versions: {}{}",
                join(
                    states
                        .iter()
                        .map(|s| format!("node {} at {}", s.node, s.version))
                ),
                if differing.is_empty() {
                    String::new()
                } else {
                    format!("; differing users: {shown}")
                }
            ),
            excerpt: excerpt(&[], states, &trimmed),
        });
    }
    let odd: Vec<&NodeState> = states
        .iter()
        .copied()
        .filter(|s| s.digest != first.digest || s.users != first.users)
        .collect();
    if odd.is_empty() {
        return None;
    }
    Some(Violation {
        kind: ViolationKind::Diverged,
        message: format!(
            "nodes at version {} hold different states: {}; differing users: {}",
            first.version,
            join(
                states
                    .iter()
                    .map(|s| format!("node {} digest {}", s.node, s.digest))
            ),
            if differing.is_empty() {
                "none (the difference is outside the users)".to_string()
            } else {
                shown
            }
        ),
        excerpt: excerpt(&[], states, &trimmed),
    })
}

/// The users whose state (presence, tokens or servers) is not the same on every node.
fn differing_users<'a>(states: &[&'a NodeState]) -> Vec<&'a str> {
    let names: BTreeSet<&str> = states
        .iter()
        .flat_map(|s| s.users.keys().map(String::as_str))
        .collect();
    names
        .into_iter()
        .filter(|name| {
            let mut seen = states.iter().map(|s| s.users.get(*name));
            let first = seen.next().flatten();
            seen.any(|u| u != first)
        })
        .collect()
}

/// The first few users, then how many more.
fn shown_users(users: &[&str]) -> String {
    let mut shown = join(users.iter().take(USERS_SHOWN));
    if users.len() > USERS_SHOWN {
        shown.push_str(&format!(" and {} more", users.len() - USERS_SHOWN));
    }
    shown
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

/// How far inside a fault's recorded window an operation must lie to be judged by rule 8:
/// the window's ends are taken around the signal or link change that makes it.
const QUORUM_MARGIN_MS: u64 = 500;

/// Rule 8: a fault that keeps a majority of the nodes down (killed, hung, or each cut
/// off) for its whole window leaves no quorum, so a user or token write invoked and
/// acknowledged within that window (by [`QUORUM_MARGIN_MS`]) was acknowledged without
/// being committed. Restarts come straight back and flaps reconnect within the window,
/// so they are not judged; nor are server starts and stops, whose answers may come from
/// what the owner already knows. One violation per fault, naming every such write.
fn acked_without_quorum(h: &History) -> Vec<Violation> {
    let Some(nodes) = h.run.map(|r| r.nodes) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for fault in h.faults.iter().copied() {
        let holds = matches!(
            fault.kind,
            FaultKind::Kill
                | FaultKind::Hang
                | FaultKind::LeaderHang
                | FaultKind::Partition
                | FaultKind::LeaderIsolation
        );
        let down: BTreeSet<u32> = fault.nodes.iter().copied().collect();
        if !holds || (down.len() as u32) * 2 <= nodes {
            continue;
        }
        let writes: Vec<&Op> = h
            .ok_ops()
            .filter(|op| {
                matches!(
                    op.kind,
                    OpKind::CreateUser { .. }
                        | OpKind::DeleteUser { .. }
                        | OpKind::CreateToken { .. }
                        | OpKind::RevokeToken { .. }
                )
            })
            .filter(|op| {
                op.invoke_ms >= fault.start_ms + QUORUM_MARGIN_MS
                    && op.complete_ms + QUORUM_MARGIN_MS <= fault.end_ms
            })
            .collect();
        if writes.is_empty() {
            continue;
        }
        let mut excerpt = vec![Entry::Fault(fault.clone())];
        excerpt.extend(writes.iter().map(|op| Entry::Op((*op).clone())));
        out.push(Violation {
            kind: ViolationKind::AckedWithoutQuorum,
            message: format!(
                "op {} acknowledged a write while fault {} ({} of node {}, {}-{} ms) left {} \
                 of {nodes} nodes able to commit",
                join(writes.iter().map(|op| op.id)),
                fault.id,
                fault.kind.name(),
                join(down.iter()),
                fault.start_ms,
                fault.end_ms,
                nodes - down.len() as u32,
            ),
            excerpt,
        });
    }
    out
}
