//! Small helpers of the pipeline: the default device, output names and folders.

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
