//! The candle custom ops behind [`crate::Conv2d`] and [`crate::ConvTranspose2d`] on CPU f32.
//!
//! Two ops, each the other's input gradient (with the same weight): [`Im2colGemm`]
//! (image -> columns, `W @ im2col(image)`: the convolution) and [`GemmCol2im`] (columns ->
//! image, `col2im(W^T @ columns)`: the transposed convolution). A `Conv2d` is an `Im2colGemm`
//! whose input gradient is a `GemmCol2im`; a `ConvTranspose2d` is a `GemmCol2im` whose input
//! gradient is an `Im2colGemm`. Both share the weight gradient ([`WeightGradOp`], image side
//! against column side) and the bias gradient ([`BiasGradOp`]); candle's own convolutions are
//! never called. The kernels are in [`crate::im2col`].

use crate::im2col::{channel_sum, gemm_col2im, im2col_gemm, weight_grad, ConvParams, Geom};
use crate::Precision;
use candle_core::{
    bail, CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor,
};

/// A contiguous f32 view of a CPU storage.
fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else { bail!("{op}: f32 input expected") };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => bail!("{op}: contiguous input expected"),
    }
}

fn dims4(l: &Layout, op: &str, what: &str) -> Result<(usize, usize, usize, usize)> {
    match l.dims() {
        &[a, b, c, d] => Ok((a, b, c, d)),
        d => bail!("{op}: {what} must be 4-D, got {d:?}"),
    }
}

type Arg<'a> = (&'a CpuStorage, &'a Layout);

/// Image `(B,C,H,W)`, weight `(M,C,k,k)`, optional bias `(M,)` -> columns `(B,M,OH,OW)`.
/// The forward of `Conv2d` (weight `(out, in, k, k)`) and the input gradient of
/// `ConvTranspose2d` (weight `(in, out, k, k)`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Im2colGemm {
    pub p: ConvParams,
    /// (OH, OW) of the column side.
    pub cols_hw: (usize, usize),
    /// Precision of the forward product (the gradients are always f32).
    pub prec: Precision,
}

/// Columns `(B,M,OH,OW)`, weight `(M,C,k,k)`, optional bias `(C,)` -> image `(B,C,H,W)`.
/// The forward of `ConvTranspose2d` and the input gradient of `Conv2d`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GemmCol2im {
    pub p: ConvParams,
    /// (H, W) of the image side (not implied by the columns: it depends on output padding).
    pub img_hw: (usize, usize),
    /// Precision of the forward product (the gradients are always f32).
    pub prec: Precision,
}

impl Im2colGemm {
    const NAME: &'static str = "daad-im2col-gemm";
    const NAME_BIAS: &'static str = "daad-im2col-gemm-bias";

    fn fwd(&self, x: Arg<'_>, w: Arg<'_>, b: Option<Arg<'_>>) -> Result<(CpuStorage, Shape)> {
        let name = Self::NAME;
        let (bs, c, h, wd) = dims4(x.1, name, "image")?;
        let (m, cw, k, _) = dims4(w.1, name, "weight")?;
        if cw != c || k != self.p.k {
            bail!("{name}: weight {:?} does not fit image {:?}", w.1.dims(), x.1.dims())
        }
        let g = Geom { p: self.p, c, h, w: wd, oh: self.cols_hw.0, ow: self.cols_hw.1 };
        let bias = b.map(|(s, l)| f32_slice(s, l, name)).transpose()?;
        let mut out = vec![0f32; bs * m * g.cols()];
        let (xs, ws) = (f32_slice(x.0, x.1, name)?, f32_slice(w.0, w.1, name)?);
        im2col_gemm(&g, bs, xs, ws, m, bias, &mut out, self.prec);
        Ok((CpuStorage::F32(out), Shape::from((bs, m, g.oh, g.ow))))
    }

    /// Gradients of the image (a [`GemmCol2im`]) and the weight; each is skipped when its
    /// tensor does not need one (e.g. the network's input image), which saves a whole gemm.
    fn grads(&self, x: &Tensor, w: &Tensor, grad: &Tensor) -> Result<[Option<Tensor>; 2]> {
        let grad = grad.contiguous()?;
        let (_, _, h, wd) = x.dims4()?;
        let op = GemmCol2im { p: self.p, img_hw: (h, wd), prec: Precision::F32 };
        let gx = x.track_op().then(|| grad.apply_op2_no_bwd(w, &op)).transpose()?;
        let op = WeightGradOp { p: self.p };
        let gw = w.track_op().then(|| x.apply_op2_no_bwd(&grad, &op)).transpose()?;
        Ok([gx, gw])
    }
}

impl GemmCol2im {
    const NAME: &'static str = "daad-gemm-col2im";
    const NAME_BIAS: &'static str = "daad-gemm-col2im-bias";

    fn fwd(&self, x: Arg<'_>, w: Arg<'_>, b: Option<Arg<'_>>) -> Result<(CpuStorage, Shape)> {
        let name = Self::NAME;
        let (bs, m, oh, ow) = dims4(x.1, name, "columns")?;
        let (mw, c, k, _) = dims4(w.1, name, "weight")?;
        if mw != m || k != self.p.k {
            bail!("{name}: weight {:?} does not fit columns {:?}", w.1.dims(), x.1.dims())
        }
        let g = Geom { p: self.p, c, h: self.img_hw.0, w: self.img_hw.1, oh, ow };
        let bias = b.map(|(s, l)| f32_slice(s, l, name)).transpose()?;
        let mut out = vec![0f32; bs * g.img_len()];
        let (xs, ws) = (f32_slice(x.0, x.1, name)?, f32_slice(w.0, w.1, name)?);
        gemm_col2im(&g, bs, xs, ws, m, bias, &mut out, self.prec);
        Ok((CpuStorage::F32(out), Shape::from((bs, c, g.h, g.w))))
    }

    /// Gradients of the columns (an [`Im2colGemm`]) and the weight, each skipped when its
    /// tensor does not need one.
    fn grads(&self, x: &Tensor, w: &Tensor, grad: &Tensor) -> Result<[Option<Tensor>; 2]> {
        let grad = grad.contiguous()?;
        let (_, _, oh, ow) = x.dims4()?;
        let op = Im2colGemm { p: self.p, cols_hw: (oh, ow), prec: Precision::F32 };
        let gx = x.track_op().then(|| grad.apply_op2_no_bwd(w, &op)).transpose()?;
        let op = WeightGradOp { p: self.p };
        let gw = w.track_op().then(|| grad.apply_op2_no_bwd(x, &op)).transpose()?;
        Ok([gx, gw])
    }
}

/// The candle op traits of one of the two ops: without bias (`CustomOp2`) and with a bias
/// (`CustomOp3`, whose gradient is the sum of the output gradient over all but the channel).
macro_rules! conv_op {
    ($op:ty) => {
        impl CustomOp2 for $op {
            fn name(&self) -> &'static str {
                <$op>::NAME
            }
            fn cpu_fwd(
                &self,
                s1: &CpuStorage,
                l1: &Layout,
                s2: &CpuStorage,
                l2: &Layout,
            ) -> Result<(CpuStorage, Shape)> {
                self.fwd((s1, l1), (s2, l2), None)
            }
            fn bwd(
                &self,
                x: &Tensor,
                w: &Tensor,
                _res: &Tensor,
                grad: &Tensor,
            ) -> Result<(Option<Tensor>, Option<Tensor>)> {
                let [gx, gw] = self.grads(x, w, grad)?;
                Ok((gx, gw))
            }
        }

        impl CustomOp3 for $op {
            fn name(&self) -> &'static str {
                <$op>::NAME_BIAS
            }
            fn cpu_fwd(
                &self,
                s1: &CpuStorage,
                l1: &Layout,
                s2: &CpuStorage,
                l2: &Layout,
                s3: &CpuStorage,
                l3: &Layout,
            ) -> Result<(CpuStorage, Shape)> {
                self.fwd((s1, l1), (s2, l2), Some((s3, l3)))
            }
            fn bwd(
                &self,
                x: &Tensor,
                w: &Tensor,
                _b: &Tensor,
                _res: &Tensor,
                grad: &Tensor,
            ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
                let [gx, gw] = self.grads(x, w, grad)?;
                let gb = grad.contiguous()?.apply_op1_no_bwd(&BiasGradOp)?;
                Ok((gx, gw, Some(gb)))
            }
        }
    };
}

conv_op!(Im2colGemm);
conv_op!(GemmCol2im);

/// Weight gradient of both ops: `(image (B,C,H,W), columns (B,M,OH,OW)) -> dW (M,C,k,k)`.
struct WeightGradOp {
    p: ConvParams,
}

impl CustomOp2 for WeightGradOp {
    fn name(&self) -> &'static str {
        "daad-conv-weight-grad"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let name = self.name();
        let (bs, c, h, w) = dims4(l1, name, "image")?;
        let (b2, m, oh, ow) = dims4(l2, name, "columns")?;
        if b2 != bs {
            bail!("{name}: batch mismatch {bs} vs {b2}")
        }
        let g = Geom { p: self.p, c, h, w, oh, ow };
        let dw = weight_grad(&g, bs, f32_slice(s1, l1, name)?, f32_slice(s2, l2, name)?, m);
        let k = self.p.k;
        Ok((CpuStorage::F32(dw), Shape::from((m, c, k, k))))
    }
}

/// Bias gradient of both ops: `grad (B,C,H,W) -> (C,)`, the sum over all but the channel.
struct BiasGradOp;

impl CustomOp1 for BiasGradOp {
    fn name(&self) -> &'static str {
        "daad-conv-bias-grad"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let name = self.name();
        let (bs, c, _, _) = dims4(l, name, "grad")?;
        let v = channel_sum(f32_slice(s, l, name)?, bs, c);
        Ok((CpuStorage::F32(v), Shape::from(c)))
    }
}
