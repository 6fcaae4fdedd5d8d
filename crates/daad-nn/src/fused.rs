//! CPU f32 custom ops for element-wise work: the standalone activation and the batch-norm +
//! activation op, both with a hand-written backward computed in one pass per channel/plane.

use crate::activation::Activation;
use crate::im2col::lane_sum;
use candle_core::{bail, CpuStorage, CustomOp1, CustomOp3, Layout, Result, Shape, Storage, Tensor};
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

/// Runs `f` on the contiguous f32 data of a CPU tensor.
pub(crate) fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let (s, l) = t.storage_and_layout();
    let Storage::Cpu(CpuStorage::F32(v)) = &*s else { bail!("daad-nn: CPU f32 tensor expected") };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(f(&v[a..b])),
        None => bail!("daad-nn: contiguous tensor expected"),
    }
}

fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else { bail!("daad-nn: f32 storage expected") };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => bail!("daad-nn: contiguous input expected"),
    }
}

/// Elements per rayon task for flat element-wise loops.
const CHUNK: usize = 1 << 14;

#[inline(always)]
fn act_fwd(act: Activation, v: f32) -> f32 {
    match act {
        Activation::Identity => v,
        Activation::Relu => v.max(0.0),
        Activation::LeakyRelu(s) => {
            if v > 0.0 {
                v
            } else {
                v * s as f32
            }
        }
        Activation::Tanh => v.tanh(),
        Activation::Sigmoid => 1.0 / (1.0 + (-v).exp()),
    }
}

/// Derivative of `act` given the pre-activation `x` and the output `y`.
#[inline(always)]
fn act_grad(act: Activation, x: f32, y: f32) -> f32 {
    match act {
        Activation::Identity => 1.0,
        Activation::Relu => {
            if x > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Activation::LeakyRelu(s) => {
            if x > 0.0 {
                1.0
            } else {
                s as f32
            }
        }
        Activation::Tanh => 1.0 - y * y,
        Activation::Sigmoid => y * (1.0 - y),
    }
}

fn apply_act(act: Activation, v: &mut [f32]) {
    match act {
        Activation::Identity => {}
        Activation::Relu => v.iter_mut().for_each(|v| *v = v.max(0.0)),
        Activation::LeakyRelu(s) => {
            let s = s as f32;
            v.iter_mut().for_each(|v| *v = if *v > 0.0 { *v } else { *v * s })
        }
        _ => v.iter_mut().for_each(|v| *v = act_fwd(act, *v)),
    }
}

/// Standalone activation with backward.
pub(crate) struct ActOp(pub Activation);

impl CustomOp1 for ActOp {
    fn name(&self) -> &'static str {
        "daad-activation"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l)?;
        let mut out = x.to_vec();
        out.par_chunks_mut(CHUNK).for_each(|c| apply_act(self.0, c));
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }
    fn bwd(&self, x: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let grad = grad.contiguous()?;
        let act = self.0;
        let out = with_f32(x, |x| {
            with_f32(res, |y| {
                with_f32(&grad, |g| {
                    let mut out = vec![0f32; g.len()];
                    out.par_chunks_mut(CHUNK).enumerate().for_each(|(i, o)| {
                        let s = i * CHUNK;
                        for (j, o) in o.iter_mut().enumerate() {
                            *o = g[s + j] * act_grad(act, x[s + j], y[s + j]);
                        }
                    });
                    out
                })
            })
        })???;
        Ok(Some(Tensor::from_vec(out, x.shape(), x.device())?))
    }
}

/// Per-channel statistics a batch-norm forward used: mean and 1/sqrt(var + eps), plus the
/// biased batch variance (train mode) for the running-variance update.
#[derive(Debug, Clone, Default)]
pub(crate) struct BnStats {
    pub mean: Vec<f32>,
    pub invstd: Vec<f32>,
    pub var: Vec<f32>,
}

/// Batch norm (+ activation) over `(B, C, H, W)`: `(x, gamma, beta) -> y`.
pub(crate) struct BnActOp {
    pub eps: f64,
    pub act: Activation,
    /// `Some` in eval mode: (running mean, running var) to normalise with.
    pub fixed: Option<(Vec<f32>, Vec<f32>)>,
    /// Filled by the forward, read by the backward and by the caller (running stats).
    pub stats: Arc<Mutex<BnStats>>,
}

impl CustomOp3 for BnActOp {
    fn name(&self) -> &'static str {
        "daad-batch-norm-act"
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
        let &[b, c, h, w] = l1.dims() else {
            bail!("daad-batch-norm: (B, C, H, W) input expected, got {:?}", l1.dims())
        };
        let (x, gamma, beta) = (f32_slice(s1, l1)?, f32_slice(s2, l2)?, f32_slice(s3, l3)?);
        if gamma.len() != c || beta.len() != c {
            bail!("daad-batch-norm: {c} channels but weight/bias of {}/{}", gamma.len(), beta.len())
        }
        let l = h * w;
        let n = (b * l) as f64;
        let stats = match &self.fixed {
            Some((rm, rv)) => BnStats {
                mean: rm.clone(),
                invstd: rv.iter().map(|v| (1.0 / (*v as f64 + self.eps).sqrt()) as f32).collect(),
                var: rv.clone(),
            },
            None => {
                // Two passes per channel (mean, then squared deviations) for accuracy.
                let mv: Vec<(f32, f32)> = (0..c)
                    .into_par_iter()
                    .map(|ch| {
                        let planes = (0..b).map(|bi| &x[(bi * c + ch) * l..(bi * c + ch + 1) * l]);
                        let sum: f64 = planes.clone().map(|p| lane_sum(p) as f64).sum();
                        let mean = (sum / n) as f32;
                        let sq: f64 = planes
                            .map(|p| {
                                let mut acc = [0f32; 8];
                                let it = p.chunks_exact(8);
                                let rest: f32 =
                                    it.remainder().iter().map(|v| (v - mean) * (v - mean)).sum();
                                for ch in it {
                                    for i in 0..8 {
                                        let d = ch[i] - mean;
                                        acc[i] += d * d;
                                    }
                                }
                                (acc.iter().sum::<f32>() + rest) as f64
                            })
                            .sum();
                        (mean, (sq / n) as f32)
                    })
                    .collect();
                BnStats {
                    mean: mv.iter().map(|p| p.0).collect(),
                    invstd: mv
                        .iter()
                        .map(|p| (1.0 / (p.1 as f64 + self.eps).sqrt()) as f32)
                        .collect(),
                    var: mv.iter().map(|p| p.1).collect(),
                }
            }
        };
        let mut out = vec![0f32; x.len()];
        let act = self.act;
        out.par_chunks_mut(l).enumerate().for_each(|(i, o)| {
            let ch = i % c;
            let scale = gamma[ch] * stats.invstd[ch];
            let shift = beta[ch] - stats.mean[ch] * scale;
            for (o, v) in o.iter_mut().zip(&x[i * l..(i + 1) * l]) {
                *o = v * scale + shift;
            }
            apply_act(act, o);
        });
        *self.stats.lock().expect("bn stats lock") = stats;
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (b, c, h, w) = x.dims4()?;
        let l = h * w;
        let n = (b * l) as f32;
        let grad = grad.contiguous()?;
        let st = self.stats.lock().expect("bn stats lock").clone();
        let act = self.act;
        let train = self.fixed.is_none();
        let gamma = gamma.to_vec1::<f32>()?;
        let beta = beta.to_vec1::<f32>()?;
        let (dx, dgamma, dbeta) = with_f32(x, |x| {
            with_f32(res, |y| {
                with_f32(&grad, |g| {
                    // Gradient w.r.t. the pre-activation (recomputed: cheaper than storing it).
                    let gpre = |i: usize, ch: usize, xh: f32| {
                        g[i] * act_grad(act, xh * gamma[ch] + beta[ch], y[i])
                    };
                    // Pass 1 per channel: dbeta = sum gpre, dgamma = sum gpre * xhat.
                    let sums: Vec<(f32, f32)> = (0..c)
                        .into_par_iter()
                        .map(|ch| {
                            let (m, is) = (st.mean[ch], st.invstd[ch]);
                            let (mut sb, mut sg) = (0f64, 0f64);
                            for bi in 0..b {
                                let o = (bi * c + ch) * l;
                                let (mut ab, mut ag) = ([0f32; 8], [0f32; 8]);
                                for j in 0..l {
                                    let xh = (x[o + j] - m) * is;
                                    let gp = gpre(o + j, ch, xh);
                                    ab[j % 8] += gp;
                                    ag[j % 8] += gp * xh;
                                }
                                sb += ab.iter().sum::<f32>() as f64;
                                sg += ag.iter().sum::<f32>() as f64;
                            }
                            (sb as f32, sg as f32)
                        })
                        .collect();
                    let dbeta: Vec<f32> = sums.iter().map(|s| s.0).collect();
                    let dgamma: Vec<f32> = sums.iter().map(|s| s.1).collect();
                    // Pass 2 per plane: dx.
                    let mut dx = vec![0f32; x.len()];
                    dx.par_chunks_mut(l).enumerate().for_each(|(p, d)| {
                        let ch = p % c;
                        let (m, is) = (st.mean[ch], st.invstd[ch]);
                        let k = gamma[ch] * is;
                        let (mb, mg) = (dbeta[ch] / n, dgamma[ch] / n);
                        for (j, d) in d.iter_mut().enumerate() {
                            let i = p * l + j;
                            let xh = (x[i] - m) * is;
                            let gp = gpre(i, ch, xh);
                            *d = if train { k * (gp - mb - xh * mg) } else { k * gp };
                        }
                    });
                    (dx, dgamma, dbeta)
                })
            })
        })???;
        let dev = x.device();
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), dev)?),
            Some(Tensor::from_vec(dgamma, c, dev)?),
            Some(Tensor::from_vec(dbeta, c, dev)?),
        ))
    }
}
