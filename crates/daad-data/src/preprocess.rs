//! Decoding and resizing images and masks into candle tensors, with an optional on-disk cache.
//!
//! Images: PNG/JPEG, grey/RGB/RGBA, 8 or 16 bit -> RGB (grey is copied to 3 channels, alpha is
//! dropped) -> resized to `size x size` with a triangle (bilinear, area-aware when shrinking)
//! filter **(choice)** -> CHW f32 in [-1, 1]. Masks: nearest-neighbour resize, then `>= 128` -> 1.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::UNIX_EPOCH;

use candle_core::{Device, Tensor};
use image::imageops::FilterType;
use image::{DynamicImage, ImageBuffer, Luma, Rgb};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::mvtec::Sample;

/// Bumped whenever the preprocessing result for the same input changes, so old cache entries die.
const CACHE_VERSION: &str = "daad-pre-v1";

/// The resize filter used for images (masks always use nearest neighbour).
pub const IMAGE_FILTER: FilterType = FilterType::Triangle;

/// Turns image files into `(3, size, size)` f32 tensors in [-1, 1] and masks into {0, 1}.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preprocess {
    /// Output side length in pixels (images are resized to `size x size`).
    pub size: usize,
}

impl Default for Preprocess {
    fn default() -> Self {
        Preprocess { size: 256 }
    }
}

/// A decoded, resized image before scaling to [-1, 1]: 8-bit sources stay 8-bit (the cache is
/// then 4x smaller and exact), deeper ones are kept as f32 in [0, 1].
enum Resized {
    U8(Vec<u8>),
    F32(Vec<f32>),
}

impl Resized {
    /// CHW f32 in [-1, 1] from HWC pixels.
    fn to_chw(&self, s: usize) -> Vec<f32> {
        let n = s * s;
        let mut out = vec![0f32; 3 * n];
        match self {
            Resized::U8(px) => {
                for (i, p) in px.chunks_exact(3).enumerate() {
                    for c in 0..3 {
                        out[c * n + i] = p[c] as f32 / 127.5 - 1.0;
                    }
                }
            }
            Resized::F32(px) => {
                for (i, p) in px.chunks_exact(3).enumerate() {
                    for c in 0..3 {
                        out[c * n + i] = p[c] * 2.0 - 1.0;
                    }
                }
            }
        }
        out
    }
}

/// The most memory one image may take while decoding (the `image` crate's default limit, made
/// explicit so that the refusal can name it): larger images are refused with
/// [`Error::ImageTooLarge`], never reported as corrupt.
pub const MAX_DECODE_BYTES: u64 = 512 * 1024 * 1024;

fn reader(path: &Path) -> Result<image::ImageReader<std::io::BufReader<std::fs::File>>> {
    let mut reader = image::ImageReader::open(path)
        .map_err(|e| Error::io("opening image", path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io("reading image", path, e))?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    Ok(reader)
}

/// Decodes an image, telling a size-limit refusal apart from a corrupt file.
pub(crate) fn open_image(path: &Path) -> Result<DynamicImage> {
    match reader(path)?.decode() {
        Ok(img) => Ok(img),
        Err(image::ImageError::Limits(_)) => Err(too_large(path)),
        Err(source) => Err(Error::Decode { path: path.to_path_buf(), source }),
    }
}

/// The [`Error::ImageTooLarge`] for `path`, with the sizes read from its header.
fn too_large(path: &Path) -> Error {
    use image::ImageDecoder;
    let mib = |b: u64| b.div_ceil(1024 * 1024);
    let header = reader(path).ok().and_then(|r| {
        let mut r = r;
        r.no_limits();
        let d = r.into_decoder().ok()?;
        let (w, h) = d.dimensions();
        Some((w, h, d.total_bytes()))
    });
    let (width, height, need) = header.unwrap_or((0, 0, 0));
    Error::ImageTooLarge {
        path: path.to_path_buf(),
        width,
        height,
        need_mib: mib(need),
        limit_mib: mib(MAX_DECODE_BYTES),
    }
}

impl Preprocess {
    /// A preprocessor for `size x size` outputs.
    pub fn new(size: usize) -> Self {
        Preprocess { size }
    }

    fn check_size(&self) -> Result<u32> {
        if self.size == 0 || self.size > 16384 {
            return Err(Error::InvalidArgument(format!(
                "image size {} is out of range; use a size between 1 and 16384 (256 is the paper's)",
                self.size
            )));
        }
        Ok(self.size as u32)
    }

    fn decode_resize(&self, path: &Path) -> Result<Resized> {
        self.resize(open_image(path)?)
    }

    /// The resize step shared by files and in-memory images (8-bit images stay 8-bit so a PNG
    /// and its decoded pixels give the same values).
    fn resize(&self, img: DynamicImage) -> Result<Resized> {
        let s = self.check_size()?;
        let eight_bit = matches!(
            img,
            DynamicImage::ImageLuma8(_)
                | DynamicImage::ImageLumaA8(_)
                | DynamicImage::ImageRgb8(_)
                | DynamicImage::ImageRgba8(_)
        );
        if eight_bit {
            let rgb = img.into_rgb8();
            let rgb = if rgb.dimensions() == (s, s) {
                rgb
            } else {
                image::imageops::resize(&rgb, s, s, IMAGE_FILTER)
            };
            Ok(Resized::U8(rgb.into_raw()))
        } else {
            let rgb = img.into_rgb32f();
            let rgb: ImageBuffer<Rgb<f32>, Vec<f32>> = if rgb.dimensions() == (s, s) {
                rgb
            } else {
                image::imageops::resize(&rgb, s, s, IMAGE_FILTER)
            };
            Ok(Resized::F32(rgb.into_raw()))
        }
    }

    /// Decodes one image into CHW f32 values in [-1, 1] (length `3 * size * size`).
    pub fn load_chw(&self, path: &Path) -> Result<Vec<f32>> {
        Ok(self.decode_resize(path)?.to_chw(self.size))
    }

    /// Preprocesses already decoded images (e.g. an HTTP upload) exactly as [`Self::load_images`]
    /// does files: an `(N, 3, size, size)` f32 tensor in [-1, 1] on the CPU.
    pub fn images_to_tensor(&self, images: &[DynamicImage]) -> Result<Tensor> {
        let s = self.size;
        let mut data = Vec::with_capacity(images.len() * 3 * s * s);
        for img in images {
            data.extend_from_slice(&self.resize(img.clone())?.to_chw(s));
        }
        Ok(Tensor::from_vec(data, (images.len(), 3, s, s), &Device::Cpu)?)
    }

    /// Decodes one image into a `(3, size, size)` f32 tensor in [-1, 1] on the CPU.
    pub fn load_image(&self, path: &Path) -> Result<Tensor> {
        let s = self.size;
        Ok(Tensor::from_vec(self.load_chw(path)?, (3, s, s), &Device::Cpu)?)
    }

    /// Decodes many images in parallel into an `(N, 3, size, size)` f32 tensor in [-1, 1] on the CPU.
    ///
    /// With `cache = Some(dir)`, each preprocessed image is stored in `dir` as safetensors, keyed by
    /// the file's path, modification time, length and the output size: a changed file or size
    /// misses the cache and is decoded again. Unreadable cache entries are rebuilt. A cache folder
    /// that cannot be created or written (read-only, full, a file in the way) is skipped with one
    /// warning: the cache only saves time, so it never fails the load.
    pub fn load_images(&self, paths: &[PathBuf], cache: Option<&Path>) -> Result<Tensor> {
        let s = self.size;
        self.check_size()?;
        let cache = cache.and_then(|dir| match std::fs::create_dir_all(dir) {
            Ok(()) => Some(dir),
            Err(e) => {
                tracing::warn!(cache = %dir.display(), error = %e, "cannot create the cache folder; loading without cache");
                None
            }
        });
        let write_failed = AtomicBool::new(false);
        let per_image: Vec<Vec<f32>> = paths
            .par_iter()
            .map(|p| match cache {
                Some(dir) => self.load_cached(p, dir, &write_failed),
                None => self.load_chw(p),
            })
            .collect::<Result<_>>()?;
        let mut data = Vec::with_capacity(paths.len() * 3 * s * s);
        for v in per_image {
            data.extend_from_slice(&v);
        }
        Ok(Tensor::from_vec(data, (paths.len(), 3, s, s), &Device::Cpu)?)
    }

    /// The cache file for `path` at this size (depends on path, mtime, length, size, version).
    pub fn cache_entry(&self, path: &Path, cache_dir: &Path) -> Result<PathBuf> {
        let meta =
            std::fs::metadata(path).map_err(|e| Error::io("reading metadata of", path, e))?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let mut h = Sha256::new();
        h.update(CACHE_VERSION.as_bytes());
        // Raw bytes: distinct non-UTF-8 names must not share an entry (lossy text would merge them).
        h.update(abs.as_os_str().as_encoded_bytes());
        h.update(mtime.to_le_bytes());
        h.update(meta.len().to_le_bytes());
        h.update((self.size as u64).to_le_bytes());
        let key = hex::encode(&h.finalize()[..16]);
        Ok(cache_dir.join(format!("{key}.safetensors")))
    }

    /// Reads `path` through the cache; after the first failed cache write (`write_failed`, which
    /// warns once) it stops writing entries and just decodes.
    fn load_cached(
        &self,
        path: &Path,
        cache_dir: &Path,
        write_failed: &AtomicBool,
    ) -> Result<Vec<f32>> {
        let entry = self.cache_entry(path, cache_dir)?;
        if let Ok(bytes) = std::fs::read(&entry) {
            match self.read_entry(&bytes) {
                Some(r) => return Ok(r.to_chw(self.size)),
                None => {
                    tracing::warn!(entry = %entry.display(), "unreadable cache entry, rebuilding")
                }
            }
        }
        let resized = self.decode_resize(path)?;
        if !write_failed.load(Ordering::Relaxed) {
            if let Err(e) = self.write_entry(&entry, &resized, path) {
                if !write_failed.swap(true, Ordering::Relaxed) {
                    tracing::warn!(cache = %cache_dir.display(), error = %e.full_message(), "cannot write to the cache folder; continuing without cache");
                }
            }
        }
        Ok(resized.to_chw(self.size))
    }

    fn read_entry(&self, bytes: &[u8]) -> Option<Resized> {
        let st = safetensors::SafeTensors::deserialize(bytes).ok()?;
        let t = st.tensor("hwc").ok()?;
        if t.shape() != [self.size, self.size, 3] {
            return None;
        }
        match t.dtype() {
            safetensors::Dtype::U8 => Some(Resized::U8(t.data().to_vec())),
            safetensors::Dtype::F32 => Some(Resized::F32(
                t.data()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            )),
            _ => None,
        }
    }

    fn write_entry(&self, entry: &Path, r: &Resized, source: &Path) -> Result<()> {
        let shape = vec![self.size, self.size, 3];
        let f32_bytes;
        let (dtype, data): (safetensors::Dtype, &[u8]) = match r {
            Resized::U8(v) => (safetensors::Dtype::U8, v),
            Resized::F32(v) => {
                f32_bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
                (safetensors::Dtype::F32, &f32_bytes)
            }
        };
        let fmt = |e: safetensors::SafeTensorError| Error::Format {
            path: entry.to_path_buf(),
            reason: e.to_string(),
        };
        let view = safetensors::tensor::TensorView::new(dtype, shape, data).map_err(fmt)?;
        let meta =
            std::collections::HashMap::from([("source".to_string(), source.display().to_string())]);
        let bytes = safetensors::serialize([("hwc", view)], Some(meta)).map_err(fmt)?;
        // Atomic, so a concurrent reader never sees half a file.
        crate::io::write_atomic(entry, &bytes)
            .map_err(|e| Error::io("writing cache entry", entry, e))?;
        Ok(())
    }

    /// Decodes one mask into `size * size` values in {0, 1} (nearest-neighbour resize, `>= 128` is 1).
    pub fn load_mask(&self, path: &Path) -> Result<Vec<f32>> {
        let s = self.check_size()?;
        let grey = open_image(path)?.into_luma8();
        let grey: ImageBuffer<Luma<u8>, Vec<u8>> = if grey.dimensions() == (s, s) {
            grey
        } else {
            image::imageops::resize(&grey, s, s, FilterType::Nearest)
        };
        Ok(grey.into_raw().into_iter().map(|v| if v >= 128 { 1.0 } else { 0.0 }).collect())
    }

    /// Masks of `samples` as an `(N, 1, size, size)` f32 tensor in {0, 1}; zeros where a sample
    /// has no mask (normal images, or defects without ground truth).
    pub fn load_masks(&self, samples: &[Sample]) -> Result<Tensor> {
        let s = self.size;
        self.check_size()?;
        let per: Vec<Vec<f32>> = samples
            .par_iter()
            .map(|sm| match &sm.mask {
                Some(m) => self.load_mask(m),
                None => Ok(vec![0.0; s * s]),
            })
            .collect::<Result<_>>()?;
        let data: Vec<f32> = per.into_iter().flatten().collect();
        Ok(Tensor::from_vec(data, (samples.len(), 1, s, s), &Device::Cpu)?)
    }
}
