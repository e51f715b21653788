//! Safety across generators: `merge` reads every generator's evidence (each instance's
//! proposals and decisions, sorted by instance) side by side, one instance at a time, and checks
//! agreement and validity over all of them, which no single generator could: each saw only its
//! own proposals. Memory holds one instance per generator.

use std::path::PathBuf;

use paxbench_core::checker::InstanceFacts;
use paxbench_core::workload::ValueTag;
use paxbench_core::{Instance, Value};
use paxbench_node::EvidenceFile;

use crate::error::Error;
use crate::report::summary::CrossCheck;

/// Violation examples kept.
const EXAMPLES: usize = 5;

fn show(value: &Value) -> String {
    match ValueTag::of(value) {
        Some(tag) => format!(
            "run {:08x} proposer {} op {}",
            tag.run, tag.proposer.0, tag.op
        ),
        None => format!("{} untagged bytes", value.len()),
    }
}

/// Checks the evidence of `generators` (their folders' `stem.evidence`) against each other. A
/// value chosen that no generator proposed is pre-existing when it carries another run's tag
/// than `run` (the cluster held it before), and a validity violation otherwise.
pub fn cross_check(generators: &[PathBuf], stem: &str, run: u32) -> Result<CrossCheck, Error> {
    let mut files = generators
        .iter()
        .map(|dir| EvidenceFile::open(&dir.join(format!("{stem}.evidence"))))
        .collect::<Result<Vec<_>, _>>()?;
    let mut streams = files
        .iter_mut()
        .map(|f| f.instances().map(Iterator::peekable))
        .collect::<Result<Vec<_>, _>>()?;
    let mut check = CrossCheck {
        generators: generators.len() as u32,
        ..CrossCheck::default()
    };
    loop {
        // The smallest instance any generator has next.
        let mut next: Option<Instance> = None;
        for stream in &mut streams {
            match stream.peek() {
                Some(Ok((instance, _))) => {
                    next = Some(next.map_or(*instance, |n| n.min(*instance)));
                }
                Some(Err(_)) => {
                    if let Some(Err(e)) = stream.next() {
                        return Err(e.into());
                    }
                }
                None => {}
            }
        }
        let Some(instance) = next else {
            return Ok(check);
        };
        let mut seen: Vec<(usize, InstanceFacts)> = Vec::new();
        for (g, stream) in streams.iter_mut().enumerate() {
            if matches!(stream.peek(), Some(Ok((i, _))) if *i == instance)
                && let Some(Ok((_, facts))) = stream.next()
            {
                seen.push((g, facts));
            }
        }
        check.instances += 1;
        check.shared_instances += u64::from(seen.len() > 1);
        judge(instance, &seen, generators, run, &mut check);
    }
}

/// Checks one instance as every generator saw it.
fn judge(
    instance: Instance,
    seen: &[(usize, InstanceFacts)],
    generators: &[PathBuf],
    run: u32,
    check: &mut CrossCheck,
) {
    let violation = |check: &mut CrossCheck, text: String| {
        check.violations += 1;
        if check.examples.len() < EXAMPLES {
            check.examples.push(text);
        }
    };
    let chosen: Vec<(usize, &Value)> = seen
        .iter()
        .filter_map(|(g, facts)| facts.chosen.as_ref().map(|(v, _)| (*g, v)))
        .collect();
    let Some((first_generator, first)) = chosen.first().copied() else {
        return;
    };
    if let Some((other, value)) = chosen.iter().find(|(_, v)| *v != first) {
        violation(
            check,
            format!(
                "agreement: instance {instance}: {} learned {}, {} learned {}",
                generators[first_generator].display(),
                show(first),
                generators[*other].display(),
                show(value)
            ),
        );
    }
    let proposed = seen.iter().any(|(_, facts)| facts.proposed.contains(first));
    if !proposed {
        match ValueTag::of(first) {
            Some(tag) if tag.run != run => check.preexisting += 1,
            _ => violation(
                check,
                format!(
                    "validity: instance {instance}: {} was chosen, and no generator proposed it",
                    show(first)
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use paxbench_core::checker::{Checker, ChosenBy};
    use paxbench_core::workload::unique_value;
    use paxbench_core::{NodeId, ProposerId};
    use paxbench_node::EvidenceWriter;

    use super::*;

    const RUN: u32 = 7;

    fn value(proposer: u32, op: u64) -> Value {
        unique_value(
            ValueTag {
                run: RUN,
                proposer: ProposerId(proposer),
                op,
            },
            32,
        )
    }

    /// A generator's evidence: what it proposed and what it saw chosen, per instance.
    fn generator(dir: &Path, facts: &[(Instance, Option<Value>, Value)]) {
        std::fs::create_dir_all(dir).unwrap();
        let store = EvidenceWriter::create(&dir.join("scenario-00.evidence")).unwrap();
        let mut checker = Checker::with_store(Box::new(store), 4);
        for (instance, proposed, chosen) in facts {
            if let Some(proposed) = proposed {
                checker.on_proposed(*instance, proposed);
            }
            checker.on_chosen(*instance, chosen, ChosenBy::Learner(NodeId(1)));
        }
        checker.finish().unwrap();
    }

    #[test]
    fn generators_that_agree_pass_and_a_disagreement_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let shared = Instance::new(1, 0);
        let earlier = unique_value(
            ValueTag {
                run: RUN + 1,
                proposer: ProposerId(9),
                op: 0,
            },
            32,
        );
        // a proposed and won instance 1/0; b lost it to a's value; 2/0 held an earlier run's
        // value; 3/0 and 4/0 are each generator's own.
        generator(
            &a,
            &[
                (shared, Some(value(1, 0)), value(1, 0)),
                (Instance::new(2, 0), Some(value(1, 1)), earlier.clone()),
                (Instance::new(3, 0), Some(value(1, 2)), value(1, 2)),
            ],
        );
        generator(
            &b,
            &[
                (shared, Some(value(65_537, 0)), value(1, 0)),
                (
                    Instance::new(4, 0),
                    Some(value(65_537, 1)),
                    value(65_537, 1),
                ),
            ],
        );
        let check = cross_check(&[a.clone(), b.clone()], "scenario-00", RUN).unwrap();
        assert_eq!(
            (check.instances, check.shared_instances, check.preexisting),
            (4, 1, 1)
        );
        assert_eq!(check.violations, 0, "{:?}", check.examples);

        // c learned another value for the shared instance, and one nobody proposed for 5/0.
        let c = dir.path().join("c");
        generator(
            &c,
            &[
                (shared, Some(value(131_073, 0)), value(131_073, 0)),
                (Instance::new(5, 0), None, value(131_073, 9)),
            ],
        );
        let check = cross_check(&[a, b, c], "scenario-00", RUN).unwrap();
        assert_eq!(check.violations, 2, "{:?}", check.examples);
        assert!(
            check.examples[0].starts_with("agreement: instance 1/0"),
            "{:?}",
            check.examples
        );
        assert!(
            check.examples[1].starts_with("validity: instance 5/0"),
            "{:?}",
            check.examples
        );
    }
}
