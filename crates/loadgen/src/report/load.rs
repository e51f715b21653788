//! Each node's share of the work per decision (messages in and out, bytes out, fsyncs): under
//! Multi-Paxos the leader's row is the bottleneck that explains the ceiling. The simulator
//! counts them itself; real nodes' come from their stats, polled once a second.

use serde::{Deserialize, Serialize};

use crate::measure::NodeLoad;

/// One node's work over the measured window, per decision.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeLoadSummary {
    /// The node, as the config numbers it (from 1).
    pub node: u32,
    /// Messages received from others, per decision.
    pub messages_in: f64,
    /// Messages sent to others, per decision.
    pub messages_out: f64,
    /// Framed bytes sent to others, per decision.
    pub bytes_out: f64,
    /// Persist batches (fsyncs), per decision.
    pub fsyncs: f64,
}

impl NodeLoadSummary {
    /// Every node's load per decision, for `decisions` decisions.
    pub fn of(load: &[NodeLoad], decisions: u64) -> Vec<Self> {
        let per = |n: u64| {
            if decisions == 0 {
                0.0
            } else {
                n as f64 / decisions as f64
            }
        };
        (1u32..)
            .zip(load)
            .map(|(node, l)| Self {
                node,
                messages_in: per(l.messages_in),
                messages_out: per(l.messages_out),
                bytes_out: per(l.bytes_out),
                fsyncs: per(l.persists),
            })
            .collect()
    }

    /// Rows for the per-scenario table of `summary.md`.
    pub fn rows(load: &[Self]) -> Vec<(String, String)> {
        load.iter()
            .map(|l| {
                (
                    format!(
                        "node {}: messages in / out, bytes out, fsyncs per decision",
                        l.node
                    ),
                    format!(
                        "{:.2} / {:.2}, {:.0} B, {:.3}",
                        l.messages_in, l.messages_out, l.bytes_out, l.fsyncs
                    ),
                )
            })
            .collect()
    }
}
