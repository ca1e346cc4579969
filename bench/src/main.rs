//! `galilean-bench`: the same workloads against JupyterHub 6.1.1 + configurable-http-proxy
//! 5.3.0 and against Galilean, on this machine, in one run; one Markdown table with each
//! figure for each system and their ratio. See bench/README.md.

mod ceilings;
mod disturb;
mod load;
mod logins;
mod ports;
mod procfs;
mod rbac;
mod report;
mod rounds;
mod run;
mod spawns;
mod systems;
mod table;
mod workloads;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use run::Selection;
use systems::Paths;
use workloads::Size;

#[derive(Parser)]
#[command(
    name = "galilean-bench",
    about = "Galilean side by side with JupyterHub"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Systems to measure: jupyterhub, galilean (one node), galilean-3 (three nodes on
    /// loopback), galilean-baseline (one node from --baseline's binary; added after
    /// galilean by --baseline unless named).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "jupyterhub,galilean,galilean-3"
    )]
    systems: Vec<String>,
    /// A seconds-long pass over every workload, to check the harness (no figure of it
    /// means anything).
    #[arg(long)]
    smoke: bool,
    /// Where the peer is installed (bench/peer/install's prefix).
    #[arg(long)]
    peer: Option<PathBuf>,
    /// The results folder (default bench/results).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only these workloads (l, w1, w2, w3, w4, w5, w6, w7, w1-rbac, w3-group,
    /// w1-disturbed), e.g. to profile one; W3, W3 by group and W1's second pass need W2's
    /// users, so they bring W2 along; W1 with RBAC brings plain W1.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Another `galilean` binary (e.g. the release build from before a change): an A/B
    /// run, with the system galilean-baseline started from it (same settings and
    /// tiny_server as galilean) and each figure's difference from it. Writes no
    /// results.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Run the workloads this many times, every system started afresh in each round,
    /// the two Galilean builds taking turns going first; the table holds the medians.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    rounds: u16,
    /// Also write the printed table to this file.
    #[arg(long)]
    out_file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the workloads and print the table.
    Run(RunArgs),
    /// One closed-loop GET load against any HTTP/1.1 server, as the workloads send it:
    /// to profile a system, or to measure one the table does not hold.
    Load {
        /// Where to send it, e.g. 127.0.0.1:8000.
        #[arg(long)]
        addr: std::net::SocketAddr,
        /// The path to GET; only 200 answers count.
        #[arg(long)]
        path: String,
        /// An API token to send (`Authorization: token ...`), e.g. to profile
        /// `/hub/api/user`.
        #[arg(long)]
        token: Option<String>,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        #[arg(long, default_value_t = 10)]
        secs: u64,
        /// Processes whose CPU time is counted per request (repeatable).
        #[arg(long)]
        pid: Vec<u32>,
    },
    /// The bare hyper server of the ceilings (started by `run`).
    #[command(hide = true)]
    CeilingServer {
        #[arg(long)]
        port: u16,
        /// Write each POST's body here, synced, before answering (W2 one by one's
        /// ceiling).
        #[arg(long)]
        sync_file: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CeilingServer { port, sync_file } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            match rt.block_on(ceilings::serve_ceiling(port, sync_file)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("ceiling-server: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Load {
            addr,
            path,
            token,
            concurrency,
            secs,
            pid,
        } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            let before = procfs::cpu_time_of(&pid);
            let make: load::MakeCall = std::sync::Arc::new(move |_, _| match &token {
                Some(t) => load::Call::get(&path).token(t),
                None => load::Call::get(&path),
            });
            let m = rt.block_on(load::closed_loop(
                &[addr],
                make,
                concurrency.max(1),
                std::time::Duration::from_secs(secs),
            ));
            let spent = procfs::cpu_time_of(&pid) - before;
            // one line: req/s first, the CPU per request (if asked for) before "µs"
            let cpu_per_request = if pid.is_empty() {
                String::new()
            } else {
                let us = m.cpu_us_per_request(spent);
                format!(", {us:.1} µs CPU per request in {pid:?}")
            };
            println!(
                "{:.0} req/s, p50 {:.3} ms, p99 {:.3} ms{cpu_per_request}",
                m.per_sec(),
                m.quantile_ms(0.5).unwrap_or(f64::NAN),
                m.quantile_ms(0.99).unwrap_or(f64::NAN),
            );
            if m.failed() {
                eprintln!(
                    "galilean-bench load: the run failed: {} of {} answers wrong, the first: {}",
                    m.errors,
                    m.errors + m.ok,
                    m.first_error.as_deref().unwrap_or("?")
                );
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Command::Run(args) => run_command(args),
    }
}

/// `galilean-bench run`.
fn run_command(args: RunArgs) -> ExitCode {
    let selection = match Selection::parse(&args.only) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("galilean-bench: --only: {e}");
            return ExitCode::from(2);
        }
    };
    let kinds = match run::systems(&args.systems, args.baseline.is_some()) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("galilean-bench: --systems: {e}");
            return ExitCode::from(2);
        }
    };
    let baseline = match args.baseline.as_deref().map(Path::canonicalize) {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => {
            let p = args.baseline.as_deref().unwrap_or(Path::new("")).display();
            eprintln!("galilean-bench: --baseline {p}: {e}");
            return ExitCode::from(2);
        }
    };
    let root = systems::repo_root();
    let me = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("galilean-bench"));
    let paths = Paths {
        galilean: me.with_file_name("galilean"),
        baseline,
        tiny: me.with_file_name("tiny_server"),
        peer: args.peer.unwrap_or_else(|| root.join("bench/.peer")),
        peer_config: root.join("bench/peer/jupyterhub_config.py"),
        me,
    };
    for p in [&paths.galilean, &paths.tiny] {
        if !p.exists() {
            eprintln!(
                "galilean-bench: {} is missing: cargo build --release -p galilean-node",
                p.display()
            );
            return ExitCode::from(2);
        }
    }
    if let Some(baseline) = &paths.baseline {
        // both builds' binaries read afresh from disk, alike (see uncache)
        for p in [&paths.galilean, baseline] {
            if let Err(e) = rounds::uncache(p) {
                eprintln!(
                    "galilean-bench: cannot drop {} from the cache: {e}",
                    p.display()
                );
            }
        }
    }
    let size = if args.smoke { Size::SMOKE } else { Size::FULL };
    let rounds = usize::from(args.rounds);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let table = match rt.block_on(run::run(&kinds, &paths, size, &selection, rounds)) {
        Ok(table) => table,
        Err(e) => {
            eprintln!("galilean-bench: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let machine = report::Machine::describe(&paths);
    let md = report::markdown(&table, &kinds, &machine, args.smoke, rounds);
    println!("{md}");
    if let Some(file) = &args.out_file {
        if let Err(e) = std::fs::write(file, &md) {
            eprintln!("galilean-bench: cannot write {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    }
    // results are full runs of the current build only
    if !args.smoke && selection.all && paths.baseline.is_none() {
        let out = args.out.unwrap_or_else(|| root.join("bench/results"));
        match report::write(&out, &table, &machine, &md, rounds) {
            Ok(p) => eprintln!("results: {}", p.display()),
            Err(e) => {
                eprintln!(
                    "galilean-bench: cannot write results to {}: {e}",
                    out.display()
                );
                return ExitCode::FAILURE;
            }
        }
    }
    if report::any_failed(&table) {
        eprintln!("galilean-bench: some runs failed (see the table)");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
