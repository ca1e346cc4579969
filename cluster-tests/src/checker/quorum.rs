//! Rule 8: no write is acknowledged while a majority of the nodes is down.

use std::collections::BTreeSet;

use super::{join, History, Violation, ViolationKind};
use crate::history::{Entry, FaultKind, Op, OpKind};

/// How far inside a fault's recorded window an operation must lie to be judged by rule 8:
/// the window's ends are taken around the signal or link change that makes it.
const QUORUM_MARGIN_MS: u64 = 500;

/// Rule 8: a fault that keeps a majority of the nodes down (killed, hung, or each cut
/// off) for its whole window leaves no quorum, so a user, token or membership write
/// invoked and acknowledged within that window (by [`QUORUM_MARGIN_MS`]) was acknowledged
/// without being committed. Restarts come straight back and flaps reconnect within the window,
/// so they are not judged; nor are server starts and stops, whose answers may come from
/// what the owner already knows. One violation per fault, naming every such write.
pub(super) fn acked_without_quorum(h: &History) -> Vec<Violation> {
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
                        | OpKind::AddToGroup { .. }
                        | OpKind::RemoveFromGroup { .. }
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
