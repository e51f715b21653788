//! The WAN report of a zoned scenario: each zone pair's configured round trip beside the one
//! measured at the start, each proposer zone's latency beside its floor (vanilla: a round trip
//! to its nearest phase-1 quorum and one to its nearest phase-2 quorum; Multi-Paxos: a round
//! trip to the leader and the leader's to its nearest phase-2 quorum), and the defaults scaled
//! to the zones.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::config::file::Protocol;
use crate::config::{Scenario, ZonesSpec, display_value};
use crate::driver::RunOutput;
use crate::measure::Percentiles;

/// What a zoned scenario measured. The zones themselves are in `settings.target.zones`, the
/// defaults scaled to them in `settings.scaled` and the settings they set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ZonesSummary {
    /// The round trip from each proposer zone to each node (real targets).
    pub pairs: Vec<ZonePair>,
    /// Latency by proposer zone.
    pub by_zone: Vec<ZoneLatency>,
}

/// One proposer zone to one node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ZonePair {
    /// The proposers' zone.
    pub from: String,
    /// The node.
    pub node: u32,
    /// The node's zone.
    pub to: String,
    /// The matrix's round trip, there and back (half of each direction's entry), ms.
    pub configured_ms: f64,
    /// Measured at the start, delays and the machine's own floor included, µs.
    pub measured: Percentiles,
}

/// The operations of one zone's proposers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ZoneLatency {
    /// The zone.
    pub zone: String,
    /// Its proposers.
    pub proposers: u32,
    /// The least an operation can take from here: two round trips (PREPARE, ACCEPT) to the
    /// nearest majority of nodes, by the matrix's medians, ms.
    pub floor_ms: f64,
    /// Intended start to outcome, µs.
    pub latency: Percentiles,
}

/// The name a zone's latency histogram has in `scenario-NN.histograms`.
pub fn histogram_name(zone: &str) -> String {
    format!("zone:{zone}")
}

impl ZonesSummary {
    /// The summary of a zoned scenario; `None` without zones.
    pub fn new(scenario: &Scenario, output: &RunOutput) -> Option<Self> {
        let zones = scenario.target.zones.as_ref()?;
        let geography = scenario.geography().ok().flatten()?;
        let names = &zones.names;
        let quorums = scenario.quorums();
        // A phase waits for its quorum's slowest member: vanilla pays both phases from the
        // proposer's zone; a Multi-Paxos client pays its trip to the leader and the leader's
        // phase 2 (from the best-placed node when no leader is pinned).
        let floor = |z: usize| match scenario.target.protocol {
            Protocol::Vanilla => {
                geography.quorum_round_trip(z, quorums.phase1)
                    + geography.quorum_round_trip(z, quorums.phase2)
            }
            Protocol::MultiPaxos => scenario
                .node_ids()
                .into_iter()
                .filter(|n| scenario.target.leader.initial.is_none_or(|l| l == *n))
                .map(|n| {
                    let lz = zones.node_zone(n);
                    geography.round_trip(z, lz) + geography.quorum_round_trip(lz, quorums.phase2)
                })
                .min()
                .unwrap_or_default(),
        };
        let placed = zones.proposer_zones(scenario.workload.proposers);
        let pairs = output
            .zone_pings
            .iter()
            .map(|ping| {
                let to = zones.node_zone(ping.node);
                ZonePair {
                    from: names[ping.zone].clone(),
                    node: ping.node,
                    to: names[to].clone(),
                    configured_ms: geography.round_trip(ping.zone, to).as_secs_f64() * 1e3,
                    measured: ping.rtt,
                }
            })
            .collect();
        let by_zone = names
            .iter()
            .enumerate()
            .map(|(z, name)| ZoneLatency {
                zone: name.clone(),
                proposers: placed.iter().filter(|p| **p == z).count() as u32,
                floor_ms: floor(z).as_secs_f64() * 1e3,
                latency: output
                    .ops
                    .by_zone
                    .get(z)
                    .map(Percentiles::of)
                    .unwrap_or_default(),
            })
            .collect();
        Some(Self { pairs, by_zone })
    }

    /// Each zone's latency from pooled histograms (repetitions, merged generators).
    pub fn repool(&mut self, sums: &BTreeMap<String, Histogram<u64>>) {
        for zone in &mut self.by_zone {
            if let Some(histogram) = sums.get(&histogram_name(&zone.zone)) {
                zone.latency = Percentiles::of(histogram);
            }
        }
    }

    /// Rows for the details of `scenario`, which ran in these zones: the zones, pairs, each
    /// zone's latency, and the defaults scaled to them.
    pub fn rows(&self, scenario: &Scenario) -> Vec<(String, String)> {
        let ms = |us: u64| us as f64 / 1e3;
        let Some(zones) = &scenario.target.zones else {
            return Vec::new();
        };
        let mut rows = vec![(
            "zones".to_string(),
            format!(
                "{}{}, jitter {} ms ({})",
                zones.names.join(", "),
                zones
                    .preset
                    .map(|p| format!(" (preset {})", display_value(&p)))
                    .unwrap_or_default(),
                zones.jitter_ms,
                display_value(&zones.distribution),
            ),
        )];
        for pair in &self.pairs {
            let error = ms(pair.measured.p50) - pair.configured_ms;
            rows.push((
                format!(
                    "round trip {} → node {} ({})",
                    pair.from, pair.node, pair.to
                ),
                format!(
                    "configured {:.2} ms, measured p50 {:.2} ms ({error:+.2}), p99 {:.2} ms",
                    pair.configured_ms,
                    ms(pair.measured.p50),
                    ms(pair.measured.p99)
                ),
            ));
        }
        for zone in self.by_zone.iter().filter(|z| z.proposers > 0) {
            rows.push((
                format!("latency from {} ({} proposers)", zone.zone, zone.proposers),
                format!(
                    "p50 {:.2} ms, p99 {:.2} ms over {} ops; floor ({}) {:.2} ms",
                    ms(zone.latency.p50),
                    ms(zone.latency.p99),
                    zone.latency.count,
                    match scenario.target.protocol {
                        Protocol::Vanilla =>
                            "a round trip to the nearest phase-1 and phase-2 quorums",
                        Protocol::MultiPaxos =>
                            "a round trip to the leader and its to the nearest phase-2 quorum",
                    },
                    zone.floor_ms
                ),
            ));
        }
        if !scenario.scaled.is_empty() {
            // Every scaled field took the same default; the phase-1 timeout always has one.
            let scaled_ms =
                ZonesSpec::default_wait(Some(zones), &scenario.node_ids()).as_secs_f64() * 1e3;
            rows.push((
                "defaults scaled to the zones (50 ms + 2 × longest round trip)".into(),
                format!("{} = {scaled_ms:.0} ms", scenario.scaled.join(", ")),
            ));
        }
        rows
    }
}
