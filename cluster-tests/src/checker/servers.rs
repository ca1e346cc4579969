//! Rules 4 and 5 on the servers: at most one live process per (user, server name), from
//! the tiny servers' own file; every running server reachable through every node.

use std::collections::{BTreeMap, BTreeSet};

use super::{Violation, ViolationKind};
use crate::history::{Entry, Reach, ServerEvent, ServerEventKind};

/// Rule 4: at most one live process per (user, server name), walking the servers'
/// events in their file's order. A pid that vanished has no known exit time, so it
/// could have died before any later start: it is left out (with a note).
pub(super) fn double_servers(events: &[&ServerEvent]) -> (Vec<Violation>, Vec<String>) {
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
pub(super) fn unreachable(reaches: &[&Reach]) -> Vec<Violation> {
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
