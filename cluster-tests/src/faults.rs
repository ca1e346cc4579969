//! The fault schedule, drawn from the seed before the run starts, and its execution.
//! A fault hits one node or several at once: at most a minority of the cluster (one of
//! three, two of five), unless the pace allows a majority.
//!
//! A hang also probes what the hung nodes serve when they resume ([`HangProbe`]): the
//! workload's own token and grant checks rarely reach a resumed node in its first
//! milliseconds, when it may still believe what it knew before it hung.

use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::history::{Fault, FaultKind, OpKind, Outcome};
use crate::nodes::{Nodes, GRANT_GROUP};
use crate::workload::{self, Ctx};

/// The client number the probes' operations are recorded under (the workload's clients
/// are numbered from 1, the set-up is 0).
pub const PROBE_CLIENT: u32 = u32::MAX;

/// The user the probes add to the grant group before a hang and remove from it while the
/// hang lasts; no client changes its membership, so no other change excuses a grant a
/// resumed node honours. The run's set-up makes it.
pub const PROBE_MEMBER: &str = "probe";

/// How long a probe's revocation may take: a hung leader is noticed and replaced first,
/// and the hang lasts until the revocation is answered (or this long).
const PROBE_REVOKE_WAIT: Duration = Duration::from_secs(10);

/// How long the hung nodes are asked for the probe's token once they resume, and how
/// often: most often first, when a stale view would show.
const PROBE_CHECKS: Duration = Duration::from_secs(2);
const PROBE_FIRST: Duration = Duration::from_millis(100);
const PROBE_EVERY_FIRST: Duration = Duration::from_millis(2);
const PROBE_EVERY: Duration = Duration::from_millis(50);

/// One planned fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// When to apply it, from the start of the workload.
    pub at: Duration,
    pub kind: FaultKind,
    /// The nodes it hits, distinct (for leader isolation and leader hangs the first is
    /// replaced by whoever leads when it is applied).
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
/// done, timed from `started` (the history's zero). Hang probes record their operations
/// in `ctx`. An error (a fault that cannot be applied) ends the run.
pub async fn run(
    nodes: &Nodes,
    ctx: &Arc<Ctx>,
    plan: &[Planned],
    started: Instant,
    begin: Instant,
) -> anyhow::Result<Vec<Fault>> {
    let mut done = Vec::new();
    for (i, p) in plan.iter().enumerate() {
        tokio::time::sleep_until(begin + p.at).await;
        let mut hit = p.nodes.clone();
        if matches!(p.kind, FaultKind::LeaderIsolation | FaultKind::LeaderHang) {
            let leader = nodes
                .leader()
                .await
                .ok_or_else(|| anyhow::anyhow!("{}: no node reports a leader", p.kind.name()))?;
            // the leader, and as many others as planned
            hit.retain(|n| *n != leader);
            hit.insert(0, leader);
            hit.truncate(p.nodes.len());
        }
        let start_ms = started.elapsed().as_millis() as u64;
        let probe = apply(nodes, ctx, p.kind, &hit, p.length, i).await?;
        let end_ms = started.elapsed().as_millis() as u64;
        // the resumed nodes are asked at once; the fault's window ends at the resume
        if let Some(probe) = probe {
            probe.check(ctx, &hit).await;
        }
        eprintln!(
            "fault {}: {} of node {} from {:.1} s to {:.1} s",
            i + 1,
            p.kind.name(),
            hit.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(" and "),
            start_ms as f64 / 1000.0,
            end_ms as f64 / 1000.0
        );
        done.push(Fault {
            id: i as u64 + 1,
            kind: p.kind,
            nodes: hit,
            start_ms,
            end_ms,
        });
    }
    Ok(done)
}

/// Applies one fault (the `n`-th) to each of `hit` at once, keeps it for `length`, and
/// heals it; a hang hands back its probe, for the resumed nodes to be asked.
async fn apply(
    nodes: &Nodes,
    ctx: &Arc<Ctx>,
    kind: FaultKind,
    hit: &[u32],
    length: Duration,
    n: usize,
) -> anyhow::Result<Option<HangProbe>> {
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
        FaultKind::Hang | FaultKind::LeaderHang => {
            let probe = HangProbe::prepare(ctx, hit, n).await;
            each(&|n| nodes.signal(n, Signal::SIGSTOP))?;
            let end = Instant::now() + length;
            let revoke = probe.clone().map(|p| tokio::spawn(p.revoke(ctx.clone())));
            tokio::time::sleep_until(end).await;
            if let Some(revoke) = revoke {
                let _ = revoke.await;
            }
            each(&|n| nodes.signal(n, Signal::SIGCONT))?;
            return Ok(probe);
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
    Ok(None)
}

/// A token made just before a hang through a node it spares, revoked through that node
/// while the hang lasts (the hang lasts until the revocation is answered), and presented
/// to every hung node from the moment it resumes. The operations go into the history
/// like the workload's, so the checker's rule on revoked tokens judges them: a resumed
/// node that accepts the token after its revocation was acknowledged served from a view
/// older than an acknowledged write. Likewise for a grant: [`PROBE_MEMBER`] joins the
/// grant group before the hang and leaves it through the same node while the hang lasts,
/// and the resumed nodes are asked for the reader's grant on it. A hang of a majority has
/// none: nothing could acknowledge the revocation.
#[derive(Clone)]
struct HangProbe {
    user: String,
    token_id: String,
    secret: String,
    /// The node the token is made and revoked through.
    via: u32,
}

impl HangProbe {
    /// The probe of the `n`-th fault, hitting `hit`: `None` when a majority is hit or
    /// the token could not be made (the hang then goes ahead without it).
    async fn prepare(ctx: &Ctx, hit: &[u32], n: usize) -> Option<HangProbe> {
        let nodes = ctx.urls.len() as u32;
        if hit.len() as u32 * 2 > nodes {
            return None;
        }
        let via = (1..=nodes).find(|id| !hit.contains(id))?;
        let users = workload::stable_users();
        let user = users[n % users.len()].clone();
        let kind = OpKind::CreateToken {
            user: user.clone(),
            token_id: None,
            secret: None,
        };
        let op = ctx.perform(PROBE_CLIENT, via, kind, None).await;
        let join = OpKind::AddToGroup {
            group: GRANT_GROUP.into(),
            user: PROBE_MEMBER.into(),
        };
        ctx.perform(PROBE_CLIENT, via, join, None).await;
        match op.kind {
            OpKind::CreateToken {
                token_id: Some(token_id),
                secret: Some(secret),
                ..
            } if op.outcome == Outcome::Ok => Some(HangProbe {
                user,
                token_id,
                secret,
                via,
            }),
            _ => None,
        }
    }

    /// Revokes the token and removes [`PROBE_MEMBER`] from the group through the spared
    /// node, at once, each once, waiting up to [`PROBE_REVOKE_WAIT`] for the answers: a
    /// second attempt after one that timed out would find the token gone, and acknowledge
    /// nothing.
    async fn revoke(self, ctx: Arc<Ctx>) {
        let kind = OpKind::RevokeToken {
            user: self.user.clone(),
            token_id: self.token_id.clone(),
        };
        let leave = OpKind::RemoveFromGroup {
            group: GRANT_GROUP.into(),
            user: PROBE_MEMBER.into(),
        };
        let wait = Some(PROBE_REVOKE_WAIT);
        tokio::join!(
            ctx.perform_within(PROBE_CLIENT, self.via, kind, None, wait),
            ctx.perform_within(PROBE_CLIENT, self.via, leave, None, wait),
        );
    }

    /// Presents the token, and the reader's token for its grant on [`PROBE_MEMBER`], to
    /// each of `hit`, in turn, for [`PROBE_CHECKS`] from now.
    async fn check(&self, ctx: &Ctx, hit: &[u32]) {
        let start = Instant::now();
        let reader = ctx.reader.get().map(String::as_str);
        while start.elapsed() < PROBE_CHECKS {
            for node in hit {
                let kind = OpKind::CheckToken {
                    user: self.user.clone(),
                    token_id: self.token_id.clone(),
                    accepted: None,
                };
                ctx.perform(PROBE_CLIENT, *node, kind, Some(&self.secret))
                    .await;
                let grant = workload::grant_check(PROBE_MEMBER.into());
                ctx.perform(PROBE_CLIENT, *node, grant, reader).await;
            }
            let every = if start.elapsed() < PROBE_FIRST {
                PROBE_EVERY_FIRST
            } else {
                PROBE_EVERY
            };
            tokio::time::sleep(every).await;
        }
    }
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
