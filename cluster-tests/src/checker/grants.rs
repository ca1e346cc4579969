//! Rule 9: a group's grant follows the group's members at every node. The reader's role
//! reads the members of a group (`read:users!group=...`), so a grant check (the reader's
//! token asking a node for a user's model) must be refused (404) once the user's removal
//! from the group was acknowledged ([`ViolationKind::RevokedGrantHonoured`]) and honoured
//! (200) once the user's addition was ([`ViolationKind::AddedGrantRefused`]): the hub
//! answers a membership change only when every live node applies it, and a node that
//! may be behind stops serving.
//!
//! A check is judged by a change of the user's membership acknowledged before the check
//! was invoked, unless an opposite change could have taken effect in between: one
//! invoked no later than the check's answer that could have taken effect after the
//! judging change did (answered at or after the change's invocation, or never answered,
//! whatever its outcome). A deletion of the user also ends its memberships (a re-created
//! user is in no group): it judges an honoured check as a removal does, and excuses a
//! refusal. Only the history's operations change a membership: the run's config must
//! name the group with no members, which a node adds each time it starts.

use std::collections::BTreeMap;

use super::{join, may_apply_after, History, Violation, ViolationKind};
use crate::history::{Entry, Op, OpKind, Outcome};

/// What a change did to a membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Change {
    Added,
    Removed,
}

/// The membership change `op` makes to (`group`, `user`), if any: an addition, a removal,
/// or (a removal) the user's deletion.
fn change_of(op: &Op, group: &str, user: &str) -> Option<Change> {
    match &op.kind {
        OpKind::AddToGroup { group: g, user: u } if g == group && u == user => Some(Change::Added),
        OpKind::RemoveFromGroup { group: g, user: u } if g == group && u == user => {
            Some(Change::Removed)
        }
        OpKind::DeleteUser { user: u } if u == user => Some(Change::Removed),
        _ => None,
    }
}

/// The acknowledged change that decides what `check` must answer: the latest
/// acknowledged change of `want` completed before the check was invoked that no change
/// to the contrary could have followed before the check was answered. `ops` are the
/// history's changes of the check's membership.
fn judging_change<'a>(ops: &[(&'a Op, Change)], check: &Op, want: Change) -> Option<&'a Op> {
    ops.iter()
        .filter(|(op, change)| {
            *change == want && op.outcome == Outcome::Ok && op.complete_ms < check.invoke_ms
        })
        .filter(|(judge, _)| {
            !ops.iter().any(|(other, change)| {
                *change != want
                    && other.invoke_ms <= check.complete_ms
                    && may_apply_after(other, judge.invoke_ms)
            })
        })
        .map(|(op, _)| *op)
        .max_by_key(|op| (op.complete_ms, op.id))
}

/// One violation per (kind, group, user): the changes that judged, and the checks.
type Found<'a> = BTreeMap<(ViolationKind, &'a str, &'a str), (Vec<&'a Op>, Vec<&'a Op>)>;

/// Rule 9: the grant checks against the acknowledged membership changes before them.
/// The verdict's note says how many checks had their answer decided this way.
pub(super) fn grants(h: &History) -> (Vec<Violation>, Vec<String>) {
    let mut found: Found = BTreeMap::new();
    let (mut answered, mut honoured, mut judged) = (0, 0, [0u64; 2]);
    let mut changes: BTreeMap<(&str, &str), Vec<(&Op, Change)>> = BTreeMap::new();
    for check in h.ops.iter().copied() {
        let OpKind::CheckGrant {
            group,
            user,
            honoured: Some(seen),
        } = &check.kind
        else {
            continue;
        };
        answered += 1;
        honoured += u64::from(*seen);
        let (group, user) = (group.as_str(), user.as_str());
        let ops: &[(&Op, Change)] = changes.entry((group, user)).or_insert_with(|| {
            h.ops
                .iter()
                .filter_map(|op| change_of(op, group, user).map(|c| (*op, c)))
                .collect()
        });
        // what the check may not have answered: a refusal after an addition, a grant
        // after a removal
        let (want, kind) = if *seen {
            (Change::Removed, ViolationKind::RevokedGrantHonoured)
        } else {
            (Change::Added, ViolationKind::AddedGrantRefused)
        };
        for (i, must) in [Change::Added, Change::Removed].into_iter().enumerate() {
            judged[i] += u64::from(judging_change(ops, check, must).is_some());
        }
        if let Some(judge) = judging_change(ops, check, want) {
            let slot = found.entry((kind, group, user)).or_default();
            if !slot.0.iter().any(|op| op.id == judge.id) {
                slot.0.push(judge);
            }
            slot.1.push(check);
        }
    }
    let violations = found
        .into_iter()
        .map(|((kind, group, user), (judges, checks))| {
            violation(kind, group, user, &judges, &checks)
        })
        .collect();
    let notes = if answered == 0 {
        Vec::new()
    } else {
        vec![format!(
            "grant checks: {answered} answered ({honoured} honoured, {} refused); {} began \
             after an acknowledged addition that nothing could have undone by their answer \
             (they had to be honoured), {} after such a removal (they had to be refused)",
            answered - honoured,
            judged[0],
            judged[1]
        )]
    };
    (violations, notes)
}

fn violation(
    kind: ViolationKind,
    group: &str,
    user: &str,
    judges: &[&Op],
    checks: &[&Op],
) -> Violation {
    let answer = match kind {
        ViolationKind::RevokedGrantHonoured => "honoured",
        _ => "refused",
    };
    let change = |op: &Op| match &op.kind {
        OpKind::AddToGroup { .. } => format!("addition to group {group:?}"),
        OpKind::DeleteUser { .. } => "deletion".to_string(),
        _ => format!("removal from group {group:?}"),
    };
    let checked = join(checks.iter().map(|op| {
        format!(
            "op {} (node {}, invoked at {} ms)",
            op.id, op.node, op.invoke_ms
        )
    }));
    let changed = join(judges.iter().map(|op| {
        format!(
            "its {} (acknowledged by op {} at {} ms)",
            change(op),
            op.id,
            op.complete_ms
        )
    }));
    let mut excerpt: Vec<Entry> = judges.iter().map(|op| Entry::Op((*op).clone())).collect();
    excerpt.extend(checks.iter().map(|op| Entry::Op((*op).clone())));
    Violation {
        kind,
        message: format!(
            "the grant of group {group:?} on user {user:?} was {answer} by {checked} after \
             {changed}, and no change to the contrary could have taken effect in between"
        ),
        excerpt,
    }
}
