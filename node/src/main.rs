//! `galilean serve --config PATH` and `galilean config check --config PATH`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

// The hub allocates small, short-lived buffers on every request (headers, JSON, scope
// sets); glibc's malloc took a quarter of a whoami's CPU time on them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use galilean_node::config::Config;
use galilean_storage::raft::membership::MembershipChange;

#[derive(Parser)]
#[command(
    name = "galilean",
    version,
    about = "A multi-user hub for Jupyter notebooks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a hub node.
    Serve {
        /// The TOML config file.
        #[arg(long, short)]
        config: PathBuf,
        /// In a cluster: make this node's settings the cluster's, instead of refusing to
        /// start when they differ.
        #[arg(long)]
        update_cluster_settings: bool,
    },
    /// Work with config files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Work with a running cluster.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Print each member: reachable, raft state, leader, applied index, whether it
    /// serves, and how many users and actors it owns. Exits 1 without a majority.
    Status {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Add node ID, whose cluster.bind is HOST:PORT, to the membership: it catches up
    /// from a snapshot as a learner, then becomes a voter. Start it first, with a config
    /// whose peers include the current members.
    Add {
        #[arg(long, short)]
        config: PathBuf,
        /// `ID@HOST:PORT`
        node: String,
    },
    /// Remove node ID from the membership (drain it first).
    Remove {
        #[arg(long, short)]
        config: PathBuf,
        id: u64,
    },
    /// Move node ID's users and servers to the other members, and wait until it owns
    /// nothing, so that it can stop without failing a
    /// request. The drain ends when the node starts again, or with --cancel.
    Drain {
        #[arg(long, short)]
        config: PathBuf,
        id: u64,
        #[arg(long)]
        cancel: bool,
    },
    /// Write a certificate authority and one certificate per node for [cluster.tls]:
    /// ca.pem, ca-key.pem (keep it offline), node<ID>.pem and node<ID>-key.pem.
    Certs {
        /// Directory to write into (created; existing files are not overwritten).
        #[arg(long)]
        out: PathBuf,
        /// A node and the hosts (IP addresses or DNS names) its certificate is valid
        /// for: `1=127.0.0.1` or `2=10.0.0.2,hub2.example.org`. Repeat per node.
        #[arg(long = "node", required = true)]
        nodes: Vec<String>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a config file without starting anything.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
}

/// Exit code for a config that does not validate.
const EXIT_CONFIG: u8 = 2;

fn load(path: &std::path::Path) -> Result<Config, ExitCode> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    Config::load(path, &env).map_err(|e| {
        eprintln!("{e}");
        let n = e.errors.len();
        eprintln!(
            "{}: {n} problem{} found",
            path.display(),
            if n == 1 { "" } else { "s" }
        );
        ExitCode::from(EXIT_CONFIG)
    })
}

fn runtime(mut builder: tokio::runtime::Builder) -> Result<tokio::runtime::Runtime, ExitCode> {
    builder.enable_all().build().map_err(|e| {
        eprintln!("cannot start the runtime: {e}");
        ExitCode::FAILURE
    })
}

/// `galilean cluster add|remove` (`Ok`) and `drain` (`Err((id, cancel))`).
fn cluster_change(path: &std::path::Path, what: Result<MembershipChange, (u64, bool)>) -> ExitCode {
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let runtime = match runtime(tokio::runtime::Builder::new_current_thread()) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let done = runtime.block_on(async {
        match what {
            Ok(change) => galilean_node::cluster::change_members(&config, change).await,
            Err((id, cancel)) => galilean_node::cluster::drain(&config, id, cancel).await,
        }
    });
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("galilean: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Config problems found only when the files it names are read.
fn check_files(path: &std::path::Path, config: &Config) -> Result<(), ExitCode> {
    if let Some(cluster) = &config.cluster {
        if let Err(e) = galilean_node::cluster::load_tls(cluster) {
            eprintln!("{}: {e}", path.display());
            return Err(ExitCode::from(EXIT_CONFIG));
        }
    }
    Ok(())
}

/// `galilean serve`: runs the node until it is told to stop.
fn serve(config: Config, options: galilean_node::start::StartOptions) -> ExitCode {
    let runtime = match runtime(tokio::runtime::Builder::new_multi_thread()) {
        Ok(r) => r,
        Err(code) => return code,
    };
    match runtime.block_on(galilean_node::start::run(config, options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("galilean: {e:#}");
            // settings that differ from the cluster's, and unusable TLS files, are
            // config problems
            let refused = e
                .downcast_ref::<galilean_node::settings::SettingsError>()
                .is_some_and(|s| matches!(s, galilean_node::settings::SettingsError::Differ(_)))
                || e.downcast_ref::<galilean_node::cluster::TlsConfigError>()
                    .is_some();
            if refused {
                ExitCode::from(EXIT_CONFIG)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// `galilean serve` on FoundationDB: the node runs (runtime and all) inside the client
/// network's lifetime, which stops when it returns.
#[cfg(feature = "fdb")]
fn serve_on_fdb(config: Config, options: galilean_node::start::StartOptions) -> ExitCode {
    match galilean_storage::fdb::with_network(|| serve(config, options)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("galilean: cannot start the FoundationDB client: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(feature = "fdb"))]
fn serve_on_fdb(_config: Config, _options: galilean_node::start::StartOptions) -> ExitCode {
    // the config refuses "fdb" in such a build
    eprintln!("galilean: storage.backend = \"fdb\" needs a galilean built with --features fdb");
    ExitCode::from(EXIT_CONFIG)
}

/// Keeps the hub's resident memory to what it uses. mimalloc reserves its first arena
/// before `main` and, with transparent huge pages allowed, the kernel backs what it
/// touches with 2 MiB pages; and it keeps freed pages for a while. Huge pages are turned
/// off for this process (the local spawner turns them back on in the servers it starts)
/// and freed pages go back after 10 ms (100k users: 98 -> 68 MiB resident). Not at once:
/// every purge is an madvise and a TLB shootdown across cores, and with purging on
/// every free a busy hub spent 13 % of its CPU there (whoami with 10k users stored
/// 45k -> 64k req/s at 10 ms).
fn tune_allocator() {
    // PR_SET_THP_DISABLE applies to faults in every mapping from now on, including the
    // arena reserved before main
    let _ = nix::sys::prctl::set_thp_disable(true);
    // option number from mimalloc.h (the same in its v2 and v3)
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: a plain setter of mimalloc's option table, valid at any time
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 10) };
    }
}

fn main() -> ExitCode {
    tune_allocator();
    // ractor_cluster's rustls uses aws-lc-rs and reqwest's brings ring: with two providers
    // compiled in, rustls cannot pick one by itself, so name it before any TLS is set up.
    // (Every config Galilean builds names aws-lc-rs anyway; this covers the rest.)
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    match cli.command {
        Command::Config {
            command: ConfigCommand::Check { config: path },
        } => match load(&path).and_then(|c| check_files(&path, &c)) {
            Ok(()) => {
                println!("{}: ok", path.display());
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Cluster {
            command: ClusterCommand::Certs { out, nodes },
        } => match galilean_node::cluster::write_certs(&out, &nodes) {
            Ok(written) => {
                for f in written {
                    println!("wrote {}", f.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("galilean: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Cluster {
            command: ClusterCommand::Add { config, node },
        } => {
            let parsed = node
                .split_once('@')
                .and_then(|(id, addr)| Some((id.parse::<u64>().ok()?, addr.to_owned())))
                .filter(|(id, addr)| *id > 0 && addr.rsplit_once(':').is_some());
            let Some((id, addr)) = parsed else {
                eprintln!("galilean: {node}: expected ID@HOST:PORT (the node's cluster.bind)");
                return ExitCode::from(EXIT_CONFIG);
            };
            cluster_change(&config, Ok(MembershipChange::Add { id, addr }))
        }
        Command::Cluster {
            command: ClusterCommand::Remove { config, id },
        } => cluster_change(&config, Ok(MembershipChange::Remove { id })),
        Command::Cluster {
            command: ClusterCommand::Drain { config, id, cancel },
        } => cluster_change(&config, Err((id, cancel))),
        Command::Cluster {
            command: ClusterCommand::Status { config },
        } => {
            let config = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let runtime = match runtime(tokio::runtime::Builder::new_current_thread()) {
                Ok(r) => r,
                Err(code) => return code,
            };
            match runtime.block_on(galilean_node::cluster::print_status(&config)) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("galilean: {e:#}");
                    ExitCode::from(EXIT_CONFIG)
                }
            }
        }
        Command::Serve {
            config,
            update_cluster_settings,
        } => {
            let config = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            galilean_node::start::init_tracing(config.hub.log_level.as_str());
            let options = galilean_node::start::StartOptions {
                update_cluster_settings,
            };
            if config.storage.backend == galilean_node::config::StorageBackendKind::Fdb {
                serve_on_fdb(config, options)
            } else {
                serve(config, options)
            }
        }
    }
}
