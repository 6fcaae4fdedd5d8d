//! Progress reporting: the library calls a [`Progress`]; binaries draw bars from it.

use serde::{Deserialize, Serialize};

use crate::StepLosses;

/// Facts known when the loop starts.
#[derive(Clone, Debug)]
pub struct StartInfo {
    /// Total epochs of the run.
    pub total_epochs: usize,
    /// First epoch this process runs (> 0 when resuming).
    pub start_epoch: usize,
    /// Batches already done in `start_epoch` (resume after an interrupt).
    pub start_batch: usize,
    /// Steps per epoch.
    pub batches_per_epoch: usize,
    /// Training images.
    pub n_train: usize,
    /// Held-out images.
    pub n_val: usize,
}

/// One finished step.
#[derive(Clone, Debug)]
pub struct StepInfo {
    /// 0-based epoch.
    pub epoch: usize,
    /// 0-based batch inside the epoch.
    pub batch: usize,
    /// Steps done so far in the whole run.
    pub global_step: usize,
    /// Images in this batch.
    pub images: usize,
    /// Seconds this step took.
    pub seconds: f64,
    /// Its losses.
    pub losses: StepLosses,
}

/// One finished epoch (also a line of train_log.jsonl and an entry of state.json).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 0-based epoch.
    pub epoch: usize,
    /// Global step at its end.
    pub step: usize,
    /// Mean losses over its steps.
    pub losses: StepLosses,
    /// Training throughput.
    pub images_per_s: f64,
    /// Wall time of the epoch (the part run by the last process when it was resumed mid-epoch).
    pub seconds: f64,
}

/// Receives training events; every method has a no-op default.
pub trait Progress {
    /// The loop is about to start.
    fn start(&mut self, _info: &StartInfo) {}
    /// A step finished.
    fn step(&mut self, _info: &StepInfo) {}
    /// An epoch finished.
    fn epoch(&mut self, _record: &EpochRecord) {}
    /// A checkpoint was written after `epochs_done` full epochs.
    fn checkpoint(&mut self, _epochs_done: usize) {}
}

/// Ignores every event.
pub struct NoProgress;

impl Progress for NoProgress {}
