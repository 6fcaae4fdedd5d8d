//! `daad synth`: write the synthetic defect dataset in MVTec AD layout.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use daad_data::synth::{self, SynthConfig};

/// Arguments of `daad synth`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Folder to write `<category>/train|test|ground_truth` into.
    #[arg(long)]
    pub out: PathBuf,
    /// Comma-separated categories: weave, grain, cap, nut (shapes), marble, pebble (Perlin noise)
    /// [default: weave, grain, cap, nut].
    #[arg(long, value_delimiter = ',')]
    pub categories: Option<Vec<String>>,
    /// Side length of the square images in pixels.
    #[arg(long, default_value_t = SynthConfig::default().size)]
    pub size: usize,
    /// Seed; the same seed writes the same files.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Training images per category.
    #[arg(long, default_value_t = SynthConfig::default().n_train)]
    pub n_train: usize,
    /// Normal test images per category.
    #[arg(long, default_value_t = SynthConfig::default().n_test_good)]
    pub n_test_good: usize,
    /// Defect test images per category (spread over the category's four defect kinds).
    #[arg(long, default_value_t = SynthConfig::default().n_test_defect)]
    pub n_test_defect: usize,
}

/// Runs `daad synth`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let cfg = SynthConfig {
        categories: args
            .categories
            .unwrap_or_else(|| synth::SYNTH_CATEGORIES.iter().map(|s| s.to_string()).collect()),
        size: args.size,
        seed: args.seed,
        n_train: args.n_train,
        n_test_good: args.n_test_good,
        n_test_defect: args.n_test_defect,
    };
    let bar = indicatif::ProgressBar::new(cfg.total_images() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} images ({eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message("synth");
    let start = Instant::now();
    synth::generate_with_progress(&args.out, &cfg, &|| bar.inc(1))
        .with_context(|| format!("writing the synthetic dataset to {}", args.out.display()))?;
    bar.finish_and_clear();
    println!(
        "wrote {} categories ({}) to {} in {:.1}s: per category {} train/good, {} test/good, {} defect images \
         ({}) with masks, {}x{} px, seed {}",
        cfg.categories.len(),
        cfg.categories.join(", "),
        args.out.display(),
        start.elapsed().as_secs_f64(),
        cfg.n_train,
        cfg.n_test_good,
        cfg.n_test_defect,
        synth::DEFECTS.join(", "),
        cfg.size,
        cfg.size,
        cfg.seed
    );
    println!("next: daad train --data {} --category {}", args.out.display(), cfg.categories[0]);
    Ok(())
}
