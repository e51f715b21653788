//! The two hosts every shell drives: [`ProposerHost`] owns the proposers (or clients), their
//! workload and timers; [`NodeHost`] owns one node's acceptor, learner and protocol role. The
//! simulator, the load generator and the node server move their transmits and fire their
//! timers, and hold no protocol rule of their own.

pub mod authority;
mod node;
mod proposers;

pub use authority::{
    MAX_VALUE_BYTES, PROPOSER_IDS_PER_CLIENT, Refusal, RefusalReason, client_proposers,
    client_sender,
};
pub use node::{Authorised, NodeEvent, NodeHost, NodeHostConfig, NodeReady, instances_read};
pub use proposers::{DRAIN, HostStats, Observer, ProposerHost};
