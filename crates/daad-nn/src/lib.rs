//! daad-nn: the layers daad's networks are built from, as candle modules that are fast on CPU.
//!
//! - [`Conv2d`] and [`ConvTranspose2d`]: candle custom ops (im2col/col2im + `gemm`, rayon over
//!   the batch) with their own backward on CPU f32; candle's own ops elsewhere. Their forward
//!   products run in f32 or, for inference, in bf16 ([`Precision`], the kernels in [`gemm`]).
//! - [`BatchNorm2d`] with PyTorch semantics and a fused activation ([`BatchNorm2d::forward_act`]).
//! - [`Adam`]: Adam/AdamW updating every parameter in place in one fused pass.
//! - [`retain_freed_memory`]: the allocator setup binaries call first (freed blocks reused).
//!
//! ```
//! use candle_core::{DType, Device, Module, ModuleT, Tensor};
//! use candle_nn::{Optimizer, VarBuilder, VarMap};
//! use daad_nn::{conv2d, batch_norm2d, Activation, Adam, Conv2dConfig, ParamsAdam};
//!
//! let vm = VarMap::new();
//! let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
//! let cfg = Conv2dConfig { padding: 1, stride: 2, dilation: 1 };
//! let conv = conv2d(3, 8, 4, cfg, false, vb.pp("conv"))?;
//! let bn = batch_norm2d(8, 1e-5, 0.1, vb.pp("bn"))?;
//! let mut opt = Adam::new(vm.all_vars(), ParamsAdam::default())?;
//! let x = Tensor::randn(0f32, 1., (2, 3, 16, 16), &Device::Cpu)?;
//! let y = bn.forward_act(&conv.forward(&x)?, true, Activation::LeakyRelu(0.2))?;
//! assert_eq!(y.dims(), &[2, 8, 8, 8]);
//! opt.backward_step(&y.sqr()?.mean_all()?)?;
//! # Ok::<(), candle_core::Error>(())
//! ```
#![warn(missing_docs)]

pub mod activation;
pub mod adam;
pub mod allocator;
pub mod batch_norm;
pub mod conv;
mod conv_ops;
pub mod conv_transpose;
pub mod error;
mod fused;
pub mod gemm;
mod im2col;
pub mod ops;
pub mod precision;

pub use activation::{activation, Activation};
pub use adam::{Adam, ParamsAdam};
pub use allocator::{retain_freed_memory, AllocatorSetup};
pub use batch_norm::{batch_norm2d, BatchNorm2d};
pub use conv::{conv2d, Conv2d, Conv2dConfig};
pub use conv_transpose::{conv_transpose2d, ConvTranspose2d, ConvTranspose2dConfig};
pub use error::{Error, Result};
pub use precision::Precision;

/// Whether this crate (the convolution kernels) was compiled with debug assertions: `cargo xtask
/// bench` reports it, since timings from such a build are not the optimised kernels' (the
/// workspace's dev profile turns them off for the hot crates; see the root Cargo.toml).
pub const KERNELS_DEBUG_ASSERTIONS: bool = cfg!(debug_assertions);
