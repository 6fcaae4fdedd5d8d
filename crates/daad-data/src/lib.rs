//! daad-data: every way data gets into the Divide-and-Assemble detector.
//!
//! - [`mvtec`]: the MVTec AD categories and an indexer for any folder in MVTec layout, with
//!   validation errors that name the offending file; [`mvtec::index_train_only`] for training.
//! - [`Preprocess`]: PNG/JPEG decoding, resizing to a square size, CHW f32 in [-1, 1], masks in
//!   {0, 1}, parallel decoding and an on-disk safetensors cache.
//! - [`Batcher`]: seeded, shuffled batches with seeded random flips, deterministic per epoch.
//! - [`synth`]: deterministic synthetic defect datasets in MVTec layout from two generators
//!   (classic scenes, Perlin noise): the test fixture and a benchmark that tells variants apart.
//! - [`download`]: resumable, checksummed downloads and safe archive extraction (also from the
//!   Hugging Face Hub); [`mnist`] and [`cifar`]: the one-class sets of the paper's Table 2.
//!
//! ```no_run
//! use std::path::Path;
//! use daad_data::{mvtec, synth, Batcher, Preprocess};
//!
//! # fn main() -> daad_data::Result<()> {
//! let root = Path::new("/tmp/synth");
//! synth::generate(root, &synth::SynthConfig { size: 64, ..Default::default() })?;
//! let index = mvtec::index_category(root, "cap")?;
//! let images = Preprocess::new(64).load_images(&index.train_paths(), None)?;
//! let batcher = Batcher::new(images, 8, 42).flips(true, true);
//! for batch in batcher.epoch(0, &candle_core::Device::Cpu) {
//!     let batch = batch?; // (8, 3, 64, 64)
//! #   let _ = batch;
//! }
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod batch;
pub mod cifar;
pub mod download;
mod error;
pub mod io;
pub mod mnist;
pub mod mvtec;
pub mod oneclass;
mod preprocess;
pub mod synth;

pub use batch::Batcher;
pub use error::{Error, Result};
pub use mvtec::{CategoryIndex, Label, Sample};
pub use oneclass::{OneClassSet, RawImages};
pub use preprocess::{Preprocess, IMAGE_FILTER, MAX_DECODE_BYTES};
