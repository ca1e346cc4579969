//! Rules 1 and 2 on the final states: no acknowledged creation (a user, a token) is
//! missing from a node, and no acknowledged deletion (a user, a revoked token) is back.

use std::collections::{BTreeMap, BTreeSet};

use super::{excerpt, join, History, Violation, ViolationKind};
use crate::history::{NodeState, Op, OpKind};

/// Rule 1, users: an acknowledged creation of a user that no deletion could have
/// followed must be in every final state.
pub(super) fn lost_users(h: &History) -> Vec<Violation> {
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
pub(super) fn lost_tokens(h: &History) -> Vec<Violation> {
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
pub(super) fn resurrected_users(h: &History) -> Vec<Violation> {
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
pub(super) fn resurrected_tokens(h: &History) -> Vec<Violation> {
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
