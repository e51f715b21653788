//! The disk floor: what one small append plus `fdatasync` costs on a node's own data directory,
//! so that every durable figure can sit beside it as latency sits beside the ping round trip. No
//! commit of a durable node can be faster than this. It is measured at the first start on a data
//! directory and kept there, so that a restart, whose speed the fault campaign measures, is not
//! delayed by it.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use paxbench_quic::LatencySummary;

use crate::error::Error;

/// Appends measured at most; a few hundred give a stable median and p99.
const SAMPLES: u32 = 300;
/// Appends measured at least, even on a disk slow enough to exceed the time budget.
const MIN_SAMPLES: u32 = 20;
/// The longest the measurement may delay a node's start.
const BUDGET: Duration = Duration::from_secs(1);
/// One acceptor record is about this size.
const RECORD: [u8; 64] = [0x5a; 64];
/// The probe file, removed once measured.
const PROBE: &str = "disk-floor.probe";
/// The measured floor, kept for later starts (postcard).
const KEPT: &str = "disk-floor";

/// The floor of `dir`: the one kept there, or else one measured now and kept. A kept file that
/// cannot be read is measured again.
pub fn floor(dir: &Path) -> Result<LatencySummary, Error> {
    let kept = dir.join(KEPT);
    if let Some(floor) = std::fs::read(&kept)
        .ok()
        .and_then(|bytes| postcard::from_bytes(&bytes).ok())
    {
        return Ok(floor);
    }
    let floor = measure(dir)?;
    let bytes = postcard::to_stdvec(&floor).map_err(|e| Error::Config {
        origin: "disk floor".into(),
        message: e.to_string(),
    })?;
    std::fs::write(&kept, bytes).map_err(|source| Error::Io {
        context: format!("writing {}", kept.display()),
        source,
    })?;
    Ok(floor)
}

/// Appends [`RECORD`] to a fresh file in `dir` and `fdatasync`s it, up to [`SAMPLES`] times
/// within [`BUDGET`], and summarises the round trips in microseconds.
pub fn measure(dir: &Path) -> Result<LatencySummary, Error> {
    let io = |context: String| move |source| Error::Io { context, source };
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    let path = dir.join(PROBE);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .map_err(io(format!("creating {}", path.display())))?;
    let mut histogram =
        Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).map_err(|e| Error::Config {
            origin: "disk floor".into(),
            message: e.to_string(),
        })?;
    let started = Instant::now();
    for done in 0..SAMPLES {
        if done >= MIN_SAMPLES && started.elapsed() > BUDGET {
            break;
        }
        let append = Instant::now();
        file.write_all(&RECORD)
            .and_then(|()| file.sync_data())
            .map_err(io(format!("appending to {}", path.display())))?;
        let us = append.elapsed().as_micros().max(1) as u64;
        histogram.saturating_record(us);
    }
    drop(file);
    std::fs::remove_file(&path).map_err(io(format!("removing {}", path.display())))?;
    Ok(LatencySummary {
        count: histogram.len(),
        mean: histogram.mean(),
        p50: histogram.value_at_quantile(0.5),
        p99: histogram.value_at_quantile(0.99),
        max: histogram.max(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_real_syncs_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let floor = measure(dir.path()).unwrap();
        assert!(floor.count >= u64::from(MIN_SAMPLES), "{floor:?}");
        assert!(floor.p50 >= 1 && floor.p50 <= floor.p99 && floor.p99 <= floor.max);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_restart_reuses_the_floor_kept_in_the_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let first = floor(dir.path()).unwrap();
        assert!(!dir.path().join(PROBE).exists());
        // Measured again, a real disk would not give the same histogram: the kept one is read.
        assert_eq!(floor(dir.path()).unwrap(), first);
        std::fs::write(dir.path().join(KEPT), b"\xff").unwrap();
        let remeasured = floor(dir.path()).unwrap();
        assert!(
            remeasured.count >= u64::from(MIN_SAMPLES),
            "a bad file is measured again"
        );
    }

    #[test]
    fn an_unwritable_directory_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let error = measure(&file).unwrap_err().to_string();
        assert!(error.contains("not-a-dir"), "{error}");
    }
}
