//! The roles and groups of the RBAC workloads, the same for both hubs (Galilean's
//! `[[roles]]` and `[[groups]]`, JupyterHub's `load_roles` and `load_groups`), and the
//! workloads that use them: W1 for a token whose owner is in [`GROUPS`] groups holding
//! [`ROLES`] roles, beside the plain token, and W3's listing by a token that may list
//! one group's members only.

use std::sync::Arc;

use http::StatusCode;
use serde_json::{json, Value};

use crate::load::{self, once, Call, MakeCall, Measured};
use crate::systems::Hub;
use crate::table::{Figure, Table};
use crate::workloads::{post, Size, Subject};

/// Groups the RBAC user is in.
pub const GROUPS: usize = 100;
/// Roles held by those groups, each by `GROUPS / ROLES` of them.
pub const ROLES: usize = 20;
/// The user in every one of the [`GROUPS`] groups (W1's RBAC rows).
pub const RBAC_USER: &str = "bench-rbac";
/// The user whose only listing right is one group's members (W3's group rows).
pub const LISTER: &str = "bench-lister";
/// The group [`LISTER`] may list and read: every `Size::listed_every`-th W2 user.
pub const LISTED_GROUP: &str = "bench-listed";

/// A role of the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    pub scopes: Vec<String>,
    pub users: Vec<String>,
    pub groups: Vec<String>,
}

/// A group of the config, with its members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub users: Vec<String>,
}

fn group_name(i: usize) -> String {
    format!("bench-g{i}")
}

/// The unfiltered scope each role holds besides its filtered ones, in turn.
const UNFILTERED: &[&str] = &["read:hub", "list:services", "read:services", "list:groups"];

/// [`ROLES`] roles `bench-r{i}`, each held by [`GROUPS`]` / `[`ROLES`] of the groups and
/// granting five scopes: four filtered by one of the RBAC user's groups
/// (`read:users`, `list:users`, `read:servers`, `access:servers`, each `!group=`) and
/// one unfiltered; and the lister's role, held by [`LISTER`] alone:
/// `list:users!group=`[`LISTED_GROUP`] and `read:users!group=`[`LISTED_GROUP`].
pub fn roles() -> Vec<Role> {
    let per_role = GROUPS / ROLES;
    let mut roles: Vec<Role> = (0..ROLES)
        .map(|i| {
            let g = |k: usize| group_name((i * per_role + k) % GROUPS);
            Role {
                name: format!("bench-r{i}"),
                scopes: vec![
                    format!("read:users!group={}", g(0)),
                    format!("list:users!group={}", g(1)),
                    format!("read:servers!group={}", g(2)),
                    format!("access:servers!group={}", g(3)),
                    UNFILTERED[i % UNFILTERED.len()].to_owned(),
                ],
                users: Vec::new(),
                groups: (0..per_role).map(g).collect(),
            }
        })
        .collect();
    roles.push(Role {
        name: LISTER.to_owned(),
        scopes: vec![
            format!("list:users!group={LISTED_GROUP}"),
            format!("read:users!group={LISTED_GROUP}"),
        ],
        users: vec![LISTER.to_owned()],
        groups: Vec::new(),
    });
    roles
}

/// The [`GROUPS`] groups with [`RBAC_USER`] in each, and [`LISTED_GROUP`], empty (its
/// members are added through the API once W2 made them).
pub fn groups() -> Vec<Group> {
    let mut groups: Vec<Group> = (0..GROUPS)
        .map(|i| Group {
            name: group_name(i),
            users: vec![RBAC_USER.to_owned()],
        })
        .collect();
    groups.push(Group {
        name: LISTED_GROUP.to_owned(),
        users: Vec::new(),
    });
    groups
}

fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|s| toml::Value::String(s.clone()).to_string())
        .collect();
    format!("[{}]", quoted.join(", "))
}

/// The roles and groups as Galilean's `[[roles]]` and `[[groups]]`.
pub fn galilean_toml() -> String {
    let mut out = String::new();
    for r in roles() {
        out.push_str(&format!(
            "\n[[roles]]\nname = {}\nscopes = {}\nusers = {}\ngroups = {}\n",
            toml::Value::String(r.name),
            toml_list(&r.scopes),
            toml_list(&r.users),
            toml_list(&r.groups),
        ));
    }
    for g in groups() {
        out.push_str(&format!(
            "\n[[groups]]\nname = {}\nusers = {}\n",
            toml::Value::String(g.name),
            toml_list(&g.users),
        ));
    }
    out
}

/// The roles as JupyterHub's `load_roles` (a JSON list) and the groups as its
/// `load_groups` (a JSON object), for `jupyterhub_config.py` (`BENCH_ROLES`,
/// `BENCH_GROUPS`).
pub fn jupyterhub_json() -> (String, String) {
    let roles: Vec<Value> = roles()
        .into_iter()
        .map(|r| json!({"name": r.name, "scopes": r.scopes, "users": r.users, "groups": r.groups}))
        .collect();
    let groups: serde_json::Map<String, Value> = groups()
        .into_iter()
        .map(|g| (g.name, json!({"users": g.users})))
        .collect();
    (
        Value::from(roles).to_string(),
        Value::from(groups).to_string(),
    )
}

/// A hub-generated token of `user` (the token role: all its owner holds, or `scopes`),
/// once every node accepts it.
pub async fn token_of(hub: &Hub, user: &str, scopes: Option<&[String]>) -> anyhow::Result<String> {
    let mut body = json!({"note": "bench"});
    if let Some(scopes) = scopes {
        body["scopes"] = json!(scopes);
    }
    let answer = once(
        hub.addr,
        &post(
            format!("/hub/api/users/{user}/tokens"),
            body,
            StatusCode::CREATED,
        ),
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let v: Value = serde_json::from_slice(&answer)?;
    let token = v["token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no token in {v}"))?
        .to_owned();
    hub.settle(&Call::get("/hub/api/user").token(&token))
        .await?;
    Ok(token)
}

/// `a`'s figure over `b`'s (by `f`), failed if either run failed.
fn over(a: &Measured, b: &Measured, f: impl Fn(&Measured) -> Option<f64>) -> Figure {
    for m in [a, b] {
        if m.failed() {
            return Figure::of(m, |_| None);
        }
    }
    match (f(a), f(b)) {
        (Some(x), Some(y)) if y > 0.0 => Figure::value(x / y),
        _ => Figure::failed("no figure to compare"),
    }
}

/// The RBAC rows' label.
const RBAC_LABEL: &str = "owner in 100 groups with 20 roles";

/// W1 beside W1 with RBAC: `GET /hub/api/user` with the plain token (`bench0`, in no
/// group) and with the RBAC user's, in turn for each system, at c16 and c64 and in the
/// open loop at `rate`; the RBAC rows with their figure over the plain one's.
pub async fn whoami_rbac(table: &mut Table, subjects: &[Subject], size: Size, rate: f64) {
    let make = |token: &str| -> MakeCall {
        let token = token.to_owned();
        Arc::new(move |_, _| Call::get("/hub/api/user").token(&token))
    };
    for s in subjects {
        if let Err(e) = check_rbac_model(s).await {
            eprintln!("  W1 RBAC on {}: {e:#}", s.name());
        }
    }
    for c in [16, 64] {
        for s in subjects {
            let plain = load::closed_loop(&s.hub.addrs, make(&s.token), c, size.duration).await;
            table.load(&format!("W1 whoami c{c}"), s.name(), &plain);
            let Some(rbac_token) = &s.rbac_token else {
                continue;
            };
            let rbac = load::closed_loop(&s.hub.addrs, make(rbac_token), c, size.duration).await;
            let workload = format!("W1 whoami c{c}, {RBAC_LABEL}");
            table.load(&workload, s.name(), &rbac);
            let f = over(&rbac, &plain, |m| Some(m.per_sec()));
            table.put(&workload, "req/s over plain", "×", true, s.name(), f);
        }
    }
    let open = format!("W1 whoami open loop, {rate:.0} req/s on 16 connections");
    for s in subjects {
        let plain = load::open_loop(&s.hub.addrs, make(&s.token), rate, size.duration, 16).await;
        eprintln!(
            "  {open} on {}: p50 {:?} ms, p99 {:?} ms",
            s.name(),
            plain.quantile_ms(0.5),
            plain.quantile_ms(0.99)
        );
        table.latency(&open, s.name(), &plain);
        let Some(rbac_token) = &s.rbac_token else {
            continue;
        };
        let rbac = load::open_loop(&s.hub.addrs, make(rbac_token), rate, size.duration, 16).await;
        let workload = format!("{open}, {RBAC_LABEL}");
        eprintln!(
            "  {workload} on {}: p50 {:?} ms, p99 {:?} ms",
            s.name(),
            rbac.quantile_ms(0.5),
            rbac.quantile_ms(0.99)
        );
        table.latency(&workload, s.name(), &rbac);
        let f = over(&rbac, &plain, |m| m.quantile_ms(0.99));
        table.put(&workload, "p99 over plain", "×", false, s.name(), f);
    }
}

/// That the RBAC user's model says it is in every group (the config was applied), with
/// the sizes of both tokens' answers on stderr: the RBAC one lists 100 groups and its
/// scopes.
async fn check_rbac_model(s: &Subject) -> anyhow::Result<()> {
    let token = s
        .rbac_token
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("no RBAC token"))?;
    let body = once(s.hub.addr, &Call::get("/hub/api/user").token(token))
        .await
        .map_err(anyhow::Error::msg)?;
    let v: Value = serde_json::from_slice(&body)?;
    let groups = v["groups"].as_array().map_or(0, Vec::len);
    let scopes = v["scopes"].as_array().map_or(0, Vec::len);
    anyhow::ensure!(
        groups == GROUPS,
        "{RBAC_USER} is in {groups} groups, not {GROUPS}: {v}"
    );
    let plain = once(s.hub.addr, &Call::get("/hub/api/user").token(&s.token))
        .await
        .map_err(anyhow::Error::msg)?;
    eprintln!(
        "  W1 on {}: the plain answer {} bytes, the RBAC one {} bytes ({groups} groups, {scopes} scopes)",
        s.name(),
        plain.len(),
        body.len()
    );
    Ok(())
}

/// The W2 users in [`LISTED_GROUP`]: every `size.listed_every`-th of `u0`…
pub fn listed_users(size: Size) -> Vec<String> {
    (0..size.users)
        .step_by(size.listed_every.max(1))
        .map(|i| format!("u{i}"))
        .collect()
}

/// W3 by group: fills [`LISTED_GROUP`] through the groups API (batches of
/// `size.batch`), has each hub generate a token of [`LISTER`] holding
/// `list:users!group=` and `read:users!group=` that group and nothing else, and lists
/// the users with it at c16: the first page of 50 and the last.
pub async fn list_by_group(table: &mut Table, subjects: &[Subject], size: Size) {
    let members = listed_users(size);
    let deep = members.len().saturating_sub(50);
    let label = format!(
        "list:users!group ({} of {} users)",
        members.len(),
        size.users
    );
    let mut tokens = Vec::new();
    for s in subjects {
        match fill_and_check(s, &members, size, deep).await {
            Ok(t) => tokens.push(Some(t)),
            Err(e) => {
                eprintln!("  W3 by group on {}: {e:#}", s.name());
                tokens.push(None);
            }
        }
    }
    for (name, offset) in [
        ("first page of 50".to_owned(), 0),
        (format!("page of 50 at offset {deep}"), deep),
    ] {
        let workload = format!("W3 list users, {label}, {name}, c16");
        for (s, token) in subjects.iter().zip(&tokens) {
            let Some(token) = token.clone() else {
                table.put(
                    &workload,
                    "req/s",
                    "req/s",
                    true,
                    s.name(),
                    Figure::failed("set-up failed"),
                );
                continue;
            };
            let make: MakeCall = Arc::new(move |_, _| {
                Call::get(format!("/hub/api/users?offset={offset}&limit=50")).token(&token)
            });
            let m = load::closed_loop(&s.hub.addrs, make, 16, size.duration).await;
            table.load(&workload, s.name(), &m);
        }
    }
}

/// Puts `members` into [`LISTED_GROUP`] on `s`, makes the lister's token and checks on
/// every node that both pages hold what they should: as many users as the group has
/// from that offset on (50 at most), every one a member. The token.
async fn fill_and_check(
    s: &Subject,
    members: &[String],
    size: Size,
    deep: usize,
) -> anyhow::Result<String> {
    for chunk in members.chunks(size.batch.max(1)) {
        let call = post(
            format!("/hub/api/groups/{LISTED_GROUP}/users"),
            json!({ "users": chunk }),
            StatusCode::OK,
        );
        once(s.hub.addr, &call).await.map_err(anyhow::Error::msg)?;
    }
    let scopes = [
        format!("list:users!group={LISTED_GROUP}"),
        format!("read:users!group={LISTED_GROUP}"),
    ];
    let token = token_of(&s.hub, LISTER, Some(&scopes)).await?;
    let group: std::collections::HashSet<&str> = members.iter().map(String::as_str).collect();
    for offset in [0, deep] {
        let call = Call::get(format!("/hub/api/users?offset={offset}&limit=50")).token(&token);
        let want = members.len().saturating_sub(offset).min(50);
        s.hub
            .settle_until(&call, |body| {
                let v: Value = serde_json::from_slice(body).unwrap_or_default();
                let names: Vec<&str> = v
                    .as_array()
                    .map(|a| a.iter().filter_map(|u| u["name"].as_str()).collect())
                    .unwrap_or_default();
                names.len() == want && names.iter().all(|n| group.contains(n))
            })
            .await?;
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rbac_user_is_in_every_group_and_the_groups_hold_every_role_between_them() {
        let groups = groups();
        let in_rbac: Vec<&Group> = groups
            .iter()
            .filter(|g| g.users.iter().any(|u| u == RBAC_USER))
            .collect();
        assert_eq!(in_rbac.len(), GROUPS);
        let roles = roles();
        let held: Vec<&Role> = roles
            .iter()
            .filter(|r| {
                r.groups
                    .iter()
                    .any(|g| in_rbac.iter().any(|x| &x.name == g))
            })
            .collect();
        assert_eq!(held.len(), ROLES);
        for r in held {
            let filtered = r.scopes.iter().filter(|s| s.contains("!group=")).count();
            assert!(filtered >= 2 && filtered < r.scopes.len(), "{r:?}");
            // every filter names one of the user's groups
            for s in &r.scopes {
                if let Some((_, g)) = s.split_once("!group=") {
                    assert!(in_rbac.iter().any(|x| x.name == g), "{s}");
                }
            }
        }
        // each group holds exactly one role
        for g in &in_rbac {
            let n = roles.iter().filter(|r| r.groups.contains(&g.name)).count();
            assert_eq!(n, 1, "{}", g.name);
        }
    }

    #[test]
    fn both_hubs_get_the_same_roles_and_groups() {
        let parsed: toml::Value = toml::from_str(&galilean_toml()).unwrap();
        let roles = parsed["roles"].as_array().unwrap();
        let groups = parsed["groups"].as_array().unwrap();
        assert_eq!(roles.len(), ROLES + 1);
        assert_eq!(groups.len(), GROUPS + 1);
        let (jr, jg) = jupyterhub_json();
        let jr: Value = serde_json::from_str(&jr).unwrap();
        let jg: Value = serde_json::from_str(&jg).unwrap();
        for (t, j) in roles.iter().zip(jr.as_array().unwrap()) {
            assert_eq!(t["name"].as_str(), j["name"].as_str());
            let ts: Vec<&str> = t["scopes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap())
                .collect();
            let js: Vec<&str> = j["scopes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap())
                .collect();
            assert_eq!(ts, js);
        }
        assert_eq!(jg.as_object().unwrap().len(), GROUPS + 1);
        assert_eq!(jg["bench-g7"]["users"], json!([RBAC_USER]));
        assert_eq!(jg[LISTED_GROUP]["users"], json!([]));
    }

    #[test]
    fn the_listed_group_holds_a_tenth_of_w2s_users() {
        let members = listed_users(Size::FULL);
        assert_eq!(members.len(), 1_000);
        assert_eq!(members[1], "u10");
    }
}
