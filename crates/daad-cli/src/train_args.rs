//! [`TrainArgs`]: the one set of training flags, flattened into `daad train` and every
//! `cargo xtask` grid command, and its one conversion into daad-train's configs.

use std::path::PathBuf;

use anyhow::{bail, Result};
use daad_memory::{Rates, Similarity};
use daad_model::{DivisionRule, LossReduction, LossWeights, ModelConfig, Variant};
use daad_train::{preset_configs, Explicit, Preset, Setting, TrainConfig};

/// A training loss that `--losses` can switch on (the others are off).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// The reconstruction loss L_rec.
    Rec,
    /// The adversarial loss L_adv.
    Adv,
    /// The feature alignment loss L_ali.
    Ali,
}

/// Query-item similarity of the memory addressing (`--similarity`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimilarityArg {
    /// Cosine similarity (the paper's).
    Cosine,
    /// Dot product (MemAE's code); runs the reference memory implementation.
    Dot,
}

impl From<SimilarityArg> for Similarity {
    fn from(s: SimilarityArg) -> Self {
        match s {
            SimilarityArg::Cosine => Similarity::Cosine,
            SimilarityArg::Dot => Similarity::Dot,
        }
    }
}

/// The training flags; `None` keeps the command's default (see [`TrainArgs::or`]), then the
/// preset's (or the variant's) setting.
#[derive(clap::Args, Clone, Debug, Default, PartialEq)]
pub struct TrainArgs {
    /// Settings preset: paper (256 px, 1000 epochs), fast (64 px, 50 epochs), ci (32 px, 10
    /// epochs) [default: fast for `daad train`, paper for the xtask grids].
    #[arg(long, value_enum, ignore_case = true)]
    pub preset: Option<Preset>,
    /// Image side in pixels (multiple of 16); overrides the preset.
    #[arg(long)]
    pub image_size: Option<usize>,
    /// Total epochs; overrides the preset (with --resume: extends the run).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Batch size; overrides the preset.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Division rate r: blocks are r x r (r_h = r_w = r); overrides the variant's rate.
    #[arg(long)]
    pub division: Option<usize>,
    /// Channel division rate r_c; overrides the variant's (1).
    #[arg(long)]
    pub channel_division: Option<usize>,
    /// Memory items N per bank; overrides the preset.
    #[arg(long)]
    pub memory_size: Option<usize>,
    /// Fraction of train/good held out for score calibration (0 = the paper's protocol)
    /// [default: 0.1 for `daad train`, 0 for the xtask grids].
    #[arg(long)]
    pub val_fraction: Option<f64>,
    /// Seed of the init, the validation split, the batch order and the flips [default: 0 for
    /// `daad train`, 42 for xtask].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Losses to train with (ablation, Table 5), comma-separated; default: the variant's.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub losses: Option<Vec<Loss>>,
    /// Weight g of R in the score g R + (1 - g) L (Table 5); default: the variant's.
    #[arg(long)]
    pub gamma: Option<f64>,
    /// Adam learning rate; default: the preset's (paper: 1e-4, 2e-4 with adversarial losses;
    /// fast, ci: 1e-3).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Write a checkpoint every N epochs; default: the preset's.
    #[arg(long)]
    pub checkpoint_every: Option<usize>,
    /// Folder for cached preprocessed images (reused across runs).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Softmax temperature of the memory addressing [default: 1, the paper's].
    #[arg(long)]
    pub memory_temperature: Option<f64>,
    /// Query-item similarity of the memory addressing [default: cosine, the paper's].
    #[arg(long, value_enum)]
    pub similarity: Option<SimilarityArg>,
    /// Reduction of L_rec, L_ali, R and L: mean of squares, or the paper's L2 distance
    /// [default: l2 with the adversarial or alignment loss (DAAD+, Table 5), mean otherwise].
    #[arg(long, value_enum)]
    pub loss_reduction: Option<LossReduction>,
    /// How the division rate applies per scale: paper-grid (r x r blocks at every size) or
    /// paper-blocks (the paper's block sides in pixels at any image size) [default: paper-grid].
    #[arg(long, value_enum)]
    pub division_rule: Option<DivisionRule>,
}

fn positive(name: &str, v: Option<usize>) -> Result<Option<usize>> {
    match v {
        Some(0) => bail!("invalid {name}: must be at least 1"),
        other => Ok(other),
    }
}

impl TrainArgs {
    /// These flags with every unset one taken from `defaults` (a command's own defaults).
    pub fn or(&self, defaults: &TrainArgs) -> TrainArgs {
        let d = defaults.clone();
        TrainArgs {
            preset: self.preset.or(d.preset),
            image_size: self.image_size.or(d.image_size),
            epochs: self.epochs.or(d.epochs),
            batch: self.batch.or(d.batch),
            division: self.division.or(d.division),
            channel_division: self.channel_division.or(d.channel_division),
            memory_size: self.memory_size.or(d.memory_size),
            val_fraction: self.val_fraction.or(d.val_fraction),
            seed: self.seed.or(d.seed),
            losses: self.losses.clone().or(d.losses),
            gamma: self.gamma.or(d.gamma),
            lr: self.lr.or(d.lr),
            checkpoint_every: self.checkpoint_every.or(d.checkpoint_every),
            cache_dir: self.cache_dir.clone().or(d.cache_dir),
            memory_temperature: self.memory_temperature.or(d.memory_temperature),
            similarity: self.similarity.or(d.similarity),
            loss_reduction: self.loss_reduction.or(d.loss_reduction),
            division_rule: self.division_rule.or(d.division_rule),
        }
    }

    /// Which settings these flags set (before defaults are applied): on resume, an unset setting
    /// is taken from the run and a set one must agree with it (see [`daad_train::Setting`]).
    pub fn explicit(&self) -> Explicit {
        let mut set = Explicit::new();
        let mut mark = |on: bool, s: Setting| {
            if on {
                set.insert(s);
            }
        };
        mark(self.preset.is_some(), Setting::Preset);
        mark(self.image_size.is_some(), Setting::ImageSize);
        mark(self.epochs.is_some(), Setting::Epochs);
        mark(self.batch.is_some(), Setting::BatchSize);
        mark(self.division.is_some() || self.channel_division.is_some(), Setting::Division);
        mark(self.memory_size.is_some(), Setting::MemorySize);
        mark(self.val_fraction.is_some(), Setting::ValFraction);
        mark(self.seed.is_some(), Setting::Seed);
        mark(self.losses.is_some(), Setting::Losses);
        mark(self.gamma.is_some(), Setting::Gamma);
        mark(self.lr.is_some(), Setting::Lr);
        mark(self.checkpoint_every.is_some(), Setting::CheckpointEvery);
        set
    }

    /// The preset (fast when unset).
    pub fn preset(&self) -> Preset {
        self.preset.unwrap_or(Preset::Fast)
    }

    /// The one conversion into the trainer's configs: the preset's configs for `variant`, then
    /// every override, validated.
    pub fn configs(&self, variant: Variant) -> Result<(ModelConfig, TrainConfig)> {
        let preset = self.preset();
        let (mut model, mut train) = preset_configs(preset, variant);
        if let Some(s) = positive("--image-size", self.image_size)? {
            model.image_size = s;
        }
        let division = positive("--division", self.division)?;
        let channel_division = positive("--channel-division", self.channel_division)?;
        if division.is_some() || channel_division.is_some() {
            let old = model.memory.rates;
            let (h, w) = division.map_or((old.h, old.w), |r| (r, r));
            model.memory.rates = Rates { h, w, c: channel_division.unwrap_or(old.c) };
        }
        if let Some(n) = positive("--memory-size", self.memory_size)? {
            model.memory.n_items = n;
        }
        if let Some(t) = self.memory_temperature {
            if !(t.is_finite() && t > 0.0) {
                bail!(
                    "invalid --memory-temperature {t}: must be finite and > 0 (1 is the paper's)"
                );
            }
            model.memory.temperature = t;
        }
        if let Some(s) = self.similarity {
            model.memory.similarity = s.into();
        }
        if let Some(r) = self.division_rule {
            model.division_rule = r;
        }
        if let Some(losses) = &self.losses {
            let on = |l: Loss| losses.contains(&l);
            let p = LossWeights::PAPER;
            model.losses.rec = if on(Loss::Rec) { p.rec } else { 0.0 };
            model.losses.adv = if on(Loss::Adv) { p.adv } else { 0.0 };
            model.losses.ali = if on(Loss::Ali) { p.ali } else { 0.0 };
        }
        model.loss_reduction =
            self.loss_reduction.unwrap_or_else(|| LossReduction::for_losses(&model.losses));
        // Either discriminator loss needs the discriminator; with both off a variant keeps its
        // own (DAAD+ scores with L, which needs f_D even when it is not trained adversarially).
        let had_discriminator = model.discriminator;
        model.discriminator =
            model.discriminator || model.losses.adv > 0.0 || model.losses.ali > 0.0;
        if model.discriminator && !had_discriminator {
            // Table 5: a variant given the adversarial losses scores like DAAD+, A = 0.9 R + 0.1 L
            // (ScoreKind::Reconstruction / Alignment pick R or L alone at test time).
            model.gamma = daad_eval::DEFAULT_GAMMA;
        }
        if let Some(g) = self.gamma {
            if !(0.0..=1.0).contains(&g) {
                bail!("invalid --gamma: must be in [0, 1]");
            }
            model.gamma = g;
            // A score with L(x) in it needs the discriminator's features.
            model.discriminator = model.discriminator || g < 1.0;
        }
        train.lr = self.lr.unwrap_or_else(|| TrainConfig::preset_lr(preset, &model));
        if let Some(e) = positive("--epochs", self.epochs)? {
            train.epochs = e;
        }
        if let Some(b) = positive("--batch", self.batch)? {
            train.batch_size = b;
        }
        if let Some(k) = positive("--checkpoint-every", self.checkpoint_every)? {
            train.checkpoint_every = k;
        }
        if let Some(f) = self.val_fraction {
            train.val_fraction = f;
        }
        if let Some(s) = self.seed {
            train.seed = s;
        }
        model.validate()?;
        train.validate()?;
        Ok((model, train))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        train: TrainArgs,
    }

    fn parse(args: &[&str]) -> TrainArgs {
        Cli::try_parse_from(std::iter::once("t").chain(args.iter().copied())).unwrap().train
    }

    #[test]
    fn overrides_map_onto_the_preset() {
        let base = TrainArgs { preset: Some(Preset::Ci), ..Default::default() };
        let (m, t) = base.configs(Variant::Daad).unwrap();
        assert_eq!((m, t), preset_configs(Preset::Ci, Variant::Daad));

        let o = parse(&[
            "--preset",
            "ci",
            "--image-size",
            "64",
            "--epochs",
            "7",
            "--batch",
            "4",
            "--division",
            "4",
            "--memory-size",
            "20",
            "--val-fraction",
            "0",
            "--seed",
            "9",
        ]);
        let (m, t) = o.configs(Variant::Daad).unwrap();
        assert_eq!(m.image_size, 64);
        assert_eq!(m.memory.rates, Rates { h: 4, w: 4, c: 1 });
        assert_eq!(m.memory.n_items, 20);
        assert_eq!((t.epochs, t.batch_size, t.seed), (7, 4, 9));
        assert_eq!(t.val_fraction, 0.0);
    }

    #[test]
    fn table5_losses_turn_on_the_discriminator_and_lr() {
        let o = parse(&["--preset", "paper", "--losses", "rec,adv,ali"]);
        let (m, t) = o.configs(Variant::Daad).unwrap();
        assert!(m.discriminator);
        assert_eq!((m.losses.adv, m.losses.ali), (LossWeights::PAPER.adv, LossWeights::PAPER.ali));
        assert_eq!(t.lr, 2e-4);
        assert_eq!(m.gamma, 0.9);

        let o = parse(&["--preset", "PAPER", "--losses", "rec"]);
        let (m, t) = o.configs(Variant::DaadPlus).unwrap();
        assert_eq!((m.losses.adv, m.losses.ali), (0.0, 0.0));
        assert_eq!(t.lr, 1e-4);
    }

    #[test]
    fn addressing_reduction_and_division_rule_flags() {
        let o = parse(&[
            "--preset",
            "ci",
            "--memory-temperature",
            "0.1",
            "--similarity",
            "dot",
            "--loss-reduction",
            "l2",
            "--division-rule",
            "paper-blocks",
        ]);
        let (m, _) = o.configs(Variant::Daad).unwrap();
        assert_eq!(m.memory.temperature, 0.1);
        assert_eq!(m.memory.similarity, Similarity::Dot);
        assert_eq!(m.loss_reduction, LossReduction::L2);
        assert_eq!(m.division_rule, DivisionRule::PaperBlocks);
        let (m, _) = parse(&["--preset", "ci"]).configs(Variant::Daad).unwrap();
        assert_eq!(
            (m.memory.similarity, m.loss_reduction),
            (Similarity::Cosine, LossReduction::Mean)
        );
        let bad = TrainArgs { memory_temperature: Some(0.0), ..Default::default() };
        assert!(bad.configs(Variant::Daad).is_err());
    }

    #[test]
    fn adversarial_losses_default_to_the_l2_distance() {
        let reduction =
            |args: &[&str], v: Variant| parse(args).configs(v).unwrap().0.loss_reduction;
        assert_eq!(reduction(&["--preset", "ci"], Variant::DaadPlus), LossReduction::L2);
        assert_eq!(reduction(&["--preset", "ci"], Variant::Ae), LossReduction::Mean);
        assert_eq!(reduction(&["--losses", "rec,adv"], Variant::Ae), LossReduction::L2);
        assert_eq!(reduction(&["--losses", "rec"], Variant::DaadPlus), LossReduction::Mean);
        let explicit = ["--loss-reduction", "mean"];
        assert_eq!(reduction(&explicit, Variant::DaadPlus), LossReduction::Mean);
    }

    #[test]
    fn zero_overrides_are_errors() {
        let o = TrainArgs { epochs: Some(0), ..Default::default() };
        let e = o.configs(Variant::Daad).unwrap_err().to_string();
        assert!(e.contains("--epochs"), "{e}");
        assert!(Cli::try_parse_from(["t", "--losses", "rec,nope"]).is_err());
    }

    #[test]
    fn command_defaults_fill_only_unset_flags() {
        let d = TrainArgs {
            preset: Some(Preset::Paper),
            seed: Some(42),
            val_fraction: Some(0.0),
            ..Default::default()
        };
        let o = parse(&["--seed", "3"]).or(&d);
        assert_eq!((o.preset, o.seed, o.val_fraction), (Some(Preset::Paper), Some(3), Some(0.0)));
    }
}
