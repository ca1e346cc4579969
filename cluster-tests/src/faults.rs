//! The fault schedule, drawn from the seed before the run starts, and its execution.
//! One node is faulty at a time (a minority of any cluster of three or more), except
//! that a profile asking for more may take two nodes of five at once.

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
    /// The node it hits (for leader isolation: whoever leads when it is applied).
    pub node: u32,
    pub length: Duration,
}

/// How dense the schedule is.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Quiet time before the first fault and between two.
    pub gap: (u64, u64),
    /// How long a fault lasts.
    pub length: (u64, u64),
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
        out.push(Planned {
            at: Duration::from_millis(t),
            kind: kinds[rng.gen_range(0..kinds.len())],
            node: rng.gen_range(1..=nodes),
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
        let node = match p.kind {
            FaultKind::LeaderIsolation => nodes
                .leader()
                .await
                .ok_or_else(|| anyhow::anyhow!("leader isolation: no node reports a leader"))?,
            _ => p.node,
        };
        let start_ms = started.elapsed().as_millis() as u64;
        apply(nodes, p.kind, node, p.length).await?;
        done.push(Fault {
            id: i as u64 + 1,
            kind: p.kind,
            nodes: vec![node],
            start_ms,
            end_ms: started.elapsed().as_millis() as u64,
        });
        eprintln!(
            "fault {}: {} of node {node} from {:.1} s to {:.1} s",
            i + 1,
            p.kind.name(),
            start_ms as f64 / 1000.0,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(done)
}

/// Applies one fault to `node`, keeps it for `length`, and heals it.
async fn apply(nodes: &Nodes, kind: FaultKind, node: u32, length: Duration) -> anyhow::Result<()> {
    let net = |f: &dyn Fn(&crate::net::Topology) -> Result<(), String>| {
        let t = nodes.topology.lock().unwrap_or_else(|e| e.into_inner());
        f(&t).map_err(|e| anyhow::anyhow!("{} of node {node}: {e}", kind.name()))
    };
    match kind {
        FaultKind::Kill => {
            nodes.kill9(node)?;
            tokio::time::sleep(length).await;
            nodes.start(node)?;
        }
        FaultKind::Restart => {
            nodes.terminate(node).await?;
            nodes.start(node)?;
            tokio::time::sleep(length).await;
        }
        FaultKind::Hang => {
            nodes.signal(node, Signal::SIGSTOP)?;
            tokio::time::sleep(length).await;
            nodes.signal(node, Signal::SIGCONT)?;
        }
        FaultKind::Partition | FaultKind::LeaderIsolation => {
            net(&|t| t.cut(node))?;
            tokio::time::sleep(length).await;
            net(&|t| t.heal(node))?;
        }
        FaultKind::Flap => {
            // down 600 ms, up 900 ms, within the fault's length
            let end = Instant::now() + length;
            while Instant::now() + Duration::from_millis(600) < end {
                net(&|t| t.cut(node))?;
                tokio::time::sleep(Duration::from_millis(600)).await;
                net(&|t| t.heal(node))?;
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
        assert!(a.iter().all(|p| (1..=3).contains(&p.node)));
        // every kind asked for comes up, and only those
        let only = schedule(7, 3, Duration::from_secs(120), &[FaultKind::Hang], PACE);
        assert!(only.iter().all(|p| p.kind == FaultKind::Hang));
        assert!(schedule(7, 3, Duration::from_secs(120), &[], PACE).is_empty());
    }
}
