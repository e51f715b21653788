//! The simulated network: per-link latency distributions, drop, duplicate and reorder rates,
//! and partitions. It decides the fate of each message from a seeded RNG; it holds no queue.

use std::time::Duration;

use rustc_hash::{FxHashMap, FxHashSet};

pub use crate::latency::Latency;
use crate::latency::nanos;
use crate::rng::DetRng;
use crate::transmit::Address;
use crate::zones::Geography;

/// How one direction of a link behaves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkModel {
    /// One-way delay.
    pub latency: Latency,
    /// Probability that a message is lost.
    pub drop: f64,
    /// Probability that a message is delivered twice (each copy with its own delay).
    pub duplicate: f64,
    /// Probability that a message is held back by up to `reorder_window` more, so that later
    /// messages overtake it.
    pub reorder: f64,
    /// The longest extra delay of a reordered message.
    pub reorder_window: Duration,
}

impl LinkModel {
    /// A perfect link with a constant delay.
    pub const fn constant(latency: Duration) -> Self {
        Self {
            latency: Latency::Constant(latency),
            drop: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_window: Duration::ZERO,
        }
    }
}

impl Default for LinkModel {
    /// 50 µs one way: a loopback or same-rack round trip of 100 µs.
    fn default() -> Self {
        Self::constant(Duration::from_micros(50))
    }
}

/// What happens to one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Lost (dropped, or across a partition).
    Lost,
    /// Delivered after the delay, and a second copy after the other one if duplicated.
    Delivered(Duration, Option<Duration>),
}

/// Links, their models, and the partition in force.
#[derive(Clone, Debug)]
pub struct Network {
    default: LinkModel,
    links: FxHashMap<(Address, Address), LinkModel>,
    cut: FxHashSet<(Address, Address)>,
    geography: Option<Geography>,
}

impl Network {
    /// Every link behaves as `default`.
    pub fn new(default: LinkModel) -> Self {
        Self {
            default,
            links: FxHashMap::default(),
            cut: FxHashSet::default(),
            geography: None,
        }
    }

    /// Places nodes and proposers in zones: a message then waits its zone pair's delay plus
    /// its link model's (which a zoned run keeps at zero, or a fault's added delay).
    pub fn set_geography(&mut self, geography: Option<Geography>) {
        self.geography = geography;
    }

    fn zone_delay(&self, from: Address, to: Address, rng: &mut DetRng) -> Duration {
        let Some(geo) = &self.geography else {
            return Duration::ZERO;
        };
        let zone = |address: Address| match address {
            Address::Node(node) => geo.node_zone(node.0 as usize),
            Address::Proposer(proposer) => geo.proposer_zone(proposer.0 as usize),
        };
        geo.between(zone(from), zone(to)).sample(rng)
    }

    /// Replaces the model of every link without an override.
    pub fn set_default(&mut self, model: LinkModel) {
        self.default = model;
    }

    /// Gives the directed link `from → to` its own model.
    pub fn set_link(&mut self, from: Address, to: Address, model: LinkModel) {
        self.links.insert((from, to), model);
    }

    /// Cuts every link, both ways, between `side` and `others`.
    pub fn partition(&mut self, side: &[Address], others: &[Address]) {
        for &a in side {
            for &b in others {
                if !side.contains(&b) {
                    self.cut.insert((a, b));
                    self.cut.insert((b, a));
                }
            }
        }
    }

    /// Restores every cut link.
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Whether `from → to` is cut.
    pub fn is_cut(&self, from: Address, to: Address) -> bool {
        !self.cut.is_empty() && self.cut.contains(&(from, to))
    }

    /// Decides what happens to a message sent `from → to`.
    pub fn fate(&self, from: Address, to: Address, rng: &mut DetRng) -> Delivery {
        if self.is_cut(from, to) {
            return Delivery::Lost;
        }
        let model = if self.links.is_empty() {
            &self.default
        } else {
            self.links.get(&(from, to)).unwrap_or(&self.default)
        };
        if rng.chance(model.drop) {
            return Delivery::Lost;
        }
        let delay = |rng: &mut DetRng| {
            let mut d = self.zone_delay(from, to, rng) + model.latency.sample(rng);
            if rng.chance(model.reorder) {
                d += Duration::from_nanos(rng.between(0, nanos(model.reorder_window)));
            }
            d
        };
        let first = delay(rng);
        let second = rng.chance(model.duplicate).then(|| delay(rng));
        Delivery::Delivered(first, second)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{NodeId, ProposerId};

    const A: Address = Address::Node(NodeId(0));
    const B: Address = Address::Proposer(ProposerId(0));

    #[test]
    fn partitions_cut_both_ways_until_healed() {
        let mut net = Network::new(LinkModel::default());
        let mut rng = DetRng::new(1);
        net.partition(&[A], &[A, B]);
        assert_eq!(net.fate(A, B, &mut rng), Delivery::Lost);
        assert_eq!(net.fate(B, A, &mut rng), Delivery::Lost);
        assert!(!net.is_cut(A, A));
        net.heal();
        assert!(matches!(net.fate(A, B, &mut rng), Delivery::Delivered(..)));
    }

    #[test]
    fn drop_and_duplicate_rates_are_roughly_honoured() {
        let mut net = Network::new(LinkModel {
            drop: 0.25,
            duplicate: 0.5,
            ..LinkModel::default()
        });
        let mut rng = DetRng::new(9);
        let (mut lost, mut dup) = (0, 0);
        for _ in 0..10_000 {
            match net.fate(A, B, &mut rng) {
                Delivery::Lost => lost += 1,
                Delivery::Delivered(_, Some(_)) => dup += 1,
                Delivery::Delivered(_, None) => {}
            }
        }
        assert!((2_200..2_800).contains(&lost), "{lost}");
        assert!((3_400..4_100).contains(&dup), "{dup}");
        net.set_link(A, B, LinkModel::constant(Duration::ZERO));
        assert_eq!(
            net.fate(A, B, &mut rng),
            Delivery::Delivered(Duration::ZERO, None)
        );
    }
}
