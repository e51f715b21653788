//! The file-system steps every engine needs to survive a crash: a directory's entries made
//! durable, and a file created or replaced whole (written under a temporary name, synced,
//! renamed, directory synced), so a crash leaves the old file or the new one, never a torn one.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::error::Error;

/// The suffix of a file being created or replaced; a leftover one held nothing committed.
pub const CREATING: &str = ".creating";

/// Makes a directory's entries (created, renamed or removed files) durable.
pub fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| Error::Io {
            context: format!("syncing {}", dir.display()),
            source,
        })
}

/// Creates `dir` and any missing parents, syncing the parent of each directory it made, so
/// that a crash right after the first boot cannot lose the directory's own entry.
pub fn create_dir(dir: &Path) -> Result<(), Error> {
    let mut missing = Vec::new();
    let mut at = Some(dir);
    while let Some(path) = at.filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
        missing.push(path);
        at = path.parent();
    }
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        context: format!("creating {}", dir.display()),
        source,
    })?;
    for made in missing.iter().rev() {
        if let Some(parent) = made.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// Replaces `dir/name` with `bytes` atomically: when this returns `Ok`, a crash keeps the new
/// contents; before, it keeps the old ones.
pub fn replace_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), Error> {
    let temporary = dir.join(format!("{name}{CREATING}"));
    let io = |what: &str, source| Error::Io {
        context: format!("{what} {}", temporary.display()),
        source,
    };
    let mut file = File::create(&temporary).map_err(|e| io("creating", e))?;
    file.write_all(bytes).map_err(|e| io("writing", e))?;
    file.sync_data().map_err(|e| io("syncing", e))?;
    drop(file);
    std::fs::rename(&temporary, dir.join(name)).map_err(|e| io("renaming", e))?;
    sync_dir(dir)
}

/// Creates `dir/name` under a temporary name, runs `init` on the temporary path, and renames
/// it into place once complete, so a process killed while creating it leaves either no file or
/// a complete one. A leftover temporary file from an earlier attempt is removed first.
pub fn create_file(
    dir: &Path,
    name: &str,
    init: impl FnOnce(&Path) -> Result<(), Error>,
) -> Result<(), Error> {
    let io = |context: String| move |source| Error::Io { context, source };
    create_dir(dir)?;
    let creating = dir.join(format!("{name}{CREATING}"));
    if creating.exists() {
        std::fs::remove_file(&creating).map_err(io(format!("removing {}", creating.display())))?;
    }
    init(&creating)?;
    std::fs::rename(&creating, dir.join(name))
        .map_err(io(format!("renaming {}", creating.display())))?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_directories_are_created() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b/c");
        create_dir(&deep).unwrap();
        assert!(deep.is_dir());
        create_dir(&deep).unwrap();
    }

    #[test]
    fn a_replaced_file_holds_the_new_bytes_and_no_temporary_remains() {
        let dir = tempfile::tempdir().unwrap();
        replace_file(dir.path(), "f", b"old").unwrap();
        replace_file(dir.path(), "f", b"new").unwrap();
        assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"new");
        assert!(!dir.path().join(format!("f{CREATING}")).exists());
    }

    #[test]
    fn a_failed_creation_leaves_no_file_and_a_leftover_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(format!("f{CREATING}")), b"half").unwrap();
        let failed = create_file(dir.path(), "f", |_| {
            Err(Error::Storage {
                path: "f".into(),
                message: "no".into(),
            })
        });
        assert!(failed.is_err());
        assert!(!dir.path().join("f").exists());
        create_file(dir.path(), "f", |path| {
            std::fs::write(path, b"whole").map_err(|source| Error::Io {
                context: "test".into(),
                source,
            })
        })
        .unwrap();
        assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"whole");
        assert!(!dir.path().join(format!("f{CREATING}")).exists());
    }
}
