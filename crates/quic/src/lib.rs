//! paxbench's transport: QUIC (quinn, rustls with ring) with mutual TLS against a cluster CA,
//! and plain TCP for comparison, both behind one [`Transport`] trait.
//!
//! The crate moves [`Envelope`]s between named peers and knows no Paxos rule. Messages are
//! framed with postcard ([`frame`]), carried by default on one long-lived stream per peer pair
//! shared by every proposer, with whatever is queued sent in one write ([`link`]). A fault layer
//! ([`fault`]) drops, duplicates, delays and partitions frames for tests and benchmarks; delayed
//! frames wait in a [`delay`] line.
//!
//! Drive endpoints from current-thread tokio runtimes: on 2 vCPUs a multi-thread runtime
//! roughly doubled quinn's round trip (see the README's Performance section).

#![warn(missing_docs)]

mod address;
pub mod budget;
pub mod control;
pub mod delay;
mod error;
pub mod fault;
pub mod frame;
pub mod fuzzing;
pub mod link;
pub mod peer;
pub mod quic;
pub mod tcp;
pub mod tcp_auth;
pub mod tls;
pub mod transport;
pub mod wire;

pub use address::Address;
pub use budget::Inbox;
pub use control::{Control, Pong};
pub use delay::DelayLine;
pub use error::{Error, Refusal};
pub use fault::{FaultLayer, FaultSpec, LinkFaults};
pub use link::{Endpoint, EndpointConfig, Inbound, Link, Replier};
pub use peer::PeerName;
pub use quic::QuicTransport;
pub use tcp::TcpTransport;
pub use tcp_auth::{TCP_SECRET_FILE, TcpAuth, TcpSecret};
pub use tls::{CertPlan, Identity, TlsFiles, generate_cluster_certs};
pub use transport::{Carrier, Transport, TransportKind};
pub use wire::{
    AdminCommand, AdminReply, DiskFault, Envelope, LatencySummary, NodeStats, RefusedCount,
    TransportCounters,
};
