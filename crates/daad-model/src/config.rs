//! `ModelConfig`: everything needed to rebuild a model exactly, and the paper's variants.

use std::fmt;
use std::str::FromStr;

use daad_memory::{MemoryConfig, Rates};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The model variants of the paper's Tables 3 and 5.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Variant {
    /// Plain autoencoder: no skips, no memory, score R.
    #[serde(rename = "ae")]
    Ae,
    /// Autoencoder with UNet skips, no memory.
    #[serde(rename = "ae-skip")]
    #[cfg_attr(feature = "clap", value(alias = "ae+skip", alias = "aeskip"))]
    AeSkip,
    /// MemAE*: no skips, memory on the bottleneck only with rates (16, 16, 1).
    #[serde(rename = "memae")]
    #[cfg_attr(feature = "clap", value(name = "memae", alias = "memae*"))]
    MemAe,
    /// DAAD: skips with block memory on every connection, rates (8, 8, 1).
    #[serde(rename = "daad")]
    Daad,
    /// DAAD+: DAAD plus the discriminator, L_adv and L_ali, score 0.9 R + 0.1 L.
    #[serde(rename = "daad+")]
    #[cfg_attr(feature = "clap", value(name = "daad+", alias = "daad-plus", alias = "daadplus"))]
    DaadPlus,
}

impl Variant {
    /// All variants, in Table 3's order.
    pub const ALL: [Variant; 5] =
        [Variant::Ae, Variant::MemAe, Variant::AeSkip, Variant::Daad, Variant::DaadPlus];

    /// The command-line / serde name.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Ae => "ae",
            Variant::AeSkip => "ae-skip",
            Variant::MemAe => "memae",
            Variant::Daad => "daad",
            Variant::DaadPlus => "daad+",
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Variant {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let v = match s.to_ascii_lowercase().as_str() {
            "ae" => Variant::Ae,
            "ae-skip" | "ae+skip" | "aeskip" => Variant::AeSkip,
            "memae" | "memae*" => Variant::MemAe,
            "daad" => Variant::Daad,
            "daad+" | "daad-plus" | "daadplus" => Variant::DaadPlus,
            other => {
                return Err(Error::InvalidConfig(format!(
                    "unknown variant `{other}`: use one of ae, ae-skip, memae, daad, daad+"
                )))
            }
        };
        Ok(v)
    }
}

/// Loss weights of L = rec L_rec + adv L_adv + ali L_ali (paper: 50, 0.5, 0.5); 0 turns a loss off.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossWeights {
    /// Weight of the reconstruction MSE.
    pub rec: f64,
    /// Weight of the generator's adversarial (non-saturating) loss.
    pub adv: f64,
    /// Weight of the feature alignment MSE on f_D.
    pub ali: f64,
}

impl LossWeights {
    /// The paper's weights with only the reconstruction loss on.
    pub const REC_ONLY: LossWeights = LossWeights { rec: 50.0, adv: 0.0, ali: 0.0 };
    /// The paper's weights (section 4.1): 50, 0.5, 0.5.
    pub const PAPER: LossWeights = LossWeights { rec: 50.0, adv: 0.5, ali: 0.5 };
}

/// How a squared difference is reduced to one number per image (L_rec, L_ali, R and L).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum LossReduction {
    /// **(choice, default for reconstruction-only training)** the mean of the squared
    /// differences over all elements: keeps the loss independent of the image size, so one
    /// learning rate fits every preset.
    #[default]
    Mean,
    /// The paper's distance ||a - b||_2 per image (eq. 4, 6): the square root of the sum of
    /// squares; training losses average it over the batch.
    L2,
}

impl LossReduction {
    /// The default for a loss mix **(choice, by the preset sweep in docs/ARCHITECTURE.md)**: the
    /// paper's L2 distance when the adversarial or alignment loss is on (their 50 / 0.5 / 0.5
    /// weights balance against it; with the mean DAAD+ lost to DAAD on both synthetic
    /// generators), the mean of squares for reconstruction alone.
    pub fn for_losses(losses: &LossWeights) -> Self {
        if losses.adv > 0.0 || losses.ali > 0.0 {
            LossReduction::L2
        } else {
            LossReduction::Mean
        }
    }

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            LossReduction::Mean => "mean",
            LossReduction::L2 => "l2",
        }
    }
}

/// How the division rate r of the config becomes a rate at each scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum DivisionRule {
    /// **(default)** r x r blocks at every scale, whatever the image size (the paper's relative
    /// grid), clamped to one-pixel blocks where a map is smaller than r.
    #[default]
    PaperGrid,
    /// Keep the paper's block sides in feature pixels (at 256 px with rate r: 128/r, 64/r,
    /// 32/r, 16/r, i.e. 16/8/4/2 px for r = 8) at any image size; a map smaller than its block
    /// is one block. On small images this keeps f3 and f4 from becoming per-pixel memory.
    PaperBlocks,
}

impl DivisionRule {
    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            DivisionRule::PaperGrid => "paper-grid",
            DivisionRule::PaperBlocks => "paper-blocks",
        }
    }
}

/// The paper's image side, from which [`DivisionRule::PaperBlocks`] takes its block sizes.
pub const PAPER_IMAGE_SIZE: usize = 256;

/// Everything needed to rebuild a model exactly (stored in a run's `config.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// The variant this config started from (a label; the fields below are what is built).
    pub variant: Variant,
    /// Input height = width in pixels; a multiple of 16.
    pub image_size: usize,
    /// Input channels (3: grey images are expanded by the data crate).
    pub in_channels: usize,
    /// Channels of f1; f2..f4 double it (64 -> 64, 128, 256, 512).
    pub base_channels: usize,
    /// Block memory settings, the same at every scale (rates are clamped per scale, see [`ModelConfig::scale_rates`]).
    pub memory: MemoryConfig,
    /// Which encoder features f1..f4 pass through a memory bank (one bank each, never shared).
    pub memory_scales: [bool; 4],
    /// UNet skips: decoder input at scales 1..3 concatenated with (memory of) f1..f3.
    pub skips: bool,
    /// Build the DCGAN discriminator (needed by L_adv, L_ali and the score L).
    pub discriminator: bool,
    /// Loss weights (ablation knob of Tables 3 and 5).
    pub losses: LossWeights,
    /// Score weight g in A = g R + (1 - g) L (paper: 0.9; 1 = R only, 0 = L only).
    pub gamma: f64,
    /// Reduction of L_rec, L_ali, R and L (absent in older configs: mean, as they were trained).
    #[serde(default)]
    pub loss_reduction: LossReduction,
    /// How the division rate applies per scale (absent in older configs: the paper's grid).
    #[serde(default)]
    pub division_rule: DivisionRule,
}

impl ModelConfig {
    /// The design table's settings for a variant at an image size (N = 500, paper weights).
    pub fn for_variant(variant: Variant, image_size: usize) -> Self {
        let mut memory = MemoryConfig {
            n_items: 500,
            rates: Rates { h: 8, w: 8, c: 1 },
            ..MemoryConfig::default()
        };
        let (skips, memory_scales, discriminator, losses, gamma) = match variant {
            Variant::Ae => (false, [false; 4], false, LossWeights::REC_ONLY, 1.0),
            Variant::AeSkip => (true, [false; 4], false, LossWeights::REC_ONLY, 1.0),
            Variant::MemAe => {
                memory.rates = Rates { h: 16, w: 16, c: 1 };
                (false, [false, false, false, true], false, LossWeights::REC_ONLY, 1.0)
            }
            Variant::Daad => (true, [true; 4], false, LossWeights::REC_ONLY, 1.0),
            Variant::DaadPlus => (true, [true; 4], true, LossWeights::PAPER, 0.9),
        };
        ModelConfig {
            variant,
            image_size,
            in_channels: 3,
            base_channels: 64,
            memory,
            memory_scales,
            skips,
            discriminator,
            losses,
            gamma,
            loss_reduction: LossReduction::for_losses(&losses),
            division_rule: DivisionRule::PaperGrid,
        }
    }

    /// Whether any adversarially learned part is on (then the paper's lr is 2e-4).
    pub fn adversarial(&self) -> bool {
        self.discriminator && (self.losses.adv > 0.0 || self.losses.ali > 0.0)
    }

    /// Channels of f1..f4.
    pub fn channels(&self) -> [usize; 4] {
        let c = self.base_channels;
        [c, 2 * c, 4 * c, 8 * c]
    }

    /// Side of f1..f4 in pixels (size/2 .. size/16).
    pub fn feature_sizes(&self) -> [usize; 4] {
        let s = self.image_size;
        [s / 2, s / 4, s / 8, s / 16]
    }

    /// Division rates used at scale `l` (0-based), by [`ModelConfig::division_rule`]. Paper
    /// grid: the configured rates clamped to the feature map (choice, DESIGN.md "Small images"):
    /// a map smaller than the rate gets one-pixel blocks. Paper blocks: as many blocks as the
    /// paper's block side fits into the map (at least one; a divisor of the side).
    pub fn scale_rates(&self, l: usize) -> Rates {
        let side = self.feature_sizes()[l];
        let ch = self.channels()[l];
        let r = self.memory.rates;
        let spatial = |rate: usize| match self.division_rule {
            DivisionRule::PaperGrid => rate.min(side),
            DivisionRule::PaperBlocks => {
                let paper_side = PAPER_IMAGE_SIZE >> (l + 1);
                let block = (paper_side / rate.max(1)).max(1);
                let want = (side / block).max(1);
                // The largest divisor of the side not above the wanted count.
                (1..=want).rev().find(|k| side % k == 0).unwrap_or(1)
            }
        };
        Rates { h: spatial(r.h), w: spatial(r.w), c: r.c.min(ch) }
    }

    /// Block side in feature pixels at each scale with memory (`None` where a scale has none).
    pub fn block_sizes(&self) -> [Option<usize>; 4] {
        let sides = self.feature_sizes();
        std::array::from_fn(|l| self.memory_scales[l].then(|| sides[l] / self.scale_rates(l).h))
    }

    /// One line for a training banner: `blocks f1 4 px (r 8), f2 2 px (r 8), ... (paper-grid)`.
    pub fn describe_blocks(&self) -> String {
        let sides = self.feature_sizes();
        let parts: Vec<String> = (0..4)
            .filter(|&l| self.memory_scales[l])
            .map(|l| {
                let r = self.scale_rates(l);
                format!("f{} {} px (r {})", l + 1, sides[l] / r.h, r.h)
            })
            .collect();
        if parts.is_empty() {
            return "no memory".into();
        }
        format!(
            "memory blocks {} ({}, {} similarity, temperature {})",
            parts.join(", "),
            self.division_rule.name(),
            self.memory.similarity.name(),
            self.memory.temperature
        )
    }

    /// Checks sizes and wiring; errors say what to change.
    pub fn validate(&self) -> Result<()> {
        if self.image_size == 0 || self.image_size % 16 != 0 {
            return Err(Error::ImageSize(self.image_size));
        }
        if self.in_channels == 0 || self.base_channels == 0 {
            return Err(Error::InvalidConfig(
                "in_channels and base_channels must be positive".into(),
            ));
        }
        if !self.skips && self.memory_scales[..3].iter().any(|&m| m) {
            return Err(Error::InvalidConfig(
                "memory on f1..f3 needs skips (without skips only the bottleneck f4 reaches the decoder)".into(),
            ));
        }
        let uses_d = self.losses.adv > 0.0 || self.losses.ali > 0.0 || self.gamma < 1.0;
        if uses_d && !self.discriminator {
            return Err(Error::InvalidConfig(format!(
                "losses adv={} ali={} and gamma={} need the discriminator: set discriminator = true",
                self.losses.adv, self.losses.ali, self.gamma
            )));
        }
        if !(0.0..=1.0).contains(&self.gamma) {
            return Err(Error::InvalidConfig(format!("gamma {} is outside [0, 1]", self.gamma)));
        }
        let r = self.memory.rates;
        if self.memory_scales.iter().any(|&m| m)
            && (r.h == 0 || r.w == 0 || r.c == 0 || self.memory.n_items == 0)
        {
            return Err(Error::InvalidConfig(format!(
                "memory rates {r:?} and size N={} must be positive",
                self.memory.n_items
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variant_names_round_trip() {
        for v in Variant::ALL {
            assert_eq!(v.name().parse::<Variant>().unwrap(), v);
            let json = serde_json::to_string(&v).unwrap();
            assert_eq!(json, format!("\"{}\"", v.name()));
        }
        assert!("vae".parse::<Variant>().is_err());
    }

    #[test]
    fn table_settings() {
        let m = ModelConfig::for_variant(Variant::MemAe, 256);
        assert!(!m.skips && m.memory_scales == [false, false, false, true]);
        assert_eq!(m.memory.rates, Rates { h: 16, w: 16, c: 1 });
        let d = ModelConfig::for_variant(Variant::DaadPlus, 256);
        assert!(d.skips && d.discriminator && d.memory.n_items == 500 && d.gamma == 0.9);
        assert_eq!(d.scale_rates(3), Rates { h: 8, w: 8, c: 1 });
        let small = ModelConfig::for_variant(Variant::Daad, 32);
        assert_eq!(small.scale_rates(3), Rates { h: 2, w: 2, c: 1 });
        for v in Variant::ALL {
            ModelConfig::for_variant(v, 64).validate().unwrap();
        }
        assert_eq!(small.block_sizes(), [Some(2), Some(1), Some(1), Some(1)]);
        assert!(matches!(
            ModelConfig::for_variant(Variant::Ae, 40).validate(),
            Err(Error::ImageSize(40))
        ));
    }

    #[test]
    fn paper_blocks_keep_the_paper_block_sides() {
        let mut m = ModelConfig::for_variant(Variant::Daad, 256);
        m.division_rule = DivisionRule::PaperBlocks;
        assert_eq!(m.block_sizes(), [Some(16), Some(8), Some(4), Some(2)]);
        m.image_size = 64;
        // Maps 32/16/8/4 with blocks 16/8/4/2: two blocks a side everywhere.
        assert_eq!(m.block_sizes(), [Some(16), Some(8), Some(4), Some(2)]);
        assert_eq!(m.scale_rates(3), Rates { h: 2, w: 2, c: 1 });
        m.image_size = 32;
        // Maps 16/8/4/2: each is one block of the whole map.
        assert_eq!(m.block_sizes(), [Some(16), Some(8), Some(4), Some(2)]);
        assert_eq!(m.scale_rates(0), Rates { h: 1, w: 1, c: 1 });
        m.image_size = 48;
        // Maps 24/12/6/3, blocks 16/8/4/2: one block (24/16 rounds down to 1) per side.
        assert_eq!(m.scale_rates(0).h, 1);
        m.division_rule = DivisionRule::PaperGrid;
        m.image_size = 64;
        assert_eq!(m.block_sizes(), [Some(4), Some(2), Some(1), Some(1)]);
        assert!(m.describe_blocks().contains("f4 1 px (r 4)"), "{}", m.describe_blocks());
    }

    #[test]
    fn older_configs_load_with_the_defaults() {
        let m = ModelConfig::for_variant(Variant::Daad, 64);
        let mut v = serde_json::to_value(&m).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("loss_reduction");
        o.remove("division_rule");
        let back: ModelConfig = serde_json::from_value(v).unwrap();
        assert_eq!(back, m);
        assert_eq!(serde_json::to_value(DivisionRule::PaperBlocks).unwrap(), "paper-blocks");
    }
}
