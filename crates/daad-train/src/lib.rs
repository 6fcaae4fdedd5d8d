//! daad-train: losses, optimisers, the training loop, checkpoints and resume for daad models.
//!
//! L = 50 L_rec + 0.5 L_adv + 0.5 L_ali (paper section 3.2) with daad-nn's Adam (lr 1e-4, or 2e-4
//! with the adversarial losses; betas 0.9/0.999). Each step updates the generator, then the
//! discriminator on the detached reconstruction. [`train`] runs a whole run folder with
//! checkpoints, `--resume` and calibration (daad-eval's [`Calibration`]) on held-out normal images; [`Run::load`] reopens one.
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use daad_model::Variant;
//! use daad_train::{preset_configs, train, NoProgress, Preset, TrainSpec};
//! let (model, train_cfg) = preset_configs(Preset::Ci, Variant::Daad);
//! let spec = TrainSpec {
//!     data_root: "data/synth".into(), category: "squares".into(), out: "runs/demo".into(),
//!     model, train: train_cfg, resume: false, cache_dir: None,
//! };
//! let report = train(&spec, &candle_core::Device::Cpu, &mut NoProgress, &AtomicBool::new(false))?;
//! println!("{} epochs, threshold {:?}", report.epochs_done, report.calibration.and_then(|c| c.threshold));
//! # Ok::<(), daad_train::Error>(())
//! ```
#![warn(missing_docs)]

mod checkpoint;
mod config;
mod error;
pub mod loss;
mod progress;
mod run;
mod trainer;

pub use checkpoint::{
    load_trainer, read_config, read_json, read_state, write_checkpoint, write_json, DataInfo,
    EpochAccum, Run, RunConfig, TrainState, CONFIG_FILE, LOG_FILE, MODEL_FILE, OPTIMIZER_FILE,
    RUN_FORMAT_VERSION, STATE_FILE,
};
pub use config::{preset_configs, Preset, TrainConfig};
pub use daad_eval::{Calibration, CalibrationSource};
pub use daad_model::{DaadModel, ModelConfig, Variant};
pub use error::{Error, Result};
pub use progress::{EpochRecord, NoProgress, Progress, StartInfo, StepInfo};
pub use run::{split_validation, train, TrainReport, TrainSpec};
pub use trainer::{NonFinite, StepLosses, Trainer};
