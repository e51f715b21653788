//! WAN zones as a config writes them (`target.zones`): zone names, a round-trip matrix or a
//! named preset of public measurements, jitter, which zone each node and proposer is in, and
//! per-zone clock skew; their validation, and the core [`Geography`] every target runs on.

use std::collections::BTreeMap;
use std::time::Duration;

use paxbench_core::latency::{Latency, Shape};
use paxbench_core::zones::Geography;
use serde::{Deserialize, Serialize};

/// Zones of a wide-area deployment (`target.zones`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ZonesSpec {
    /// A named preset of published inter-region round trips, instead of `names` and `rtt_ms`.
    pub preset: Option<Preset>,
    /// The zones, in the order of the matrix's rows and columns.
    pub names: Vec<String>,
    /// Round trip between zones, in milliseconds: row `a`, column `b` is the round trip
    /// measured from `a` to `b`. A message from `a` to `b` waits half of it, so an asymmetric
    /// matrix gives asymmetric one-way delays.
    pub rtt_ms: Vec<Vec<f64>>,
    /// Spread of each one-way delay, in milliseconds (see `distribution`).
    pub jitter_ms: f64,
    /// How the jitter spreads each delay: `constant`, `uniform` (± jitter), `normal` (σ =
    /// jitter) or `pareto` (a heavy tail of mean jitter on top).
    pub distribution: Shape,
    /// Every node's zone, by node id: `{1: us-east, 2: eu-west, 3: ap-south}`.
    pub nodes: BTreeMap<u32, String>,
    /// Which zone each proposer is in: `round-robin`, or each zone's share of the proposers
    /// (`{us-east: 0.5, eu-west: 0.25, ap-south: 0.25}`).
    pub proposers: Placement,
    /// A fixed offset of the clocks of a zone's proposers, in microseconds, on top of
    /// `proposer.clock_skew_us`: `{eu-west: 3000}`. Zones not listed are not offset.
    pub clock_skew_us: BTreeMap<String, i64>,
    /// Who delays the links between nodes: `fault-layer` (each node, told by the generator) or
    /// `external` (the network already does, as `tc netem` in `scripts/netns-cluster.sh`).
    pub node_delays: NodeDelays,
}

/// Who delays the links between nodes.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum NodeDelays {
    /// Each node's fault layer, per peer link, set by the generator before it measures.
    #[default]
    FaultLayer,
    /// The network between the nodes already has the matrix's delays: nodes add none.
    External,
}

/// How proposers are spread over the zones.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Placement {
    /// `round-robin`: proposer `i` in zone `i mod zones`.
    Rule(PlacementRule),
    /// Each zone's share of the proposers; the shares sum to 1.
    Shares(BTreeMap<String, f64>),
}

impl Default for Placement {
    fn default() -> Self {
        Placement::Rule(PlacementRule::RoundRobin)
    }
}

/// Placement rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PlacementRule {
    /// Proposer `i` in zone `i mod zones`.
    RoundRobin,
}

/// Published inter-region round trips. Source of every preset: the table "Latency Between AWS
/// Global Regions" (average ping round trip between EC2 regions, milliseconds, each direction
/// measured on its own), as reproduced in "AWS Regions",
/// <https://acomputerscientistlearnsaws.blogspot.com/2017/04/aws-regions.html> (April 2017).
/// The table gives 0 within a region, so intra-zone delay is only this machine's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// N. Virginia, Ireland, Tokyo: three continents (80–212 ms).
    #[serde(rename = "aws-2017-three-continents")]
    Aws2017ThreeContinents,
    /// N. Virginia, N. California, Oregon: one continent (19–89 ms).
    #[serde(rename = "aws-2017-us")]
    Aws2017Us,
    /// N. Virginia, Oregon, Ireland, Tokyo, Singapore: five regions for five nodes (74–239 ms).
    #[serde(rename = "aws-2017-five-regions")]
    Aws2017FiveRegions,
}

impl Preset {
    /// The zone names and the round-trip matrix, as published.
    pub fn table(self) -> (Vec<&'static str>, Vec<Vec<f64>>) {
        match self {
            Preset::Aws2017ThreeContinents => (
                vec!["us-east-1", "eu-west-1", "ap-northeast-1"],
                vec![
                    vec![0.0, 80.55, 145.3],
                    vec![80.52, 0.0, 212.4],
                    vec![145.3, 212.4, 0.0],
                ],
            ),
            Preset::Aws2017Us => (
                vec!["us-east-1", "us-west-1", "us-west-2"],
                vec![
                    vec![0.0, 72.74, 86.98],
                    vec![71.63, 0.0, 19.46],
                    vec![88.68, 19.2, 0.0],
                ],
            ),
            Preset::Aws2017FiveRegions => (
                vec![
                    "us-east-1",
                    "us-west-2",
                    "eu-west-1",
                    "ap-northeast-1",
                    "ap-southeast-1",
                ],
                vec![
                    vec![0.0, 86.98, 80.55, 145.3, 216.7],
                    vec![88.68, 0.0, 137.0, 89.1, 161.4],
                    vec![80.52, 137.0, 0.0, 212.4, 239.0],
                    vec![145.3, 89.16, 212.4, 0.0, 73.79],
                    vec![216.7, 161.4, 238.1, 73.81, 0.0],
                ],
            ),
        }
    }
}

/// The largest round trip a matrix may hold: a minute, far beyond any planet-bound path.
const MAX_RTT_MS: f64 = 60_000.0;

/// The most zones: zone pings number their (zone, node) pairs in 16 bits, and a cluster has at
/// most 1,000 nodes.
pub const MAX_ZONES: usize = 64;

/// What timeouts and the livelock window default to without zones.
const UNSCALED_DEFAULT: Duration = Duration::from_millis(50);

impl ZonesSpec {
    /// The spec with its preset's names and matrix filled in, once, when the sweep is
    /// expanded. Names or a matrix written beside a preset are kept, for validation to refuse.
    pub fn resolved(mut self) -> Self {
        if let Some(preset) = self.preset
            && self.names.is_empty()
            && self.rtt_ms.is_empty()
        {
            let (names, rtt_ms) = preset.table();
            self.names = names.into_iter().map(String::from).collect();
            self.rtt_ms = rtt_ms;
        }
        self
    }

    fn zone(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// Checks the zones against the cluster's node ids and proposer count. Errors name the
    /// field under `target.zones`.
    pub fn validate(&self, node_ids: &[u32]) -> Result<(), (String, String)> {
        let fail = |field: &str, message: String| Err((format!("target.zones.{field}"), message));
        if let Some(preset) = self.preset {
            let (names, rtt_ms) = preset.table();
            if self.names != names || self.rtt_ms != rtt_ms {
                return fail(
                    "preset",
                    "a preset gives the names and the matrix: leave out `names` and `rtt_ms`"
                        .into(),
                );
            }
        }
        let (names, rtt) = (&self.names, &self.rtt_ms);
        if names.is_empty() || names.len() > MAX_ZONES {
            return fail(
                "names",
                format!("name between 1 and {MAX_ZONES} zones (or choose a `preset`)"),
            );
        }
        if let Some(bad) = names
            .iter()
            .find(|n| n.is_empty() || n.chars().any(char::is_whitespace))
        {
            return fail(
                "names",
                format!("`{bad}`: a zone name is one word, without spaces"),
            );
        }
        if let Some(dup) = names
            .iter()
            .enumerate()
            .find(|(i, n)| names[..*i].contains(n))
        {
            return fail("names", format!("zone `{}` is named twice", dup.1));
        }
        if rtt.len() != names.len() {
            return fail(
                "rtt_ms",
                format!(
                    "the matrix has {} rows for {} zones: it must be square, one row and one \
                     column per zone",
                    rtt.len(),
                    names.len()
                ),
            );
        }
        for (a, row) in rtt.iter().enumerate() {
            if row.len() != names.len() {
                return fail(
                    "rtt_ms",
                    format!(
                        "row {} (`{}`) has {} entries for {} zones: the matrix must be square",
                        a + 1,
                        names[a],
                        row.len(),
                        names.len()
                    ),
                );
            }
            if let Some((b, v)) = row
                .iter()
                .enumerate()
                .find(|(_, v)| !(**v >= 0.0 && **v <= MAX_RTT_MS))
            {
                return fail(
                    "rtt_ms",
                    format!(
                        "{} → {}: {v} ms is not a round trip between 0 and {MAX_RTT_MS} ms",
                        names[a], names[b]
                    ),
                );
            }
        }
        if !(self.jitter_ms >= 0.0 && self.jitter_ms <= MAX_RTT_MS) {
            return fail(
                "jitter_ms",
                format!("{} is not between 0 and {MAX_RTT_MS} ms", self.jitter_ms),
            );
        }
        for id in node_ids {
            match self.nodes.get(id) {
                None => {
                    return fail(
                        "nodes",
                        format!("node {id} has no zone: give every node one, as `{id}: ZONE`"),
                    );
                }
                Some(zone) if self.zone(zone).is_none() => {
                    return fail(
                        "nodes",
                        format!("node {id} is in `{zone}`, which is not one of {names:?}"),
                    );
                }
                Some(_) => {}
            }
        }
        if let Some(extra) = self.nodes.keys().find(|id| !node_ids.contains(id)) {
            return fail(
                "nodes",
                format!("there is no node {extra} (the nodes are {node_ids:?})"),
            );
        }
        if let Placement::Shares(shares) = &self.proposers {
            if let Some(zone) = shares.keys().find(|z| self.zone(z).is_none()) {
                return fail(
                    "proposers",
                    format!("`{zone}` is not one of the zones {names:?}"),
                );
            }
            let total: f64 = shares.values().sum();
            if shares.values().any(|s| s.is_nan() || *s < 0.0) || (total - 1.0).abs() > 1e-6 {
                return fail(
                    "proposers",
                    format!("shares must be non-negative and sum to 1, not {total}"),
                );
            }
        }
        if let Some(zone) = self.clock_skew_us.keys().find(|z| self.zone(z).is_none()) {
            return fail(
                "clock_skew_us",
                format!("`{zone}` is not one of the zones {names:?}"),
            );
        }
        if let Some((zone, us)) = self
            .clock_skew_us
            .iter()
            .find(|(_, us)| us.unsigned_abs() > 3_600_000_000)
        {
            return fail(
                "clock_skew_us",
                format!("{zone}: {us} µs is more than an hour"),
            );
        }
        Ok(())
    }

    /// The zone of each of `count` proposers. Shares are rounded by largest remainder, and the
    /// zones interleaved, so that a sweep over the proposer count keeps the mix.
    pub fn proposer_zones(&self, count: u32) -> Vec<usize> {
        let names = &self.names;
        let zones = names.len().max(1);
        match &self.proposers {
            Placement::Rule(PlacementRule::RoundRobin) => {
                (0..count as usize).map(|i| i % zones).collect()
            }
            Placement::Shares(shares) => {
                let share = |z: usize| shares.get(&names[z]).copied().unwrap_or(0.0);
                let exact: Vec<f64> = (0..zones).map(|z| share(z) * f64::from(count)).collect();
                let mut counts: Vec<u32> = exact.iter().map(|e| e.floor() as u32).collect();
                let mut by_remainder: Vec<usize> = (0..zones).collect();
                by_remainder.sort_by(|a, b| {
                    (exact[*b] - exact[*b].floor()).total_cmp(&(exact[*a] - exact[*a].floor()))
                });
                let mut left = count.saturating_sub(counts.iter().sum());
                for z in by_remainder.into_iter().cycle().take(zones * 2) {
                    if left == 0 {
                        break;
                    }
                    if share(z) > 0.0 {
                        counts[z] += 1;
                        left -= 1;
                    }
                }
                // Interleave: zone by zone, one proposer each, while any has some left.
                let mut placed = Vec::with_capacity(count as usize);
                while placed.len() < count as usize {
                    let before = placed.len();
                    for (z, n) in counts.iter_mut().enumerate() {
                        if *n > 0 {
                            *n -= 1;
                            placed.push(z);
                        }
                    }
                    if placed.len() == before {
                        break;
                    }
                }
                placed.resize(count as usize, 0);
                placed
            }
        }
    }

    /// The zone of node `id` (zone 0 for a node it does not know: validation refuses those).
    pub fn node_zone(&self, id: u32) -> usize {
        self.nodes
            .get(&id)
            .and_then(|zone| self.zone(zone))
            .unwrap_or(0)
    }

    /// The one-way delay from zone `a` to zone `b`: half the round trip, spread by the jitter.
    pub fn one_way(&self, a: usize, b: usize) -> Latency {
        let rtt = self
            .rtt_ms
            .get(a)
            .and_then(|row| row.get(b))
            .copied()
            .unwrap_or(0.0);
        Latency::shaped(
            self.distribution,
            Duration::from_secs_f64(rtt.max(0.0) / 2e3),
            Duration::from_secs_f64(self.jitter_ms.max(0.0) / 1e3),
        )
    }

    /// The core's geography for nodes `node_ids` (in the order the target numbers them from
    /// 0) and `proposers` proposers; an error for a spec validation refuses.
    pub fn geography(
        &self,
        node_ids: &[u32],
        proposers: u32,
    ) -> Result<Geography, paxbench_core::Error> {
        let zones = self.names.len();
        let one_way = (0..zones)
            .map(|a| (0..zones).map(|b| self.one_way(a, b)).collect())
            .collect();
        let nodes = node_ids.iter().map(|id| self.node_zone(*id)).collect();
        Geography::new(one_way, nodes, self.proposer_zones(proposers))
    }

    /// The clock offset of the proposers of zone `zone`, in nanoseconds.
    pub fn clock_offset_ns(&self, zone: usize) -> i64 {
        self.names
            .get(zone)
            .and_then(|name| self.clock_skew_us.get(name))
            .map_or(0, |us| us.saturating_mul(1_000))
    }

    /// What an unset timeout or livelock window defaults to: 50 ms (the default on one
    /// machine), and under zones two of the longest round trips more, jitter included, so that
    /// an ordinary decision across the widest pair never counts as a timeout or a livelock. A
    /// spec validation refuses gets the 50 ms.
    pub fn default_wait(zones: Option<&Self>, node_ids: &[u32]) -> Duration {
        zones
            .and_then(|zones| zones.geography(node_ids, 0).ok())
            .map_or(UNSCALED_DEFAULT, |geo| {
                UNSCALED_DEFAULT + 2 * geo.longest_round_trip()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> ZonesSpec {
        serde_saphyr::from_str::<ZonesSpec>(yaml)
            .unwrap()
            .resolved()
    }

    const THREE: &str = "names: [a, b, c]\nrtt_ms: [[0.5, 77, 190], [77, 0.5, 130], [190, 130, 0.5]]\nnodes: {1: a, 2: b, 3: c}\n";

    #[test]
    fn errors_name_the_field() {
        let check = |yaml: &str| spec(yaml).validate(&[1, 2, 3]).unwrap_err();
        let (field, message) =
            check("names: [a, b]\nrtt_ms: [[0, 1], [1]]\nnodes: {1: a, 2: b, 3: a}\n");
        assert_eq!(field, "target.zones.rtt_ms");
        assert!(
            message.contains("row 2") && message.contains("square"),
            "{message}"
        );
        let (field, message) = check("names: [a]\nrtt_ms: [[-1]]\nnodes: {1: a, 2: a, 3: a}\n");
        assert_eq!(field, "target.zones.rtt_ms");
        assert!(message.contains("-1"), "{message}");
        let (field, message) =
            check("names: [a, b]\nrtt_ms: [[0, 1], [1, 0]]\nnodes: {1: a, 2: b}\n");
        assert_eq!(field, "target.zones.nodes");
        assert!(message.contains("node 3 has no zone"), "{message}");
        let (field, message) = check(&format!("{THREE}proposers: {{a: 0.5, d: 0.5}}\n"));
        assert_eq!(field, "target.zones.proposers");
        assert!(message.contains("`d`"), "{message}");
        let (field, _) = check(&format!("{THREE}proposers: {{a: 0.5, b: 0.4}}\n"));
        assert_eq!(field, "target.zones.proposers");
        let (field, _) = check("preset: aws-2017-us\nnames: [x]\nnodes: {1: x, 2: x, 3: x}\n");
        assert_eq!(field, "target.zones.preset");
        let (field, _) = check(&format!("{THREE}clock_skew_us: {{z: 5}}\n"));
        assert_eq!(field, "target.zones.clock_skew_us");
        let (field, _) =
            check("names: [a, a]\nrtt_ms: [[0, 1], [1, 0]]\nnodes: {1: a, 2: a, 3: a}\n");
        assert_eq!(field, "target.zones.names");
        spec(THREE).validate(&[1, 2, 3]).unwrap();
    }

    #[test]
    fn presets_are_square_and_name_their_zones() {
        for preset in [
            Preset::Aws2017ThreeContinents,
            Preset::Aws2017Us,
            Preset::Aws2017FiveRegions,
        ] {
            let (names, rtt) = preset.table();
            assert_eq!(rtt.len(), names.len());
            assert!(rtt.iter().all(|row| row.len() == names.len()));
            let nodes = (1..=names.len() as u32)
                .map(|id| (id, names[id as usize - 1].to_string()))
                .collect();
            let zones = ZonesSpec {
                preset: Some(preset),
                nodes,
                ..ZonesSpec::default()
            }
            .resolved();
            let ids: Vec<u32> = (1..=names.len() as u32).collect();
            zones.validate(&ids).unwrap();
        }
    }

    #[test]
    fn shares_place_proposers_interleaved_and_round_robin_cycles() {
        let zones = spec(&format!("{THREE}proposers: {{a: 0.5, b: 0.25, c: 0.25}}\n"));
        assert_eq!(zones.proposer_zones(8), [0, 1, 2, 0, 1, 2, 0, 0]);
        assert_eq!(zones.proposer_zones(1), [0]);
        assert_eq!(spec(THREE).proposer_zones(4), [0, 1, 2, 0]);
    }

    #[test]
    fn the_geography_halves_each_round_trip_and_timeouts_scale_with_the_widest() {
        let zones = spec(THREE);
        let geo = zones.geography(&[1, 2, 3], 3).unwrap();
        assert_eq!(geo.round_trip(0, 2), Duration::from_millis(190));
        assert_eq!(
            ZonesSpec::default_wait(Some(&zones), &[1, 2, 3]),
            Duration::from_millis(50 + 2 * 190)
        );
        let skewed = spec(&format!("{THREE}clock_skew_us: {{b: -2000}}\n"));
        assert_eq!(skewed.clock_offset_ns(1), -2_000_000);
        assert_eq!(skewed.clock_offset_ns(0), 0);
    }
}
