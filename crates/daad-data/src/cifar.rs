//! CIFAR-10 in the official binary format, with the pinned archive URL and sha256.
//!
//! Each record is 1 label byte and 3072 pixel bytes (1024 R, 1024 G, 1024 B, rows of 32).
//! Files: `cifar-10-batches-bin/data_batch_{1..5}.bin` and `test_batch.bin`.

use std::path::{Path, PathBuf};

use crate::download::ArchiveSpec;
use crate::error::{Error, Result};
use crate::oneclass::{one_class, OneClassSet, RawImages};

/// The official binary archive.
pub const ARCHIVE_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
/// sha256 of `cifar-10-binary.tar.gz` (170,052,171 bytes; its MD5 c32a1d4ab5d03f1284b67883e8d87530
/// is the one published on the CIFAR page).
pub const ARCHIVE_SHA256: &str = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd";
/// The folder the archive extracts to.
pub const FOLDER: &str = "cifar-10-batches-bin";
/// Bytes per record.
pub const RECORD: usize = 1 + 3 * 32 * 32;
/// The ten class names, by label.
pub const CLASSES: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

/// The download spec of the official archive.
pub fn official_archive() -> ArchiveSpec {
    ArchiveSpec {
        url: ARCHIVE_URL.to_string(),
        file_name: "cifar-10-binary.tar.gz".to_string(),
        sha256: Some(ARCHIVE_SHA256.to_string()),
    }
}

/// Reads one binary batch file.
pub fn read_batch(path: &Path) -> Result<RawImages> {
    let b = std::fs::read(path).map_err(|e| Error::io("reading", path, e))?;
    let bad = |reason: String| Error::Format { path: path.to_path_buf(), reason };
    if b.is_empty() || b.len() % RECORD != 0 {
        return Err(bad(format!(
            "{} bytes is not a multiple of the {RECORD}-byte CIFAR-10 record",
            b.len()
        )));
    }
    let n = b.len() / RECORD;
    let mut labels = Vec::with_capacity(n);
    let mut pixels = Vec::with_capacity(n * (RECORD - 1));
    for (i, rec) in b.chunks_exact(RECORD).enumerate() {
        if rec[0] > 9 {
            return Err(bad(format!("record {i} has label {}, expected 0-9", rec[0])));
        }
        labels.push(rec[0]);
        pixels.extend_from_slice(&rec[1..]);
    }
    Ok(RawImages { channels: 3, height: 32, width: 32, pixels, labels })
}

fn batch_dir(dir: &Path) -> PathBuf {
    if dir.join(FOLDER).is_dir() {
        dir.join(FOLDER)
    } else {
        dir.to_path_buf()
    }
}

fn read_all(paths: &[PathBuf]) -> Result<RawImages> {
    let mut out =
        RawImages { channels: 3, height: 32, width: 32, pixels: Vec::new(), labels: Vec::new() };
    for p in paths {
        if !p.is_file() {
            return Err(Error::Format {
                path: p.clone(),
                reason: "missing; run `cargo xtask download cifar10` (or extract cifar-10-binary.tar.gz there)".into(),
            });
        }
        let b = read_batch(p)?;
        out.pixels.extend(b.pixels);
        out.labels.extend(b.labels);
    }
    Ok(out)
}

/// Loads the training (5 batches) and test sets from `dir` or `dir/cifar-10-batches-bin`.
pub fn load(dir: &Path) -> Result<(RawImages, RawImages)> {
    let d = batch_dir(dir);
    let train: Vec<PathBuf> = (1..=5).map(|i| d.join(format!("data_batch_{i}.bin"))).collect();
    Ok((read_all(&train)?, read_all(&[d.join("test_batch.bin")])?))
}

/// The one-class split for class `class` (0-9, see [`CLASSES`]), resized to `size`.
pub fn load_one_class(dir: &Path, class: u8, size: usize) -> Result<OneClassSet> {
    let (train, test) = load(dir)?;
    one_class(&train, &test, class, size)
}
