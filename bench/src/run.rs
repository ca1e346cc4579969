//! One run of `galilean-bench run`: which systems (`--systems`, `--baseline`) and
//! workloads (`--only`) it takes, and its rounds (`--rounds`), each starting every
//! system afresh and running the workloads against each in turn.

use crate::rounds;
use crate::systems::{Hub, Kind, Paths};
use crate::table::Table;
use crate::workloads::{self, Size, Subject};
use crate::{disturb, logins, rbac, spawns};

/// Which workloads run.
#[derive(Debug, Clone, Copy)]
pub struct Selection {
    ceiling: bool,
    whoami: bool,
    create: bool,
    read: bool,
    proxy: bool,
    storms: bool,
    logins: bool,
    memory: bool,
    /// W1 with RBAC (beside plain W1, which it brings along).
    whoami_rbac: bool,
    /// W3 by group (after W2, which it brings along).
    read_group: bool,
    /// W1 disturbed.
    disturbed: bool,
    /// Everything: a run whose results are written.
    pub all: bool,
}

impl Selection {
    pub fn parse(only: &[String]) -> Result<Selection, String> {
        if only.is_empty() {
            return Ok(Selection {
                ceiling: true,
                whoami: true,
                create: true,
                read: true,
                proxy: true,
                storms: true,
                logins: true,
                memory: true,
                whoami_rbac: true,
                read_group: true,
                disturbed: true,
                all: true,
            });
        }
        let mut s = Selection {
            ceiling: false,
            whoami: false,
            create: false,
            read: false,
            proxy: false,
            storms: false,
            logins: false,
            memory: false,
            whoami_rbac: false,
            read_group: false,
            disturbed: false,
            all: false,
        };
        for w in only {
            match w.to_ascii_lowercase().as_str() {
                "l" => s.ceiling = true,
                "w1" => s.whoami = true,
                "w2" => s.create = true,
                "w3" => s.read = true,
                "w4" => s.proxy = true,
                "w5" => s.storms = true,
                "w6" => s.memory = true,
                "w7" => s.logins = true,
                "w1-rbac" => s.whoami_rbac = true,
                "w3-group" => s.read_group = true,
                "w1-disturbed" => s.disturbed = true,
                other => {
                    return Err(format!(
                        "unknown workload {other:?}: expected l, w1, w2, w3, w4, w5, w6, w7, \
                         w1-rbac, w3-group, w1-disturbed"
                    ))
                }
            }
        }
        // W3 (by group too) reads W2's users
        s.create |= s.read || s.read_group;
        Ok(s)
    }

    /// Whether the hubs need the RBAC workloads' roles and groups.
    pub fn rbac(&self) -> bool {
        self.whoami_rbac || self.read_group || self.disturbed
    }
}

/// The systems `--systems` names, in its order; with a baseline (`--baseline`), the
/// baseline right after `galilean` unless named itself. The baseline needs the flag, and
/// the flag a Galilean to compare.
pub fn systems(names: &[String], baseline: bool) -> Result<Vec<Kind>, String> {
    let mut kinds = Vec::new();
    for s in names {
        match Kind::ALL.iter().find(|k| k.short() == s) {
            Some(k) if !kinds.contains(k) => kinds.push(*k),
            Some(_) => {}
            None => {
                return Err(format!(
                    "{s}: expected jupyterhub, galilean, galilean-baseline or galilean-3"
                ))
            }
        }
    }
    let has = |kinds: &[Kind], k: Kind| kinds.contains(&k);
    if baseline && !has(&kinds, Kind::GalileanBaseline) {
        let Some(i) = kinds.iter().position(|k| *k == Kind::Galilean) else {
            return Err("--baseline is measured against galilean: add galilean to it".into());
        };
        kinds.insert(i + 1, Kind::GalileanBaseline);
    }
    if !baseline && has(&kinds, Kind::GalileanBaseline) {
        return Err("galilean-baseline needs --baseline PATH (another galilean binary)".into());
    }
    Ok(kinds)
}

/// `rounds` rounds of the workloads `only` against the systems `kinds`, each round with
/// every system started afresh (the two Galilean builds in turn first, see
/// [`rounds::order`]); the table of the rounds' medians.
pub async fn run(
    kinds: &[Kind],
    paths: &Paths,
    size: Size,
    only: &Selection,
    rounds: usize,
) -> anyhow::Result<Table> {
    let mut tables = Vec::new();
    for round in 0..rounds.max(1) {
        let order = rounds::order(kinds, round);
        if rounds > 1 {
            let names: Vec<&str> = order.iter().map(|k| k.short()).collect();
            eprintln!("round {} of {rounds}: {}", round + 1, names.join(", "));
        }
        tables.push(run_round(&order, paths, size, only).await?);
    }
    Ok(rounds::combine(tables))
}

/// One round: every system in `kinds` started afresh, each workload against each in
/// that order, every system stopped.
async fn run_round(
    kinds: &[Kind],
    paths: &Paths,
    size: Size,
    only: &Selection,
) -> anyhow::Result<Table> {
    let mut table = Table::default();
    if only.ceiling {
        eprintln!("L: the ceilings");
        workloads::ceiling(&mut table, paths, size).await?;
    }
    let mut subjects: Vec<Subject> = Vec::new();
    for kind in kinds {
        eprintln!("starting {}", kind.name());
        let hub = Hub::start(*kind, paths, only.rbac()).await?;
        subjects.push(workloads::bootstrap(hub).await?);
    }
    if only.memory {
        workloads::memory(&mut table, &subjects, "idle");
    }
    if only.whoami_rbac {
        eprintln!("W1: whoami, and with RBAC");
        rbac::whoami_rbac(&mut table, &subjects, size, size.whoami_rate).await;
    } else if only.whoami {
        eprintln!("W1: whoami");
        workloads::whoami(&mut table, &subjects, size, "").await;
        workloads::whoami_open(&mut table, &subjects, size, size.whoami_rate).await;
    }
    if only.create {
        eprintln!("W2: creating users");
        workloads::create_users(&mut table, &subjects, paths, size).await;
        if only.memory {
            workloads::memory(&mut table, &subjects, &format!("{} users", size.users));
        }
        if only.whoami {
            eprintln!("W1 again, with {} users stored", size.users);
            workloads::whoami(
                &mut table,
                &subjects,
                size,
                &format!(", {} users", size.users),
            )
            .await;
        }
    }
    if only.read {
        eprintln!("W3: reading users");
        workloads::read_users(&mut table, &subjects, size, size.users, "").await;
    }
    if only.read_group {
        eprintln!("W3 by group: listing one group's members");
        rbac::list_by_group(&mut table, &subjects, size).await;
    }
    if only.proxy {
        eprintln!("W4: the proxy");
        workloads::proxy(&mut table, &subjects, paths, size).await?;
        if only.memory {
            workloads::memory(&mut table, &subjects, "1 server running");
        }
    }
    if only.storms {
        eprintln!("W5: spawn storms");
        let largest = size.storms.iter().copied().max().unwrap_or(0);
        spawns::create_storm_users(&subjects, largest).await?;
        for &n in size.storms {
            let memory = only.memory && n == largest;
            spawns::storm(&mut table, &subjects, n, |table, s| {
                if memory {
                    workloads::memory(table, s, &format!("{n} servers running"));
                }
            })
            .await;
        }
    }
    if only.logins {
        eprintln!("W7: form logins");
        logins::logins(&mut table, &subjects, 8, size.duration).await;
    }
    if only.disturbed {
        // last: it deletes and makes users and tokens, which the figures before it
        // (memory above all) would count
        eprintln!("W1 disturbed: users deleted, tokens created");
        disturb::disturbed(&mut table, &subjects, size).await;
    }
    debug_assert_eq!(workloads::kinds(&subjects), kinds);
    for s in subjects {
        s.hub.stop().await;
    }
    let singles: Vec<Kind> = kinds
        .iter()
        .copied()
        .filter(|k| k.is_single_galilean())
        .collect();
    if (only.read || only.memory) && !singles.is_empty() {
        // One Galilean node (of each build measured), started afresh so that it holds
        // these users and nothing else (W7 alone leaves tens of thousands more):
        // JupyterHub would take over ten minutes to create them.
        let many = size.many_users;
        eprintln!("Galilean with {many} users");
        let mut g = Vec::new();
        for kind in singles {
            g.push(workloads::bootstrap(Hub::start(kind, paths, false).await?).await?);
        }
        workloads::grow_users(&g, 0, many, size.batch).await?;
        if only.memory {
            workloads::memory(&mut table, &g, &format!("{many} users"));
        }
        if only.read {
            workloads::read_users(&mut table, &g, size, many, &format!(", {many} users")).await;
        }
        for s in g {
            s.hub.stop().await;
        }
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &str) -> Vec<String> {
        s.split(',').map(String::from).collect()
    }

    #[test]
    fn a_baseline_joins_galilean_unless_named() {
        use Kind::*;
        let default = names("jupyterhub,galilean,galilean-3");
        assert_eq!(
            systems(&default, false).unwrap(),
            [JupyterHub, Galilean, GalileanCluster]
        );
        assert_eq!(
            systems(&default, true).unwrap(),
            [JupyterHub, Galilean, GalileanBaseline, GalileanCluster]
        );
        assert_eq!(
            systems(&names("galilean"), true).unwrap(),
            [Galilean, GalileanBaseline]
        );
        assert_eq!(
            systems(&names("galilean-baseline,galilean"), true).unwrap(),
            [GalileanBaseline, Galilean]
        );
        assert_eq!(
            systems(&names("galilean-baseline"), true).unwrap(),
            [GalileanBaseline]
        );
        assert!(systems(&names("galilean-baseline"), false).is_err());
        assert!(systems(&names("jupyterhub"), true).is_err());
        assert!(systems(&names("galilean-2"), false).is_err());
    }
}
