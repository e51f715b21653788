//! What Multi-Paxos keeps beside an acceptor's records: the global promise a PROMISE-ALL made,
//! and the chosen prefix per key that keeps a restarted node's PROMISE-ALL the size of the work
//! in flight. Both live in one small file, replaced atomically (written, synced, renamed,
//! directory synced), so a crash leaves the old state or the new one, never a torn one.

use std::path::{Path, PathBuf};

pub use paxbench_core::acceptor::RangedState;

use super::fs::replace_file;
use crate::error::Error;

/// The file's name inside the data directory.
pub const RANGED_FILE: &str = "ranged-promise";
/// The format this build writes and reads.
const FORMAT: u8 = 1;

/// The file of one data directory.
#[derive(Clone, Debug)]
pub struct RangedFile {
    dir: PathBuf,
}

impl RangedFile {
    /// The file in `data_dir` (which must exist before [`RangedFile::store`]).
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.to_path_buf(),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.join(RANGED_FILE)
    }

    /// The state last stored; the default when none ever was (a vanilla node, or a new one).
    pub fn load(&self) -> Result<RangedState, Error> {
        let path = self.path();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(RangedState::default());
            }
            Err(source) => {
                return Err(Error::Io {
                    context: format!("reading {}", path.display()),
                    source,
                });
            }
        };
        match bytes.split_first() {
            Some((&FORMAT, rest)) => postcard::from_bytes(rest).map_err(|e| Error::Storage {
                path: path.clone(),
                message: format!("not a ranged promise: {e}"),
            }),
            Some((format, _)) => Err(Error::Storage {
                path,
                message: format!("unknown format {format} (this build reads {FORMAT})"),
            }),
            None => Err(Error::Storage {
                path,
                message: "empty file (a complete one is never empty)".into(),
            }),
        }
    }

    /// Makes `state` durable: when this returns `Ok`, a crash keeps it.
    pub fn store(&self, state: &RangedState) -> Result<(), Error> {
        let path = self.path();
        let mut bytes = vec![FORMAT];
        bytes = postcard::to_extend(state, bytes).map_err(|e| Error::Storage {
            path: path.clone(),
            message: format!("encoding: {e}"),
        })?;
        replace_file(&self.dir, RANGED_FILE, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use paxbench_core::ProposalId;

    use super::*;

    #[test]
    fn a_stored_state_survives_and_a_missing_file_is_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let file = RangedFile::new(dir.path());
        assert_eq!(file.load().unwrap(), RangedState::default());
        let state = RangedState {
            global_promise: ProposalId::new(7, 2),
            chosen_prefix: vec![(1, 40), (9, 3)],
        };
        file.store(&state).unwrap();
        assert_eq!(RangedFile::new(dir.path()).load().unwrap(), state);
        assert!(
            !dir.path()
                .join(format!("{RANGED_FILE}{}", crate::storage::fs::CREATING))
                .exists()
        );
    }

    #[test]
    fn a_damaged_file_is_an_error_that_names_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(RANGED_FILE), [9u8, 1, 2]).unwrap();
        let err = RangedFile::new(dir.path()).load().unwrap_err().to_string();
        assert!(
            err.contains(RANGED_FILE) && err.contains("format 9"),
            "{err}"
        );
        std::fs::write(dir.path().join(RANGED_FILE), []).unwrap();
        let err = RangedFile::new(dir.path()).load().unwrap_err().to_string();
        assert!(err.contains("empty"), "{err}");
    }
}
