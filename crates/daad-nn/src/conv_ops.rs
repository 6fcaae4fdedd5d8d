//! The candle custom ops behind [`crate::Conv2d`] and [`crate::ConvTranspose2d`] on CPU f32:
//! forward ops with a `bwd` whose input, weight and bias gradients are themselves fast custom ops
//! (the im2col/col2im + gemm kernels of [`crate::im2col`]), never candle's own convolutions.

use crate::im2col::{channel_sum, gemm_col2im, im2col_gemm, weight_grad, ConvParams, Geom};
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

/// Conv2d forward: `x (B,Cin,H,W)`, `w (Cout,Cin,k,k)`, optional `b (Cout,)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Conv2dOp {
    pub p: ConvParams,
    pub out_hw: (usize, usize),
}

impl Conv2dOp {
    fn fwd(
        &self,
        x: (&CpuStorage, &Layout),
        w: (&CpuStorage, &Layout),
        b: Option<(&CpuStorage, &Layout)>,
    ) -> Result<(CpuStorage, Shape)> {
        let name = "daad-conv2d";
        let (bs, c, h, wd) = dims4(x.1, name, "input")?;
        let (m, cw, k, _) = dims4(w.1, name, "weight")?;
        if cw != c || k != self.p.k {
            bail!("{name}: weight {:?} does not fit input {:?}", w.1.dims(), x.1.dims())
        }
        let g = Geom { p: self.p, c, h, w: wd, oh: self.out_hw.0, ow: self.out_hw.1 };
        let xs = f32_slice(x.0, x.1, name)?;
        let ws = f32_slice(w.0, w.1, name)?;
        let bias = b.map(|(s, l)| f32_slice(s, l, name)).transpose()?;
        let mut out = vec![0f32; bs * m * g.cols()];
        im2col_gemm(&g, bs, xs, ws, m, bias, &mut out);
        Ok((CpuStorage::F32(out), Shape::from((bs, m, g.oh, g.ow))))
    }

    /// Input and weight gradients; each is skipped when its tensor does not need one (e.g. the
    /// network's input image), which saves a whole gemm.
    fn grads(
        &self,
        x: &Tensor,
        w: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let (_, _, h, wd) = x.dims4()?;
        let op = DataGradOp { p: self.p, img_hw: (h, wd) };
        let gx = x.track_op().then(|| grad.apply_op2_no_bwd(w, &op)).transpose()?;
        let op = WeightGradOp { p: self.p };
        let gw = w.track_op().then(|| x.apply_op2_no_bwd(&grad, &op)).transpose()?;
        Ok((gx, gw))
    }
}

impl CustomOp2 for Conv2dOp {
    fn name(&self) -> &'static str {
        "daad-conv2d"
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
        self.grads(x, w, grad)
    }
}

impl CustomOp3 for Conv2dOp {
    fn name(&self) -> &'static str {
        "daad-conv2d-bias"
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
        let (gx, gw) = self.grads(x, w, grad)?;
        let gb = grad.contiguous()?.apply_op1_no_bwd(&BiasGradOp)?;
        Ok((gx, gw, Some(gb)))
    }
}

/// ConvTranspose2d forward: `x (B,Cin,H,W)`, `w (Cin,Cout,k,k)`, optional `b (Cout,)`; output
/// spatial size given explicitly (it depends on output_padding).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConvTranspose2dOp {
    pub p: ConvParams,
    pub out_hw: (usize, usize),
}

impl ConvTranspose2dOp {
    fn fwd(
        &self,
        x: (&CpuStorage, &Layout),
        w: (&CpuStorage, &Layout),
        b: Option<(&CpuStorage, &Layout)>,
    ) -> Result<(CpuStorage, Shape)> {
        let name = "daad-conv-transpose2d";
        let (bs, cin, h, wd) = dims4(x.1, name, "input")?;
        let (cw, cout, k, _) = dims4(w.1, name, "weight")?;
        if cw != cin || k != self.p.k {
            bail!("{name}: weight {:?} does not fit input {:?}", w.1.dims(), x.1.dims())
        }
        // The image side is the output (Cout, OH, OW); the column side is the input (Cin, H, W).
        let g = Geom { p: self.p, c: cout, h: self.out_hw.0, w: self.out_hw.1, oh: h, ow: wd };
        let xs = f32_slice(x.0, x.1, name)?;
        let ws = f32_slice(w.0, w.1, name)?;
        let bias = b.map(|(s, l)| f32_slice(s, l, name)).transpose()?;
        let mut out = vec![0f32; bs * g.img_len()];
        gemm_col2im(&g, bs, xs, ws, cin, bias, &mut out);
        Ok((CpuStorage::F32(out), Shape::from((bs, cout, g.h, g.w))))
    }

    /// Input and weight gradients, each skipped when its tensor does not need one.
    fn grads(
        &self,
        x: &Tensor,
        w: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let (_, _, h, wd) = x.dims4()?;
        let op = Im2colGemmOp { p: self.p, out_hw: (h, wd) };
        let gx = x.track_op().then(|| grad.apply_op2_no_bwd(w, &op)).transpose()?;
        let op = WeightGradOp { p: self.p };
        let gw = w.track_op().then(|| grad.apply_op2_no_bwd(x, &op)).transpose()?;
        Ok((gx, gw))
    }
}

impl CustomOp2 for ConvTranspose2dOp {
    fn name(&self) -> &'static str {
        "daad-conv-transpose2d"
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
        self.grads(x, w, grad)
    }
}

impl CustomOp3 for ConvTranspose2dOp {
    fn name(&self) -> &'static str {
        "daad-conv-transpose2d-bias"
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
        let (gx, gw) = self.grads(x, w, grad)?;
        let gb = grad.contiguous()?.apply_op1_no_bwd(&BiasGradOp)?;
        Ok((gx, gw, Some(gb)))
    }
}

/// Gradient kernel: `(cols (B,M,OH,OW), w (M,C,k,k)) -> image (B,C,H,W)` (col2im of W^T @ cols).
struct DataGradOp {
    p: ConvParams,
    img_hw: (usize, usize),
}

impl CustomOp2 for DataGradOp {
    fn name(&self) -> &'static str {
        "daad-conv-data-grad"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let name = self.name();
        let (bs, m, oh, ow) = dims4(l1, name, "grad")?;
        let (_, c, _, _) = dims4(l2, name, "weight")?;
        let g = Geom { p: self.p, c, h: self.img_hw.0, w: self.img_hw.1, oh, ow };
        let mut out = vec![0f32; bs * g.img_len()];
        gemm_col2im(&g, bs, f32_slice(s1, l1, name)?, f32_slice(s2, l2, name)?, m, None, &mut out);
        Ok((CpuStorage::F32(out), Shape::from((bs, c, g.h, g.w))))
    }
}

/// Gradient kernel: `(image (B,C,H,W), w (M,C,k,k)) -> cols (B,M,OH,OW)` (W @ im2col(image)).
struct Im2colGemmOp {
    p: ConvParams,
    out_hw: (usize, usize),
}

impl CustomOp2 for Im2colGemmOp {
    fn name(&self) -> &'static str {
        "daad-conv-im2col-gemm"
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
        let (m, _, _, _) = dims4(l2, name, "weight")?;
        let g = Geom { p: self.p, c, h, w, oh: self.out_hw.0, ow: self.out_hw.1 };
        let mut out = vec![0f32; bs * m * g.cols()];
        im2col_gemm(&g, bs, f32_slice(s1, l1, name)?, f32_slice(s2, l2, name)?, m, None, &mut out);
        Ok((CpuStorage::F32(out), Shape::from((bs, m, g.oh, g.ow))))
    }
}

/// Gradient kernel: `(image (B,C,H,W), cols (B,M,OH,OW)) -> dW (M,C,k,k)`.
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
        let (b2, m, oh, ow) = dims4(l2, name, "cols")?;
        if b2 != bs {
            bail!("{name}: batch mismatch {bs} vs {b2}")
        }
        let g = Geom { p: self.p, c, h, w, oh, ow };
        let dw = weight_grad(&g, bs, f32_slice(s1, l1, name)?, f32_slice(s2, l2, name)?, m);
        let k = self.p.k;
        Ok((CpuStorage::F32(dw), Shape::from((m, c, k, k))))
    }
}

/// Gradient kernel: `grad (B,C,H,W) -> (C,)`, the sum over everything but the channel.
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
