//! Runs on a shared cluster: the run's tag, each run's key namespace, and the instants at which
//! synchronized generators start. Generators given the same `measure.start_at` compute the same
//! plan, so they contend on the same instances and measure the same windows.

use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

use rustc_hash::FxHasher;

use super::file::{KeyReuse, SYNC_GAP};
use super::{BenchConfig, RunKeys, TargetKind};
use crate::error::Error;
use crate::report::files::parse_utc;

/// The plan of one whole run: its tag, and the schedule of synchronized starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedPlan {
    tag: u32,
    keys: KeyReuse,
    client: u32,
    attached: bool,
    start: Option<(u64, u64)>,
}

fn mix(parts: &[u64]) -> u32 {
    let mut hasher = FxHasher::default();
    for part in parts {
        hasher.write_u64(*part);
    }
    let h = hasher.finish();
    // Never 0: spawned and simulated runs use 0.
    ((h ^ (h >> 32)) as u32).max(1)
}

impl SharedPlan {
    /// The plan for `config`: a tag derived from `measure.start_at` and the config's name when
    /// it is set (every generator of the run derives the same), a random one otherwise.
    pub fn new(config: &BenchConfig) -> Result<Self, Error> {
        let attached = config
            .scenarios
            .iter()
            .any(|s| s.target.kind == TargetKind::Attach);
        let attach = config.file.target.attach.as_ref();
        let keys = attach.map(|a| a.keys).unwrap_or_default();
        let client = attach.map_or(0, |a| a.client);
        let start = match &config.file.measure.start_at {
            None => None,
            Some(stamp) => {
                let at = parse_utc(stamp).ok_or_else(|| Error::Config {
                    path: config.path.clone(),
                    message: format!("measure.start_at: {stamp:?} is not an RFC 3339 UTC time"),
                })?;
                let at_ns = at
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64);
                let longest = config
                    .scenarios
                    .iter()
                    .map(|s| s.workload.warmup + s.workload.duration.unwrap_or_default())
                    .max()
                    .unwrap_or_default();
                Some((at_ns, (longest + SYNC_GAP).as_nanos() as u64))
            }
        };
        if keys == KeyReuse::Shared && start.is_none() {
            // Checked here, after `--start-at` had its say, not when the file is read.
            let location = super::locate(&config.text, "target.attach.keys")
                .map(|(line, column)| format!("line {line} column {column}: "))
                .unwrap_or_default();
            return Err(Error::Config {
                path: config.path.clone(),
                message: format!(
                    "{location}field `target.attach.keys`: `shared` keys are shared by the \
                     generators of one synchronized run: set `measure.start_at` or pass \
                     `--start-at`"
                ),
            });
        }
        let tag = match start {
            Some((at_ns, _)) => {
                let mut name = FxHasher::default();
                name.write(config.file.name.as_bytes());
                mix(&[at_ns, name.finish()])
            }
            None => {
                let random = std::collections::hash_map::RandomState::new().hash_one(
                    SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos()),
                );
                mix(&[random, u64::from(std::process::id())])
            }
        };
        Ok(Self {
            tag,
            keys,
            client,
            attached,
            start,
        })
    }

    /// The keys of run `k` (in run order: repetition by repetition, scenario by scenario).
    pub fn keys(&self, k: usize) -> RunKeys {
        if !self.attached {
            return RunKeys::default();
        }
        RunKeys {
            tag: self.tag,
            namespace: match self.keys {
                KeyReuse::Reuse => 0,
                KeyReuse::Shared => mix(&[u64::from(self.tag), k as u64]),
                KeyReuse::Fresh => {
                    mix(&[u64::from(self.tag), k as u64, 1 + u64::from(self.client)])
                }
            },
            start_unix_ns: self
                .start
                .map(|(at, slot)| at.saturating_add(slot.saturating_mul(k as u64))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BenchConfig;

    const ATTACH: &str = "target:\n  kind: attach\n  attach:\n    nodes: [{id: 1, addr: 127.0.0.1:7001}]\n    ca: ca.pem\n    cert: c.pem\n    key: c.key\n";

    fn config(extra: &str) -> BenchConfig {
        let text = format!(
            "name: shared\n{ATTACH}{extra}workload:\n  warmup_s: 1\n  duration_s: 4\n  proposers: [2, 4]\n"
        );
        BenchConfig::parse("shared.yaml".as_ref(), text).unwrap()
    }

    #[test]
    fn generators_with_one_start_share_tag_slots_and_shared_namespaces() {
        let start = "measure:\n  start_at: 2026-11-30T07:00:00Z\n";
        let shared = |client: u32| {
            let text = config(start)
                .text
                .replace("key: c.key\n", "key: c.key\n    keys: shared\n");
            let config = BenchConfig::parse("s.yaml".as_ref(), text).unwrap();
            SharedPlan::new(&config.with_client(client).unwrap()).unwrap()
        };
        let (a, b) = (shared(0), shared(1));
        assert_eq!(a.keys(0), b.keys(0), "one tag, namespace and start");
        assert_eq!(a.keys(1), b.keys(1));
        // Fresh keys (the default): one tag and start, a namespace per generator.
        let fresh = |client: u32| {
            let config = config(start).with_client(client).unwrap();
            SharedPlan::new(&config).unwrap()
        };
        let (c, d) = (fresh(0), fresh(1));
        assert_eq!(c.keys(0).tag, d.keys(0).tag);
        assert_eq!(c.keys(0).start_unix_ns, d.keys(0).start_unix_ns);
        assert_ne!(c.keys(0).namespace, d.keys(0).namespace);
        let start = 1_796_022_000u64 * 1_000_000_000;
        // The longest scenario (1 + 4 s) plus the gap.
        let (first, second) = (a.keys(0).start_unix_ns, a.keys(1).start_unix_ns);
        assert_eq!(second.unwrap() - first.unwrap(), 15_000_000_000);
        assert_eq!(a.keys(0).start_unix_ns, Some(start));
        assert_eq!(a.keys(2).start_unix_ns, Some(start + 30_000_000_000));
        assert_ne!(a.keys(0).namespace, a.keys(1).namespace);
        assert_ne!(a.keys(0).namespace, 0);
        let later =
            SharedPlan::new(&config("measure:\n  start_at: 2026-11-30T07:00:01Z\n")).unwrap();
        assert_ne!(later.keys(0).tag, a.keys(0).tag);
    }

    #[test]
    fn shared_keys_without_a_start_are_refused_naming_the_field() {
        let text = config("")
            .text
            .replace("key: c.key\n", "key: c.key\n    keys: shared\n");
        let config = BenchConfig::parse("s.yaml".as_ref(), text).unwrap();
        let error = SharedPlan::new(&config).unwrap_err().to_string();
        assert!(
            error.contains("s.yaml") && error.contains("line 9") && error.contains("--start-at"),
            "{error}"
        );
        let started = config.with_start_at("2026-11-30T07:00:00Z").unwrap();
        assert!(SharedPlan::new(&started).is_ok());
    }

    #[test]
    fn unsynchronized_runs_get_a_namespace_of_their_own() {
        let a = SharedPlan::new(&config("")).unwrap();
        let b = SharedPlan::new(&config("")).unwrap();
        assert_ne!(a.keys(0).tag, b.keys(0).tag);
        assert_ne!(a.keys(0).namespace, b.keys(0).namespace);
        assert_eq!(a.keys(0).start_unix_ns, None);
    }

    #[test]
    fn reused_keys_are_the_configured_ones_and_fresh_clusters_need_no_plan() {
        let reuse = config("")
            .text
            .replace("key: c.key\n", "key: c.key\n    keys: reuse\n");
        let plan = SharedPlan::new(&BenchConfig::parse("r.yaml".as_ref(), reuse).unwrap()).unwrap();
        assert_eq!(plan.keys(3).namespace, 0);
        assert_ne!(plan.keys(3).tag, 0);
        let spawn = BenchConfig::parse("s.yaml".as_ref(), "name: s\n".into()).unwrap();
        assert_eq!(SharedPlan::new(&spawn).unwrap().keys(1), RunKeys::default());
    }
}
