//! Rule 6: all nodes end at the same version with the same state.

use std::collections::BTreeSet;

use super::{excerpt, join, Violation, ViolationKind};
use crate::history::NodeState;

/// How many differing users a divergence message names before it says "and N more".
const USERS_SHOWN: usize = 5;
/// Rule 6: all nodes end at the same version with the same state.
pub(super) fn convergence(states: &[&NodeState]) -> Option<Violation> {
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
