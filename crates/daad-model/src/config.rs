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

    /// Division rates used at scale `l` (0-based): the configured rates clamped to the feature map
    /// (choice, DESIGN.md "Small images"): a map smaller than the rate gets one-pixel blocks.
    pub fn scale_rates(&self, l: usize) -> Rates {
        let side = self.feature_sizes()[l];
        let ch = self.channels()[l];
        let r = self.memory.rates;
        Rates { h: r.h.min(side), w: r.w.min(side), c: r.c.min(ch) }
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
        assert!(matches!(
            ModelConfig::for_variant(Variant::Ae, 40).validate(),
            Err(Error::ImageSize(40))
        ));
    }
}
