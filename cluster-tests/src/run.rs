//! One chaos run: nodes up, a seeded workload and fault schedule, healing, and the
//! evidence the checker judges (each node's own state, reachability of every running
//! server through every node, the tiny servers' start/exit file).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::time::Instant;

use crate::faults::{self, Pace};
use crate::history::{
    Entry, FaultKind, NodeState, OpKind, Outcome, Reach, RunInfo, ServerEvent, ServerEventKind,
    UserState,
};
use crate::net::{Choice, Network};
use crate::nodes::{Nodes, CLUSTER_PORT, READER};
use crate::workload::{self, Ctx};

/// How long and how hard a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// A few minutes at most, for CI.
    Short,
    /// Ten minutes and more.
    Long,
    /// A minute in which some faults hit a majority of the nodes: writes are expected to
    /// fail then, and no answer may be wrong.
    Majority,
}

impl Profile {
    pub fn duration(self) -> Duration {
        match self {
            Profile::Short => Duration::from_secs(45),
            Profile::Long => Duration::from_secs(600),
            Profile::Majority => Duration::from_secs(60),
        }
    }

    fn pace(self) -> Pace {
        match self {
            Profile::Short => Pace {
                gap: (2_500, 4_000),
                length: (3_000, 5_000),
                majority: false,
            },
            Profile::Long => Pace {
                gap: (3_000, 8_000),
                length: (3_000, 10_000),
                majority: false,
            },
            Profile::Majority => Pace {
                gap: (3_000, 5_000),
                length: (3_000, 6_000),
                majority: true,
            },
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Profile::Short => "short",
            Profile::Long => "long",
            Profile::Majority => "majority",
        }
    }

    pub fn parse(s: &str) -> Option<Profile> {
        [Profile::Short, Profile::Long, Profile::Majority]
            .into_iter()
            .find(|p| p.name() == s)
    }

    /// The share of unknown outcomes above which the run fails: operations time out
    /// while a majority is down.
    fn max_unknown_share(self) -> f64 {
        match self {
            Profile::Majority => 0.5,
            _ => MAX_UNKNOWN_SHARE,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub nodes: u32,
    pub duration: Duration,
    pub seed: u64,
    pub profile: Profile,
    pub faults: Vec<FaultKind>,
    pub galilean: PathBuf,
    /// The run's folder: configs, node logs, the history, the report.
    pub out: PathBuf,
    pub clients: u32,
    /// Namespaces, the loopback relay, or the first that can be made.
    pub network: Choice,
}

/// Below this rate, or above this share of unknown outcomes, the run fails.
const MIN_OPS_PER_SEC: f64 = 10.0;
const MAX_UNKNOWN_SHARE: f64 = 0.25;
/// How long the cluster has to serve again and converge after healing.
const HEAL_BOUND: Duration = Duration::from_secs(60);
const CONVERGE_BOUND: Duration = Duration::from_secs(30);

/// Runs the nodes, workload and faults; returns the history.
pub async fn run(o: &Options) -> anyhow::Result<Vec<Entry>> {
    std::fs::create_dir_all(&o.out)?;
    // raft's port and the actor port after it
    let network = Network::create(o.network, o.nodes, &[CLUSTER_PORT, CLUSTER_PORT + 1])
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let nodes = Nodes::new(network, &o.galilean, &o.out, o.nodes)?;
    let started = Instant::now();
    for id in nodes.ids() {
        nodes.start(id)?;
    }
    wait_healthy(&nodes, HEAL_BOUND).await?;
    eprintln!(
        "{} nodes ({}) healthy after {:.1} s",
        o.nodes,
        nodes.network(),
        started.elapsed().as_secs_f64()
    );
    let urls: Vec<String> = nodes.ids().iter().map(|id| nodes.url(*id)).collect();
    let ctx = Arc::new(Ctx::new(urls, started)?);

    // the stable users, the probes' group member, and servers for half of the former
    let members = std::iter::once(faults::PROBE_MEMBER.to_owned());
    for user in workload::stable_users().into_iter().chain(members) {
        let op = ctx
            .perform(0, 1, OpKind::CreateUser { user: user.clone() }, None)
            .await;
        anyhow::ensure!(
            op.outcome == Outcome::Ok,
            "cannot create user {user}: {:?}",
            op.detail
        );
    }
    for user in workload::stable_users().into_iter().step_by(2) {
        ctx.perform(0, 1, OpKind::StartServer { user }, None).await;
    }
    // the reader's token, for the grant checks (its user comes from the config)
    let kind = OpKind::CreateToken {
        user: READER.into(),
        token_id: None,
        secret: None,
    };
    let op = ctx.perform(0, 1, kind, None).await;
    match op.kind {
        OpKind::CreateToken {
            secret: Some(secret),
            ..
        } if op.outcome == Outcome::Ok => {
            let _ = ctx.reader.set(secret);
        }
        _ => anyhow::bail!("cannot make {READER}'s token: {:?}", op.detail),
    }

    let plan = faults::schedule(o.seed, o.nodes, o.duration, &o.faults, o.profile.pace());
    eprintln!("{} faults planned over {:?}", plan.len(), o.duration);
    let begin = Instant::now();
    let until = begin + o.duration;
    let clients: Vec<_> = (1..=o.clients)
        .map(|c| tokio::spawn(workload::client(ctx.clone(), o.seed, c, until)))
        .collect();
    let faults_done = faults::run(&nodes, &ctx, &plan, started, begin).await;
    for c in clients {
        let _ = c.await;
    }
    let faults_done = faults_done?;

    // heal everything, then gather the evidence
    for id in nodes.ids() {
        if !nodes.running(id) {
            nodes.start(id)?;
        }
        let _ = nodes.signal(id, Signal::SIGCONT);
        nodes
            .heal(id)
            .map_err(|e| anyhow::anyhow!("healing node {id}: {e}"))?;
    }
    let healed = Instant::now();
    wait_healthy(&nodes, HEAL_BOUND).await?;
    eprintln!(
        "all nodes healthy {:.1} s after healing",
        healed.elapsed().as_secs_f64()
    );
    let states = converge(&nodes).await;
    let reach = reachability(&nodes, &states).await;
    let events = server_events(&nodes);
    nodes.stop_all();
    let mut ops = ctx.take_ops();
    let started_ok = ops
        .iter()
        .any(|op| matches!(op.kind, OpKind::StartServer { .. }) && op.outcome == Outcome::Ok);
    anyhow::ensure!(
        events.iter().any(|e| e.event == ServerEventKind::Start) || !started_ok,
        "servers started but {} records none: the double-server check would judge nothing",
        nodes.events_file().display()
    );

    let mut history = vec![Entry::Run(RunInfo {
        seed: o.seed,
        nodes: o.nodes,
        profile: o.profile.name().into(),
        faults: o.faults.clone(),
        duration_ms: o.duration.as_millis() as u64,
        min_ops_per_sec: MIN_OPS_PER_SEC,
        max_unknown_share: o.profile.max_unknown_share(),
        majority_faults: o.profile.pace().majority,
        network: nodes.network().into(),
    })];
    ops.sort_by_key(|op| (op.invoke_ms, op.id));
    history.extend(ops.into_iter().map(Entry::Op));
    history.extend(faults_done.into_iter().map(Entry::Fault));
    history.extend(events.into_iter().map(Entry::ServerEvent));
    history.extend(states.into_iter().map(Entry::NodeState));
    history.extend(reach.into_iter().map(Entry::Reach));
    Ok(history)
}

async fn wait_healthy(nodes: &Nodes, bound: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + bound;
    for id in nodes.ids() {
        while !nodes.healthy(id).await {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(nodes.log(id)).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                anyhow::bail!(
                    "node {id} not healthy within {bound:?}; its log ends:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// Each node's own state, once all report the same applied version (or the last seen
/// when they do not within the bound: the checker then reports it).
async fn converge(nodes: &Nodes) -> Vec<NodeState> {
    let deadline = Instant::now() + CONVERGE_BOUND;
    let started = Instant::now();
    loop {
        let mut states = Vec::new();
        for id in nodes.ids() {
            if let Some(state) = nodes
                .document(id, "state")
                .await
                .and_then(|doc| node_state(id, &doc))
            {
                states.push(state);
            }
        }
        let versions: std::collections::BTreeSet<u64> = states.iter().map(|s| s.version).collect();
        if states.len() == nodes.ids().len() && versions.len() == 1 {
            eprintln!(
                "nodes converged at version {:?} in {:.1} s",
                versions.first(),
                started.elapsed().as_secs_f64()
            );
            return states;
        }
        if Instant::now() > deadline {
            eprintln!("nodes did not converge: versions {versions:?}");
            return states;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A node's state document as a history entry; `None` when it is not one.
fn node_state(id: u32, doc: &serde_json::Value) -> Option<NodeState> {
    let mut users = std::collections::BTreeMap::new();
    if let Some(map) = doc["users"].as_object() {
        for (name, u) in map {
            let tokens = u["tokens"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let servers = u["servers"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("?").to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            users.insert(name.clone(), UserState { tokens, servers });
        }
    }
    Some(NodeState {
        node: id,
        version: doc["version"].as_u64()?,
        digest: doc["digest"].as_str()?.to_owned(),
        users,
    })
}

/// Whether every server the first node's state shows running answers through every
/// node's proxy (each given a few seconds: routes follow within one).
async fn reachability(nodes: &Nodes, states: &[NodeState]) -> Vec<Reach> {
    let Some(first) = states.first() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (user, state) in &first.users {
        for (server, phase) in &state.servers {
            if phase != "running" {
                continue;
            }
            let path = if server.is_empty() {
                format!("/user/{user}/whoami")
            } else {
                format!("/user/{user}/{server}/whoami")
            };
            for id in nodes.ids() {
                let deadline = Instant::now() + Duration::from_secs(5);
                let detail = loop {
                    let problem = match nodes.get(id, &path).await {
                        Ok(status) if (200..300).contains(&status) => None,
                        Ok(status) => Some(format!("answered {status}")),
                        Err(e) => Some(e),
                    };
                    match problem {
                        None => break None,
                        Some(p) if Instant::now() > deadline => break Some(p),
                        Some(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                    }
                };
                out.push(Reach {
                    node: id,
                    user: user.clone(),
                    server: server.clone(),
                    ok: detail.is_none(),
                    detail,
                });
            }
        }
    }
    out
}

/// The tiny servers' file, in its order, and for each pid without an `exit` line whether
/// it still runs.
fn server_events(nodes: &Nodes) -> Vec<ServerEvent> {
    let mut events = crate::nodes::recorded_events(&nodes.events_file());
    let mut open: Vec<ServerEvent> = Vec::new();
    for e in &events {
        match e.event {
            ServerEventKind::Start => open.push(e.clone()),
            _ => open.retain(|o| o.pid != e.pid),
        }
    }
    for o in open {
        let pid = Pid::from_raw(o.pid as i32);
        let alive = kill(pid, None).is_ok() && crate::nodes::is_tiny_server(pid, nodes.tiny());
        events.push(ServerEvent {
            event: if alive {
                ServerEventKind::AliveAtEnd
            } else {
                ServerEventKind::Vanished
            },
            ..o
        });
    }
    events
}
