//! [`predict`]: single images of any size, scored by a [`Detector`] with the run's stored calibration (a deployed
//! model sees one image at a time, so it cannot min-max over a test set), a verdict by the
//! stored (or given) threshold, and a heatmap at the image's original size.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use daad_data::mvtec;
use daad_eval::{verdict, AnomalyMap, HeatmapOptions, Verdict};
use daad_nn::Precision;
use daad_train::preflight::{preflight_score, Workload};
use image::{ImageBuffer, Luma};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::files::{safe_stem, OutputDir};
use crate::detector::Detector;
use crate::error::{Error, Result};

/// The result of [`predict`] for one image (one JSON line of `daad predict`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The image.
    pub path: PathBuf,
    /// Fused anomaly score with the run's stored scaling (0..1 spans the calibration images).
    pub score: f64,
    /// `anomalous` when `score >= threshold`, `unknown` without a threshold (daad-eval's
    /// [`Verdict`]).
    pub verdict: Verdict,
    /// The heatmap overlay PNG, at the image's original size.
    pub heatmap: PathBuf,
    /// The threshold the verdict used (None: the run stores none and none was given).
    pub threshold: Option<f64>,
    /// The smoothed anomaly map as a 16-bit greyscale PNG at the original size, scaled to the
    /// image's own min..max (for tools; the heatmap is for people).
    pub anomaly_map: PathBuf,
    /// Raw reconstruction score R(x).
    pub r: f64,
    /// Raw alignment score L(x) (variants with a discriminator).
    pub l: Option<f64>,
}

/// An image [`predict`] could not score (one JSON line of `daad predict`, in input order).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PredictFailure {
    /// The image.
    pub path: PathBuf,
    /// Why, with the OS or codec cause once.
    pub error: String,
}

/// The outcome of [`predict`] for one input image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PredictOutcome {
    /// Scored.
    Scored(Prediction),
    /// Not readable; the other images are still scored.
    Failed(PredictFailure),
}

/// One input image decoded for scoring (its original size and the preprocessed tensor), or why
/// it could not be read.
type LoadedImage = std::result::Result<((u32, u32), Tensor), String>;

/// The image files named by `inputs`: a file as it is, a folder's image files (PNG, JPEG) and
/// those of its subfolders one level down, sorted per folder. A missing input is an error; a
/// folder without images is one too (nothing would be scored).
pub fn expand_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let list = |dir: &Path| -> Result<Vec<PathBuf>> {
        let rd = std::fs::read_dir(dir).map_err(|e| Error::io("reading folder", dir, e))?;
        let mut v = Vec::new();
        for entry in rd {
            v.push(entry.map_err(|e| Error::io("reading folder", dir, e))?.path());
        }
        v.sort();
        Ok(v)
    };
    let mut out = Vec::new();
    for input in inputs {
        if !input.is_dir() {
            // Files (and missing paths, reported per image) pass through.
            out.push(input.clone());
            continue;
        }
        let before = out.len();
        let mut subdirs = Vec::new();
        for p in list(input)? {
            if p.is_dir() {
                subdirs.push(p);
            } else if mvtec::is_image_file(&p) {
                out.push(p);
            }
        }
        for d in subdirs {
            out.extend(list(&d)?.into_iter().filter(|p| p.is_file() && mvtec::is_image_file(p)));
        }
        if out.len() == before {
            return Err(Error::option(
                "IMAGE",
                format!(
                    "folder {} holds no PNG or JPEG images (daad looks one level into subfolders)",
                    input.display()
                ),
            ));
        }
    }
    Ok(out)
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

/// Scores `images` (files or folders, see [`expand_inputs`]; any size, resized to the run's)
/// with the run in `run`, writes a heatmap overlay and an anomaly-map PNG per image into `out`,
/// and judges each by `threshold` or, when `None`, the run's stored threshold (none stored:
/// verdict `unknown`). An image that cannot be read is a [`PredictOutcome::Failed`] in its place;
/// the others are still scored. Before any scoring: `out` must be writable and the images must
/// fit in memory; `out` is created only when there is something to write into it, and removed
/// again (when this call created it) if an error stops the call.
pub fn predict(
    run: &Path,
    images: &[PathBuf],
    out: &Path,
    threshold: Option<f64>,
    device: &Device,
) -> Result<Vec<PredictOutcome>> {
    predict_with_precision(run, images, out, threshold, Precision::F32, device)
}

/// [`predict`] with the model's matrix products at `precision` (bf16: CPU only).
pub fn predict_with_precision(
    run: &Path,
    images: &[PathBuf],
    out: &Path,
    threshold: Option<f64>,
    precision: Precision,
    device: &Device,
) -> Result<Vec<PredictOutcome>> {
    if let Some(t) = threshold.filter(|t| !t.is_finite()) {
        return Err(Error::option("--threshold", format!("{t} is not a finite number")));
    }
    let images = expand_inputs(images)?;
    if images.is_empty() {
        return Err(Error::option("IMAGE", "no image given: pass one or more image paths"));
    }
    let detector = Detector::open(run, device)?.with_precision(precision)?;
    let cal = detector.require_calibration()?;
    let threshold = threshold.or(cal.threshold);
    preflight_score(out, &detector.config().model, images.len(), device, Workload::Predict)?;
    // From here on an error removes `out` again (when this call created it).
    let out_dir = OutputDir::claim(out);
    let pre = detector.preprocess();
    // Each image on its own: one unreadable file does not fail the rest.
    let loaded: Vec<LoadedImage> = images
        .par_iter()
        .map(|p| {
            let size = mvtec::image_size(p).map_err(|e| e.to_string())?;
            let x = pre.load_image(p).map_err(|e| e.to_string())?;
            Ok((size, x))
        })
        .collect();
    let ok: Vec<&Tensor> = loaded.iter().filter_map(|r| r.as_ref().ok().map(|(_, x)| x)).collect();
    let mut scored =
        if ok.is_empty() { Vec::new() } else { detector.score(&Tensor::stack(&ok, 0)?, false)? }
            .into_iter();
    if !ok.is_empty() {
        out_dir.create()?;
    }
    let stems = unique_stems(&images);
    let mut outcomes = Vec::with_capacity(images.len());
    for (i, (path, l)) in images.iter().zip(loaded).enumerate() {
        let (w, h) = match l {
            Ok((size, _)) => size,
            Err(error) => {
                outcomes.push(PredictOutcome::Failed(PredictFailure { path: path.clone(), error }));
                continue;
            }
        };
        let s = scored.next().expect("one score per loaded image");
        let verdict = verdict(s.score, threshold);
        // Smoothed at the model's resolution (sigma scales with it), then upsampled.
        let map = s.map.resize_bilinear(w as usize, h as usize);
        let heatmap = out.join(format!("{}_heatmap.png", stems[i]));
        daad_eval::write_heatmap(path, &map, &HeatmapOptions::default(), None, &heatmap)?;
        let anomaly_map = out.join(format!("{}_map.png", stems[i]));
        write_map_png(&map, &anomaly_map)?;
        outcomes.push(PredictOutcome::Scored(Prediction {
            path: path.clone(),
            score: s.score,
            verdict,
            heatmap,
            threshold,
            anomaly_map,
            r: s.r,
            l: s.l,
        }));
    }
    out_dir.keep();
    Ok(outcomes)
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

    #[test]
    fn folders_expand_one_level_into_images() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("sub/deeper")).unwrap();
        for f in ["b.png", "a.JPG", "notes.txt", ".hidden.png", "sub/c.png", "sub/deeper/d.png"] {
            std::fs::write(d.join(f), b"x").unwrap();
        }
        let got = expand_inputs(&[d.to_path_buf(), d.join("single.png")]).unwrap();
        let want: Vec<PathBuf> =
            ["a.JPG", "b.png", "sub/c.png", "single.png"].iter().map(|f| d.join(f)).collect();
        assert_eq!(got, want);
        assert!(expand_inputs(&[d.join("sub/deeper/..").join("deeper")]).is_ok());
        std::fs::create_dir(d.join("empty")).unwrap();
        let e = expand_inputs(&[d.join("empty")]).unwrap_err().to_string();
        assert!(e.contains("no PNG or JPEG"), "{e}");
    }
}
