//! Progress reporting: the library calls a [`Progress`]; binaries draw bars from it.

use serde::{Deserialize, Serialize};

use daad_model::ScaleDiagnostics;

use crate::trainer::WeightedLosses;
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
    /// The weighted loss terms (absent in runs written before they were logged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weighted: Option<WeightedLosses>,
    /// Addressing statistics of each memory scale over the epoch (empty without memory).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub memory: Vec<ScaleDiagnostics>,
}

impl EpochRecord {
    /// Logs the epoch through `tracing`: the losses at debug (progress bars print them), the
    /// weighted loss terms and the memory diagnostics at info.
    pub fn log(&self) {
        let l = &self.losses;
        tracing::debug!(
            "epoch {}: loss {:.5} (rec {:.5} adv {:.4} ali {:.5} D {:.4})",
            self.epoch + 1,
            l.total,
            l.rec,
            l.adv,
            l.ali,
            l.disc
        );
        let weighted = self
            .weighted
            .map(|w| format!("weighted rec {:.4} adv {:.4} ali {:.4}", w.rec, w.adv, w.ali))
            .unwrap_or_default();
        let memory = if self.memory.is_empty() {
            String::new()
        } else {
            format!("; memory {}", ScaleDiagnostics::describe_all(&self.memory))
        };
        tracing::info!("epoch {}: {weighted}{memory}", self.epoch + 1);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_written_before_the_diagnostics_load() {
        let json = r#"{"epoch":0,"step":3,"losses":{"rec":0.1,"adv":0.0,"ali":0.0,"disc":0.0,"total":5.0},"images_per_s":10.0,"seconds":1.0}"#;
        let r: EpochRecord = serde_json::from_str(json).unwrap();
        assert_eq!((r.weighted, r.memory.len()), (None, 0));
        let w = r.losses.weighted(&daad_model::LossWeights::PAPER);
        assert!((w.rec - 5.0).abs() < 1e-12 && w.adv == 0.0);
        let back = serde_json::to_string(&r).unwrap();
        assert!(!back.contains("memory") && !back.contains("weighted"), "{back}");
    }
}
