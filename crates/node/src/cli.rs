//! The node's command line, shared by `paxbench-node` and `paxbench node` (which the load
//! generator uses to spawn node processes from its own binary).

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use tracing_subscriber::EnvFilter;

use crate::{CrashPoints, NodeSettings, run_configured, shutdown_signal};

/// What a node binary can do.
#[derive(Subcommand, Debug)]
pub enum NodeCommand {
    /// Run a node until SIGINT or SIGTERM.
    Run {
        /// YAML settings; flags override its fields.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The settings, each also a field of the config file.
        #[command(flatten)]
        settings: Box<NodeSettings>,
        /// Test fault point: abort right after persisting this many batches, before replying.
        #[arg(long, value_name = "N", hide = true)]
        crash_after_persisting: Option<u64>,
    },
    /// Exit 0 if the node this config describes answers a ping (over its own transport, under
    /// its own name) within the timeout, 1 if not: a readiness probe. A node is not ready until
    /// it has restored its store, nor after its storage failed.
    Ready {
        /// The node's YAML settings, as given to `run`; flags override its fields.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The settings, each also a field of the config file.
        #[command(flatten)]
        settings: Box<NodeSettings>,
        /// How long to wait for the answer.
        #[arg(long, default_value_t = 2000, value_name = "MS")]
        timeout_ms: u64,
    },
    /// Make a cluster CA and certificates for nodes 1..=N, clients 0..M and admins 0..A (keys
    /// mode 0600). Refuses to replace a CA already in the directory unless told to.
    Certs {
        /// Output directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Number of nodes.
        #[arg(long, default_value_t = 3)]
        nodes: u32,
        /// Number of clients (load generators: they may only propose).
        #[arg(long, default_value_t = 1)]
        clients: u32,
        /// Number of admins (the only identities whose fault and disk commands nodes obey).
        #[arg(long, default_value_t = 1)]
        admins: u32,
        /// Days every certificate, the CA's included, is valid.
        #[arg(long, default_value_t = 365, value_name = "DAYS")]
        validity_days: u32,
        /// Replace an existing CA (every member then needs the new certificates).
        #[arg(long)]
        overwrite: bool,
    },
}

/// Runs a node command to completion.
pub fn run_command(command: NodeCommand) -> anyhow::Result<()> {
    match command {
        NodeCommand::Certs {
            out,
            nodes,
            clients,
            admins,
            validity_days,
            overwrite,
        } => {
            let plan = paxbench_quic::CertPlan {
                nodes,
                clients,
                admins,
                validity_days,
                overwrite,
            };
            let members = paxbench_quic::generate_cluster_certs(&out, &plan)?;
            println!(
                "wrote a cluster CA and {} certificates to {}",
                members.len(),
                out.display()
            );
            Ok(())
        }
        NodeCommand::Ready {
            config,
            settings,
            timeout_ms,
        } => {
            let (config, _) = resolve(config.as_deref(), *settings)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the tokio runtime")?;
            let timeout = std::time::Duration::from_millis(timeout_ms);
            let rtt = runtime
                .block_on(crate::ready::probe(&config, timeout))
                .with_context(|| {
                    format!("node {} at {} is not ready", config.id.0, config.listen)
                })?;
            println!("node {} is ready: ping {} µs", config.id.0, rtt.as_micros());
            Ok(())
        }
        NodeCommand::Run {
            config,
            settings,
            crash_after_persisting,
        } => {
            let (config, origin) = resolve(config.as_deref(), *settings)?;
            let filter = EnvFilter::try_from_default_env()
                .or_else(|_| EnvFilter::try_new(&config.log_level))
                .with_context(|| format!("{origin}: field `log_level`: bad filter"))?;
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .init();
            // Before the runtime and the storage threads start, so that they inherit it.
            crate::affinity::pin_current_thread(&config.cpus)
                .with_context(|| format!("{origin}: field `cpus`"))?;
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

/// The node config a command's `--config` file and flags describe, and where it came from.
fn resolve(
    file: Option<&std::path::Path>,
    settings: NodeSettings,
) -> anyhow::Result<(crate::NodeConfig, String)> {
    let (settings, origin) = match file {
        Some(path) => (
            NodeSettings::from_file(path)?.overridden_by(settings),
            path.display().to_string(),
        ),
        None => (settings, "command line".to_string()),
    };
    Ok((settings.resolve(&origin)?, origin))
}
