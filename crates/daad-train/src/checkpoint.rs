//! Run folders: checkpoint files, their metadata checks, and [`Run::load`] for evaluation.
//!
//! A run folder holds `model.safetensors` (all variables, BatchNorm running stats included),
//! `optimizer.safetensors` (Adam moments of G and D), `config.json` ([`RunConfig`]), `state.json`
//! ([`TrainState`]) and `train_log.jsonl` (one [`EpochRecord`] per line). Every file is written to
//! a temporary sibling and renamed; `state.json` goes last, so it always describes complete files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::Device;
use daad_eval::Calibration;
use daad_model::io::{load_safetensors, save_safetensors, write_atomic};
use daad_model::{DaadModel, ModelConfig};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::io_err;
use crate::{EpochRecord, Error, Result, StepLosses, TrainConfig, Trainer};

/// Version of the run folder layout (config.json, state.json, optimizer.safetensors).
/// 2: config.json stores daad-eval's `Calibration` (scaling, kind, threshold).
pub const RUN_FORMAT_VERSION: u32 = 2;
/// The weights file of a run.
pub const MODEL_FILE: &str = "model.safetensors";
/// The optimiser state file of a run.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// The configuration file of a run.
pub const CONFIG_FILE: &str = "config.json";
/// The progress file of a run.
pub const STATE_FILE: &str = "state.json";
/// The per-epoch log of a run.
pub const LOG_FILE: &str = "train_log.jsonl";
const OPTIMIZER_FORMAT: &str = "daad-optimizer";

/// Which data a run was trained on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataInfo {
    /// Dataset root (MVTec layout).
    pub root: PathBuf,
    /// Category name.
    pub category: String,
    /// Images trained on.
    pub n_train: usize,
    /// Images held out for calibration.
    pub n_val: usize,
    /// File names (relative to the root) of the held-out images.
    pub val_images: Vec<String>,
}

/// config.json: everything needed to rebuild the model and its score scaling.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// [`RUN_FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// daad-train's crate version of the writer.
    pub crate_version: String,
    /// The model.
    pub model: ModelConfig,
    /// The training settings.
    pub train: TrainConfig,
    /// Score scaling and threshold from normal images (set when training finishes).
    pub calibration: Option<Calibration>,
    /// The data.
    pub data: DataInfo,
}

/// Running sums of the epoch in progress (so an interrupted epoch resumes with its averages).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochAccum {
    /// Steps summed.
    pub steps: usize,
    /// Sum of the step losses.
    pub sums: StepLosses,
    /// Images seen.
    pub images: usize,
    /// Seconds spent.
    pub seconds: f64,
}

impl EpochAccum {
    /// Adds one step.
    pub fn add(&mut self, l: &StepLosses, images: usize, seconds: f64) {
        self.steps += 1;
        self.sums.rec += l.rec;
        self.sums.adv += l.adv;
        self.sums.ali += l.ali;
        self.sums.disc += l.disc;
        self.sums.total += l.total;
        self.images += images;
        self.seconds += seconds;
    }

    /// Mean losses.
    pub fn mean(&self) -> StepLosses {
        let n = self.steps.max(1) as f64;
        let s = self.sums;
        StepLosses {
            rec: s.rec / n,
            adv: s.adv / n,
            ali: s.ali / n,
            disc: s.disc / n,
            total: s.total / n,
        }
    }
}

/// state.json: where training stands. The only randomness is a pure function of the seed (init,
/// validation split) and of (seed, epoch) (batch order and flips), so the seed is the RNG state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// [`RUN_FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// Complete epochs.
    pub epochs_done: usize,
    /// Batches done of epoch `epochs_done` (non-zero after an interrupt).
    pub batches_done: usize,
    /// Optimiser steps so far.
    pub global_step: usize,
    /// The run's seed (RNG state, see above).
    pub seed: u64,
    /// All epochs done and calibration written.
    pub finished: bool,
    /// Sums of the unfinished epoch.
    pub partial: EpochAccum,
    /// One record per finished epoch.
    pub history: Vec<EpochRecord>,
}

impl TrainState {
    /// The state of a run that has not started.
    pub fn new(seed: u64) -> Self {
        Self {
            format_version: RUN_FORMAT_VERSION,
            epochs_done: 0,
            batches_done: 0,
            global_step: 0,
            seed,
            finished: false,
            partial: EpochAccum::default(),
            history: Vec::new(),
        }
    }
}

/// Reads a JSON file; a missing or malformed file is an error naming it.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Run {
        path: path.to_path_buf(),
        problems: vec![format!("cannot read ({e}); is this a run folder written by `daad train`?")],
    })?;
    serde_json::from_str(&text).map_err(|e| Error::Run {
        path: path.to_path_buf(),
        problems: vec![format!("malformed or corrupt JSON: {e}")],
    })
}

/// Writes a JSON file atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("config types serialise");
    Ok(write_atomic(path, text.as_bytes())?)
}

fn check_version(path: &Path, version: u32) -> Result<()> {
    if version != RUN_FORMAT_VERSION {
        return Err(Error::Run {
            path: path.to_path_buf(),
            problems: vec![format!(
                "format version {version}, this build of daad reads version {RUN_FORMAT_VERSION}; retrain or use the daad that wrote it"
            )],
        });
    }
    Ok(())
}

/// Writes a complete checkpoint of `trainer` into `dir` (state.json last).
pub fn write_checkpoint(
    dir: &Path,
    trainer: &Trainer,
    config: &RunConfig,
    state: &TrainState,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    trainer.model().save(&dir.join(MODEL_FILE))?;
    let meta = HashMap::from([
        ("format".to_string(), OPTIMIZER_FORMAT.to_string()),
        ("format_version".to_string(), RUN_FORMAT_VERSION.to_string()),
        ("variant".to_string(), config.model.variant.name().to_string()),
    ]);
    save_safetensors(&dir.join(OPTIMIZER_FILE), &trainer.export_optimizer()?, meta)?;
    write_json(&dir.join(CONFIG_FILE), config)?;
    let mut log = String::new();
    for r in &state.history {
        log.push_str(&serde_json::to_string(r).expect("records serialise"));
        log.push('\n');
    }
    write_atomic(&dir.join(LOG_FILE), log.as_bytes())?;
    write_json(&dir.join(STATE_FILE), state)
}

/// Reads and checks config.json of a run folder. The format version is checked on the raw
/// JSON before the full parse, so a run from another daad (whose config has other fields) gets
/// the version message rather than a parse error.
pub fn read_config(dir: &Path) -> Result<RunConfig> {
    let path = dir.join(CONFIG_FILE);
    let value: serde_json::Value = read_json(&path)?;
    let found = value.get("format_version");
    if found.and_then(serde_json::Value::as_u64) != Some(RUN_FORMAT_VERSION as u64) {
        let found = found.map_or_else(|| "missing".to_string(), |v| v.to_string());
        return Err(Error::Run {
            path,
            problems: vec![format!(
                "incompatible run: format version {found}, this daad (v{}) reads format version {RUN_FORMAT_VERSION}; retrain with this version (`daad train` into a new folder) or use the daad that wrote it",
                env!("CARGO_PKG_VERSION")
            )],
        });
    }
    serde_json::from_value(value)
        .map_err(|e| Error::Run { path, problems: vec![format!("malformed or corrupt JSON: {e}")] })
}

/// Reads and checks state.json of a run folder.
pub fn read_state(dir: &Path) -> Result<TrainState> {
    let path = dir.join(STATE_FILE);
    let state: TrainState = read_json(&path)?;
    check_version(&path, state.format_version)?;
    Ok(state)
}

/// Rebuilds a trainer (model weights and optimiser moments) from a run folder.
pub fn load_trainer(dir: &Path, config: &RunConfig, device: &Device) -> Result<Trainer> {
    let mut model = DaadModel::new(&config.model, 0, device)?;
    model.load(&dir.join(MODEL_FILE))?;
    let mut trainer = Trainer::new(model, &config.train)?;
    let path = dir.join(OPTIMIZER_FILE);
    let (state, meta) = load_safetensors(&path, device)?;
    let mut problems = Vec::new();
    if meta.get("format").map(String::as_str) != Some(OPTIMIZER_FORMAT) {
        problems.push(format!("format is {:?}, expected {OPTIMIZER_FORMAT:?}", meta.get("format")));
    }
    if meta.get("variant").map(String::as_str) != Some(config.model.variant.name()) {
        problems.push(format!(
            "variant is {:?}, config.json says {}",
            meta.get("variant"),
            config.model.variant
        ));
    }
    if !problems.is_empty() {
        return Err(Error::Run { path, problems });
    }
    trainer.import_optimizer(&state).map_err(|e| Error::Run {
        path: path.clone(),
        problems: vec![format!("optimiser state does not fit the model: {e}")],
    })?;
    Ok(trainer)
}

/// A trained run, loaded for evaluation or prediction.
pub struct Run {
    /// The run folder.
    pub dir: PathBuf,
    /// The model (use it in evaluation mode: [`DaadModel::infer`]).
    pub model: DaadModel,
    /// config.json.
    pub config: RunConfig,
    /// state.json.
    pub state: TrainState,
}

impl Run {
    /// Loads a run folder: checks config.json's format version, rebuilds the model and loads
    /// model.safetensors (errors name the file and each mismatch).
    pub fn load(dir: &Path, device: &Device) -> Result<Run> {
        if !dir.is_dir() {
            return Err(Error::Run {
                path: dir.to_path_buf(),
                problems: vec!["does not exist or is not a folder: pass the --out folder of `daad train` (train one with `daad train --data ROOT --category NAME --out RUN`)".into()],
            });
        }
        for file in [CONFIG_FILE, STATE_FILE, MODEL_FILE] {
            if !dir.join(file).is_file() {
                return Err(Error::Run {
                    path: dir.to_path_buf(),
                    problems: vec![format!("has no {file}: it is not a complete `daad train` run (training stopped before its first checkpoint?)")],
                });
            }
        }
        let config = read_config(dir)?;
        let state = read_state(dir)?;
        let mut model = DaadModel::new(&config.model, 0, device)?;
        model.load(&dir.join(MODEL_FILE))?;
        Ok(Run { dir: dir.to_path_buf(), model, config, state })
    }

    /// The score scaling and threshold stored by training (None for an unfinished run).
    pub fn calibration(&self) -> Option<&Calibration> {
        self.config.calibration.as_ref()
    }
}
