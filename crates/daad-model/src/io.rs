//! Safetensors files with metadata, written atomically (daad-data's `io::write_atomic`: tmp
//! file, fsync, rename, fsync of the folder), read with checks.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use crate::{Error, Result};

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io { path: path.to_path_buf(), source }
}

/// Writes `bytes` to `path` atomically and durably (daad-data's one writer, with fsync).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    daad_data::io::write_atomic(path, bytes).map_err(|e| io_err(path, e))
}

/// Saves named tensors (any device, any dtype candle knows) with string metadata, atomically.
pub fn save_safetensors(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: HashMap<String, String>,
) -> Result<()> {
    let cpu: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(n, t)| Ok((n.clone(), t.to_device(&Device::Cpu)?.contiguous()?)))
        .collect::<candle_core::Result<_>>()?;
    let bytes = safetensors::serialize(cpu.iter().map(|(n, t)| (n.as_str(), t)), Some(metadata))
        .map_err(|e| Error::Checkpoint {
            path: path.to_path_buf(),
            mismatches: vec![format!("cannot serialise: {e}")],
        })?;
    write_atomic(path, &bytes)
}

/// Loads all tensors of a safetensors file onto `device`, with its metadata; a truncated or
/// corrupt file is an error naming the file.
pub fn load_safetensors(
    path: &Path,
    device: &Device,
) -> Result<(HashMap<String, Tensor>, HashMap<String, String>)> {
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
    let corrupt = |e: String| Error::Checkpoint {
        path: path.to_path_buf(),
        mismatches: vec![format!(
            "not a readable safetensors file ({e}); the file is corrupt or truncated"
        )],
    };
    let (_, meta) =
        safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| corrupt(e.to_string()))?;
    let metadata = meta.metadata().clone().unwrap_or_default();
    let tensors = candle_core::safetensors::load_buffer(&bytes, device)
        .map_err(|e| corrupt(e.to_string()))?;
    Ok((tensors, metadata))
}
