//! CPU pinning (`target.cpus` in a bench config, `cpus` in a node config): the calling thread,
//! and every thread it starts afterwards, runs only on the given CPUs. Pin before the runtime
//! and the storage threads start, so that they inherit it.

use std::sync::OnceLock;

use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};

use crate::Error;

/// The CPUs the process was allowed when it first pinned: what an empty list restores.
static STARTED_WITH: OnceLock<Option<CpuSet>> = OnceLock::new();

/// Runs the calling thread (and the threads it starts from now on) on `cpus` only; an empty
/// list restores the CPUs the process started with. A CPU the machine does not have is refused
/// by name.
pub fn pin_current_thread(cpus: &[usize]) -> Result<(), Error> {
    // Read before the first pin, so that it is what the process started with.
    let started_with = *started_with();
    let set = if cpus.is_empty() {
        match started_with {
            Some(set) => set,
            None => return Ok(()),
        }
    } else {
        let online = online();
        let mut set = CpuSet::new();
        for cpu in cpus {
            if *cpu >= CpuSet::MAX_CPU || !online.contains(cpu) {
                return Err(Error::Config {
                    origin: "cpus".into(),
                    message: format!("CPU {cpu} is not one of this machine's ({})", list(&online)),
                });
            }
            set.set(*cpu);
        }
        set
    };
    sched_setaffinity(None, &set).map_err(|e| Error::Io {
        context: format!(
            "pinning to CPUs {cpus:?} (the machine's: {})",
            list(&online())
        ),
        source: e.into(),
    })
}

/// The CPUs the process was allowed before it first pinned itself: what a child started
/// "unpinned" should get, rather than whatever pin its parent holds at the time.
pub fn original() -> Vec<usize> {
    started_with().map_or_else(online, |set| {
        (0..CpuSet::MAX_CPU).filter(|c| set.is_set(*c)).collect()
    })
}

fn started_with() -> &'static Option<CpuSet> {
    STARTED_WITH.get_or_init(|| sched_getaffinity(None).ok())
}

/// The CPUs the calling thread may run on now.
pub fn allowed() -> Vec<usize> {
    sched_getaffinity(None)
        .map(|set| (0..CpuSet::MAX_CPU).filter(|c| set.is_set(*c)).collect())
        .unwrap_or_default()
}

/// The machine's online CPUs (`/sys/devices/system/cpu/online`, as `0-3,6`), or the allowed
/// ones where that cannot be read.
pub fn online() -> Vec<usize> {
    let parsed = std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|text| {
            let mut cpus = Vec::new();
            for part in text.trim().split(',') {
                match part.split_once('-') {
                    Some((a, b)) => {
                        cpus.extend(a.parse::<usize>().ok()?..=b.parse::<usize>().ok()?)
                    }
                    None => cpus.push(part.parse::<usize>().ok()?),
                }
            }
            Some(cpus)
        });
    parsed.filter(|c| !c.is_empty()).unwrap_or_else(allowed)
}

fn list(cpus: &[usize]) -> String {
    cpus.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_pinned_runs_where_it_was_told_and_can_be_released() {
        let all = allowed();
        assert!(!all.is_empty());
        std::thread::spawn(move || {
            pin_current_thread(&all[..1]).unwrap();
            assert_eq!(allowed(), all[..1]);
            // A thread started now inherits the pin.
            let inherited = std::thread::spawn(allowed).join().unwrap();
            assert_eq!(inherited, all[..1]);
            pin_current_thread(&[]).unwrap();
            assert_eq!(allowed(), all);
            let error = pin_current_thread(&[CpuSet::MAX_CPU + 1])
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("CPU") && error.contains("machine's"),
                "{error}"
            );
            assert!(online().len() >= all.len());
            assert_eq!(original(), all);
        })
        .join()
        .unwrap();
    }
}
