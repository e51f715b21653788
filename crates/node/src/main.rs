//! `paxbench-node`: run a node, or make the cluster's certificates.

use clap::Parser;
use paxbench_node::cli::{NodeCommand, run_command};

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
    command: NodeCommand,
}

fn main() -> std::process::ExitCode {
    match run_command(Cli::parse().command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", paxbench_node::error_report(&e));
            std::process::ExitCode::FAILURE
        }
    }
}
