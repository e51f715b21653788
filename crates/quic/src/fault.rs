//! The fault layer: per-link drop, duplicate and delay probabilities, and partitions, applied to
//! every frame a link sends (and, for partitions, receives). Settings are given at start or
//! replaced at run time by a client's admin command.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use paxbench_core::latency::{Latency, Shape};
use paxbench_core::rng::DetRng;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::peer::PeerName;

/// How one link misbehaves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinkFaults {
    /// Probability that a frame is dropped.
    pub drop: f64,
    /// Probability that a frame is sent twice.
    pub duplicate: f64,
    /// Fixed delay added to every frame, in microseconds.
    pub delay_us: u64,
    /// Extra delay drawn uniformly from `0..=jitter_us` per frame; frames may then be reordered.
    /// With a `shape`, the jitter spreads the delay that way instead.
    pub jitter_us: u64,
    /// How `jitter_us` spreads `delay_us`, as a zone matrix's `distribution` does: `uniform`
    /// (delay ± jitter), `normal` (σ = jitter), `pareto` (a tail of mean jitter) or `constant`.
    /// Unset: the uniform `0..=jitter_us` added on top, as above.
    pub shape: Option<Shape>,
}

impl LinkFaults {
    /// Whether this link behaves perfectly.
    pub fn is_clean(&self) -> bool {
        *self == LinkFaults::default()
    }

    fn validate(&self) -> Result<(), Error> {
        for (name, p) in [("drop", self.drop), ("duplicate", self.duplicate)] {
            if !(0.0..=1.0).contains(&p) {
                return Err(Error::Fault(format!(
                    "{name} = {p} is not a probability in [0, 1]"
                )));
            }
        }
        Ok(())
    }
}

/// The fault settings of one endpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultSpec {
    /// Faults on every link without its own entry.
    pub all: LinkFaults,
    /// Faults on particular links, by peer name (`node-2`, `client-0`).
    pub links: BTreeMap<String, LinkFaults>,
    /// Peers cut off in both directions.
    pub partitioned: Vec<String>,
    /// Seed of the fault dice, so a run can be replayed.
    pub seed: u64,
}

#[derive(Debug)]
struct Compiled {
    all: LinkFaults,
    links: BTreeMap<PeerName, LinkFaults>,
    partitioned: Vec<PeerName>,
    rng: DetRng,
}

/// What the fault layer decided for one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Lost.
    Drop,
    /// Sent `copies` times after `delay`.
    Send {
        /// 1, or 2 when duplicated.
        copies: u8,
        /// Zero unless the link is slowed.
        delay: Duration,
    },
}

impl Fate {
    const CLEAN: Fate = Fate::Send {
        copies: 1,
        delay: Duration::ZERO,
    };
}

/// Shared, runtime-changeable fault settings. Cloning shares them.
#[derive(Clone, Debug, Default)]
pub struct FaultLayer {
    inner: Arc<Mutex<Option<Compiled>>>,
}

impl FaultLayer {
    /// A layer with the given settings.
    pub fn new(spec: &FaultSpec) -> Result<Self, Error> {
        let layer = Self::default();
        layer.set(spec)?;
        Ok(layer)
    }

    /// Replaces the settings; an invalid spec leaves the old ones in place.
    pub fn set(&self, spec: &FaultSpec) -> Result<(), Error> {
        spec.all.validate()?;
        let mut links = BTreeMap::new();
        for (name, faults) in &spec.links {
            faults.validate()?;
            links.insert(name.parse::<PeerName>()?, *faults);
        }
        let partitioned = spec
            .partitioned
            .iter()
            .map(|name| name.parse::<PeerName>())
            .collect::<Result<Vec<_>, _>>()?;
        let clean = spec.all.is_clean()
            && links.values().all(LinkFaults::is_clean)
            && partitioned.is_empty();
        let compiled = (!clean).then(|| Compiled {
            all: spec.all,
            links,
            partitioned,
            rng: DetRng::new(spec.seed),
        });
        *self.lock() = compiled;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Compiled>> {
        // The state is plain data, valid even if a holder panicked.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether frames to or from `peer` are cut off.
    pub fn is_partitioned(&self, peer: PeerName) -> bool {
        self.lock()
            .as_ref()
            .is_some_and(|faults| faults.partitioned.contains(&peer))
    }

    /// The fate of one frame sent to `peer`.
    pub fn outbound(&self, peer: PeerName) -> Fate {
        let mut guard = self.lock();
        let Some(faults) = guard.as_mut() else {
            return Fate::CLEAN;
        };
        if faults.partitioned.contains(&peer) {
            return Fate::Drop;
        }
        let link = faults.links.get(&peer).copied().unwrap_or(faults.all);
        if link.is_clean() {
            return Fate::CLEAN;
        }
        if faults.rng.chance(link.drop) {
            return Fate::Drop;
        }
        let copies = if faults.rng.chance(link.duplicate) {
            2
        } else {
            1
        };
        let delay = match (link.shape, link.jitter_us) {
            (_, 0) => Duration::from_micros(link.delay_us),
            (None, jitter) => Duration::from_micros(link.delay_us + faults.rng.between(0, jitter)),
            (Some(shape), jitter) => Latency::shaped(
                shape,
                Duration::from_micros(link.delay_us),
                Duration::from_micros(jitter),
            )
            .sample(&mut faults.rng),
        };
        Fate::Send { copies, delay }
    }
}

#[cfg(test)]
mod tests {
    use paxbench_core::NodeId;

    use super::*;

    #[test]
    fn partitions_drop_everything_and_probabilities_are_honoured() {
        let spec = FaultSpec {
            links: BTreeMap::from([(
                "node-2".into(),
                LinkFaults {
                    drop: 0.25,
                    duplicate: 0.5,
                    delay_us: 100,
                    ..LinkFaults::default()
                },
            )]),
            partitioned: vec!["node-3".into()],
            seed: 1,
            ..FaultSpec::default()
        };
        let layer = FaultLayer::new(&spec).unwrap();
        let (n2, n3, n1) = (
            PeerName::Node(NodeId(2)),
            PeerName::Node(NodeId(3)),
            PeerName::Node(NodeId(1)),
        );
        assert!(layer.is_partitioned(n3));
        assert_eq!(layer.outbound(n3), Fate::Drop);
        assert_eq!(layer.outbound(n1), Fate::CLEAN);
        let (mut dropped, mut doubled) = (0, 0);
        for _ in 0..10_000 {
            match layer.outbound(n2) {
                Fate::Drop => dropped += 1,
                Fate::Send { copies, delay } => {
                    assert_eq!(delay, Duration::from_micros(100));
                    doubled += usize::from(copies == 2);
                }
            }
        }
        assert!((2_200..2_800).contains(&dropped), "{dropped}");
        assert!((3_400..4_100).contains(&doubled), "{doubled}");
        layer.set(&FaultSpec::default()).unwrap();
        assert_eq!(layer.outbound(n3), Fate::CLEAN);
    }

    #[test]
    fn a_shaped_link_spreads_its_delay_around_the_base() {
        let link = |shape| LinkFaults {
            delay_us: 10_000,
            jitter_us: 1_000,
            shape,
            ..LinkFaults::default()
        };
        let n2 = PeerName::Node(NodeId(2));
        for (shape, low, high) in [
            (None, 10_000, 11_000),
            (Some(Shape::Uniform), 9_000, 11_000),
            (Some(Shape::Constant), 10_000, 10_000),
        ] {
            let layer = FaultLayer::new(&FaultSpec {
                all: link(shape),
                seed: 3,
                ..FaultSpec::default()
            })
            .unwrap();
            let delays: Vec<u128> = (0..2_000)
                .map(|_| match layer.outbound(n2) {
                    Fate::Send { delay, .. } => delay.as_micros(),
                    Fate::Drop => 0,
                })
                .collect();
            let (min, max) = (delays.iter().min(), delays.iter().max());
            assert!(
                min >= Some(&low) && max <= Some(&high),
                "{shape:?}: {min:?}..{max:?}"
            );
            if shape == Some(Shape::Uniform) {
                // Centred: some below the base, as many above.
                assert!(delays.iter().filter(|d| **d < 10_000).count() > 800);
            }
        }
    }

    #[test]
    fn bad_settings_are_refused_and_leave_the_old_ones() {
        let layer = FaultLayer::new(&FaultSpec {
            partitioned: vec!["node-1".into()],
            ..FaultSpec::default()
        })
        .unwrap();
        let bad = FaultSpec {
            all: LinkFaults {
                drop: 1.5,
                ..LinkFaults::default()
            },
            ..FaultSpec::default()
        };
        assert!(layer.set(&bad).is_err());
        assert!(
            layer
                .set(&FaultSpec {
                    partitioned: vec!["nobody".into()],
                    ..FaultSpec::default()
                })
                .is_err()
        );
        assert!(layer.is_partitioned(PeerName::Node(NodeId(1))));
    }
}
