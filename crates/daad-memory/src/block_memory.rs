//! `BlockMemory`: the bank parameter plus divide -> sparse attention -> assemble.

use candle_core::{DType, Module, Tensor};
use candle_nn::{Init, VarBuilder};
use daad_nn::Precision;

use crate::attention::{resolve_backend, sparse_attention};
use crate::config::Backend;
use crate::config::{MemoryConfig, Similarity};
use crate::divide::{assemble, divide};
use crate::error::{Error, Result};
use crate::op;

/// Block-wise memory for feature maps of one fixed (C, H, W); the bank is the var `"bank"` (N, D).
#[derive(Clone, Debug)]
pub struct BlockMemory {
    bank: Tensor,
    cfg: MemoryConfig,
    chw: (usize, usize, usize),
    item_dim: usize,
    precision: Precision,
}

impl BlockMemory {
    /// A memory for (C, H, W) = (`channels`, `height`, `width`) maps.
    ///
    /// The bank (N, D), D = (C/r_c)(H/r_h)(W/r_w), is initialised uniform in
    /// (-1/sqrt(D), 1/sqrt(D)) as in MemAE **(choice)**. Rates that do not divide the shape are
    /// a [`Error::RatesDoNotDivide`].
    pub fn new(
        channels: usize,
        height: usize,
        width: usize,
        cfg: &MemoryConfig,
        vb: VarBuilder,
    ) -> Result<Self> {
        cfg.validate()?;
        let item_dim = cfg.rates.item_dim(channels, height, width)?;
        let bound = 1.0 / (item_dim as f64).sqrt();
        let bank = vb.get_with_hints(
            (cfg.n_items, item_dim),
            "bank",
            Init::Uniform { lo: -bound, up: bound },
        )?;
        Ok(BlockMemory {
            bank,
            cfg: cfg.clone(),
            chw: (channels, height, width),
            item_dim,
            precision: Precision::F32,
        })
    }

    /// Memory output (B, C, H, W) and the addressing weights (B*Q, N) (rows in [`divide`]'s order).
    ///
    /// A non-default [`Similarity`] (dot product) runs the reference implementation on every
    /// device: the fused CPU op and the CUDA kernel compute cosine similarities only.
    pub fn forward_with_weights(&self, f: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let dims = f.dims();
        if dims.len() != 4 || (dims[1], dims[2], dims[3]) != self.chw {
            let (c, h, w) = self.chw;
            return Err(Error::Shape {
                what: "BlockMemory input",
                expected: format!("(B, {c}, {h}, {w}), the shape this memory was built for"),
                got: dims.to_vec(),
            }
            .into_candle());
        }
        let shape = (dims[0], dims[1], dims[2], dims[3]);
        if self.cfg.similarity != Similarity::Cosine {
            let q = divide(f, self.cfg.rates)?;
            let (out, w) = crate::reference::sparse_attention_with(
                &q,
                &self.bank,
                self.cfg.shrink,
                self.cfg.temperature,
                self.cfg.similarity,
            )?;
            return Ok((assemble(&out, self.cfg.rates, shape)?, w));
        }
        let backend =
            resolve_backend(self.cfg.backend, f.device(), f.dtype()).map_err(Error::into_candle)?;
        let fused = backend == Backend::FusedCpu && f.dtype() == self.bank.dtype();
        if self.precision == Precision::Bf16 && !(fused && f.dtype() == DType::F32) {
            return Err(Error::Bf16Unavailable(format!(
                "they run in the fused CPU op on f32 maps; this input is {:?} on {:?}",
                f.dtype(),
                f.device()
            ))
            .into_candle());
        }
        if fused {
            // One op reads the map directly: no divide / assemble tensors, forward or backward.
            return op::block_memory(
                f,
                &self.bank,
                self.cfg.rates,
                self.cfg.shrink,
                self.cfg.temperature,
                self.precision,
            )
            .map_err(Error::into_candle);
        }
        let q = divide(f, self.cfg.rates)?;
        let (out, w) = sparse_attention(
            &q,
            &self.bank,
            self.cfg.shrink,
            self.cfg.temperature,
            self.cfg.backend,
        )?;
        Ok((assemble(&out, self.cfg.rates, shape)?, w))
    }

    /// The precision of the forward products ([`Precision::F32`] unless set).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Sets the precision of the two forward products (similarities and mixing); the gradients
    /// stay f32. bf16 runs in the fused CPU op only: with the dot-product similarity or a
    /// reference / CUDA backend it is an [`Error::Bf16Unavailable`], as is a later forward on
    /// anything but a CPU f32 map.
    pub fn set_precision(&mut self, precision: Precision) -> Result<()> {
        if precision == Precision::Bf16 {
            if self.cfg.similarity != Similarity::Cosine {
                return Err(Error::Bf16Unavailable(format!(
                    "the {:?} similarity runs the reference implementation; use cosine or f32",
                    self.cfg.similarity
                )));
            }
            if !matches!(self.cfg.backend, Backend::Auto | Backend::FusedCpu) {
                return Err(Error::Bf16Unavailable(format!(
                    "backend {:?} computes in f32; use the fused CPU op (auto) or f32",
                    self.cfg.backend
                )));
            }
        }
        self.precision = precision;
        Ok(())
    }

    /// The bank (N, D).
    pub fn bank(&self) -> &Tensor {
        &self.bank
    }

    /// The configuration.
    pub fn config(&self) -> &MemoryConfig {
        &self.cfg
    }

    /// Item dimension D.
    pub fn item_dim(&self) -> usize {
        self.item_dim
    }
}

impl Module for BlockMemory {
    fn forward(&self, f: &Tensor) -> candle_core::Result<Tensor> {
        Ok(self.forward_with_weights(f)?.0)
    }
}
