//! [`Detector`]: a trained run opened for scoring. `daad test`, `daad predict` (and the server
//! and export) all score through it, so the same image gets the same score everywhere: one run
//! loader ([`daad_train::Run::load`]), one inference path ([`daad_eval::infer`]) and one
//! calibration ([`daad_eval::Calibration`]).

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use daad_data::Preprocess;
use daad_eval::{
    infer, AnomalyMap, AnomalyMapConfig, Calibration, InferOptions, RawOutputs, Verdict,
};
use daad_nn::Precision;
use daad_train::{Run, RunConfig};

use crate::error::{Error, Result};

/// Images per forward pass when scoring **(choice)**: large enough to keep the device busy,
/// small enough for 256 px DAAD+ on a few GB.
pub const INFER_BATCH: usize = 16;

/// One image scored by a [`Detector`].
#[derive(Clone, Debug)]
pub struct Scored {
    /// Raw reconstruction score R(x).
    pub r: f64,
    /// Raw alignment score L(x) (variants with a discriminator).
    pub l: Option<f64>,
    /// The calibrated score ([`Calibration::score`]).
    pub score: f64,
    /// The verdict by the calibration's threshold ([`Calibration::verdict`]).
    pub verdict: Verdict,
    /// The smoothed anomaly map at the model's size.
    pub map: AnomalyMap,
    /// The reconstruction (3, S, S) in [-1, 1] on the CPU, when asked for.
    pub reconstruction: Option<Tensor>,
}

/// A trained run opened for scoring on a device.
pub struct Detector {
    run: Run,
    device: Device,
}

impl Detector {
    /// Opens the run folder `run` (validated by [`Run::load`]) with its model on `device`.
    pub fn open(run: &Path, device: &Device) -> Result<Detector> {
        Ok(Detector { run: Run::load(run, device)?, device: device.clone() })
    }

    /// The detector with its model's matrix products at `precision` (bf16: inference only, CPU
    /// only; see [`daad_model::DaadModel::set_precision`]).
    pub fn with_precision(mut self, precision: Precision) -> Result<Detector> {
        self.run.model.set_precision(precision)?;
        Ok(self)
    }

    /// The precision of the model's matrix products.
    pub fn precision(&self) -> Precision {
        self.run.model.precision()
    }

    /// The run folder.
    pub fn path(&self) -> &Path {
        &self.run.dir
    }

    /// The side in pixels the model takes.
    pub fn image_size(&self) -> usize {
        self.run.config.model.image_size
    }

    /// The run's config.json.
    pub fn config(&self) -> &RunConfig {
        &self.run.config
    }

    /// The loaded run (model, config, state).
    pub fn run(&self) -> &Run {
        &self.run
    }

    /// The device the model runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The calibration stored by training (None for an unfinished run).
    pub fn calibration(&self) -> Option<&Calibration> {
        self.run.calibration()
    }

    /// The stored calibration, or [`Error::NoCalibration`].
    pub fn require_calibration(&self) -> Result<&Calibration> {
        self.calibration().ok_or_else(|| Error::NoCalibration { path: self.run.dir.clone() })
    }

    /// The preprocessing that turns image files into the model's input.
    pub fn preprocess(&self) -> Preprocess {
        Preprocess::new(self.image_size())
    }

    /// Raw outputs over preprocessed `images` (N, 3, S, S) in [-1, 1], through
    /// [`daad_eval::infer`] in batches of [`INFER_BATCH`].
    pub fn raw(
        &self,
        images: &Tensor,
        opts: InferOptions,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<RawOutputs> {
        Ok(infer(&self.run.model, images, INFER_BATCH, &self.device, opts, progress)?)
    }

    /// Scores preprocessed `images` (N, 3, S, S) in [-1, 1] with the stored calibration.
    pub fn score(&self, images: &Tensor, want_reconstruction: bool) -> Result<Vec<Scored>> {
        let cal = self.require_calibration()?;
        let raw = self.raw(
            images,
            InferOptions { reconstructions: want_reconstruction },
            &mut |_, _| {},
        )?;
        scored(cal, raw)
    }

    /// Reads, resizes and scores image files (any size).
    pub fn score_paths(&self, paths: &[PathBuf], want_reconstruction: bool) -> Result<Vec<Scored>> {
        let x = self.preprocess().load_images(paths, None)?;
        self.score(&x, want_reconstruction)
    }
}

/// Applies `cal` to raw outputs, one [`Scored`] per image.
fn scored(cal: &Calibration, raw: RawOutputs) -> Result<Vec<Scored>> {
    let map_cfg = AnomalyMapConfig::default();
    let mut out = Vec::with_capacity(raw.r.len());
    for (i, (&r, map)) in raw.r.iter().zip(&raw.maps).enumerate() {
        let l = raw.l.as_ref().map(|l| l[i]);
        let score = cal.score(r, l)?;
        let reconstruction = match &raw.reconstructions {
            Some(t) => Some(t.get(i)?),
            None => None,
        };
        out.push(Scored {
            r,
            l,
            score,
            verdict: cal.verdict(score),
            map: map.postprocess(&map_cfg, None),
            reconstruction,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use daad_train::{CONFIG_FILE, MODEL_FILE, STATE_FILE};

    fn fake_run(dir: &Path, config: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(CONFIG_FILE), config).unwrap();
        std::fs::write(dir.join(STATE_FILE), "{}").unwrap();
        std::fs::write(dir.join(MODEL_FILE), b"").unwrap();
    }

    fn open_err(dir: &Path) -> String {
        match Detector::open(dir, &Device::Cpu) {
            Ok(_) => panic!("{} opened", dir.display()),
            Err(e) => {
                assert!(matches!(e, Error::Train(_)), "{e}");
                e.to_string()
            }
        }
    }

    // Moved from the facade's load_run (now folded into daad_train::RunDir::open).
    #[test]
    fn missing_and_incomplete_runs_say_what_to_do() {
        let tmp = tempfile::tempdir().unwrap();
        let e = open_err(&tmp.path().join("nope"));
        assert!(e.contains("daad train") && e.contains("no such run folder"), "{e}");
        let e = open_err(tmp.path());
        assert!(e.contains("no complete daad run") && e.contains("new --out"), "{e}");
        assert!(!e.contains("--resume"), "must not advise a command that replaces a model: {e}");
    }

    #[test]
    fn incompatible_format_is_refused_before_parsing() {
        let tmp = tempfile::tempdir().unwrap();
        // A future config with unknown fields: the version message, not a parse error.
        fake_run(tmp.path(), r#"{"format_version": 999, "something_new": true}"#);
        let e = open_err(tmp.path());
        assert!(e.contains("format version 999"), "{e}");
        assert!(e.contains("config.json"), "{e}");
        fake_run(tmp.path(), r#"{"model": {}}"#);
        let e = open_err(tmp.path());
        assert!(e.contains("format version missing"), "{e}");
        // The previous format (daad-model's calibration) gets the same clear message.
        fake_run(tmp.path(), r#"{"format_version": 1, "calibration": {"r_min": 0.0}}"#);
        assert!(open_err(tmp.path()).contains("format version 1"));
        // Malformed JSON is daad-train's error, naming the file.
        fake_run(tmp.path(), "{not json");
        let e = open_err(tmp.path());
        assert!(e.contains("config.json") && e.contains("malformed"), "{e}");
    }
}
