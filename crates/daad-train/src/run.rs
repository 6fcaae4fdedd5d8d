//! The training entry point: data, validation split, the epoch loop, checkpoints, calibration.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::{Device, Tensor};
use daad_data::{Batcher, Preprocess};
use daad_eval::{infer, Calibration, CalibrationSource, InferOptions, MIN_HOLDOUT_IMAGES};
use daad_model::{DaadModel, ModelConfig};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::checkpoint::{is_injected, Checkpointer, DataInfo, RunConfig, TrainState, DEFAULT_KEEP};
use crate::preflight::{check_writable, preflight_train};
use crate::progress::{EpochRecord, Progress, StartInfo, StepInfo};
use crate::run_dir::{resume_configs, Explicit, Prepared, RunDir, WriteMode};
use crate::{Error, Result, TrainConfig, Trainer, RUN_FORMAT_VERSION};

/// What to train and where.
#[derive(Clone, Debug)]
pub struct TrainSpec {
    /// Dataset root in MVTec layout.
    pub data_root: PathBuf,
    /// Category to train on (its train/good images).
    pub category: String,
    /// Run folder to write.
    pub out: PathBuf,
    /// Model settings (on resume the run's own; an explicit differing one is a conflict).
    pub model: ModelConfig,
    /// Training settings (on resume the run's own, except the explicit settings that may change:
    /// epochs to extend, learning rate, checkpoint interval, threshold quantile).
    pub train: TrainConfig,
    /// Continue the run in `out` (an error when it holds no run).
    pub resume: bool,
    /// Replace the daad run (or daad's partial files) in `out`; never deletes other files.
    pub force: bool,
    /// The settings the user set explicitly (flags), as opposed to preset defaults: on resume
    /// an explicit setting must agree with the run (see [`crate::Setting`]), a default one is
    /// taken from the run. Empty: resume continues the run exactly as it was configured.
    pub explicit: Explicit,
    /// Checkpoints kept in `out/checkpoints` (at least 1; [`crate::DEFAULT_KEEP`]).
    pub keep_checkpoints: usize,
    /// Optional on-disk cache of preprocessed images.
    pub cache_dir: Option<PathBuf>,
}

impl TrainSpec {
    /// A new run of `model`/`train` on `data_root/category` into `out` (no resume, no force,
    /// nothing explicit, the default number of checkpoints kept, no cache).
    pub fn new(
        data_root: impl Into<PathBuf>,
        category: impl Into<String>,
        out: impl Into<PathBuf>,
        model: ModelConfig,
        train: TrainConfig,
    ) -> Self {
        TrainSpec {
            data_root: data_root.into(),
            category: category.into(),
            out: out.into(),
            model,
            train,
            resume: false,
            force: false,
            explicit: Explicit::new(),
            keep_checkpoints: DEFAULT_KEEP,
            cache_dir: None,
        }
    }

    fn write_mode(&self) -> Result<WriteMode> {
        match (self.resume, self.force) {
            (true, true) => Err(Error::InvalidConfig(
                "--resume continues a run and --force replaces it: pass one of them".into(),
            )),
            (true, false) => Ok(WriteMode::Resume),
            (false, true) => Ok(WriteMode::Force),
            (false, false) => Ok(WriteMode::New),
        }
    }
}

/// What a call to [`train`] did.
#[derive(Clone, Debug)]
pub struct TrainReport {
    /// The run folder.
    pub run: PathBuf,
    /// Complete epochs now in the run.
    pub epochs_done: usize,
    /// Optimiser steps now in the run.
    pub global_step: usize,
    /// Stopped by the stop flag (a checkpoint was written).
    pub interrupted: bool,
    /// Mean losses of the last complete epoch.
    pub last: Option<EpochRecord>,
    /// Calibration stored in config.json (None when interrupted).
    pub calibration: Option<Calibration>,
    /// The configuration of the run.
    pub config: RunConfig,
}

/// Splits `n` images into (train, held-out) index lists with a seeded shuffle (choice:
/// round(n f) held out, at least 1 when f > 0 and n >= 2; never all).
pub fn split_validation(n: usize, fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut n_val = (n as f64 * fraction).round() as usize;
    if fraction > 0.0 && n >= 2 {
        n_val = n_val.max(1);
    }
    n_val = n_val.min(n.saturating_sub(1));
    let mut idx: Vec<usize> = (0..n).collect();
    // A constant offset keeps this stream apart from other uses of the seed.
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x005e_ed0f_daad));
    let mut val = idx[..n_val].to_vec();
    let mut train = idx[n_val..].to_vec();
    val.sort_unstable();
    train.sort_unstable();
    (train, val)
}

fn rel_name(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).to_string_lossy().into_owned()
}

/// The images of a run: training images, held-out images (None at `val_fraction` 0), and
/// the record of which is which.
struct Loaded {
    train_images: Tensor,
    val_images: Option<Tensor>,
    data: DataInfo,
}

/// Every train/good image of the category, split (seeded) into training and held-out images.
fn load_data(
    spec: &TrainSpec,
    model_cfg: &ModelConfig,
    train_cfg: &TrainConfig,
    device: &Device,
) -> Result<Loaded> {
    let index = daad_data::mvtec::index_train_only(&spec.data_root, &spec.category)?;
    let mut paths: Vec<PathBuf> = index.train.iter().map(|s| s.image.clone()).collect();
    paths.sort();
    if paths.len() < 2 {
        return Err(Error::Run {
            path: spec.data_root.join(&spec.category).join("train/good"),
            problems: vec![format!("{} training image(s); at least 2 are needed", paths.len())],
        });
    }
    preflight_train(&spec.out, model_cfg, train_cfg.batch_size, paths.len(), device, None)?;
    let (train_idx, val_idx) =
        split_validation(paths.len(), train_cfg.val_fraction, train_cfg.seed);
    let train_paths: Vec<PathBuf> = train_idx.iter().map(|&i| paths[i].clone()).collect();
    let val_paths: Vec<PathBuf> = val_idx.iter().map(|&i| paths[i].clone()).collect();
    let pre = Preprocess { size: model_cfg.image_size };
    let t0 = Instant::now();
    let train_images = pre.load_images(&train_paths, spec.cache_dir.as_deref())?;
    let val_images = if val_paths.is_empty() {
        None
    } else {
        Some(pre.load_images(&val_paths, spec.cache_dir.as_deref())?)
    };
    tracing::info!(
        "{} training + {} held-out images of {}/{} at {} px loaded in {:.1}s",
        train_paths.len(),
        val_paths.len(),
        spec.data_root.display(),
        spec.category,
        model_cfg.image_size,
        t0.elapsed().as_secs_f64()
    );

    let data = DataInfo {
        root: spec.data_root.clone(),
        category: spec.category.clone(),
        n_train: train_paths.len(),
        n_val: val_paths.len(),
        val_images: val_paths.iter().map(|p| rel_name(&spec.data_root, p)).collect(),
    };
    Ok(Loaded { train_images, val_images, data })
}

/// Calibration on normal images only: the held-out slice, or the training images at f = 0.
/// With fewer than [`MIN_HOLDOUT_IMAGES`] held out (issue 13), the scaling is fitted on the
/// held-out and training images together (a range over one image is zero) and no threshold is
/// set: verdicts are "unknown" until the user holds out more images or passes a threshold.
fn calibrate(
    model: &DaadModel,
    train_images: Tensor,
    val_images: Option<Tensor>,
    model_cfg: &ModelConfig,
    train_cfg: &TrainConfig,
    device: &Device,
) -> Result<Calibration> {
    let (cal_images, source, too_few) = match val_images {
        Some(v) if v.dim(0)? < MIN_HOLDOUT_IMAGES => {
            tracing::warn!(
                "only {} held-out image(s), fewer than {MIN_HOLDOUT_IMAGES}: no verdict threshold; the score scaling uses the training images too",
                v.dim(0)?
            );
            (Tensor::cat(&[&v, &train_images], 0)?, CalibrationSource::Train, true)
        }
        Some(v) => (v, CalibrationSource::Holdout, false),
        None => (train_images, CalibrationSource::Train, false),
    };
    let raw = infer(
        model,
        &cal_images,
        train_cfg.batch_size,
        device,
        InferOptions::default(),
        &mut |_, _| {},
    )?;
    let mut cal = Calibration::fit(
        &raw.r,
        raw.l.as_deref(),
        model_cfg.gamma,
        train_cfg.threshold_quantile,
        source,
    )?;
    if too_few {
        cal.threshold = None;
    }
    tracing::info!(
        "calibration on {} {:?} images: R in [{:.5}, {:.5}], threshold {:?}",
        cal.n_images,
        cal.source,
        cal.scaling.r.min,
        cal.scaling.r.max,
        cal.threshold
    );
    Ok(cal)
}

/// Trains (or resumes) a run; `stop` is polled between steps (Ctrl-C), and a stop writes a
/// checkpoint that `resume` continues exactly. A non-finite loss returns
/// [`Error::NonFiniteLoss`] and leaves the last good checkpoint in place.
///
/// Before any expensive work: the output must be writable, hold nothing but a run being resumed
/// ([`RunDir::prepare`]: typed errors list what is there), not be locked by another writer
/// ([`Error::Locked`]), and the disk and memory must fit the run ([`preflight_train`]). The lock
/// is held until this returns; a run that fails before its first checkpoint leaves no folder.
pub fn train(
    spec: &TrainSpec,
    device: &Device,
    progress: &mut dyn Progress,
    stop: &AtomicBool,
) -> Result<TrainReport> {
    let mode = spec.write_mode()?;
    check_writable(&spec.out)?;
    let mut prepared = RunDir::prepare(&spec.out, mode)?;
    let result = train_prepared(spec, &mut prepared, device, progress, stop);
    if let Err(e) = &result {
        if is_injected(e) {
            // A simulated kill: leave the folder as a killed process would.
            prepared.abandon();
        }
    }
    result
}

fn train_prepared(
    spec: &TrainSpec,
    prepared: &mut Prepared,
    device: &Device,
    progress: &mut dyn Progress,
    stop: &AtomicBool,
) -> Result<TrainReport> {
    let resume = prepared.resume().cloned();
    let (model_cfg, train_cfg) = match &resume {
        Some(run) => {
            let (m, t) = resume_configs(run, &spec.model, &spec.train, &spec.explicit)?;
            tracing::info!(
                "resuming {} in {} with its own settings (epochs {}, lr {:e})",
                run.summary(),
                spec.out.display(),
                t.epochs,
                t.lr
            );
            (m, t)
        }
        None => {
            spec.model.validate()?;
            (spec.model.clone(), spec.train.clone())
        }
    };
    train_cfg.validate()?;

    let Loaded { train_images, val_images, data } =
        load_data(spec, &model_cfg, &train_cfg, device)?;
    let (n_train, n_val) = (data.n_train, data.n_val);
    let mut run_cfg = RunConfig {
        format_version: RUN_FORMAT_VERSION,
        crate_version: env!("CARGO_PKG_VERSION").to_string(),
        model: model_cfg.clone(),
        train: train_cfg.clone(),
        calibration: None,
        data,
    };
    let (mut trainer, mut state) = if let Some(run) = &resume {
        let state = run.state().clone();
        let old = run.config();
        if old.data.n_train != run_cfg.data.n_train
            || old.data.val_images != run_cfg.data.val_images
        {
            return Err(Error::Run {
                path: spec.out.join(crate::CONFIG_FILE),
                problems: vec![format!(
                    "the run was trained on {} images with {} held out, the data now gives {} and {}: resume with the same data",
                    old.data.n_train, old.data.n_val, run_cfg.data.n_train, run_cfg.data.n_val
                )],
            });
        }
        (run.load_trainer(&run_cfg, device)?, state)
    } else {
        let model = DaadModel::new(&model_cfg, train_cfg.seed, device)?;
        (Trainer::new(model, &train_cfg)?, TrainState::new(train_cfg.seed))
    };
    if state.epochs_done < train_cfg.epochs {
        state.finished = false;
    }
    let checkpointer = Checkpointer::new(&spec.out, spec.keep_checkpoints);

    let batcher = Batcher::new(train_images.clone(), train_cfg.batch_size, train_cfg.seed)
        .flips(train_cfg.flip_h, train_cfg.flip_v)
        // A last batch of one image would give BatchNorm a zero variance: drop partial batches
        // whenever one full batch exists (choice).
        .drop_last(n_train >= train_cfg.batch_size);
    let per_epoch = batcher.batches_per_epoch();
    progress.start(&StartInfo {
        total_epochs: train_cfg.epochs,
        start_epoch: state.epochs_done,
        start_batch: state.batches_done,
        batches_per_epoch: per_epoch,
        n_train,
        n_val,
    });
    tracing::info!(
        "training {} ({} preset) for epochs {}..{} ({} steps each, batch {}, lr {:e}) into {}",
        model_cfg.variant,
        train_cfg.preset,
        state.epochs_done,
        train_cfg.epochs,
        per_epoch,
        train_cfg.batch_size,
        train_cfg.lr,
        spec.out.display()
    );
    tracing::info!(
        "{}, loss reduction {}",
        model_cfg.describe_blocks(),
        model_cfg.loss_reduction.name()
    );

    let mut last_good_epochs = state.epochs_done;
    while state.epochs_done < train_cfg.epochs {
        let epoch = state.epochs_done;
        for (b, batch) in batcher.epoch(epoch, device).enumerate().skip(state.batches_done) {
            if stop.load(Ordering::SeqCst) {
                checkpointer.save(&trainer, &run_cfg, &state)?;
                prepared.committed();
                tracing::warn!(
                    "interrupted at epoch {epoch}, batch {b}: checkpoint written to {}; continue with --resume",
                    spec.out.display()
                );
                return Ok(TrainReport {
                    run: spec.out.clone(),
                    epochs_done: state.epochs_done,
                    global_step: state.global_step,
                    interrupted: true,
                    last: state.history.last().cloned(),
                    calibration: None,
                    config: run_cfg,
                });
            }
            let x = batch?;
            let images = x.dim(0)?;
            let t = Instant::now();
            let losses = match trainer.step(&x)? {
                Ok(l) => l,
                Err(nf) => {
                    tracing::error!(
                        "non-finite {} loss; last good checkpoint after {last_good_epochs} epochs",
                        nf.what
                    );
                    return Err(Error::NonFiniteLoss {
                        what: nf.what,
                        value: nf.value,
                        epoch,
                        step: state.global_step,
                        run: spec.out.clone(),
                    });
                }
            };
            let seconds = t.elapsed().as_secs_f64();
            state.global_step += 1;
            state.batches_done = b + 1;
            state.partial.add(&losses, images, seconds);
            progress.step(&StepInfo {
                epoch,
                batch: b,
                global_step: state.global_step,
                images,
                seconds,
                losses,
            });
        }
        let acc = std::mem::take(&mut state.partial);
        let record = EpochRecord {
            epoch,
            step: state.global_step,
            losses: acc.mean(),
            images_per_s: acc.images as f64 / acc.seconds.max(1e-9),
            seconds: acc.seconds,
            weighted: Some(acc.mean().weighted(&model_cfg.losses)),
            memory: trainer.take_memory_diagnostics(),
        };
        record.log();
        progress.epoch(&record);
        state.history.push(record);
        state.epochs_done += 1;
        state.batches_done = 0;
        let last = state.epochs_done == train_cfg.epochs;
        if state.epochs_done % train_cfg.checkpoint_every == 0 && !last {
            checkpointer.save(&trainer, &run_cfg, &state)?;
            prepared.committed();
            last_good_epochs = state.epochs_done;
            progress.checkpoint(state.epochs_done);
        }
    }

    let cal = calibrate(trainer.model(), train_images, val_images, &model_cfg, &train_cfg, device)?;
    run_cfg.calibration = Some(cal.clone());
    state.finished = true;
    checkpointer.save(&trainer, &run_cfg, &state)?;
    prepared.committed();
    progress.checkpoint(state.epochs_done);
    Ok(TrainReport {
        run: spec.out.clone(),
        epochs_done: state.epochs_done,
        global_step: state.global_step,
        interrupted: false,
        last: state.history.last().cloned(),
        calibration: Some(cal),
        config: run_cfg,
    })
}
