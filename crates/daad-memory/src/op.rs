//! The fused sparse-attention op and its dispatch: one candle custom op whose `cpu_fwd` and
//! `cuda_fwd` call the kernels of [`crate::cpu`] and `crate::cuda`, and its backward op.
//!
//! The forward op returns one flat packed tensor `[x_out | w | s]`: the mixed queries (or,
//! for the block op, the assembled map), the shrunk weights (M, N) and the cosine similarities
//! (M, N). `s` is kept because the softmax backward needs p = softmax(s/T) at the dropped
//! entries too, and s itself for the normalisation backward; saving it (M*N, small next to
//! M*D) avoids recomputing the (M, N, D) similarity product in backward. Callers see contiguous
//! views (narrow + reshape) of `x_out` and `w`, so no copies are made. The block input reads the
//! (B, C, H, W) map directly (gather / scatter in [`crate::divide`]'s order, CPU only) and so
//! saves the divide / assemble tensors and their backward.
//!
//! Kernels never import this module: it is the only place that knows both devices.

use candle_core::{bail, CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Storage, Tensor};

use daad_nn::Precision;

use crate::config::{Rates, Shrink};
use crate::cpu::{self, BlockGeom};
use crate::error::Result;

/// What the first input of the op is.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Input {
    /// Queries (M, D).
    Queries,
    /// A feature map (B, C, H, W) divided by the given rates inside the op (CPU only).
    Map(Rates),
}

/// Sizes (m, n, d) and the block geometry, from the layouts of the two inputs.
fn sizes(
    input: Input,
    l1: &Layout,
    l2: &Layout,
) -> candle_core::Result<((usize, usize, usize), Option<BlockGeom>)> {
    let (n, dm) = l2.shape().dims2()?;
    let (m, d, geom) = match input {
        Input::Queries => {
            let (m, d) = l1.shape().dims2()?;
            (m, d, None)
        }
        Input::Map(rates) => {
            let shape = l1.shape().dims4()?;
            let geom = BlockGeom { shape, rates };
            if rates.check(shape.1, shape.2, shape.3).is_err() {
                bail!("daad-memory fused op: {rates:?} do not divide {shape:?}")
            }
            (geom.rows(), geom.dim(), Some(geom))
        }
    };
    if d != dm {
        bail!("daad-memory fused op: item dim {d} of the input and bank ({n}, {dm}) differ")
    }
    Ok(((m, n, d), geom))
}

/// The forward custom op over (queries (M, D) or map (B, C, H, W), bank (N, D)).
pub(crate) struct AttnFwd {
    pub(crate) input: Input,
    pub(crate) shrink: Shrink,
    pub(crate) temperature: f64,
    /// Of the two forward products (CPU f32 only; the backward is always f32).
    pub(crate) precision: Precision,
}

impl CustomOp2 for AttnFwd {
    fn name(&self) -> &'static str {
        "daad-sparse-attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (mnd, geom) = sizes(self.input, l1, l2)?;
        let (m, n, _) = mnd;
        let len = l1.shape().elem_count() + 2 * m * n;
        let st = cpu::forward(
            (s1, l1),
            (s2, l2),
            mnd,
            geom,
            self.shrink,
            self.temperature,
            self.precision,
        )?;
        Ok((st, Shape::from(len)))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let Input::Queries = self.input else {
            bail!("daad-memory CUDA op: takes queries, divide the map first")
        };
        if self.precision != Precision::F32 {
            bail!("daad-memory CUDA op: bf16 products run on the CPU only")
        }
        crate::cuda::forward(s1, l1, s2, l2, self.shrink, self.temperature)
    }

    fn bwd(
        &self,
        x: &Tensor,
        bank: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let k = x.elem_count();
        let (n, d) = bank.dims2()?;
        let op = AttnBwd {
            input: self.input,
            res: res.contiguous()?,
            shrink: self.shrink,
            temperature: self.temperature,
        };
        let packed = x.apply_op3_no_bwd(bank, &grad_res.contiguous()?, &op)?;
        let gx = packed.narrow(0, 0, k)?.reshape(x.shape())?;
        let gbank = packed.narrow(0, k, n * d)?.reshape((n, d))?;
        Ok((Some(gx), Some(gbank)))
    }
}

/// The backward custom op over (input, bank, gradient of the packed output); it holds the
/// packed output of the forward and returns the flat `[d input | d bank]`.
pub(crate) struct AttnBwd {
    pub(crate) input: Input,
    pub(crate) res: Tensor,
    pub(crate) shrink: Shrink,
    pub(crate) temperature: f64,
}

impl CustomOp3 for AttnBwd {
    fn name(&self) -> &'static str {
        "daad-sparse-attention-bwd"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (mnd, geom) = sizes(self.input, l1, l2)?;
        let (m, n, d) = mnd;
        let k = l1.shape().elem_count();
        if l3.shape().elem_count() != k + 2 * m * n {
            bail!(
                "daad-memory fused op backward: gradient has {} elements, expected {}",
                l3.shape().elem_count(),
                k + 2 * m * n
            )
        }
        let (res_storage, res_layout) = self.res.storage_and_layout();
        let Storage::Cpu(rs) = &*res_storage else {
            bail!("daad-memory fused op backward: saved output is not on the CPU")
        };
        let st = cpu::backward(
            [(s1, l1), (s2, l2), (rs, res_layout), (s3, l3)],
            mnd,
            geom,
            self.shrink,
            self.temperature,
        )?;
        Ok((st, Shape::from(k + n * d)))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let Input::Queries = self.input else {
            bail!("daad-memory CUDA op backward: takes queries")
        };
        let (res_storage, res_layout) = self.res.storage_and_layout();
        let Storage::Cuda(rs) = &*res_storage else {
            bail!("daad-memory CUDA op backward: saved output is not on the GPU")
        };
        crate::cuda::backward(s1, l1, s2, l2, rs, res_layout, s3, l3, self.shrink, self.temperature)
    }
}

/// Applies the op: the packed output split into `(x_out, weights (M, N))` views.
fn apply(
    x: &Tensor,
    bank: &Tensor,
    input: Input,
    shrink: Shrink,
    temperature: f64,
    precision: Precision,
) -> Result<(Tensor, Tensor)> {
    let k = x.elem_count();
    let (n, _) = bank.dims2()?;
    let m = match input {
        Input::Queries => x.dim(0)?,
        Input::Map(rates) => x.dim(0)? * rates.blocks(),
    };
    let packed = x
        .contiguous()?
        .apply_op2(&bank.contiguous()?, AttnFwd { input, shrink, temperature, precision })?;
    let x_out = packed.narrow(0, 0, k)?.reshape(x.shape())?;
    let w = packed.narrow(0, k, m * n)?.reshape((m, n))?;
    Ok((x_out, w))
}

/// Fused sparse attention over queries (M, D), on whichever device holds them.
pub(crate) fn sparse_attention(
    q: &Tensor,
    bank: &Tensor,
    shrink: Shrink,
    temperature: f64,
) -> Result<(Tensor, Tensor)> {
    apply(q, bank, Input::Queries, shrink, temperature, Precision::F32)
}

/// Fused block memory over a CPU map (B, C, H, W): divide, attention and assemble in one op,
/// the forward products at `precision`.
pub(crate) fn block_memory(
    f: &Tensor,
    bank: &Tensor,
    rates: Rates,
    shrink: Shrink,
    temperature: f64,
    precision: Precision,
) -> Result<(Tensor, Tensor)> {
    apply(f, bank, Input::Map(rates), shrink, temperature, precision)
}
