//! daad-model: the networks of Divide-and-Assemble (Hou et al., ICCV 2021, section 3.1).
//!
//! A DCGAN-style encoder gives features f1..f4 (S/2..S/16); each encoder->decoder connection
//! passes through its own block-wise memory ([`daad_memory::BlockMemory`]); the decoder mirrors
//! the encoder with UNet skips; a DCGAN discriminator gives f_D for L_ali and the score L.
//! [`ModelConfig`] rebuilds a model exactly; [`Variant`] names the paper's variants. The tensor-level scores R(x), L(x)
//! and the error map are in [`score`] (their calibration is daad-eval's). Losses and the training loop live in daad-train.
//!
//! ```no_run
//! use daad_model::{DaadModel, ModelConfig, Variant};
//! let cfg = ModelConfig::for_variant(Variant::Daad, 64);
//! let model = DaadModel::new(&cfg, 0, &candle_core::Device::Cpu)?;
//! let x = candle_core::Tensor::zeros((2, 3, 64, 64), candle_core::DType::F32, &candle_core::Device::Cpu)?;
//! let out = model.infer(&x)?;
//! assert_eq!(out.reconstruction.dims(), &[2, 3, 64, 64]);
//! # Ok::<(), daad_model::Error>(())
//! ```
#![warn(missing_docs)]

mod config;
mod discriminator;
mod error;
mod generator;
pub mod io;
mod model;
mod output;
pub mod score;

pub use config::{
    DivisionRule, LossReduction, LossWeights, ModelConfig, Variant, PAPER_IMAGE_SIZE,
};
pub use daad_memory::{DiagnosticsAccumulator, MemoryDiagnostics, ScaleDiagnostics, Similarity};
pub use discriminator::Discriminator;
pub use error::{Error, Result};
pub use generator::{Generator, BN_EPS, LEAKY};
pub use model::{DaadModel, WEIGHTS_FORMAT, WEIGHTS_FORMAT_VERSION};
pub use output::AnomalyOutput;
