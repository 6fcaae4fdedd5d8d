//! MNIST in the official IDX format (optionally gzipped), with pinned download URLs and sha256s.
//!
//! Files: `train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`, `t10k-images-idx3-ubyte.gz`,
//! `t10k-labels-idx1-ubyte.gz` in one folder (`data/mnist/` by default).

use std::io::Read;
use std::path::Path;

use crate::download::ArchiveSpec;
use crate::error::{Error, Result};
use crate::oneclass::{one_class, OneClassSet, RawImages};

/// Mirror used by torchvision (the original yann.lecun.com host often refuses downloads).
pub const BASE_URL: &str = "https://ossci-datasets.s3.amazonaws.com/mnist/";

/// The four official files and their sha256 (identical on every mirror; the same values are
/// pinned by torchvision's prototype datasets and TensorFlow users; MD5s match LeCun's page).
pub const FILES: [(&str, &str); 4] = [
    (
        "train-images-idx3-ubyte.gz",
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    ),
    (
        "train-labels-idx1-ubyte.gz",
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    ),
    (
        "t10k-images-idx3-ubyte.gz",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    ),
    (
        "t10k-labels-idx1-ubyte.gz",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    ),
];

/// Download specs of the four files, from `base_url` (default [`BASE_URL`]).
pub fn official_files(base_url: Option<&str>) -> Vec<ArchiveSpec> {
    let base = base_url.unwrap_or(BASE_URL);
    let sep = if base.ends_with('/') { "" } else { "/" };
    FILES
        .iter()
        .map(|(name, sha)| ArchiveSpec {
            url: format!("{base}{sep}{name}"),
            file_name: name.to_string(),
            sha256: Some(sha.to_string()),
        })
        .collect()
}

/// The largest decompressed IDX file accepted (MNIST's largest is 47 MB): a gzip bomb or a
/// header declaring more stops here instead of exhausting memory.
pub const MAX_IDX_BYTES: u64 = 1 << 30;

fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io("reading", path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        // Reads at most one byte past the cap, so the allocation stays bounded.
        flate2::read::GzDecoder::new(&raw[..])
            .take(MAX_IDX_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| Error::Format {
                path: path.to_path_buf(),
                reason: format!("bad gzip data: {e}"),
            })?;
        if out.len() as u64 > MAX_IDX_BYTES {
            return Err(Error::Format {
                path: path.to_path_buf(),
                reason: format!("decompresses to more than {MAX_IDX_BYTES} bytes"),
            });
        }
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads an IDX3 image file (magic 0x00000803): `(n, rows, cols, pixels)`.
pub fn read_idx_images(path: &Path) -> Result<(usize, usize, usize, Vec<u8>)> {
    let b = read_maybe_gz(path)?;
    let bad = |reason: String| Error::Format { path: path.to_path_buf(), reason };
    if b.len() < 16 {
        return Err(bad(format!("{} bytes is too short for an IDX image header", b.len())));
    }
    let magic = be_u32(&b, 0);
    if magic != 0x0000_0803 {
        return Err(bad(format!("magic number {magic:#010x}, expected 0x00000803 (IDX3 images)")));
    }
    let (n, r, c) = (be_u32(&b, 4) as usize, be_u32(&b, 8) as usize, be_u32(&b, 12) as usize);
    // Checked: three u32 header fields can overflow a usize product.
    let want = n.checked_mul(r).and_then(|v| v.checked_mul(c)).and_then(|v| v.checked_add(16));
    if want != Some(b.len()) {
        let want = want.map_or("more than usize::MAX".to_string(), |w| w.to_string());
        return Err(bad(format!("{} bytes, expected {want} for {n} images of {r}x{c}", b.len())));
    }
    Ok((n, r, c, b[16..].to_vec()))
}

/// Reads an IDX1 label file (magic 0x00000801).
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>> {
    let b = read_maybe_gz(path)?;
    let bad = |reason: String| Error::Format { path: path.to_path_buf(), reason };
    if b.len() < 8 {
        return Err(bad(format!("{} bytes is too short for an IDX label header", b.len())));
    }
    let magic = be_u32(&b, 0);
    if magic != 0x0000_0801 {
        return Err(bad(format!("magic number {magic:#010x}, expected 0x00000801 (IDX1 labels)")));
    }
    let n = be_u32(&b, 4) as usize;
    if b.len() as u64 != 8 + n as u64 {
        return Err(bad(format!("{} bytes, expected {} for {n} labels", b.len(), 8 + n)));
    }
    Ok(b[8..].to_vec())
}

fn find(dir: &Path, name: &str) -> Result<std::path::PathBuf> {
    let gz = dir.join(name);
    if gz.is_file() {
        return Ok(gz);
    }
    let plain = dir.join(name.trim_end_matches(".gz"));
    if plain.is_file() {
        return Ok(plain);
    }
    Err(Error::Format {
        path: gz,
        reason: "missing; run `cargo xtask download mnist` (or put the official IDX files there)"
            .into(),
    })
}

fn load_split(dir: &Path, images: &str, labels: &str) -> Result<RawImages> {
    let ipath = find(dir, images)?;
    let (n, r, c, pixels) = read_idx_images(&ipath)?;
    let lpath = find(dir, labels)?;
    let labels = read_idx_labels(&lpath)?;
    if labels.len() != n {
        return Err(Error::Format {
            path: lpath,
            reason: format!("{} labels for {n} images in {}", labels.len(), ipath.display()),
        });
    }
    Ok(RawImages { channels: 1, height: r, width: c, pixels, labels })
}

/// Loads the MNIST training and test sets from `dir` (`.gz` or uncompressed IDX files).
pub fn load(dir: &Path) -> Result<(RawImages, RawImages)> {
    Ok((load_split(dir, FILES[0].0, FILES[1].0)?, load_split(dir, FILES[2].0, FILES[3].0)?))
}

/// The one-class split for digit `class`, resized to `size` (32 is a multiple of 16 close to 28).
pub fn load_one_class(dir: &Path, class: u8, size: usize) -> Result<OneClassSet> {
    let (train, test) = load(dir)?;
    one_class(&train, &test, class, size)
}
