//! [`predict`]: single images of any size, scored by a [`Detector`] with the run's stored calibration (a deployed
//! model sees one image at a time, so it cannot min-max over a test set), a verdict by the
//! stored (or given) threshold, and a heatmap at the image's original size.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use candle_core::Device;
use daad_data::mvtec;
use daad_eval::{verdict, AnomalyMap, HeatmapOptions, Verdict};
use image::{ImageBuffer, Luma};
use serde::{Deserialize, Serialize};

use super::files::{create_dir, safe_stem};
use crate::detector::Detector;
use crate::error::{Error, Result};

/// The result of [`predict`] for one image (one JSON line of `daad predict`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The image.
    pub path: PathBuf,
    /// Fused anomaly score with the run's stored scaling (0..1 spans the held-out normal images).
    pub score: f64,
    /// `anomalous` when `score >= threshold` (daad-eval's [`Verdict`]).
    pub verdict: Verdict,
    /// The heatmap overlay PNG, at the image's original size.
    pub heatmap: PathBuf,
    /// The threshold the verdict used.
    pub threshold: f64,
    /// The smoothed anomaly map as a 16-bit greyscale PNG at the original size, scaled to the
    /// image's own min..max (for tools; the heatmap is for people).
    pub anomaly_map: PathBuf,
    /// Raw reconstruction score R(x).
    pub r: f64,
    /// Raw alignment score L(x) (variants with a discriminator).
    pub l: Option<f64>,
}

/// A unique file stem per image, so two `img.png` from different folders do not overwrite each
/// other's outputs.
fn unique_stems(images: &[PathBuf]) -> Vec<String> {
    let mut used = HashSet::new();
    images
        .iter()
        .map(|p| {
            let base = safe_stem(p);
            let mut stem = base.clone();
            let mut k = 2;
            while !used.insert(stem.clone()) {
                stem = format!("{base}_{k}");
                k += 1;
            }
            stem
        })
        .collect()
}

/// Writes `map` as a 16-bit greyscale PNG scaled to its own range.
fn write_map_png(map: &AnomalyMap, path: &Path) -> Result<()> {
    let (lo, hi) = map.range()?;
    let span = if hi > lo { hi - lo } else { 1.0 };
    let data: Vec<u16> = map
        .data
        .iter()
        .map(|&v| (((v - lo) / span).clamp(0.0, 1.0) * 65535.0).round() as u16)
        .collect();
    let img: ImageBuffer<Luma<u16>, Vec<u16>> =
        ImageBuffer::from_raw(map.width as u32, map.height as u32, data)
            .expect("map data has width * height values");
    img.save_with_format(path, image::ImageFormat::Png)
        .map_err(|source| Error::Image { path: path.to_path_buf(), source })
}

/// Scores `images` (any size; resized to the run's) with the run in `run`, writes a heatmap
/// overlay and an anomaly-map PNG per image into `out`, and judges each by `threshold` or, when
/// `None`, the run's stored threshold.
pub fn predict(
    run: &Path,
    images: &[PathBuf],
    out: &Path,
    threshold: Option<f64>,
    device: &Device,
) -> Result<Vec<Prediction>> {
    if let Some(t) = threshold.filter(|t| !t.is_finite()) {
        return Err(Error::option("--threshold", format!("{t} is not a finite number")));
    }
    if images.is_empty() {
        return Err(Error::option("IMAGE", "no image given: pass one or more image paths"));
    }
    let detector = Detector::open(run, device)?;
    let cal = detector.require_calibration()?;
    let threshold = threshold
        .or(cal.threshold)
        .ok_or_else(|| Error::NoThreshold { path: detector.path().to_path_buf() })?;
    // Header first: a missing or corrupt file fails before any work, with its path.
    let sizes: Vec<(u32, u32)> =
        images.iter().map(|p| mvtec::image_size(p)).collect::<daad_data::Result<_>>()?;
    let scored = detector.score_paths(images, false)?;
    create_dir(out)?;
    let stems = unique_stems(images);
    let mut preds = Vec::with_capacity(images.len());
    for (i, (path, s)) in images.iter().zip(scored).enumerate() {
        let (score, r, l) = (s.score, s.r, s.l);
        let verdict = verdict(score, Some(threshold));
        let (w, h) = sizes[i];
        // Smoothed at the model's resolution (sigma scales with it), then upsampled.
        let map = s.map.resize_bilinear(w as usize, h as usize);
        let heatmap = out.join(format!("{}_heatmap.png", stems[i]));
        daad_eval::write_heatmap(path, &map, &HeatmapOptions::default(), None, &heatmap)?;
        let anomaly_map = out.join(format!("{}_map.png", stems[i]));
        write_map_png(&map, &anomaly_map)?;
        preds.push(Prediction {
            path: path.clone(),
            score,
            verdict,
            heatmap,
            threshold,
            anomaly_map,
            r,
            l,
        });
    }
    Ok(preds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_are_unique_and_safe() {
        let s = unique_stems(&[
            "a/img.png".into(),
            "b/img.png".into(),
            "c/my img.jpg".into(),
            "img.png".into(),
        ]);
        assert_eq!(s, vec!["img", "img_2", "my_img", "img_3"]);
    }

    #[test]
    fn map_png_is_16_bit_and_scaled() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.png");
        write_map_png(&AnomalyMap::new(2, 1, vec![1.0, 3.0]).unwrap(), &p).unwrap();
        let img = image::open(&p).unwrap().into_luma16();
        assert_eq!(img.as_raw(), &vec![0u16, 65535]);
    }
}
