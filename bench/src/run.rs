//! One run of `galilean-bench run`: which workloads it takes (`--only`), and the
//! workloads against every system in turn.

use crate::systems::{Hub, Kind, Paths};
use crate::table::Table;
use crate::workloads::{self, Size, Subject};
use crate::{logins, spawns};

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
                other => {
                    return Err(format!(
                        "unknown workload {other:?}: expected l, w1, w2, w3, w4, w5, w6, w7"
                    ))
                }
            }
        }
        // W3 reads W2's users
        s.create |= s.read;
        Ok(s)
    }
}

pub async fn run(
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
        let hub = Hub::start(*kind, paths).await?;
        subjects.push(workloads::bootstrap(hub).await?);
    }
    if only.memory {
        workloads::memory(&mut table, &subjects, "idle");
    }
    if only.whoami {
        eprintln!("W1: whoami");
        workloads::whoami(&mut table, &subjects, size, "").await;
        workloads::whoami_open(&mut table, &subjects, size, 1000.0).await;
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
    debug_assert_eq!(workloads::kinds(&subjects), kinds);
    for s in subjects {
        s.hub.stop().await;
    }
    if (only.read || only.memory) && kinds.contains(&Kind::Galilean) {
        // One Galilean node alone, started afresh so that it holds these users and
        // nothing else (W7 alone leaves tens of thousands more): JupyterHub would take
        // over ten minutes to create them.
        let many = size.many_users;
        eprintln!("Galilean with {many} users");
        let g = [workloads::bootstrap(Hub::start(Kind::Galilean, paths).await?).await?];
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
