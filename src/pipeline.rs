//! The user-facing pipeline shared by the `daad` CLI and `cargo xtask`: [`train`] a run from
//! option values, [`test`] it on a category's test split (metrics.json, scores.csv, roc.png,
//! heatmaps), and [`predict`] single images of any size with the run's stored calibration.
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use daad::pipeline::{self, Scaling, ScoreKind, TestOptions, TrainOptions};
//! use daad::train::{NoProgress, Preset, Variant};
//!
//! let device = pipeline::default_device();
//! let opts = TrainOptions::new("data/synth", "cap", "runs/cap", Variant::Daad, Preset::Ci);
//! pipeline::train(&opts, &device, &mut NoProgress, &AtomicBool::new(false))?;
//! let test = TestOptions::new("runs/cap", "data/synth", "cap", "runs/cap/test");
//! let report = pipeline::test(&test, &device, &mut |_, _| {})?;
//! println!("{}", report.summary);
//! let preds = pipeline::predict("runs/cap".as_ref(), &["photo.png".into()], "out".as_ref(), None, &device)?;
//! println!("{:?}", preds[0].verdict);
//! # Ok::<(), daad::Error>(())
//! ```

use std::path::{Path, PathBuf};

use candle_core::Device;
use daad_train::{Run, CONFIG_FILE, MODEL_FILE, RUN_FORMAT_VERSION, STATE_FILE};

use crate::error::{Error, Result};

mod evaluate;
mod predict;
mod train;

pub use evaluate::{
    test, Scaling, ScoreKind, TestOptions, TestReport, DEFAULT_MAX_HEATMAPS, INFER_BATCH,
};
pub use predict::{predict, Prediction, Verdict};
pub use train::{train, train_spec, TrainOptions};

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

/// Opens a run folder for evaluation, with messages that say what to do for the usual
/// mistakes: a missing folder, missing files, a run written by an incompatible daad.
///
/// The format version is checked on the raw JSON before the full config is parsed, so a run
/// from a future daad (whose config may have other fields) still gets the version message.
pub fn load_run(dir: &Path, device: &Device) -> Result<Run> {
    if !dir.is_dir() {
        return Err(Error::MissingRun { path: dir.to_path_buf() });
    }
    for file in [CONFIG_FILE, STATE_FILE, MODEL_FILE] {
        if !dir.join(file).is_file() {
            return Err(Error::IncompleteRun { dir: dir.to_path_buf(), file });
        }
    }
    let cfg_path = dir.join(CONFIG_FILE);
    let text =
        std::fs::read_to_string(&cfg_path).map_err(|e| Error::io("reading", &cfg_path, e))?;
    // Malformed JSON is left to Run::load, whose message names the file and the parse error.
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) {
        let found = value.get("format_version");
        if found.and_then(|v| v.as_u64()) != Some(RUN_FORMAT_VERSION as u64) {
            return Err(Error::IncompatibleRun {
                path: cfg_path,
                found: found.map_or_else(|| "missing".to_string(), |v| v.to_string()),
                expected: RUN_FORMAT_VERSION,
            });
        }
    }
    Ok(Run::load(dir, device)?)
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

/// Raw per-image outputs of a model over a set of images.
pub(crate) struct RawOutputs {
    /// R(x) per image.
    pub r: Vec<f64>,
    /// L(x) per image (models with a discriminator).
    pub l: Option<Vec<f64>>,
    /// Unsmoothed per-pixel error maps at the model's size.
    pub maps: Vec<daad_eval::AnomalyMap>,
    /// Seconds spent in the model (transfers included).
    pub seconds: f64,
}

/// Runs `model` in evaluation mode over `images` (N, 3, S, S) on the CPU, `batch` images at a
/// time on `device`; `progress(done, total)` after each batch.
pub(crate) fn infer_all(
    model: &daad_model::DaadModel,
    images: &candle_core::Tensor,
    device: &Device,
    batch: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<RawOutputs> {
    let n = images.dim(0)?;
    let mut out = RawOutputs {
        r: Vec::with_capacity(n),
        l: model.has_discriminator().then(|| Vec::with_capacity(n)),
        maps: Vec::with_capacity(n),
        seconds: 0.0,
    };
    let to_f64 = |t: &candle_core::Tensor| -> Result<Vec<f64>> {
        Ok(t.to_dtype(candle_core::DType::F64)?.to_vec1::<f64>()?)
    };
    progress(0, n);
    let mut start = 0;
    while start < n {
        let len = batch.max(1).min(n - start);
        let t0 = std::time::Instant::now();
        let x = images.narrow(0, start, len)?.to_device(device)?;
        let o = model.infer(&x)?;
        out.r.extend(to_f64(&o.reconstruction_score)?);
        match (out.l.as_mut(), &o.alignment_score) {
            (Some(l), Some(a)) => l.extend(to_f64(a)?),
            (Some(_), None) => out.l = None,
            _ => {}
        }
        out.maps.extend(daad_eval::AnomalyMap::batch_from_tensor(
            &o.error_map.to_device(&Device::Cpu)?,
        )?);
        out.seconds += t0.elapsed().as_secs_f64();
        start += len;
        progress(start, n);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_run(dir: &Path, config: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(CONFIG_FILE), config).unwrap();
        std::fs::write(dir.join(STATE_FILE), "{}").unwrap();
        std::fs::write(dir.join(MODEL_FILE), b"").unwrap();
    }

    fn load_err(dir: &Path) -> Error {
        match load_run(dir, &Device::Cpu) {
            Ok(_) => panic!("{} loaded", dir.display()),
            Err(e) => e,
        }
    }

    #[test]
    fn missing_and_incomplete_runs_say_what_to_do() {
        let tmp = tempfile::tempdir().unwrap();
        let e = load_err(&tmp.path().join("nope"));
        assert!(matches!(e, Error::MissingRun { .. }));
        assert!(e.to_string().contains("daad train"), "{e}");
        let e = load_err(tmp.path());
        assert!(matches!(e, Error::IncompleteRun { file: CONFIG_FILE, .. }), "{e}");
    }

    #[test]
    fn incompatible_format_is_refused_before_parsing() {
        let tmp = tempfile::tempdir().unwrap();
        // A future config with unknown fields: the version message, not a parse error.
        fake_run(tmp.path(), r#"{"format_version": 999, "something_new": true}"#);
        let e = load_err(tmp.path());
        assert!(matches!(&e, Error::IncompatibleRun { found, .. } if found == "999"), "{e}");
        assert!(e.to_string().contains("config.json"), "{e}");
        fake_run(tmp.path(), r#"{"model": {}}"#);
        assert!(
            matches!(load_err(tmp.path()), Error::IncompatibleRun { found, .. } if found == "missing")
        );
        // Malformed JSON is daad-train's error, naming the file.
        fake_run(tmp.path(), "{not json");
        let e = load_err(tmp.path());
        assert!(matches!(e, Error::Train(_)) && e.to_string().contains("config.json"), "{e}");
    }
}
