//! W1 disturbed: W1's open loop while the hub's state changes at a fixed rate — users
//! deleted, each a group's member (so each deletion changes grants), or tokens
//! created — beside the same open loop undisturbed just before, with the plain token
//! and with the RBAC user's. Galilean only: JupyterHub does not keep up with W1's rate
//! undisturbed.
//!
//! The disturbance is bounded: `disturb_rate` a second for W1's duration, each change
//! scheduled in an open loop of its own (4 connections, spread over a cluster's nodes
//! like the load), so it stops by itself once that many are answered.

use std::sync::Arc;

use http::{Method, StatusCode};
use serde_json::json;

use crate::load::{self, once, Call, MakeCall, Measured};
use crate::systems::BOOTSTRAP_TOKEN;
use crate::table::{Figure, Table};
use crate::workloads::{create_named, post, Size, Subject};

/// The group every user deleted is a member of.
const DOOMED_GROUP: &str = "bench-doomed";
/// Users tokens are created for, in turn.
const HOLDERS: usize = 100;
/// Connections the disturbance is sent on (a change may take longer than its slot).
const DISTURB_CONNECTIONS: usize = 4;

/// The users deleted while W1 runs with token `t` (0: plain, 1: RBAC).
fn doomed(t: usize, i: u64) -> String {
    format!("doomed{t}-{i}")
}

fn holder(i: u64) -> String {
    format!("holder{}", i % HOLDERS as u64)
}

/// Which token W1 runs with.
#[derive(Clone, Copy)]
enum Token {
    /// `bench0`'s, in no group.
    Plain,
    /// [`crate::rbac::RBAC_USER`]'s.
    Rbac,
}

impl Token {
    fn label(self) -> &'static str {
        match self {
            Token::Plain => "",
            Token::Rbac => ", owner in 100 groups with 20 roles",
        }
    }

    fn of(self, s: &Subject) -> Option<String> {
        match self {
            Token::Plain => Some(s.token.clone()),
            Token::Rbac => s.rbac_token.clone(),
        }
    }
}

/// What disturbs W1.
#[derive(Clone, Copy)]
enum Change {
    DeleteUsers,
    CreateTokens,
}

impl Change {
    fn label(self, rate: f64) -> String {
        match self {
            Change::DeleteUsers => format!("deleting {rate:.0} users/s"),
            Change::CreateTokens => format!("creating {rate:.0} tokens/s"),
        }
    }

    fn metric(self) -> &'static str {
        match self {
            Change::DeleteUsers => "users deleted/s",
            Change::CreateTokens => "tokens created/s",
        }
    }

    /// The `i`-th change while W1 runs with token `t`.
    fn call(self, t: usize, i: u64) -> Call {
        match self {
            Change::DeleteUsers => Call {
                method: Method::DELETE,
                path: format!("/hub/api/users/{}", doomed(t, i)),
                headers: Default::default(),
                body: Default::default(),
                expect: StatusCode::NO_CONTENT,
            }
            .token(BOOTSTRAP_TOKEN),
            Change::CreateTokens => post(
                format!("/hub/api/users/{}/tokens", holder(i)),
                json!({"note": "disturbance"}),
                StatusCode::CREATED,
            ),
        }
    }
}

/// W1 disturbed on every Galilean of `subjects`.
pub async fn disturbed(table: &mut Table, subjects: &[Subject], size: Size) {
    let subjects: Vec<&Subject> = subjects
        .iter()
        .filter(|s| s.hub.kind.is_galilean())
        .collect();
    let changes = (size.disturb_rate * size.duration.as_secs_f64()) as u64;
    let mut ready = Vec::new();
    for s in &subjects {
        match prepare(s, changes, size.batch).await {
            Ok(()) => ready.push(true),
            Err(e) => {
                eprintln!("  W1 disturbed on {}: set-up: {e:#}", s.name());
                ready.push(false);
            }
        }
    }
    let rate = size.whoami_rate;
    for (t, token) in [Token::Plain, Token::Rbac].into_iter().enumerate() {
        let label = token.label();
        let token_of = |s: &Subject| token.of(s);
        let base = format!("W1 disturbed{label}, open loop {rate:.0} req/s");
        let mut undisturbed: Vec<Option<Measured>> = Vec::new();
        let undisturbed_row = format!("{base}, undisturbed");
        for (s, ok) in subjects.iter().zip(&ready) {
            let Some(token) = token_of(s).filter(|_| *ok) else {
                table.put(
                    &undisturbed_row,
                    "p99",
                    "ms",
                    false,
                    s.name(),
                    Figure::failed("no set-up or no token"),
                );
                undisturbed.push(None);
                continue;
            };
            let m = load::open_loop(&s.hub.addrs, whoami(&token), rate, size.duration, 16).await;
            report(&undisturbed_row, s.name(), &m);
            table.latency(&undisturbed_row, s.name(), &m);
            undisturbed.push(Some(m));
        }
        for change in [Change::DeleteUsers, Change::CreateTokens] {
            let workload = format!("{base}, {}", change.label(size.disturb_rate));
            for (s, calm) in subjects.iter().zip(&undisturbed) {
                let (Some(token), Some(calm)) = (token_of(s), calm) else {
                    continue;
                };
                let disturb: MakeCall = Arc::new(move |_, i| change.call(t, i));
                let (m, d) = tokio::join!(
                    load::open_loop(&s.hub.addrs, whoami(&token), rate, size.duration, 16),
                    load::open_loop(
                        &s.hub.addrs,
                        disturb,
                        size.disturb_rate,
                        size.duration,
                        DISTURB_CONNECTIONS
                    ),
                );
                report(&workload, s.name(), &m);
                eprintln!(
                    "    the disturbance: {} of {changes} in {:.2} s, p99 {:?} ms{}",
                    d.ok,
                    d.elapsed.as_secs_f64(),
                    d.quantile_ms(0.99),
                    d.first_error
                        .as_ref()
                        .map(|e| format!(", {} errors, first: {e}", d.errors))
                        .unwrap_or_default()
                );
                table.latency(&workload, s.name(), &m);
                let ratio = match (m.failed(), m.quantile_ms(0.99), calm.quantile_ms(0.99)) {
                    (false, Some(a), Some(b)) if !calm.failed() && b > 0.0 => Figure::value(a / b),
                    _ => Figure::of(&m, |_| None),
                };
                table.put(
                    &workload,
                    "p99 over undisturbed",
                    "×",
                    false,
                    s.name(),
                    ratio,
                );
                let done = Figure::of(&d, |d| Some(d.per_sec()));
                table.put(&workload, change.metric(), "/s", true, s.name(), done);
            }
        }
    }
}

fn whoami(token: &str) -> MakeCall {
    let token = token.to_owned();
    Arc::new(move |_, _| Call::get("/hub/api/user").token(&token))
}

fn report(workload: &str, system: &str, m: &Measured) {
    eprintln!(
        "  {workload} on {system}: p50 {:?} ms, p99 {:?} ms{}",
        m.quantile_ms(0.5),
        m.quantile_ms(0.99),
        m.first_error
            .as_ref()
            .map(|e| format!(" — {} errors, first: {e}", m.errors))
            .unwrap_or_default()
    );
}

/// Creates the users to delete (`changes` for each token), all members of
/// [`DOOMED_GROUP`], and the [`HOLDERS`] users tokens are made for; waits until every
/// node has them.
async fn prepare(s: &Subject, changes: u64, batch: usize) -> anyhow::Result<()> {
    let holders = (0..HOLDERS as u64).map(holder);
    create_named(std::slice::from_ref(s), holders, batch).await?;
    let doomed: Vec<String> = (0..2)
        .flat_map(|t| (0..changes).map(move |i| doomed(t, i)))
        .collect();
    create_named(std::slice::from_ref(s), doomed.iter().cloned(), batch).await?;
    once(
        s.hub.addr,
        &post(
            format!("/hub/api/groups/{DOOMED_GROUP}"),
            json!({}),
            StatusCode::CREATED,
        ),
    )
    .await
    .map_err(anyhow::Error::msg)?;
    for chunk in doomed.chunks(batch.max(1)) {
        once(
            s.hub.addr,
            &post(
                format!("/hub/api/groups/{DOOMED_GROUP}/users"),
                json!({ "users": chunk }),
                StatusCode::OK,
            ),
        )
        .await
        .map_err(anyhow::Error::msg)?;
    }
    let call = Call::get(format!("/hub/api/groups/{DOOMED_GROUP}")).token(BOOTSTRAP_TOKEN);
    let members = doomed.len();
    s.hub
        .settle_until(&call, |body| {
            serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v["users"].as_array().map(Vec::len))
                == Some(members)
        })
        .await
}
