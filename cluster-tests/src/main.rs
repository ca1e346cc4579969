//! `cluster-tests chaos ...` runs real nodes under faults and judges the history;
//! `cluster-tests check HISTORY` judges a recorded one. The last line printed is
//! `violations: N`; the exit status is non-zero when N > 0 or the run itself failed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use cluster_tests::history::{self, FaultKind};
use cluster_tests::run::{Options, Profile};
use cluster_tests::{checker, report};

#[derive(Parser)]
#[command(
    name = "cluster-tests",
    about = "A chaos harness for Galilean clusters"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start N nodes, run a seeded workload under seeded faults, heal, check.
    Chaos {
        #[arg(long, default_value_t = 3)]
        nodes: u32,
        /// How long the workload runs (`60s`, `10m`); the profile's by default.
        #[arg(long, value_parser = parse_duration)]
        duration: Option<Duration>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// `short` (45 s, for CI), `long` (10 minutes), or `majority` (a minute in which
        /// some faults hit a majority of the nodes).
        #[arg(long, default_value = "short")]
        profile: String,
        /// Fault kinds: kill, hang, leader-hang, partition, leader (isolation), flap,
        /// restart.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "kill,hang,leader-hang,partition,leader,flap,restart"
        )]
        faults: Vec<String>,
        /// The galilean binary (default: the one beside this executable).
        #[arg(long)]
        galilean: Option<PathBuf>,
        /// The results folder (default: cluster-tests/results/<seed>-<time>).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, default_value_t = 4)]
        clients: u32,
        /// `netns` (a namespace per node, partitions in the kernel), `loopback` (nodes on
        /// loopback addresses, partitions in the harness's TCP relay), or `auto`: netns
        /// where namespaces can be made.
        #[arg(long, default_value = "auto")]
        network: String,
    },
    /// Check a recorded history (history.jsonl); the report goes beside it.
    Check {
        history: PathBuf,
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (n, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s}: expected e.g. 60s or 10m"))?;
    match unit {
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("{s}: the unit is s, m or h")),
    }
}

/// Checks `entries`, writes the report into `out`, prints the summary; the exit status.
fn judge(entries: &[history::Entry], out: &std::path::Path) -> ExitCode {
    let verdict = checker::check(entries);
    let report = report::build(entries, &verdict);
    match report::write(out, &report) {
        Ok((md, json)) => eprintln!("report: {} and {}", md.display(), json.display()),
        Err(e) => eprintln!("cannot write the report into {}: {e}", out.display()),
    }
    for p in &verdict.run_problems {
        println!("run problem: {p}");
    }
    for v in &verdict.violations {
        println!("violation ({}): {}", v.kind.name(), v.message);
    }
    println!("violations: {}", verdict.violations.len());
    if verdict.violations.is_empty() && verdict.run_problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { history: path, out } => {
            let entries = match history::read(&path) {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("cluster-tests: {e}");
                    return ExitCode::from(2);
                }
            };
            let out = out.unwrap_or_else(|| {
                path.parent()
                    .map(|p| p.to_path_buf())
                    .unwrap_or_else(|| PathBuf::from("."))
            });
            judge(&entries, &out)
        }
        Command::Chaos {
            nodes,
            duration,
            seed,
            profile,
            faults,
            galilean,
            out,
            clients,
            network,
        } => {
            let Some(network) = cluster_tests::net::Choice::parse(&network) else {
                eprintln!("cluster-tests: --network {network}: expected auto, netns or loopback");
                return ExitCode::from(2);
            };
            let Some(profile) = Profile::parse(&profile) else {
                eprintln!("cluster-tests: --profile {profile}: expected short, long or majority");
                return ExitCode::from(2);
            };
            let mut kinds = Vec::new();
            for f in &faults {
                match FaultKind::parse(f) {
                    Some(k) => kinds.push(k),
                    None => {
                        eprintln!(
                            "cluster-tests: --faults {f}: expected kill, hang, leader-hang, partition, \
                             leader, flap or restart"
                        );
                        return ExitCode::from(2);
                    }
                }
            }
            if nodes < 3 {
                eprintln!("cluster-tests: --nodes {nodes}: a cluster that survives a fault needs 3 or more");
                return ExitCode::from(2);
            }
            let galilean = match galilean.or_else(|| {
                std::env::current_exe()
                    .ok()
                    .map(|exe| exe.with_file_name("galilean"))
            }) {
                Some(g) if g.exists() => g,
                other => {
                    eprintln!(
                        "cluster-tests: no galilean binary at {}: build it (cargo build --release -p galilean-node) or pass --galilean",
                        other.map_or("?".into(), |p| p.display().to_string())
                    );
                    return ExitCode::from(2);
                }
            };
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let out = out.unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("results")
                    .join(format!("{stamp}-seed{seed}-{nodes}nodes"))
            });
            // a fresh folder: nodes started over an earlier run's data would join its
            // cluster, not form a new one
            if std::fs::read_dir(&out).is_ok_and(|mut d| d.next().is_some()) {
                eprintln!(
                    "cluster-tests: {} is not empty (an earlier run's?); choose another --out",
                    out.display()
                );
                return ExitCode::from(2);
            }
            // absolute: the nodes and their servers run in other working directories
            if let Err(e) = std::fs::create_dir_all(&out) {
                eprintln!("cluster-tests: cannot create {}: {e}", out.display());
                return ExitCode::FAILURE;
            }
            let out = match out.canonicalize() {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("cluster-tests: {}: {e}", out.display());
                    return ExitCode::FAILURE;
                }
            };
            let options = Options {
                nodes,
                duration: duration.unwrap_or(profile.duration()),
                seed,
                profile,
                faults: kinds,
                galilean,
                out: out.clone(),
                clients,
                network,
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("cluster-tests: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            // an interrupt drops the run, whose processes and namespaces go with it
            let result = runtime.block_on(async {
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
                let terminated = async {
                    match term.as_mut() {
                        Some(t) => {
                            t.recv().await;
                        }
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    r = cluster_tests::run::run(&options) => Some(r),
                    _ = tokio::signal::ctrl_c() => None,
                    _ = terminated => None,
                }
            });
            let entries = match result {
                None => {
                    eprintln!("cluster-tests: interrupted; processes and namespaces removed");
                    return ExitCode::from(130);
                }
                Some(Err(e)) => {
                    eprintln!("cluster-tests: the run failed: {e:#}");
                    println!("violations: 0 (the run failed before it could be judged)");
                    return ExitCode::FAILURE;
                }
                Some(Ok(entries)) => entries,
            };
            let path = out.join("history.jsonl");
            if let Err(e) = history::write(&path, &entries) {
                eprintln!("cluster-tests: cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            eprintln!("history: {}", path.display());
            judge(&entries, &out)
        }
    }
}
