//! `paxbench-node`: run a node, or make the cluster's certificates.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use paxbench_node::{CrashPoints, NodeSettings, run_configured, shutdown_signal};
use tracing_subscriber::EnvFilter;

#[derive(Parser, Debug)]
#[command(
    name = "paxbench-node",
    version,
    about = "A paxbench node: a Paxos acceptor and learner over QUIC (mutual TLS) or TCP",
    after_help = "Examples:\n  \
        paxbench-node certs --out certs --nodes 3 --clients 1\n  \
        paxbench-node run --config node1.yaml\n  \
        paxbench-node run --id 1 --listen 127.0.0.1:7001 --peer 2=127.0.0.1:7002 \\\n    \
        --peer 3=127.0.0.1:7003 --data-dir data/n1 --ca certs/ca.pem \\\n    \
        --cert certs/node-1.pem --key certs/node-1.key"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a node until SIGINT or SIGTERM.
    Run {
        /// YAML settings; flags override its fields.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        #[command(flatten)]
        settings: Box<NodeSettings>,
        /// Test fault point: abort right after persisting this many batches, before replying.
        #[arg(long, value_name = "N", hide = true)]
        crash_after_persisting: Option<u64>,
    },
    /// Make a cluster CA and certificates for nodes 1..=N and clients 0..M (keys mode 0600).
    Certs {
        /// Output directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Number of nodes.
        #[arg(long, default_value_t = 3)]
        nodes: u32,
        /// Number of clients (load generators, admin tools).
        #[arg(long, default_value_t = 1)]
        clients: u32,
    },
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", paxbench_node::error_report(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Certs {
            out,
            nodes,
            clients,
        } => {
            let members = paxbench_quic::generate_cluster_certs(&out, nodes, clients)?;
            println!(
                "wrote a cluster CA and {} certificates to {}",
                members.len(),
                out.display()
            );
            Ok(())
        }
        Command::Run {
            config,
            settings,
            crash_after_persisting,
        } => {
            let (settings, origin) = match &config {
                Some(path) => (
                    NodeSettings::from_file(path)?.overridden_by(*settings),
                    path.display().to_string(),
                ),
                None => (*settings, "command line".to_string()),
            };
            let config = settings.resolve(&origin)?;
            let filter = EnvFilter::try_from_default_env()
                .or_else(|_| EnvFilter::try_new(&config.log_level))
                .with_context(|| format!("{origin}: field `log_level`: bad filter"))?;
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .init();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the tokio runtime")?;
            let crash = CrashPoints {
                abort_after_persisting: crash_after_persisting,
            };
            runtime.block_on(run_configured(&config, crash, shutdown_signal()))?;
            Ok(())
        }
    }
}
