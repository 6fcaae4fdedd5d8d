//! Progress bars (indicatif) for training steps and for images through the model.

use std::time::Instant;

use daad_train::{EpochRecord, Progress, StartInfo, StepInfo};
use indicatif::{ProgressBar, ProgressStyle};

fn style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{spinner} {msg} [{elapsed_precise}] {bar:30} {pos}/{len} (eta {eta})",
    )
    .expect("static template")
}

/// A training bar over optimiser steps: loss and images/s in its message; with `print_epochs`,
/// one line per finished epoch above it.
pub struct TrainBar {
    label: String,
    print_epochs: bool,
    bar: ProgressBar,
    total_epochs: usize,
    images: usize,
    started: Instant,
}

impl TrainBar {
    /// A hidden bar until training starts, labelled `label` (e.g. a grid cell's name).
    pub fn new(label: &str, print_epochs: bool) -> Self {
        TrainBar {
            label: label.to_string(),
            print_epochs,
            bar: ProgressBar::hidden(),
            total_epochs: 0,
            images: 0,
            started: Instant::now(),
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for TrainBar {
    fn start(&mut self, info: &StartInfo) {
        self.total_epochs = info.total_epochs;
        let total = (info.total_epochs * info.batches_per_epoch) as u64;
        let done = (info.start_epoch * info.batches_per_epoch + info.start_batch) as u64;
        self.bar = ProgressBar::new(total).with_style(style());
        self.bar.set_position(done);
        self.bar.set_message(format!("{} train", self.label));
        self.started = Instant::now();
        self.images = 0;
    }

    fn step(&mut self, s: &StepInfo) {
        self.images += s.images;
        let rate = self.images as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        self.bar.set_message(format!(
            "{} epoch {}/{} loss {:.4} rec {:.4} {:.1} img/s",
            self.label,
            s.epoch + 1,
            self.total_epochs,
            s.losses.total,
            s.losses.rec,
            rate
        ));
        self.bar.inc(1);
    }

    fn epoch(&mut self, r: &EpochRecord) {
        let line = format!(
            "epoch {:>4}: loss {:.5} (rec {:.5} adv {:.4} ali {:.5} D {:.4}) {:.1} img/s",
            r.epoch + 1,
            r.losses.total,
            r.losses.rec,
            r.losses.adv,
            r.losses.ali,
            r.losses.disc,
            r.images_per_s
        );
        if self.print_epochs && self.bar.is_hidden() {
            // No terminal (a log file, Slurm, a parent process): indicatif prints nothing, so
            // the epoch lines go to stderr directly.
            eprintln!("{line}");
        } else if self.print_epochs {
            self.bar.println(line);
        } else {
            tracing::debug!("{} {line}", self.label);
        }
    }
}

/// A bar over images passing through the model; [`CountBar::update`] is the `progress(done,
/// total)` callback of `daad::pipeline::test`.
pub struct CountBar {
    bar: ProgressBar,
}

impl CountBar {
    /// A bar labelled `label`.
    pub fn new(label: &str) -> Self {
        let bar = ProgressBar::new(0).with_style(style());
        bar.set_message(label.to_string());
        CountBar { bar }
    }

    /// Sets the bar to `done` of `total` images.
    pub fn update(&self, done: usize, total: usize) {
        self.bar.set_length(total as u64);
        self.bar.set_position(done as u64);
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
