//! Small helpers of the pipeline: the default device, output names and folders, and the
//! [`OutputDir`] guard that leaves no folder behind when a command fails.

use std::path::{Path, PathBuf};

use candle_core::Device;

use crate::error::{Error, Result};

/// The device to run on: the first CUDA GPU when daad is built with the `cuda` feature and one
/// is available, else the CPU.
pub fn default_device() -> Device {
    match Device::cuda_if_available(0) {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!("cannot open CUDA device 0 ({e}); using the CPU");
            Device::Cpu
        }
    }
}

/// A file name stem for outputs derived from `path` (non-alphanumeric characters become `_`).
pub(crate) fn safe_stem(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into());
    stem.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .collect()
}

/// Creates `dir` (and its parents).
pub(crate) fn create_dir(dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io("creating folder", dir, e))?;
    Ok(dir.to_path_buf())
}

/// An output folder of one command. [`OutputDir::claim`] notes the part of the path that does not
/// exist yet; dropped before [`OutputDir::keep`] (an error on the way), the guard removes that
/// part again with everything the command wrote into it, so a failed `daad test` or `daad
/// predict` leaves no folder behind (issue 13). A folder that existed before is never removed.
#[derive(Debug)]
pub struct OutputDir {
    path: PathBuf,
    /// The topmost folder on `path` that did not exist when claimed (None: it all existed).
    new_root: Option<PathBuf>,
}

impl OutputDir {
    /// Claims `path` (creates nothing).
    pub fn claim(path: &Path) -> OutputDir {
        // symlink_metadata: a dangling link counts as existing, so its target is never removed.
        let exists = |p: &Path| p.symlink_metadata().is_ok();
        let new_root = path
            .ancestors()
            .take_while(|p| !p.as_os_str().is_empty() && !exists(p))
            .last()
            .map(Path::to_path_buf);
        OutputDir { path: path.to_path_buf(), new_root }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates the folder (and its parents).
    pub fn create(&self) -> Result<&Path> {
        create_dir(&self.path)?;
        Ok(&self.path)
    }

    /// The command succeeded: the folder stays.
    pub fn keep(mut self) {
        self.new_root = None;
    }
}

impl Drop for OutputDir {
    fn drop(&mut self) {
        if let Some(root) = self.new_root.take().filter(|r| r.exists()) {
            if let Err(e) = std::fs::remove_dir_all(&root) {
                tracing::warn!("cannot remove {} after the failure: {e}", root.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claimed_folder_goes_unless_kept_and_an_existing_one_stays() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        // Two new levels: both go, with what was written into them.
        let dir = OutputDir::claim(&base.join("a/b"));
        std::fs::write(dir.create().unwrap().join("metrics.json"), b"{}").unwrap();
        drop(dir);
        assert!(!base.join("a").exists());
        // Kept: stays.
        let dir = OutputDir::claim(&base.join("a/b"));
        dir.create().unwrap();
        dir.keep();
        assert!(base.join("a/b").is_dir());
        // Existing parent, new child: only the child goes.
        let dir = OutputDir::claim(&base.join("a/b/c"));
        dir.create().unwrap();
        drop(dir);
        assert!(base.join("a/b").is_dir() && !base.join("a/b/c").exists());
        // An existing folder (with a user's file) is never removed.
        std::fs::write(base.join("a/b/mine.txt"), b"x").unwrap();
        let dir = OutputDir::claim(&base.join("a/b"));
        dir.create().unwrap();
        drop(dir);
        assert!(base.join("a/b/mine.txt").is_file());
        // Claimed but never created: nothing to remove, nothing created.
        drop(OutputDir::claim(&base.join("x/y")));
        assert!(!base.join("x").exists());
    }
}
