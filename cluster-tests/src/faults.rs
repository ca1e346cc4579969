//! The fault schedule, drawn from the seed before the run starts, and its execution.
//! A fault hits one node or several at once: at most a minority of the cluster (one of
//! three, two of five), unless the pace allows a majority.

use std::time::Duration;

use nix::sys::signal::Signal;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::history::{Fault, FaultKind};
use crate::nodes::Nodes;

/// One planned fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// When to apply it, from the start of the workload.
    pub at: Duration,
    pub kind: FaultKind,
    /// The nodes it hits, distinct (for leader isolation the first is replaced by
    /// whoever leads when it is applied).
    pub nodes: Vec<u32>,
    pub length: Duration,
}

/// How dense the schedule is.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Quiet time before the first fault and between two.
    pub gap: (u64, u64),
    /// How long a fault lasts.
    pub length: (u64, u64),
    /// Whether a fault may hit a majority of the nodes (then the cluster cannot serve
    /// writes until it heals); otherwise at most a minority.
    pub majority: bool,
}

impl Pace {
    /// The most nodes one fault may hit in a cluster of `nodes`.
    pub fn width(&self, nodes: u32) -> u32 {
        if self.majority {
            nodes / 2 + 1
        } else {
            (nodes.saturating_sub(1) / 2).max(1)
        }
    }
}

/// The schedule for `seed`: faults of `kinds` over `duration`, each followed by a quiet
/// gap, none running past the end.
pub fn schedule(
    seed: u64,
    nodes: u32,
    duration: Duration,
    kinds: &[FaultKind],
    pace: Pace,
) -> Vec<Planned> {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0xFA17);
    let mut out = Vec::new();
    if kinds.is_empty() {
        return out;
    }
    let mut t = rng.gen_range(pace.gap.0..=pace.gap.1);
    loop {
        let length = rng.gen_range(pace.length.0..=pace.length.1);
        if Duration::from_millis(t + length) >= duration {
            return out;
        }
        let kind = kinds[rng.gen_range(0..kinds.len())];
        let mut hit = vec![rng.gen_range(1..=nodes)];
        // a draw only where there is a choice: one-node schedules stay as they were
        let width = pace.width(nodes);
        let count = if width > 1 {
            rng.gen_range(1..=width)
        } else {
            1
        };
        while (hit.len() as u32) < count {
            let n = rng.gen_range(1..=nodes);
            if !hit.contains(&n) {
                hit.push(n);
            }
        }
        out.push(Planned {
            at: Duration::from_millis(t),
            kind,
            nodes: hit,
            length: Duration::from_millis(length),
        });
        t += length + rng.gen_range(pace.gap.0..=pace.gap.1);
    }
}

/// Applies `plan` in order from `begin`, each fault healed at its end; returns what was
/// done, timed from `started` (the history's zero). An error (a fault that cannot be
/// applied) ends the run.
pub async fn run(
    nodes: &Nodes,
    plan: &[Planned],
    started: Instant,
    begin: Instant,
) -> anyhow::Result<Vec<Fault>> {
    let mut done = Vec::new();
    for (i, p) in plan.iter().enumerate() {
        tokio::time::sleep_until(begin + p.at).await;
        let mut hit = p.nodes.clone();
        if p.kind == FaultKind::LeaderIsolation {
            let leader = nodes
                .leader()
                .await
                .ok_or_else(|| anyhow::anyhow!("leader isolation: no node reports a leader"))?;
            // the leader, and as many others as planned
            hit.retain(|n| *n != leader);
            hit.insert(0, leader);
            hit.truncate(p.nodes.len());
        }
        let start_ms = started.elapsed().as_millis() as u64;
        apply(nodes, p.kind, &hit, p.length).await?;
        eprintln!(
            "fault {}: {} of node {} from {:.1} s to {:.1} s",
            i + 1,
            p.kind.name(),
            hit.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(" and "),
            start_ms as f64 / 1000.0,
            started.elapsed().as_secs_f64()
        );
        done.push(Fault {
            id: i as u64 + 1,
            kind: p.kind,
            nodes: hit,
            start_ms,
            end_ms: started.elapsed().as_millis() as u64,
        });
    }
    Ok(done)
}

/// Applies one fault to each of `hit` at once, keeps it for `length`, and heals it.
async fn apply(
    nodes: &Nodes,
    kind: FaultKind,
    hit: &[u32],
    length: Duration,
) -> anyhow::Result<()> {
    let each = |f: &dyn Fn(u32) -> anyhow::Result<()>| hit.iter().try_for_each(|n| f(*n));
    let net = |f: fn(&Nodes, u32) -> Result<(), String>| {
        each(&|n| f(nodes, n).map_err(|e| anyhow::anyhow!("{} of node {n}: {e}", kind.name())))
    };
    match kind {
        FaultKind::Kill => {
            each(&|n| nodes.kill9(n))?;
            tokio::time::sleep(length).await;
            each(&|n| nodes.start(n))?;
        }
        FaultKind::Restart => {
            for n in hit {
                nodes.terminate(*n).await?;
            }
            each(&|n| nodes.start(n))?;
            tokio::time::sleep(length).await;
        }
        FaultKind::Hang => {
            each(&|n| nodes.signal(n, Signal::SIGSTOP))?;
            tokio::time::sleep(length).await;
            each(&|n| nodes.signal(n, Signal::SIGCONT))?;
        }
        FaultKind::Partition | FaultKind::LeaderIsolation => {
            net(Nodes::cut)?;
            tokio::time::sleep(length).await;
            net(Nodes::heal)?;
        }
        FaultKind::Flap => {
            // down 600 ms, up 900 ms, within the fault's length
            let end = Instant::now() + length;
            while Instant::now() + Duration::from_millis(600) < end {
                net(Nodes::cut)?;
                tokio::time::sleep(Duration::from_millis(600)).await;
                net(Nodes::heal)?;
                tokio::time::sleep_until(end.min(Instant::now() + Duration::from_millis(900)))
                    .await;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PACE: Pace = Pace {
        gap: (2_000, 4_000),
        length: (3_000, 6_000),
        majority: false,
    };

    #[test]
    fn a_seed_gives_one_schedule_and_another_seed_another() {
        let kinds = FaultKind::ALL;
        let a = schedule(7, 3, Duration::from_secs(120), &kinds, PACE);
        assert_eq!(a, schedule(7, 3, Duration::from_secs(120), &kinds, PACE));
        assert_ne!(a, schedule(8, 3, Duration::from_secs(120), &kinds, PACE));
        assert!(a.len() >= 10, "{a:?}");
        // faults do not overlap and end before the run does
        for w in a.windows(2) {
            assert!(w[0].at + w[0].length < w[1].at);
        }
        let last = a.last().unwrap();
        assert!(last.at + last.length < Duration::from_secs(120));
        assert!(a
            .iter()
            .all(|p| p.nodes.len() == 1 && (1..=3).contains(&p.nodes[0])));
        // every kind asked for comes up, and only those
        let only = schedule(7, 3, Duration::from_secs(120), &[FaultKind::Hang], PACE);
        assert!(only.iter().all(|p| p.kind == FaultKind::Hang));
        assert!(schedule(7, 3, Duration::from_secs(120), &[], PACE).is_empty());
    }

    #[test]
    fn a_fault_hits_at_most_a_minority_unless_the_pace_allows_a_majority() {
        let widths = |nodes: u32, majority: bool| {
            let pace = Pace { majority, ..PACE };
            let plan = schedule(3, nodes, Duration::from_secs(600), &FaultKind::ALL, pace);
            for p in &plan {
                let distinct: std::collections::BTreeSet<_> = p.nodes.iter().collect();
                assert_eq!(distinct.len(), p.nodes.len(), "{p:?}");
                assert!(p.nodes.iter().all(|n| (1..=nodes).contains(n)), "{p:?}");
            }
            plan.iter()
                .map(|p| p.nodes.len())
                .collect::<std::collections::BTreeSet<_>>()
        };
        assert_eq!(widths(3, false), [1].into());
        assert_eq!(widths(5, false), [1, 2].into());
        assert_eq!(widths(3, true), [1, 2].into());
        assert_eq!(widths(5, true), [1, 2, 3].into());
    }
}
