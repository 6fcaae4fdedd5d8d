//! CPU f32 building blocks of the convolution ops: im2col, col2im, a `gemm` wrapper and the three
//! batched kernels every convolution and transposed convolution (and their gradients) reduce to.
//!
//! Vocabulary: the *image* side is `(C, H, W)`; the *column* side is `(M, OH, OW)`, related by a
//! convolution of kernel `k`, stride, padding and dilation from image to columns. A weight matrix
//! `W (M, C*k*k)` (row-major, i.e. a `(M, C, k, k)` tensor) maps one to the other:
//! - [`im2col_gemm`]: columns = W @ im2col(image)        (conv2d forward, conv-transpose input grad)
//! - [`gemm_col2im`]: image = col2im(W^T @ columns)      (conv2d input grad, conv-transpose forward)
//! - [`weight_grad`]: dW = sum_b columns_b @ im2col(image_b)^T   (both layers' weight grad)

use gemm::Parallelism;
use rayon::prelude::*;

/// Kernel size, stride, padding, dilation (square, same for both axes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConvParams {
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
    pub dil: usize,
}

/// Full geometry of one image <-> columns pair.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geom {
    pub p: ConvParams,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub oh: usize,
    pub ow: usize,
}

impl Geom {
    /// Rows of the im2col matrix, `C*k*k`.
    pub fn rows(&self) -> usize {
        self.c * self.p.k * self.p.k
    }
    /// Columns of the im2col matrix, `OH*OW`.
    pub fn cols(&self) -> usize {
        self.oh * self.ow
    }
    /// Elements of one image, `C*H*W`.
    pub fn img_len(&self) -> usize {
        self.c * self.h * self.w
    }
    /// True when im2col is the identity (1x1 kernel, stride 1, no padding), so it can be skipped.
    fn identity(&self) -> bool {
        self.p.k == 1
            && self.p.stride == 1
            && self.p.pad == 0
            && self.oh == self.h
            && self.ow == self.w
    }
    /// Range of output columns `ow` whose input column `ow*stride + off` lies in `[0, w)`.
    #[inline]
    fn valid(&self, off: isize) -> (usize, usize) {
        let s = self.p.stride as isize;
        let lo = if off >= 0 { 0 } else { (-off + s - 1) / s };
        let hi = if self.w as isize - off <= 0 { 0 } else { (self.w as isize - off + s - 1) / s };
        let hi = (hi as usize).min(self.ow);
        ((lo as usize).min(hi), hi)
    }
}

/// Writes `im2col(img)` (`rows x cols`, row-major) into `cols`.
pub(crate) fn im2col(g: &Geom, img: &[f32], cols: &mut [f32]) {
    let (k, n, hw) = (g.p.k, g.cols(), g.h * g.w);
    debug_assert_eq!(img.len(), g.img_len());
    debug_assert_eq!(cols.len(), g.rows() * n);
    for (row, dst) in cols.chunks_exact_mut(n).enumerate() {
        let (c, kh, kw) = (row / (k * k), (row / k) % k, row % k);
        im2col_row(g, &img[c * hw..(c + 1) * hw], kh, kw, dst);
    }
}

/// Adds `col2im(cols)` into `img` (the adjoint of [`im2col`]).
pub(crate) fn col2im_add(g: &Geom, cols: &[f32], img: &mut [f32]) {
    let (k, n, hw) = (g.p.k, g.cols(), g.h * g.w);
    debug_assert_eq!(img.len(), g.img_len());
    debug_assert_eq!(cols.len(), g.rows() * n);
    for (row, src) in cols.chunks_exact(n).enumerate() {
        let (c, kh, kw) = (row / (k * k), (row / k) % k, row % k);
        col2im_row(g, src, kh, kw, &mut img[c * hw..(c + 1) * hw]);
    }
}

/// A strided read-only matrix view for [`matmul`].
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

/// `dst (m x n, row-major) [+]= a (m x kd) @ b (kd x n)` with the `gemm` crate's kernel.
pub(crate) fn matmul(
    (m, n, kd): (usize, usize, usize),
    dst: &mut [f32],
    accumulate: bool,
    a: Mat<'_>,
    b: Mat<'_>,
    par: Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    if kd == 0 {
        if !accumulate {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    // Bounds: the largest index each operand is read at must lie inside its slice, which makes
    // the unsafe gemm call below sound.
    assert!(dst.len() >= m * n);
    assert!((m - 1) * a.rs + (kd - 1) * a.cs < a.data.len());
    assert!((kd - 1) * b.rs + (n - 1) * b.cs < b.data.len());
    // SAFETY: the pointers are valid for every index gemm touches (checked above), dst does not
    // alias the inputs (it is a distinct &mut slice), and f32 is a supported type.
    unsafe {
        gemm::gemm(
            m,
            n,
            kd,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}

/// How to spread a batched kernel over the rayon pool.
#[derive(Clone, Copy)]
enum Plan {
    /// One batch item per task, single-threaded gemm.
    PerItem,
    /// Items one after another, each gemm multi-threaded.
    InsideGemm(usize),
}

fn plan(batch: usize) -> Plan {
    let nt = rayon::current_num_threads();
    if nt <= 1 {
        Plan::InsideGemm(1)
    } else if batch % nt == 0 || batch >= 4 * nt {
        Plan::PerItem
    } else {
        Plan::InsideGemm(nt)
    }
}

fn gemm_par(threads: usize) -> Parallelism {
    if threads <= 1 {
        Parallelism::None
    } else {
        Parallelism::Rayon(threads)
    }
}

/// Fills each `m`-row block of one output item with the per-row bias (or zeros).
fn init_rows(out: &mut [f32], rows: usize, bias: Option<&[f32]>) {
    match bias {
        None => out.fill(0.0),
        Some(b) => {
            let per = out.len() / rows;
            for (r, chunk) in out.chunks_exact_mut(per).enumerate() {
                chunk.fill(b[r]);
            }
        }
    }
}

/// `out[b] (M, OH*OW) = W (M, C*k*k) @ im2col(img[b]) (+ bias per row)` for every batch item.
pub(crate) fn im2col_gemm(
    g: &Geom,
    batch: usize,
    img: &[f32],
    w: &[f32],
    m: usize,
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    if batched(g, batch) {
        return im2col_gemm_batched(g, batch, img, w, m, bias, out);
    }
    let (kd, n) = (g.rows(), g.cols());
    let il = g.img_len();
    let wm = Mat { data: w, rs: kd, cs: 1 };
    let one = |b: usize, out_b: &mut [f32], buf: &mut Vec<f32>, par: Parallelism| {
        let x = &img[b * il..(b + 1) * il];
        if bias.is_some() {
            init_rows(out_b, m, bias);
        }
        let cols: &[f32] = if g.identity() {
            x
        } else {
            buf.resize(kd * n, 0.0);
            im2col(g, x, buf);
            buf
        };
        let cm = Mat { data: cols, rs: n, cs: 1 };
        matmul((m, n, kd), out_b, bias.is_some(), wm, cm, par);
    };
    match plan(batch) {
        Plan::PerItem => out
            .par_chunks_mut(m * n)
            .enumerate()
            .for_each_init(Vec::new, |buf, (b, o)| one(b, o, buf, Parallelism::None)),
        Plan::InsideGemm(t) => {
            let mut buf = Vec::new();
            for (b, o) in out.chunks_mut(m * n).enumerate() {
                one(b, o, &mut buf, gemm_par(t));
            }
        }
    }
}

/// `img[b] = col2im(W^T @ cols[b]) (+ bias per image channel)` for every batch item;
/// `cols` is `(B, M, OH*OW)`, `W` is `(M, C*k*k)`.
pub(crate) fn gemm_col2im(
    g: &Geom,
    batch: usize,
    cols: &[f32],
    w: &[f32],
    m: usize,
    bias: Option<&[f32]>,
    img: &mut [f32],
) {
    if batched(g, batch) {
        return gemm_col2im_batched(g, batch, cols, w, m, bias, img);
    }
    let (kd, n) = (g.rows(), g.cols());
    let wt = Mat { data: w, rs: 1, cs: kd };
    let one = |b: usize, img_b: &mut [f32], buf: &mut Vec<f32>, par: Parallelism| {
        let cb = Mat { data: &cols[b * m * n..(b + 1) * m * n], rs: n, cs: 1 };
        init_rows(img_b, g.c, bias);
        if g.identity() {
            matmul((kd, n, m), img_b, true, wt, cb, par);
        } else {
            buf.resize(kd * n, 0.0);
            matmul((kd, n, m), buf, false, wt, cb, par);
            col2im_add(g, buf, img_b);
        }
    };
    match plan(batch) {
        Plan::PerItem => img
            .par_chunks_mut(g.img_len())
            .enumerate()
            .for_each_init(Vec::new, |buf, (b, o)| one(b, o, buf, Parallelism::None)),
        Plan::InsideGemm(t) => {
            let mut buf = Vec::new();
            for (b, o) in img.chunks_mut(g.img_len()).enumerate() {
                one(b, o, &mut buf, gemm_par(t));
            }
        }
    }
}

/// `dW (M, C*k*k) = sum_b cols[b] (M, OH*OW) @ im2col(img[b])^T`.
pub(crate) fn weight_grad(g: &Geom, batch: usize, img: &[f32], cols: &[f32], m: usize) -> Vec<f32> {
    if batched(g, batch) {
        return weight_grad_batched(g, batch, img, cols, m);
    }
    let (kd, n) = (g.rows(), g.cols());
    let il = g.img_len();
    let acc = |b: usize, dw: &mut [f32], buf: &mut Vec<f32>, first: bool, par: Parallelism| {
        let x = &img[b * il..(b + 1) * il];
        let patches: &[f32] = if g.identity() {
            x
        } else {
            buf.resize(kd * n, 0.0);
            im2col(g, x, buf);
            buf
        };
        let a = Mat { data: &cols[b * m * n..(b + 1) * m * n], rs: n, cs: 1 };
        let bt = Mat { data: patches, rs: 1, cs: n };
        matmul((m, kd, n), dw, !first, a, bt, par);
    };
    let mut dw = vec![0f32; m * kd];
    match plan(batch) {
        Plan::PerItem => {
            let nt = rayon::current_num_threads().min(batch).max(1);
            let per = batch.div_ceil(nt);
            let parts: Vec<Vec<f32>> = (0..nt)
                .into_par_iter()
                .map(|t| {
                    let mut part = vec![0f32; m * kd];
                    let mut buf = Vec::new();
                    for (i, b) in (t * per..((t + 1) * per).min(batch)).enumerate() {
                        acc(b, &mut part, &mut buf, i == 0, Parallelism::None);
                    }
                    part
                })
                .collect();
            for part in &parts {
                for (d, p) in dw.iter_mut().zip(part) {
                    *d += p;
                }
            }
        }
        Plan::InsideGemm(t) => {
            let mut buf = Vec::new();
            for b in 0..batch {
                acc(b, &mut dw, &mut buf, b == 0, gemm_par(t));
            }
        }
    }
    dw
}

/// Per-item spatial size (OH*OW) below which the batched layout is used: one gemm over the whole
/// batch (`N = B*OH*OW`) instead of one skinny gemm per item. `DAAD_NN_BATCHED_MAX_COLS`
/// overrides it (for benchmarking).
fn batched(g: &Geom, batch: usize) -> bool {
    static LIMIT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let limit = *LIMIT.get_or_init(|| {
        std::env::var("DAAD_NN_BATCHED_MAX_COLS").ok().and_then(|v| v.parse().ok()).unwrap_or(2048)
    });
    batch > 1 && g.cols() < limit
}

/// One item's segment of one im2col row: patch element (kh, kw) of `plane` (one channel).
#[inline]
fn im2col_row(g: &Geom, plane: &[f32], kh: usize, kw: usize, dst: &mut [f32]) {
    let s = g.p.stride;
    let off = (kw * g.p.dil) as isize - g.p.pad as isize;
    let (lo, hi) = g.valid(off);
    for (oy, drow) in dst.chunks_exact_mut(g.ow).enumerate() {
        let iy = (oy * s + kh * g.p.dil) as isize - g.p.pad as isize;
        if iy < 0 || iy >= g.h as isize {
            drow.fill(0.0);
            continue;
        }
        let srow = &plane[iy as usize * g.w..(iy as usize + 1) * g.w];
        drow[..lo].fill(0.0);
        drow[hi..].fill(0.0);
        let start = ((lo * s) as isize + off).max(0) as usize;
        if s == 1 {
            drow[lo..hi].copy_from_slice(&srow[start..start + hi - lo]);
        } else {
            for (j, d) in drow[lo..hi].iter_mut().enumerate() {
                *d = srow[start + j * s];
            }
        }
    }
}

/// Adds one item's segment of one im2col row back into `plane` (adjoint of [`im2col_row`]).
#[inline]
fn col2im_row(g: &Geom, src: &[f32], kh: usize, kw: usize, plane: &mut [f32]) {
    let s = g.p.stride;
    let off = (kw * g.p.dil) as isize - g.p.pad as isize;
    let (lo, hi) = g.valid(off);
    if lo >= hi {
        return;
    }
    for (oy, srow) in src.chunks_exact(g.ow).enumerate() {
        let iy = (oy * s + kh * g.p.dil) as isize - g.p.pad as isize;
        if iy < 0 || iy >= g.h as isize {
            continue;
        }
        let drow = &mut plane[iy as usize * g.w..(iy as usize + 1) * g.w];
        let start = ((lo * s) as isize + off).max(0) as usize;
        if s == 1 {
            for (d, v) in drow[start..start + hi - lo].iter_mut().zip(&srow[lo..hi]) {
                *d += v;
            }
        } else {
            for (j, v) in srow[lo..hi].iter().enumerate() {
                drow[start + j * s] += v;
            }
        }
    }
}

/// im2col of the whole batch into `(C*k*k, B*OH*OW)`, parallel over rows.
fn im2col_all(g: &Geom, batch: usize, img: &[f32]) -> Vec<f32> {
    let (k, n, hw, il) = (g.p.k, g.cols(), g.h * g.w, g.img_len());
    let mut cols = vec![0f32; g.rows() * batch * n];
    cols.par_chunks_mut(batch * n).enumerate().for_each(|(row, dst)| {
        let (c, kh, kw) = (row / (k * k), (row / k) % k, row % k);
        for b in 0..batch {
            let plane = &img[b * il + c * hw..b * il + (c + 1) * hw];
            im2col_row(g, plane, kh, kw, &mut dst[b * n..(b + 1) * n]);
        }
    });
    cols
}

/// `(B, M, N)` -> `(M, B*N)`.
fn to_batched(x: &[f32], batch: usize, m: usize, n: usize) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    out.par_chunks_mut(batch * n).enumerate().for_each(|(r, dst)| {
        for b in 0..batch {
            dst[b * n..(b + 1) * n].copy_from_slice(&x[(b * m + r) * n..(b * m + r + 1) * n]);
        }
    });
    out
}

fn threads() -> Parallelism {
    gemm_par(rayon::current_num_threads())
}

/// Batched [`im2col_gemm`].
fn im2col_gemm_batched(
    g: &Geom,
    batch: usize,
    img: &[f32],
    w: &[f32],
    m: usize,
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    let (kd, n) = (g.rows(), g.cols());
    let bn = batch * n;
    let cols = im2col_all(g, batch, img);
    let mut res = vec![0f32; m * bn];
    let wm = Mat { data: w, rs: kd, cs: 1 };
    matmul((m, bn, kd), &mut res, false, wm, Mat { data: &cols, rs: bn, cs: 1 }, threads());
    out.par_chunks_mut(n).enumerate().for_each(|(p, o)| {
        let (b, r) = (p / m, p % m);
        let src = &res[r * bn + b * n..r * bn + (b + 1) * n];
        match bias {
            Some(bias) => o.iter_mut().zip(src).for_each(|(o, v)| *o = v + bias[r]),
            None => o.copy_from_slice(src),
        }
    });
}

/// Batched [`gemm_col2im`].
fn gemm_col2im_batched(
    g: &Geom,
    batch: usize,
    cols: &[f32],
    w: &[f32],
    m: usize,
    bias: Option<&[f32]>,
    img: &mut [f32],
) {
    let (k, kd, n, hw) = (g.p.k, g.rows(), g.cols(), g.h * g.w);
    let bn = batch * n;
    let ct = to_batched(cols, batch, m, n);
    let mut dcols = vec![0f32; kd * bn];
    let wt = Mat { data: w, rs: 1, cs: kd };
    matmul((kd, bn, m), &mut dcols, false, wt, Mat { data: &ct, rs: bn, cs: 1 }, threads());
    img.par_chunks_mut(hw).enumerate().for_each(|(p, plane)| {
        let (b, c) = (p / g.c, p % g.c);
        plane.fill(bias.map_or(0.0, |bias| bias[c]));
        for kh in 0..k {
            for kw in 0..k {
                let row = (c * k + kh) * k + kw;
                col2im_row(g, &dcols[row * bn + b * n..row * bn + (b + 1) * n], kh, kw, plane);
            }
        }
    });
}

/// Batched [`weight_grad`].
fn weight_grad_batched(g: &Geom, batch: usize, img: &[f32], cols: &[f32], m: usize) -> Vec<f32> {
    let (kd, n) = (g.rows(), g.cols());
    let bn = batch * n;
    let patches = im2col_all(g, batch, img);
    let ct = to_batched(cols, batch, m, n);
    let mut dw = vec![0f32; m * kd];
    matmul(
        (m, kd, bn),
        &mut dw,
        false,
        Mat { data: &ct, rs: bn, cs: 1 },
        Mat { data: &patches, rs: 1, cs: bn },
        threads(),
    );
    dw
}

/// `db[c] = sum over batch and positions of x[b, c, :]` for `x (B, C, L)`.
pub(crate) fn channel_sum(x: &[f32], batch: usize, c: usize) -> Vec<f32> {
    let l = x.len() / (batch * c).max(1);
    (0..c)
        .into_par_iter()
        .map(|ch| {
            let mut s = 0f64;
            for b in 0..batch {
                s += lane_sum(&x[(b * c + ch) * l..(b * c + ch + 1) * l]) as f64;
            }
            s as f32
        })
        .collect()
}

/// Sum with 8 independent lanes so the compiler vectorises it.
#[inline]
pub(crate) fn lane_sum(x: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for ch in chunks {
        for i in 0..8 {
            acc[i] += ch[i];
        }
    }
    acc.iter().sum::<f32>() + rest.iter().sum::<f32>()
}
