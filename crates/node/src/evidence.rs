//! The run's evidence: the checker's facts of every instance (proposals, decisions and the
//! acknowledgements nodes sent), streamed to a [`SortedFile`] in the results folder as
//! instances retire ([`EvidenceWriter`]). The checker reads a retired instance back from it
//! when a late message names one; the audit reads it in instance order beside the stores
//! ([`EvidenceFile`]).

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use paxbench_core::Instance;
use paxbench_core::checker::{InstanceFacts, RetiredStore};

use crate::error::Error;
use crate::sorted::{Merged, SortedFile};

/// Instances sorted in memory before a run is written: about 20 MiB of facts.
pub const EVIDENCE_RUN: usize = 65_536;
/// Retired instances handed to the writer thread at once.
const HANDOFF: usize = 4_096;
/// Hand-offs queued for the writer before the checker waits for it: a bound on the memory
/// they hold.
const QUEUED_HANDOFFS: usize = 16;

/// A finished evidence file, read back.
#[derive(Debug)]
pub struct EvidenceFile {
    file: SortedFile<Instance, InstanceFacts>,
}

impl EvidenceFile {
    /// Opens a finished evidence file, checking every frame.
    pub fn open(path: &Path) -> Result<Self, Error> {
        Ok(Self {
            file: SortedFile::open(path)?,
        })
    }

    /// Every instance's facts in instance order, the newest when an instance retired twice.
    pub fn instances(&mut self) -> Result<Latest<'_>, Error> {
        Ok(Latest {
            merged: self.file.merged()?.peekable(),
        })
    }
}

enum Command {
    Put(Vec<(Instance, InstanceFacts)>),
    Get(Instance, mpsc::Sender<Result<Option<InstanceFacts>, Error>>),
    Finish(mpsc::Sender<Result<(), Error>>),
}

/// The evidence file being written, as the checker's [`RetiredStore`]. Sorting, encoding,
/// compressing and writing happen on a thread of their own, so that the generator's loop only
/// hands instances over; a lookup for a late message waits for the thread.
#[derive(Debug)]
pub struct EvidenceWriter {
    path: PathBuf,
    handoff: Vec<(Instance, InstanceFacts)>,
    commands: Option<mpsc::SyncSender<Command>>,
    thread: Option<std::thread::JoinHandle<()>>,
    failure: Option<String>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Put(batch) => write!(f, "Put({} instances)", batch.len()),
            Command::Get(instance, _) => write!(f, "Get({instance})"),
            Command::Finish(_) => write!(f, "Finish"),
        }
    }
}

impl EvidenceWriter {
    /// Creates the file at `path` and starts its writer thread.
    pub fn create(path: &Path) -> Result<Self, Error> {
        let mut file = SortedFile::create(path, EVIDENCE_RUN)?;
        let (commands, inbox) = mpsc::sync_channel::<Command>(QUEUED_HANDOFFS);
        let thread = std::thread::Builder::new()
            .name("evidence".into())
            .spawn(move || {
                let mut failure: Option<Error> = None;
                for command in inbox {
                    match command {
                        Command::Put(batch) => {
                            for (instance, facts) in batch {
                                if let Err(e) = file.push(instance, facts)
                                    && failure.is_none()
                                {
                                    failure = Some(e);
                                }
                            }
                        }
                        Command::Get(instance, reply) => {
                            let _ = reply.send(file.get(&instance));
                        }
                        Command::Finish(reply) => {
                            let flushed = file.flush();
                            let _ = reply.send(match failure.take() {
                                Some(e) => Err(e),
                                None => flushed,
                            });
                            return;
                        }
                    }
                }
            })
            .map_err(|e| Error::Storage {
                path: path.to_path_buf(),
                message: format!("starting the evidence writer: {e}"),
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            handoff: Vec::with_capacity(HANDOFF),
            commands: Some(commands),
            thread: Some(thread),
            failure: None,
        })
    }

    fn send(&mut self, command: Command) {
        let sent = self
            .commands
            .as_ref()
            .is_some_and(|commands| commands.send(command).is_ok());
        if !sent && self.failure.is_none() {
            self.failure = Some(format!(
                "{}: the evidence writer stopped",
                self.path.display()
            ));
        }
    }

    fn hand_off(&mut self) {
        if !self.handoff.is_empty() {
            let batch = std::mem::replace(&mut self.handoff, Vec::with_capacity(HANDOFF));
            self.send(Command::Put(batch));
        }
    }
}

impl RetiredStore for EvidenceWriter {
    fn put(&mut self, instance: Instance, facts: InstanceFacts) {
        self.handoff.push((instance, facts));
        if self.handoff.len() >= HANDOFF {
            self.hand_off();
        }
    }

    fn get(&mut self, instance: Instance) -> Option<InstanceFacts> {
        if let Some((_, facts)) = self.handoff.iter().rev().find(|(i, _)| *i == instance) {
            return Some(facts.clone());
        }
        self.hand_off();
        let (reply, answer) = mpsc::channel();
        self.send(Command::Get(instance, reply));
        match answer.recv() {
            Ok(Ok(found)) => found,
            Ok(Err(e)) => {
                self.failure.get_or_insert(e.to_string());
                None
            }
            Err(_) => {
                self.failure.get_or_insert(format!(
                    "{}: the evidence writer stopped",
                    self.path.display()
                ));
                None
            }
        }
    }

    fn finish(&mut self) -> Result<(), String> {
        self.hand_off();
        let (reply, answer) = mpsc::channel();
        self.send(Command::Finish(reply));
        let finished = answer
            .recv()
            .map_err(|_| format!("{}: the evidence writer stopped", self.path.display()));
        self.commands = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Some(failure) = self.failure.take() {
            return Err(failure);
        }
        finished?.map_err(|e| e.to_string())
    }
}

/// The newest facts of each instance, in instance order.
pub struct Latest<'a> {
    merged: std::iter::Peekable<Merged<'a, Instance, InstanceFacts>>,
}

impl Iterator for Latest<'_> {
    type Item = Result<(Instance, InstanceFacts), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let (instance, mut facts) = match self.merged.next()? {
            Ok(entry) => entry,
            Err(e) => return Some(Err(e)),
        };
        // Equal instances come oldest first; the last is the newest.
        while let Some(Ok((next, _))) = self.merged.peek()
            && *next == instance
        {
            if let Some(Ok((_, newer))) = self.merged.next() {
                facts = newer;
            }
        }
        Some(Ok((instance, facts)))
    }
}

#[cfg(test)]
mod tests {
    use paxbench_core::checker::{Checker, ChosenBy};
    use paxbench_core::{ProposerId, Value};

    use super::*;

    #[test]
    fn a_checker_retires_into_the_file_and_reads_late_instances_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scenario-00.evidence");
        let store = EvidenceWriter::create(&path).unwrap();
        let mut checker = Checker::with_store(Box::new(store), 10);
        for key in 0..1_000u64 {
            let instance = Instance::new(key, 0);
            let value = Value::from(key.to_be_bytes().to_vec());
            checker.on_op_started(instance, &value);
            checker.on_chosen(instance, &value, ChosenBy::Proposer(ProposerId(1)));
            checker.on_op_ended(instance);
        }
        assert!(checker.retained() <= 10);
        // A late conflicting decision on an instance long retired is still caught.
        checker.on_chosen(
            Instance::new(3, 0),
            &Value::from_static(b"other"),
            ChosenBy::Proposer(ProposerId(2)),
        );
        assert_eq!(checker.stats().revived, 1);
        assert!(checker.has_protocol_violation());
        checker.finish().unwrap();

        let mut file = EvidenceFile::open(&path).unwrap();
        let instances: Vec<_> = file.instances().unwrap().map(Result::unwrap).collect();
        assert_eq!(instances.len(), 1_000, "one entry per instance, the newest");
        assert!(instances.windows(2).all(|w| w[0].0 < w[1].0));
        let (_, three) = &instances[3];
        assert_eq!(three.proposed.len(), 1);
        assert!(three.chosen.is_some());
    }
}
