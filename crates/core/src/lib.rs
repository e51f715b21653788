//! `paxbench-core`: single-decree Paxos as deterministic, sans-IO state machines.
//!
//! This crate does no networking, reads no clock and draws no unseeded random number. Time comes
//! in as the `now` argument of every `handle_*` call, randomness from seeds given at
//! construction, and everything a role wants done (messages to send, timers to set, records to
//! persist before replying) comes out of it to be drained by a driver: the simulator in
//! [`sim`], the QUIC node, or the load generator. The same inputs always give the same outputs.
//!
//! - Roles: [`acceptor::Acceptor`], [`proposer::Proposer`], [`learner::Learner`]; for
//!   Multi-Paxos, [`leader::Leader`] on every node and [`client::Client`] in place of a
//!   proposer.
//! - Wire vocabulary: [`message`], over the nouns in [`types`]; who sends and who receives in
//!   [`transmit`], one vocabulary for every role; which protocol a cluster runs in [`protocol`].
//! - Remedies the harness compares: ID schemes in [`id`], retry delays in [`backoff`].
//! - Hosting: [`host::ProposerHost`] owns many proposers, asks a [`workload::Workload`] for
//!   their operations, keeps their timers and emits [`transmit::Transmit`]s with explicit
//!   destinations; [`host::NodeHost`] owns one node's acceptor, learner and protocol role and
//!   says what to persist before which reply. The simulator, the load generator and the node
//!   server are I/O shells over the two.
//! - Verification: the online safety [`checker`] and the deterministic [`sim`]ulator.
//! - Wide-area networks: delay distributions in [`latency`], zones and their delay matrix in
//!   [`zones`].
#![warn(missing_docs)]

pub mod acceptor;
pub mod backoff;
pub mod checker;
pub mod client;
mod error;
pub mod fuzzing;
pub mod host;
pub mod id;
pub mod latency;
pub mod leader;
pub mod learner;
pub mod message;
pub mod proposer;
pub mod protocol;
pub mod rng;
pub mod sim;
pub mod time;
pub mod transmit;
pub mod types;
pub mod workload;
pub mod zones;

pub use error::Error;
pub use protocol::{Protocol, ProtocolConfig};
pub use time::Time;
pub use types::{Instance, NodeId, ProposalId, ProposerId, ProposerIndex, Quorums, Value, quorum};
