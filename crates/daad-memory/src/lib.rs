//! Block-wise memory of "Divide-and-Assemble" (Hou et al., ICCV 2021, section 3.1.2).
//!
//! A feature map f (B, C, H, W) is divided into r_h x r_w x r_c blocks ([`divide`]); each block
//! (a query of dimension D) addresses a learned bank of N items by a softmax over cosine
//! similarities; weights below 1/N are dropped (and by default the rest renormalised); the
//! query is replaced by the weighted mix of items, and the blocks are put back ([`assemble`]).
//!
//! Three backends sit behind [`sparse_attention`] (see [`Backend`]): composed candle ops
//! ([`reference`]), and one fused custom op with its own backward (module `op`) whose CPU
//! kernels live in `cpu/` and whose CUDA kernels (feature `cuda`) live in `cuda.rs`. [`BlockMemory`] is the module with the bank as a candle `Var`.
//!
//! ```
//! use candle_core::{DType, Device, Module, Tensor};
//! use candle_nn::{VarBuilder, VarMap};
//! use daad_memory::{BlockMemory, MemoryConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let vm = VarMap::new();
//! let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
//! let mem = BlockMemory::new(16, 32, 32, &MemoryConfig::default(), vb.pp("mem"))?;
//! let f = Tensor::randn(0f32, 1.0, (2, 16, 32, 32), &Device::Cpu)?;
//! let (out, weights) = mem.forward_with_weights(&f)?;
//! assert_eq!(out.dims(), f.dims());
//! assert_eq!(weights.dims(), &[2 * 64, 500]);
//! let _same = mem.forward(&f)?;
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

mod attention;
mod block_memory;
mod config;
mod cpu;
#[cfg(feature = "cuda")]
mod cuda;
pub mod diagnostics;
mod divide;
mod error;
mod op;
pub mod reference;

pub use attention::{resolve_backend, sparse_attention};
pub use block_memory::BlockMemory;
pub use config::{Backend, MemoryConfig, Rates, Shrink, Similarity};
/// The precision of the forward products ([`BlockMemory::set_precision`]), daad-nn's.
pub use daad_nn::Precision;
pub use diagnostics::{diagnostics, DiagnosticsAccumulator, MemoryDiagnostics, ScaleDiagnostics};
pub use divide::{assemble, divide};
pub use error::{Error, Result};
