//! Bench configs: the YAML a user writes (`bench-configs/*.yaml`), checked strictly, and its
//! expansion into concrete [`Scenario`]s, one per combination of swept values. Unknown fields
//! are refused; every error names the file, line, column and field.
//!
//! One file per idea: the [`file`] as written, its [`faults`], [`zones`], [`sweep`] values and their
//! expansion into [`Scenario`]s, validation, and locating a field in the text for errors.

use std::path::{Path, PathBuf};

use crate::error::Error;

mod expand;
pub mod faults;
pub mod file;
mod label;
mod locate;
pub mod scenario;
pub mod shared;
pub mod sweep;
mod validate;
pub mod zones;

pub use faults::*;
pub use file::*;
pub(crate) use label::display_value;
pub use locate::locate;
pub use scenario::*;
pub use validate::{MAX_KEYS, MAX_NODES, MAX_PROPOSERS, MAX_REPEAT, MAX_TIME, MAX_VALUE_SIZE};
pub use zones::{NodeDelays, Placement, PlacementRule, Preset, ZonesSpec};

/// The most scenarios one config may sweep: beyond this a run would not end in a day.
pub const MAX_SCENARIOS: u128 = 10_000;

/// A loaded config: the file as written and its scenarios.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Where it came from.
    pub path: PathBuf,
    /// The text, as run.
    pub text: String,
    /// The parsed file.
    pub file: BenchFile,
    /// Every cell of the sweep.
    pub scenarios: Vec<Scenario>,
}

impl BenchConfig {
    /// Reads, parses and validates a config; every scenario of the sweep is checked.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ConfigFile {
            path: path.into(),
            source,
        })?;
        Self::parse(path, text)
    }

    /// Parses and validates config text that came from `path`.
    pub fn parse(path: &Path, text: String) -> Result<Self, Error> {
        let file: BenchFile = serde_saphyr::from_str(&text).map_err(|e| Error::Config {
            path: path.into(),
            message: e.to_string(),
        })?;
        let count = file.scenario_count();
        if count > MAX_SCENARIOS {
            return Err(Error::Config {
                path: path.into(),
                message: format!(
                    "the sweeps make {count} scenarios; at most {MAX_SCENARIOS} fit in one run"
                ),
            });
        }
        let scenarios = file.scenarios();
        for scenario in &scenarios {
            if let Err((field, message)) = scenario.validate() {
                let location = locate(&text, &field)
                    .map(|(line, column)| format!("line {line} column {column}: "))
                    .unwrap_or_default();
                let cell = if scenarios.len() > 1 {
                    format!(" (scenario {})", scenario.label)
                } else {
                    String::new()
                };
                return Err(Error::Config {
                    path: path.into(),
                    message: format!("{location}field `{field}`{cell}: {message}"),
                });
            }
        }
        Ok(Self {
            path: path.into(),
            text,
            file,
            scenarios,
        })
    }

    /// The same config on another target kind.
    pub fn with_target(mut self, kind: TargetKind) -> Result<Self, Error> {
        self.file.target.kind = kind;
        self.rebuild(&format!("with --target {kind:?}"))
    }

    /// The same config with every scenario repeated `repeat` times (`--repeat`).
    pub fn with_repeat(mut self, repeat: u32) -> Result<Self, Error> {
        self.file.measure.repeat = repeat;
        self.rebuild(&format!("with --repeat {repeat}"))
    }

    /// The same config run as client `client` of an attached cluster (`--client`).
    pub fn with_client(mut self, client: u32) -> Result<Self, Error> {
        let Some(attach) = self.file.target.attach.as_mut() else {
            return Err(Error::Config {
                path: self.path,
                message: "--client needs a `target.attach` section".into(),
            });
        };
        attach.client = client;
        self.rebuild(&format!("with --client {client}"))
    }

    /// The same config with its runs synchronized to start at `stamp` (`--start-at`).
    pub fn with_start_at(mut self, stamp: &str) -> Result<Self, Error> {
        self.file.measure.start_at = Some(stamp.to_string());
        self.rebuild(&format!("with --start-at {stamp}"))
    }

    /// Repetitions of every scenario.
    pub fn repeat(&self) -> u32 {
        self.file.measure.repeat
    }

    /// The same config with every time in it (warmup, duration, fault times) multiplied by
    /// `factor`: the short version of a campaign, or a longer soak.
    pub fn with_time_scale(mut self, factor: f64) -> Result<Self, Error> {
        if !(factor > 0.0 && factor.is_finite()) {
            return Err(Error::Config {
                path: self.path,
                message: format!("--time-scale must be positive, got {factor}"),
            });
        }
        let workload = &mut self.file.workload;
        workload.warmup_s *= factor;
        workload.duration_s = workload.duration_s.map(|d| d * factor);
        for step in &mut self.file.faults {
            step.at_s *= factor;
            if let FaultAction::KillLoop(kill_loop) = &mut step.action {
                kill_loop.every_s *= factor;
                kill_loop.down_s *= factor;
                kill_loop.until_s *= factor;
            }
        }
        self.rebuild(&format!("with --time-scale {factor}"))
    }

    fn rebuild(mut self, change: &str) -> Result<Self, Error> {
        let scenarios = self.file.scenarios();
        for scenario in &scenarios {
            if let Err((field, message)) = scenario.validate() {
                return Err(Error::Config {
                    path: self.path,
                    message: format!("{change}: field `{field}`: {message}"),
                });
            }
        }
        self.scenarios = scenarios;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<BenchConfig, String> {
        BenchConfig::parse(Path::new("bench.yaml"), text.to_string()).map_err(|e| e.to_string())
    }

    #[test]
    fn absurd_sizes_and_times_are_refused_not_panicked_on() {
        for (text, field) in [
            (
                "name: t\nworkload:\n  warmup_s: 1e300\n",
                "workload.warmup_s",
            ),
            (
                "name: t\nworkload:\n  proposers: 4000000000\n",
                "workload.proposers",
            ),
            (
                "name: t\nworkload:\n  value_size: 4000000000\n",
                "workload.value_size",
            ),
            ("name: t\ntarget:\n  nodes: 100000\n", "target.nodes"),
            (
                "name: t\nfaults:\n  - {at_s: 0, kill-loop: {nodes: [1], every_s: 1e-9, down_s: 0, until_s: 10}}\n",
                "faults",
            ),
            (
                "name: t\nworkload:\n  proposers: [1,2,3,4,5,6,7,8,9,10]\n  keys: [1,2,3,4,5,6,7,8,9,10]\n  think_time_us: [1,2,3,4,5,6,7,8,9,10]\n  contenders: [2,3,4,5,6,7,8,9,10,11]\n  rate: [1,2,3,4,5,6,7,8,9,10]\n",
                "scenarios",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(field), "{text}: {err}");
        }
    }

    #[test]
    fn repetitions_and_cpu_pins_are_checked_by_field() {
        for (text, field, line) in [
            (
                "name: t\nmeasure:\n  repeat: 0\n",
                "measure.repeat",
                "line 3",
            ),
            (
                "name: t\ntarget:\n  cpus: {generator: [9999]}\n",
                "target.cpus.generator",
                "",
            ),
            (
                "name: t\ntarget:\n  kind: sim\n  cpus: {nodes: [0]}\n",
                "target.cpus.nodes",
                "",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(field) && err.contains(line), "{text}: {err}");
        }
        let config =
            parse("name: t\nmeasure:\n  repeat: 3\ntarget:\n  cpus: [{}, {generator: [0]}]\n")
                .unwrap();
        assert_eq!(config.repeat(), 3);
        let labels: Vec<&str> = config.scenarios.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["cpus=unpinned", "cpus=generator:0"]);
        let config = config.with_repeat(0);
        assert!(config.unwrap_err().to_string().contains("--repeat 0"));
    }

    #[test]
    fn defaults_make_one_scenario() {
        let config = parse("name: t\n").unwrap();
        assert_eq!(config.scenarios.len(), 1);
        let s = &config.scenarios[0];
        assert_eq!(s.label, "default");
        assert_eq!(s.workload.proposers, 4);
        assert_eq!(s.target.kind, TargetKind::Spawn);
        assert_eq!(s.proposer.backoff.policy, BackoffKind::FullJitter);
    }

    #[test]
    fn sweeps_expand_to_the_cartesian_product() {
        let config = parse(
            "name: t\nworkload:\n  proposers: [1, 2, 4]\nproposer:\n  id_scheme: [counter, timestamp]\n",
        )
        .unwrap();
        let labels: Vec<_> = config.scenarios.iter().map(|s| s.label.clone()).collect();
        assert_eq!(labels.len(), 6);
        // The ID scheme varies slowest, so a report groups scenarios by scheme.
        assert_eq!(labels[0], "id_scheme=counter,proposers=1");
        assert_eq!(labels[1], "id_scheme=counter,proposers=2");
        assert_eq!(labels[5], "id_scheme=timestamp,proposers=4");
    }

    #[test]
    fn swept_structs_get_short_labels() {
        let config = parse(
            "name: t\nworkload:\n  distribution: [uniform, {zipfian: {theta: 0.99}}]\nproposer:\n  backoff: [{policy: none}, {policy: full-jitter, base_ms: 0.5, cap_ms: 20}]\n",
        )
        .unwrap();
        let labels: Vec<_> = config.scenarios.iter().map(|s| s.label.clone()).collect();
        assert_eq!(labels[0], "distribution=uniform,backoff=none");
        assert_eq!(
            labels[3],
            "distribution=zipfian:0.99,backoff=full-jitter:0.5-20ms"
        );
    }

    #[test]
    fn errors_name_file_line_column_and_field() {
        let err = parse("name: t\nworkload:\n  proposrs: 3\n").unwrap_err();
        assert!(
            err.contains("bench.yaml") && err.contains("line 3") && err.contains("proposrs"),
            "{err}"
        );
        let err = parse("name: t\nworkload:\n  mode: open\n  rate: 0\n").unwrap_err();
        assert!(
            err.contains("line 4") && err.contains("workload.rate"),
            "{err}"
        );
        let err = parse("name: t\nproposer:\n  id_scheme: [counter, sundial]\n").unwrap_err();
        assert!(err.contains("line 3") && err.contains("sundial"), "{err}");
        let err = parse("name: t\nfaults:\n  - at_s: 1\n    kill: 9\n").unwrap_err();
        assert!(err.contains("node 9"), "{err}");
    }

    #[test]
    fn locate_finds_nested_fields() {
        let text =
            "name: x\nworkload:\n  # comment\n  proposers: 3\n  rate: 5\nproposer:\n  rate: 1\n";
        assert_eq!(locate(text, "workload.rate"), Some((5, 3)));
        assert_eq!(locate(text, "proposer.rate"), Some((7, 3)));
        assert_eq!(locate(text, "workload.keys"), Some((2, 1)));
    }
}
