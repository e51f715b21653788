//! The Multi-Paxos report of a scenario: what the nodes' leader roles did (elections, duels,
//! re-proposals, redirects and forwards, batches) beside the client-side figures every
//! protocol reports.

use paxbench_core::leader::LeaderStats;
use serde::{Deserialize, Serialize};

/// What the leader roles did over the scenario, summed over nodes and restarts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaderSummary {
    /// Leader changes: campaigns won.
    pub elected: u64,
    /// Phase-1 runs (campaigns), won or not.
    pub phase1_runs: u64,
    /// Campaigns refused by so many acceptors that no phase-1 quorum could promise: two
    /// would-be leaders dueling, as vanilla proposers do.
    pub duels: u64,
    /// Campaigns that timed out.
    pub campaigns_timed_out: u64,
    /// Times a leader or candidate gave way to a higher ballot.
    pub stepped_down: u64,
    /// Accepted values a new leader carried on, and empty values it proposed for holes.
    pub reproposed: u64,
    /// Empty values for holes.
    pub noops: u64,
    /// Requests a follower redirected, and forwarded.
    pub redirects: u64,
    /// Requests a follower forwarded to the leader.
    pub forwards: u64,
    /// Requests the leaders led to a decision.
    pub decided: u64,
    /// ACCEPT batches with new entries.
    pub batches: u64,
    /// Entries per batch, on average.
    pub mean_batch: f64,
    /// Entries sent again after the phase-2 timeout.
    pub retransmitted: u64,
}

impl LeaderSummary {
    /// The summary of the leader roles' counts.
    pub fn new(stats: &LeaderStats) -> Self {
        Self {
            elected: stats.elected,
            phase1_runs: stats.phase1_runs,
            duels: stats.preempted,
            campaigns_timed_out: stats.timed_out,
            stepped_down: stats.stepped_down,
            reproposed: stats.reproposed,
            noops: stats.noops,
            redirects: stats.redirects,
            forwards: stats.forwards,
            decided: stats.decided,
            batches: stats.batches,
            mean_batch: if stats.batches == 0 {
                0.0
            } else {
                stats.batched as f64 / stats.batches as f64
            },
            retransmitted: stats.retransmitted,
        }
    }

    /// Repetitions' summaries pooled: counts added, the mean batch over every batch; `None`
    /// when none ran Multi-Paxos.
    pub fn pooled<'a>(parts: impl Iterator<Item = &'a LeaderSummary>) -> Option<Self> {
        let mut pooled: Option<Self> = None;
        for part in parts {
            let p = pooled.get_or_insert_with(Self::default);
            let entries = p.mean_batch * p.batches as f64 + part.mean_batch * part.batches as f64;
            p.elected += part.elected;
            p.phase1_runs += part.phase1_runs;
            p.duels += part.duels;
            p.campaigns_timed_out += part.campaigns_timed_out;
            p.stepped_down += part.stepped_down;
            p.reproposed += part.reproposed;
            p.noops += part.noops;
            p.redirects += part.redirects;
            p.forwards += part.forwards;
            p.decided += part.decided;
            p.batches += part.batches;
            p.retransmitted += part.retransmitted;
            p.mean_batch = if p.batches == 0 {
                0.0
            } else {
                entries / p.batches as f64
            };
        }
        pooled
    }

    /// Rows for the per-scenario table of `summary.md`.
    pub fn rows(&self) -> Vec<(String, String)> {
        vec![
            (
                "leader: elections, phase-1 runs, duels".into(),
                format!(
                    "{} elected, {} phase-1 runs ({} timed out), {} duels, {} step-downs",
                    self.elected,
                    self.phase1_runs,
                    self.campaigns_timed_out,
                    self.duels,
                    self.stepped_down
                ),
            ),
            (
                "leader: requests per ACCEPT batch".into(),
                format!(
                    "{:.1} ({} decided in {} batches, {} retransmitted)",
                    self.mean_batch, self.decided, self.batches, self.retransmitted
                ),
            ),
            (
                "leader: redirects, forwards, carried on".into(),
                format!(
                    "{} redirects, {} forwards, {} re-proposed ({} empty)",
                    self.redirects, self.forwards, self.reproposed, self.noops
                ),
            ),
        ]
    }
}
