//! Rule 3: no token is accepted after its revocation (or its user's deletion) was
//! acknowledged.

use std::collections::BTreeMap;

use super::{excerpt, join, History, Violation, ViolationKind};
use crate::history::{Op, OpKind};

/// Rule 3: a token check invoked after an acknowledged revocation of the token (or an
/// acknowledged deletion of the user it was created for, after its creation) completed
/// must not be accepted. One violation per token, naming every late acceptance.
pub(super) fn revoked_tokens_accepted(h: &History) -> Vec<Violation> {
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
