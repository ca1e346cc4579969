//! The workloads, each run against every system in turn (interleaved: both hubs stay up,
//! and each workload measures one, then the other, before the next workload).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};

use crate::ceilings::Ceiling;
use crate::load::{self, once, Call, MakeCall};
use crate::rbac;
use crate::systems::{Hub, Kind, Paths, BOOTSTRAP_TOKEN};
use crate::table::{Figure, Table};

/// How big a run is.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    /// Each timed load.
    pub duration: Duration,
    /// Users created in batches (W2), and so stored for W1's second pass and W3.
    pub users: usize,
    pub batch: usize,
    /// Users created one by one (W2).
    pub singles: usize,
    /// WebSocket round trips (W4).
    pub echoes: usize,
    /// Servers started at once (W5), each storm in turn.
    pub storms: &'static [usize],
    /// Users Galilean holds for W3's and W6's largest figures (JupyterHub is not taken
    /// there: it creates about 150 users a second).
    pub many_users: usize,
    /// W3 by group: every this many-th W2 user is in the group listed.
    pub listed_every: usize,
    /// W1's open loop, requests a second (W1, W1 with RBAC, W1 disturbed).
    pub whoami_rate: f64,
    /// W1 disturbed: users deleted, or tokens created, a second.
    pub disturb_rate: f64,
}

impl Size {
    pub const FULL: Size = Size {
        duration: Duration::from_secs(10),
        users: 10_000,
        batch: 100,
        singles: 500,
        echoes: 2_000,
        storms: &[200, 1_000],
        many_users: 100_000,
        listed_every: 10,
        whoami_rate: 1_000.0,
        disturb_rate: 100.0,
    };
    /// For the smoke test: every code path, seconds in all.
    pub const SMOKE: Size = Size {
        duration: Duration::from_millis(250),
        users: 200,
        batch: 100,
        singles: 20,
        echoes: 50,
        storms: &[5, 10],
        many_users: 1_000,
        listed_every: 10,
        whoami_rate: 1_000.0,
        disturb_rate: 100.0,
    };
}

/// A hub and what the workloads learnt about it.
pub struct Subject {
    pub hub: Hub,
    /// A hub-generated token of `bench0` (an ordinary user).
    pub token: String,
    /// A hub-generated token of [`rbac::RBAC_USER`] (in every group of the RBAC
    /// workloads), when the hub has their roles and groups.
    pub rbac_token: Option<String>,
}

impl Subject {
    pub fn name(&self) -> &'static str {
        self.hub.kind.short()
    }
}

fn json_body(v: serde_json::Value) -> Bytes {
    Bytes::from(v.to_string())
}

pub fn post(path: impl Into<String>, body: serde_json::Value, expect: StatusCode) -> Call {
    Call {
        method: Method::POST,
        path: path.into(),
        headers: Default::default(),
        body: json_body(body),
        expect,
    }
    .token(BOOTSTRAP_TOKEN)
    .header("content-type", "application/json")
}

/// Creates `bench0` and has the hub generate a token for it, and one for
/// [`rbac::RBAC_USER`] when the hub has the RBAC workloads' roles and groups.
pub async fn bootstrap(hub: Hub) -> anyhow::Result<Subject> {
    once(
        hub.addr,
        &post(
            "/hub/api/users/bench0",
            serde_json::json!({}),
            StatusCode::CREATED,
        ),
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let body = once(
        hub.addr,
        &post(
            "/hub/api/users/bench0/tokens",
            serde_json::json!({"note": "bench"}),
            StatusCode::CREATED,
        ),
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    let token = v["token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no token in {v}"))?
        .to_owned();
    hub.settle(&Call::get("/hub/api/user").token(&token))
        .await?;
    let rbac_token = match hub.rbac {
        true => Some(rbac::token_of(&hub, rbac::RBAC_USER, None).await?),
        false => None,
    };
    Ok(Subject {
        hub,
        token,
        rbac_token,
    })
}

/// L: the bare hyper server at c16 — W1's ceiling.
pub async fn ceiling(table: &mut Table, paths: &Paths, size: Size) -> anyhow::Result<()> {
    let c = Ceiling::hyper(paths).await?;
    let make: MakeCall = Arc::new(|_, _| Call::get("/"));
    let m = load::closed_loop(std::slice::from_ref(&c.addr), make, 16, size.duration).await;
    table.load("L bare hyper, c16", "ceiling", &m);
    Ok(())
}

/// W1: `GET /hub/api/user` with a hub-generated token at c16 and c64.
pub async fn whoami(table: &mut Table, subjects: &[Subject], size: Size, label: &str) {
    for c in [16, 64] {
        for s in subjects {
            let token = s.token.clone();
            let make: MakeCall = Arc::new(move |_, _| Call::get("/hub/api/user").token(&token));
            let m = load::closed_loop(&s.hub.addrs, make, c, size.duration).await;
            table.load(&format!("W1 whoami c{c}{label}"), s.name(), &m);
        }
    }
}

/// W1's latency without the closed loop's feedback: `GET /hub/api/user` scheduled at a
/// rate both systems sustain, latency from the scheduled time.
pub async fn whoami_open(table: &mut Table, subjects: &[Subject], size: Size, rate: f64) {
    for s in subjects {
        let token = s.token.clone();
        let make: MakeCall = Arc::new(move |_, _| Call::get("/hub/api/user").token(&token));
        let m = load::open_loop(&s.hub.addrs, make, rate, size.duration, 16).await;
        let workload = format!("W1 whoami open loop, {rate:.0} req/s on 16 connections");
        eprintln!(
            "  {workload} on {}: p50 {:?} ms, p99 {:?} ms",
            s.name(),
            m.quantile_ms(0.5),
            m.quantile_ms(0.99)
        );
        table.latency(&workload, s.name(), &m);
    }
}

/// Requests in flight in W2's second one-by-one row.
const SINGLES_IN_FLIGHT: usize = 16;

/// W2: `size.users` users in batches, then `size.singles` one by one, first one at a
/// time, then [`SINGLES_IN_FLIGHT`] at a time (spread over a cluster's nodes, as W3's
/// loads are). One at a time, one by one's ceiling is as many `POST`s, sent the same
/// way, to a bare hyper server that syncs one write for each before it answers
/// ([`Ceiling::synced`]): the most any server that makes each create durable before
/// answering could reach here. In flight together, a server may make several creates
/// durable with one sync, and that row has no ceiling.
pub async fn create_users(table: &mut Table, subjects: &[Subject], paths: &Paths, size: Size) {
    let batches: Vec<Call> = (0..size.users / size.batch)
        .map(|b| {
            let names: Vec<String> = (0..size.batch)
                .map(|i| format!("u{}", b * size.batch + i))
                .collect();
            post(
                "/hub/api/users",
                serde_json::json!({ "usernames": names }),
                StatusCode::CREATED,
            )
        })
        .collect();
    let singles = |prefix: &str| -> Vec<Call> {
        (0..size.singles)
            .map(|i| {
                post(
                    format!("/hub/api/users/{prefix}{i}"),
                    serde_json::json!({}),
                    StatusCode::CREATED,
                )
            })
            .collect()
    };
    let cases = [
        (
            format!("W2 create {} users, batches of {}", size.users, size.batch),
            batches,
            size.users,
            1,
        ),
        (
            format!("W2 create {} users one by one", size.singles),
            singles("single"),
            size.singles,
            1,
        ),
        (
            format!(
                "W2 create {} users one by one, {SINGLES_IN_FLIGHT} in flight",
                size.singles
            ),
            singles("inflight"),
            size.singles,
            SINGLES_IN_FLIGHT,
        ),
    ];
    for (workload, calls, users, in_flight) in &cases {
        for s in subjects {
            let addrs = if *in_flight == 1 {
                std::slice::from_ref(&s.hub.addr)
            } else {
                &s.hub.addrs[..]
            };
            let f = users_per_sec(addrs, calls, *users, *in_flight).await;
            eprintln!("  {workload} on {}: {:?}", s.name(), f.value);
            table.put(workload, "users/s", "users/s", true, s.name(), f);
        }
    }
    let [_, (workload, singles, users, _), _] = &cases;
    let f = match Ceiling::synced(paths).await {
        Ok(c) => users_per_sec(&[c.addr], singles, *users, 1).await,
        Err(e) => Figure::failed(format!("the synced ceiling server: {e}")),
    };
    eprintln!("  {workload}, synced ceiling: {:?}", f.value);
    table.put(workload, "users/s", "users/s", true, "ceiling", f);
    // what follows reads these users on every node
    for s in subjects {
        let last = [
            format!("u{}", (size.users / size.batch * size.batch).max(1) - 1),
            format!("single{}", size.singles.max(1) - 1),
            format!("inflight{}", size.singles.max(1) - 1),
        ];
        for name in last {
            let call = Call::get(format!("/hub/api/users/{name}")).token(BOOTSTRAP_TOKEN);
            if let Err(e) = s.hub.settle(&call).await {
                eprintln!("  W2 on {}: {e}", s.name());
            }
        }
    }
}

/// Sends `calls`, `in_flight` at a time (call `i` to `addrs[i % addrs.len()]`), each on
/// a new connection and each sent once a call before it was answered; `users` (what
/// they create) per second. The first failure fails the figure.
async fn users_per_sec(
    addrs: &[SocketAddr],
    calls: &[Call],
    users: usize,
    in_flight: usize,
) -> Figure {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let start = Instant::now();
    let senders = (0..in_flight.max(1)).map(|_| async {
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(call) = calls.get(i) else {
                return Ok::<(), String>(());
            };
            once(addrs[i % addrs.len()], call).await?;
        }
    });
    match futures::future::try_join_all(senders).await {
        Ok(_) => Figure::value(users as f64 / start.elapsed().as_secs_f64()),
        Err(e) => Figure::failed(e),
    }
}

/// W3: list pages (first and deep) and single users at c16, with the users W2 made.
/// `users` is how many `u{n}` exist; `label` goes after each workload's name.
pub async fn read_users(
    table: &mut Table,
    subjects: &[Subject],
    size: Size,
    users: usize,
    label: &str,
) {
    let deep = users.saturating_sub(50);
    let cases: Vec<(String, MakeCall)> = vec![
        (
            "W3 list users, first page of 50".into(),
            Arc::new(|_, _| Call::get("/hub/api/users?offset=0&limit=50").token(BOOTSTRAP_TOKEN)),
        ),
        (
            format!("W3 list users, page of 50 at offset {deep}"),
            Arc::new(move |_, _| {
                Call::get(format!("/hub/api/users?offset={deep}&limit=50")).token(BOOTSTRAP_TOKEN)
            }),
        ),
        (
            "W3 GET /users/{name}".into(),
            Arc::new(move |w, i| {
                let n = (w as u64 * 7919 + i * 104_729) % users as u64;
                Call::get(format!("/hub/api/users/u{n}")).token(BOOTSTRAP_TOKEN)
            }),
        ),
    ];
    for (name, make) in cases {
        for s in subjects {
            let m = load::closed_loop(&s.hub.addrs, make.clone(), 16, size.duration).await;
            table.load(&format!("{name}, c16{label}"), s.name(), &m);
        }
    }
}

/// Creates `u{from}`…`u{to - 1}` in batches of `batch` on every subject (not timed).
pub async fn grow_users(
    subjects: &[Subject],
    from: usize,
    to: usize,
    batch: usize,
) -> anyhow::Result<()> {
    create_named(subjects, (from..to).map(|i| format!("u{i}")), batch).await
}

/// Creates the users `names` in batches of `batch` on every subject (not timed), and
/// waits until every node has the last.
pub async fn create_named(
    subjects: &[Subject],
    names: impl Iterator<Item = String>,
    batch: usize,
) -> anyhow::Result<()> {
    let names: Vec<String> = names.collect();
    for s in subjects {
        for chunk in names.chunks(batch.max(1)) {
            once(
                s.hub.addr,
                &post(
                    "/hub/api/users",
                    serde_json::json!({ "usernames": chunk }),
                    StatusCode::CREATED,
                ),
            )
            .await
            .map_err(anyhow::Error::msg)?;
        }
        if let Some(last) = names.last() {
            let call = Call::get(format!("/hub/api/users/{last}")).token(BOOTSTRAP_TOKEN);
            s.hub.settle(&call).await?;
        }
    }
    Ok(())
}

/// Starts `user`'s default server and waits until the hub reports it ready and every
/// node routes to it.
async fn start_server(s: &Subject, user: &str) -> anyhow::Result<()> {
    let call = Call {
        method: Method::POST,
        path: format!("/hub/api/users/{user}/server"),
        headers: Default::default(),
        body: Bytes::new(),
        expect: StatusCode::CREATED,
    }
    .token(BOOTSTRAP_TOKEN);
    if let Err(e) = once(s.hub.addr, &call).await {
        // 202: accepted, still starting
        if !e.contains("202") {
            anyhow::bail!("starting {user}'s server: {e}");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body = once(
            s.hub.addr,
            &Call::get(format!("/hub/api/users/{user}")).token(BOOTSTRAP_TOKEN),
        )
        .await
        .map_err(anyhow::Error::msg)?;
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        if v["servers"][""]["ready"].as_bool() == Some(true) {
            return s.hub.settle(&Call::get(format!("/user/{user}/1k"))).await;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{user}'s server not ready in 60 s: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// W4: 1 KiB and 1 MiB through each hub's proxy and straight to a tiny server (the
/// ceiling), at c16; WebSocket echo round trips through the proxy.
pub async fn proxy(
    table: &mut Table,
    subjects: &[Subject],
    paths: &Paths,
    size: Size,
) -> anyhow::Result<()> {
    for s in subjects {
        start_server(s, "bench0").await?;
    }
    let direct = Ceiling::tiny(paths, "/user/bench0/").await?;
    for body in ["1k", "1m"] {
        let path = format!("/user/bench0/{body}");
        let make: MakeCall = {
            let path = path.clone();
            Arc::new(move |_, _| Call::get(path.clone()))
        };
        let before = direct.cpu_time();
        let m = load::closed_loop(
            std::slice::from_ref(&direct.addr),
            make.clone(),
            16,
            size.duration,
        )
        .await;
        let direct_rate = m.per_sec();
        let workload = format!("W4 GET {body} c16");
        table.load(&workload, "direct", &m);
        // the proxy's cost apart from what shares its cores: the hub's processes' CPU
        // time per proxied request (the backend's own, hit directly, as the ceiling)
        table.cpu_per_request(&workload, "direct", &m, direct.cpu_time() - before);
        for s in subjects {
            let before = s.hub.cpu_time();
            let m = load::closed_loop(&s.hub.addrs, make.clone(), 16, size.duration).await;
            table.load(&workload, s.name(), &m);
            table.cpu_per_request(&workload, s.name(), &m, s.hub.cpu_time() - before);
            table.put(
                &workload,
                "ratio to direct",
                "×",
                true,
                s.name(),
                Figure::of(&m, |m| Some(m.per_sec() / direct_rate)),
            );
        }
    }
    for s in subjects {
        let url = format!("ws://{}/user/bench0/echo", s.hub.addr);
        let m = load::websocket_echo(&url, size.echoes, 32).await;
        eprintln!("  W4 echo on {}: p50 {:?} ms", s.name(), m.quantile_ms(0.5));
        table.latency("W4 WebSocket echo via proxy", s.name(), &m);
    }
    Ok(())
}

/// W6: each system's resident memory now, under `label`.
pub fn memory(table: &mut Table, subjects: &[Subject], label: &str) {
    for s in subjects {
        let mib = s.hub.rss_mib();
        eprintln!("  W6 {label} on {}: {mib:.1} MiB", s.name());
        table.put(
            &format!("W6 memory, {label}"),
            "RSS",
            "MiB",
            false,
            s.name(),
            Figure::value(mib),
        );
    }
}

/// Which kinds the subjects are, in order.
pub fn kinds(subjects: &[Subject]) -> Vec<Kind> {
    subjects.iter().map(|s| s.hub.kind).collect()
}
