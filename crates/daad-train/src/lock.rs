//! An advisory lock on a run folder, held by `train` for its whole duration.
//!
//! The lock is `flock`/`LockFileEx` on `.daad.lock` (crate `fs4`), released by the OS when the
//! process dies, so a killed trainer never leaves a folder locked. The holder writes its pid into
//! the file so that a second writer's error names it. The file itself stays (removing it would
//! let a third process lock a fresh file while a second still holds the old one).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use fs4::{FileExt, TryLockError};

use crate::error::io_err;
use crate::{Error, Result};

/// The lock file inside a run folder.
pub const LOCK_FILE: &str = ".daad.lock";

/// An exclusive advisory lock on a run folder; released when dropped.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    dir: PathBuf,
}

impl RunLock {
    /// Locks the folder `dir` (which must exist) or fails at once with [`Error::Locked`] naming
    /// the holder's pid.
    pub fn acquire(dir: &Path) -> Result<RunLock> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        // Fully qualified: std's File::try_lock (Rust 1.89) is newer than the workspace's MSRV.
        match FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(Error::Locked {
                    dir: dir.to_path_buf(),
                    pid: text.trim().parse().ok(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io_err(&path, e)),
        }
        let pid = std::process::id().to_string();
        file.set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(pid.as_bytes()))
            .and_then(|_| file.sync_all())
            .map_err(|e| io_err(&path, e))?;
        Ok(RunLock { file, dir: dir.to_path_buf() })
    }

    /// The locked folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = FileExt::unlock(&self.file);
    }
}
