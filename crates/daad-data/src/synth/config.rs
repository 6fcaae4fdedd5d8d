//! What to generate: the category and defect names and [`SynthConfig`] with its checks.

use super::scene::{Generator, Kind};
use crate::error::{Error, Result};

/// The categories of the classic generator (the default set): textures `weave`, `grain`;
/// objects `cap`, `nut`.
pub const SYNTH_CATEGORIES: &[&str] = &["weave", "grain", "cap", "nut"];

/// The categories of the Perlin-noise generator: texture `marble`, object `pebble`.
pub const PERLIN_CATEGORIES: &[&str] = &["marble", "pebble"];

/// Every category either generator knows.
pub const ALL_CATEGORIES: &[&str] = &["weave", "grain", "cap", "nut", "marble", "pebble"];

/// The classic generator's defect kinds, which are also its test/ground-truth folder names.
pub const DEFECTS: [&str; 4] = ["scratch", "hole", "stain", "missing"];

/// The Perlin generator's defect kinds (folder names): foreign texture blended through a Perlin
/// mask, a colour shift, a smoothed (detail-less) patch and ridged-noise cracks.
pub const PERLIN_DEFECTS: [&str; 4] = ["blend", "tint", "smooth", "crack"];

/// Name of the marker file that identifies a folder written by this generator.
pub const MARKER: &str = ".daad-synth.json";

/// The defect folder names of `category`, or `None` for an unknown category.
pub fn defects_of(category: &str) -> Option<&'static [&'static str; 4]> {
    Kind::from_name(category).map(Kind::defects)
}

/// The generator that draws `category`, or `None` for an unknown category.
pub fn generator_of(category: &str) -> Option<Generator> {
    Kind::from_name(category).map(Kind::generator)
}

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SynthConfig {
    /// Categories to write (from [`ALL_CATEGORIES`]).
    pub categories: Vec<String>,
    /// Side length of the square images in pixels.
    pub size: usize,
    /// Seed of everything random.
    pub seed: u64,
    /// Images in `train/good`.
    pub n_train: usize,
    /// Images in `test/good`.
    pub n_test_good: usize,
    /// Defect images in `test/<defect>`, spread round-robin over the four defect kinds.
    pub n_test_defect: usize,
}

impl Default for SynthConfig {
    /// The classic categories at 256 px with 100 good and 100 defective test images each, so
    /// that one test image moves image AUROC by at most 0.01 (1/100 of the normal or anomalous
    /// images); 60 training images.
    fn default() -> Self {
        SynthConfig {
            categories: SYNTH_CATEGORIES.iter().map(|s| s.to_string()).collect(),
            size: 256,
            seed: 0,
            n_train: 60,
            n_test_good: 100,
            n_test_defect: 100,
        }
    }
}

impl SynthConfig {
    /// Number of image files (masks excluded) this config writes.
    pub fn total_images(&self) -> usize {
        self.categories.len() * (self.n_train + self.n_test_good + self.n_test_defect)
    }

    /// Checks sizes, counts and category names; returns each category with its kind.
    pub(super) fn check(&self) -> Result<Vec<(String, Kind)>> {
        if self.size < 8 {
            return Err(Error::InvalidArgument(format!(
                "synth size {} is too small; use at least 8 (e.g. 64 or 256)",
                self.size
            )));
        }
        if self.size > 4096 {
            return Err(Error::InvalidArgument(format!(
                "synth size {} is too large; use at most 4096",
                self.size
            )));
        }
        if self.n_train == 0 || self.n_test_good + self.n_test_defect == 0 {
            return Err(Error::InvalidArgument(
                "synth needs at least one training image and one test image".into(),
            ));
        }
        if self.categories.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "no categories given; choose from {}",
                ALL_CATEGORIES.join(", ")
            )));
        }
        self.categories
            .iter()
            .map(|c| {
                let kind = Kind::from_name(c).ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "unknown synth category `{c}`; choose from {} (classic) or {} (Perlin noise)",
                        SYNTH_CATEGORIES.join(", "),
                        PERLIN_CATEGORIES.join(", ")
                    ))
                })?;
                Ok((c.clone(), kind))
            })
            .collect()
    }
}
