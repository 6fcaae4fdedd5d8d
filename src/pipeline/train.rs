//! [`TrainOptions`] (the `daad train` flags as values) and their one mapping onto daad-train's
//! preset configs, so that the CLI and xtask train exactly the same runs.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use candle_core::Device;
use daad_memory::Rates;
use daad_model::{LossWeights, Variant};
use daad_train::{preset_configs, Preset, Progress, TrainConfig, TrainReport, TrainSpec};

use crate::error::{Error, Result};

/// The `daad train` flags as values; `None` keeps the preset's (or the variant's) setting.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainOptions {
    /// Dataset root in MVTec AD layout.
    pub data_root: PathBuf,
    /// Category folder under the root.
    pub category: String,
    /// Run folder to write.
    pub out: PathBuf,
    /// Model variant.
    pub variant: Variant,
    /// Settings preset.
    pub preset: Preset,
    /// Image side in pixels (a multiple of 16).
    pub image_size: Option<usize>,
    /// Total epochs (with `resume`: extends the run).
    pub epochs: Option<usize>,
    /// Batch size.
    pub batch: Option<usize>,
    /// Spatial division rate r: blocks r x r (r_h = r_w = r).
    pub division: Option<usize>,
    /// Channel division rate r_c.
    pub channel_division: Option<usize>,
    /// Memory items N per bank.
    pub memory_size: Option<usize>,
    /// Fraction of train/good held out for calibration (0 = the paper's protocol).
    pub val_fraction: Option<f64>,
    /// Seed of the init, split, batch order and flips.
    pub seed: Option<u64>,
    /// Continue the run in `out`.
    pub resume: bool,
    /// Adversarial loss on/off at the paper's weight (Table 5); `None`: the variant's.
    pub adv_loss: Option<bool>,
    /// Alignment loss on/off at the paper's weight (Table 5); `None`: the variant's.
    pub ali_loss: Option<bool>,
    /// Folder for cached preprocessed images.
    pub cache_dir: Option<PathBuf>,
    /// Adam learning rate; `None`: the preset's (`TrainConfig::preset_lr`).
    pub lr: Option<f64>,
    /// Reconstruction loss on/off at the paper's weight; `None`: on.
    pub rec_loss: Option<bool>,
    /// Weight g of R in the score g R + (1 - g) L; `None`: the variant's (0.9 once L exists).
    pub gamma: Option<f64>,
    /// Checkpoint every this many epochs; `None`: the preset's.
    pub checkpoint_every: Option<usize>,
}

impl TrainOptions {
    /// Options with every override unset (the preset's settings).
    pub fn new(
        data_root: impl Into<PathBuf>,
        category: impl Into<String>,
        out: impl Into<PathBuf>,
        variant: Variant,
        preset: Preset,
    ) -> Self {
        TrainOptions {
            data_root: data_root.into(),
            category: category.into(),
            out: out.into(),
            variant,
            preset,
            image_size: None,
            epochs: None,
            batch: None,
            division: None,
            channel_division: None,
            memory_size: None,
            val_fraction: None,
            seed: None,
            resume: false,
            adv_loss: None,
            ali_loss: None,
            cache_dir: None,
            lr: None,
            rec_loss: None,
            gamma: None,
            checkpoint_every: None,
        }
    }
}

fn positive(name: &'static str, v: Option<usize>) -> Result<Option<usize>> {
    match v {
        Some(0) => Err(Error::option(name, "must be at least 1")),
        other => Ok(other),
    }
}

/// Builds the validated [`TrainSpec`] of `opts`: the preset's configs for the variant, then the
/// overrides (the same mapping as the `daad train` flags).
pub fn train_spec(opts: &TrainOptions) -> Result<TrainSpec> {
    let (mut model, mut train) = preset_configs(opts.preset, opts.variant);
    if let Some(s) = positive("--image-size", opts.image_size)? {
        model.image_size = s;
    }
    let division = positive("--division", opts.division)?;
    let channel_division = positive("--channel-division", opts.channel_division)?;
    if division.is_some() || channel_division.is_some() {
        let old = model.memory.rates;
        let r = division.unwrap_or(old.h);
        let (h, w) = if division.is_some() { (r, r) } else { (old.h, old.w) };
        model.memory.rates = Rates { h, w, c: channel_division.unwrap_or(old.c) };
    }
    if let Some(n) = positive("--memory-size", opts.memory_size)? {
        model.memory.n_items = n;
    }
    if let Some(on) = opts.rec_loss {
        model.losses.rec = if on { LossWeights::PAPER.rec } else { 0.0 };
    }
    if let Some(on) = opts.adv_loss {
        model.losses.adv = if on { LossWeights::PAPER.adv } else { 0.0 };
    }
    if let Some(on) = opts.ali_loss {
        model.losses.ali = if on { LossWeights::PAPER.ali } else { 0.0 };
    }
    // Either discriminator loss needs the discriminator; with both off a variant keeps its own
    // (DAAD+ scores with L, which needs f_D even when it is not trained adversarially).
    let had_discriminator = model.discriminator;
    model.discriminator = model.discriminator || model.losses.adv > 0.0 || model.losses.ali > 0.0;
    if model.discriminator && !had_discriminator {
        // Table 5: a variant given the adversarial losses scores like DAAD+, A = 0.9 R + 0.1 L
        // (ScoreKind::Reconstruction / Alignment pick R or L alone at test time).
        model.gamma = daad_eval::DEFAULT_GAMMA;
    }
    if let Some(g) = opts.gamma {
        if !(0.0..=1.0).contains(&g) {
            return Err(Error::option("--gamma", "must be in [0, 1]"));
        }
        model.gamma = g;
        // A score with L(x) in it needs the discriminator's features.
        model.discriminator = model.discriminator || g < 1.0;
    }
    train.lr = TrainConfig::preset_lr(opts.preset, &model);
    if let Some(lr) = opts.lr {
        train.lr = lr;
    }
    if let Some(e) = positive("--epochs", opts.epochs)? {
        train.epochs = e;
    }
    if let Some(b) = positive("--batch", opts.batch)? {
        train.batch_size = b;
    }
    if let Some(k) = positive("--checkpoint-every", opts.checkpoint_every)? {
        train.checkpoint_every = k;
    }
    if let Some(f) = opts.val_fraction {
        train.val_fraction = f;
    }
    if let Some(s) = opts.seed {
        train.seed = s;
    }
    model.validate()?;
    train.validate()?;
    Ok(TrainSpec {
        data_root: opts.data_root.clone(),
        category: opts.category.clone(),
        out: opts.out.clone(),
        model,
        train,
        resume: opts.resume,
        cache_dir: opts.cache_dir.clone(),
    })
}

/// Trains (or, with `resume`, continues) the run described by `opts`; `stop` is polled between
/// steps and a stop writes a checkpoint (see [`daad_train::train`]).
pub fn train(
    opts: &TrainOptions,
    device: &Device,
    progress: &mut dyn Progress,
    stop: &AtomicBool,
) -> Result<TrainReport> {
    let spec = train_spec(opts)?;
    Ok(daad_train::train(&spec, device, progress, stop)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_map_onto_the_preset() {
        let mut o = TrainOptions::new("d", "c", "o", Variant::Daad, Preset::Ci);
        let base = train_spec(&o).unwrap();
        let (m, t) = preset_configs(Preset::Ci, Variant::Daad);
        assert_eq!(base.model, m);
        assert_eq!(base.train, t);

        o.image_size = Some(64);
        o.epochs = Some(7);
        o.batch = Some(4);
        o.division = Some(4);
        o.memory_size = Some(20);
        o.val_fraction = Some(0.0);
        o.seed = Some(9);
        let s = train_spec(&o).unwrap();
        assert_eq!(s.model.image_size, 64);
        assert_eq!(s.model.memory.rates, Rates { h: 4, w: 4, c: 1 });
        assert_eq!(s.model.memory.n_items, 20);
        assert_eq!((s.train.epochs, s.train.batch_size, s.train.seed), (7, 4, 9));
        assert_eq!(s.train.val_fraction, 0.0);
    }

    #[test]
    fn table5_losses_turn_on_the_discriminator_and_lr() {
        let mut o = TrainOptions::new("d", "c", "o", Variant::Daad, Preset::Paper);
        o.adv_loss = Some(true);
        o.ali_loss = Some(true);
        let s = train_spec(&o).unwrap();
        assert!(s.model.discriminator);
        assert_eq!(
            (s.model.losses.adv, s.model.losses.ali),
            (LossWeights::PAPER.adv, LossWeights::PAPER.ali)
        );
        assert_eq!(s.train.lr, 2e-4);
        assert_eq!(s.model.gamma, 0.9);

        let mut o = TrainOptions::new("d", "c", "o", Variant::DaadPlus, Preset::Paper);
        o.adv_loss = Some(false);
        o.ali_loss = Some(false);
        let s = train_spec(&o).unwrap();
        assert_eq!((s.model.losses.adv, s.model.losses.ali), (0.0, 0.0));
        assert_eq!(s.train.lr, 1e-4);
    }

    #[test]
    fn zero_overrides_are_errors() {
        let mut o = TrainOptions::new("d", "c", "o", Variant::Daad, Preset::Ci);
        o.epochs = Some(0);
        let e = train_spec(&o).unwrap_err().to_string();
        assert!(e.contains("--epochs"), "{e}");
    }
}
