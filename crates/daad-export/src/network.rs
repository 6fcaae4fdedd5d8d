//! The model's layers as ONNX nodes: encoder, block memories, decoder, discriminator, scores and
//! the smoothed anomaly map. Shapes and orders follow daad-model and daad-memory exactly.

use std::collections::HashMap;

use daad_eval::{AnomalyMap, AnomalyMapConfig};
use daad_memory::Shrink;
use daad_model::score::L2_EPS;
use daad_model::{DaadModel, LossReduction, ModelConfig, BN_EPS, LEAKY};

use crate::error::{Error, Result};
use crate::graph::{Attr, Graph};
use daad_eval::ScoreKind;

use crate::run_info::{Scale, ScoreSpec};

// The memory's own epsilons: cosine rows `x / sqrt(|x|^2 + NORM_EPS)`, MemAE's shrink epsilon.
use daad_memory::reference::{NORM_EPS, SHRINK_EPS};

/// The model's variables by name (as in model.safetensors), as f32 on the CPU.
pub(crate) struct Weights(HashMap<String, (Vec<usize>, Vec<f32>)>);

impl Weights {
    /// Reads every variable of `model`.
    pub(crate) fn of(model: &DaadModel) -> Result<Self> {
        let mut map = HashMap::new();
        for (name, var) in model.named_vars(|_| true) {
            let t = var.as_tensor();
            let data = t.flatten_all()?.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?;
            map.insert(name, (t.dims().to_vec(), data));
        }
        Ok(Weights(map))
    }

    fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    fn get(&self, name: &str) -> Result<&(Vec<usize>, Vec<f32>)> {
        self.0.get(name).ok_or_else(|| Error::Weight {
            name: name.to_string(),
            problem: "missing from the model".into(),
        })
    }

    /// A variable that must have `dims`.
    fn shaped(&self, name: &str, dims: &[usize]) -> Result<&[f32]> {
        let (d, v) = self.get(name)?;
        if d != dims {
            return Err(Error::Weight {
                name: name.into(),
                problem: format!("shape {d:?}, the architecture needs {dims:?}"),
            });
        }
        Ok(v)
    }
}

/// Kind of a 4x4 stride-2 padding-1 layer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layer {
    /// Conv: halves the side; weight (out, in, 4, 4).
    Down,
    /// ConvTranspose: doubles the side; weight (in, out, 4, 4).
    Up,
}

/// Emits the conv under `prefix` (`{prefix}.conv.weight`, optional `.conv.bias`) with the
/// BatchNorm `{prefix}.bn.*` folded in when the model has one (eval mode: running stats); the
/// node is named `node`. The folded constants are emitted once per `prefix` and shared.
fn conv_bn(
    g: &mut Graph,
    w: &Weights,
    prefix: &str,
    layer: Layer,
    x: &str,
    node: &str,
) -> Result<String> {
    let wname = format!("{prefix}.conv.weight");
    let (dims, _) = w.get(&wname)?;
    if dims.len() != 4 {
        return Err(Error::Weight { name: wname, problem: format!("rank {}, not 4", dims.len()) });
    }
    let (kh, kw) = (dims[2], dims[3]);
    let consts = match g.shared.get(prefix) {
        Some(c) => c.clone(),
        None => {
            let c = fold(g, w, prefix, layer)?;
            g.shared.insert(prefix.to_string(), c.clone());
            c
        }
    };
    let attrs = vec![
        Attr::Ints("kernel_shape", vec![kh as i64, kw as i64]),
        Attr::Ints("strides", vec![2, 2]),
        Attr::Ints("pads", vec![1, 1, 1, 1]),
    ];
    let op = if layer == Layer::Down { "Conv" } else { "ConvTranspose" };
    Ok(g.op(op, node, &[x, &consts[0], &consts[1]], attrs))
}

/// The conv weight and bias of `prefix` with its BatchNorm folded in, as two constants.
fn fold(g: &mut Graph, w: &Weights, prefix: &str, layer: Layer) -> Result<Vec<String>> {
    let (dims, weight) = w.get(&format!("{prefix}.conv.weight"))?;
    let (a, b, kh, kw) = (dims[0], dims[1], dims[2], dims[3]);
    let out_c = if layer == Layer::Down { a } else { b };
    let mut weight: Vec<f64> = weight.iter().map(|&v| v as f64).collect();
    let bias_name = format!("{prefix}.conv.bias");
    let mut bias: Vec<f64> = if w.has(&bias_name) {
        w.shaped(&bias_name, &[out_c])?.iter().map(|&v| v as f64).collect()
    } else {
        vec![0.0; out_c]
    };
    if w.has(&format!("{prefix}.bn.weight")) {
        let bn = |n: &str| w.shaped(&format!("{prefix}.bn.{n}"), &[out_c]);
        let (gamma, beta, mean, var) =
            (bn("weight")?, bn("bias")?, bn("running_mean")?, bn("running_var")?);
        let k = kh * kw;
        for o in 0..out_c {
            // y = (conv(x) + b - mean) * s + beta, s = gamma / sqrt(var + eps).
            let s = gamma[o] as f64 / (var[o] as f64 + BN_EPS).sqrt();
            match layer {
                Layer::Down => weight[o * b * k..(o + 1) * b * k].iter_mut().for_each(|v| *v *= s),
                Layer::Up => {
                    for i in 0..a {
                        let base = (i * b + o) * k;
                        weight[base..base + k].iter_mut().for_each(|v| *v *= s);
                    }
                }
            }
            bias[o] = (bias[o] - mean[o] as f64) * s + beta[o] as f64;
        }
    }
    let wf: Vec<f32> = weight.iter().map(|&v| v as f32).collect();
    let bf: Vec<f32> = bias.iter().map(|&v| v as f32).collect();
    let dims = dims.clone();
    Ok(vec![
        g.f32s(&format!("{prefix}.weight"), &dims, &wf),
        g.f32s(&format!("{prefix}.bias"), &[out_c], &bf),
    ])
}

fn leaky(g: &mut Graph, name: &str, x: &str) -> String {
    // The slope of daad-model's LEAKY (0.2), read from the constant the model itself uses.
    let slope = match LEAKY {
        daad_nn::Activation::LeakyRelu(s) => s,
        _ => 0.0,
    };
    g.op("LeakyRelu", name, &[x], vec![Attr::Float("alpha", slope as f32)])
}

/// The generator (daad-model's `Generator::forward` in eval mode): x (B, C, S, S) -> x_hat.
pub(crate) fn generator(g: &mut Graph, w: &Weights, cfg: &ModelConfig, x: &str) -> Result<String> {
    let mut feats = Vec::with_capacity(4);
    let mut h = x.to_string();
    for l in 0..4 {
        let p = format!("generator.enc{}", l + 1);
        let y = conv_bn(g, w, &p, Layer::Down, &h, &p)?;
        h = leaky(g, &format!("{p}.act"), &y);
        feats.push(h.clone());
    }
    let through = |g: &mut Graph, l: usize| -> Result<String> {
        if cfg.memory_scales[l] {
            memory(g, w, cfg, l, &feats[l])
        } else {
            Ok(feats[l].clone())
        }
    };
    let mut d = through(g, 3)?;
    for l in (0..4).rev() {
        if l < 3 && cfg.skips {
            let skip = through(g, l)?;
            d = g.op(
                "Concat",
                &format!("generator.dec{}.in", l + 1),
                &[&d, &skip],
                vec![Attr::Int("axis", 1)],
            );
        }
        let p = format!("generator.dec{}", l + 1);
        let y = conv_bn(g, w, &p, Layer::Up, &d, &p)?;
        d = if l > 0 {
            g.op("Relu", &format!("{p}.act"), &[&y], vec![])
        } else {
            g.op("Tanh", &format!("{p}.act"), &[&y], vec![])
        };
    }
    Ok(d)
}

/// The block memory at scale `l` (daad-memory's `BlockMemory::forward`): divide into blocks in
/// daad-memory's order, cosine addressing, softmax, the 1/N drop (or the configured shrink),
/// the weighted mix of items, assemble.
fn memory(g: &mut Graph, w: &Weights, cfg: &ModelConfig, l: usize, f: &str) -> Result<String> {
    let p = format!("generator.memory{}", l + 1);
    let rates = cfg.scale_rates(l);
    let (c, s) = (cfg.channels()[l], cfg.feature_sizes()[l]);
    rates.check(c, s, s).map_err(|e| Error::Unsupported(format!("{p}: {e}")))?;
    let (cb, hb, wb) = (c / rates.c, s / rates.h, s / rates.w);
    let d = cb * hb * wb;
    let (bdims, bank) = w.get(&format!("{p}.bank"))?;
    if bdims.len() != 2 || bdims[1] != d {
        return Err(Error::Weight {
            name: format!("{p}.bank"),
            problem: format!("shape {bdims:?}, the block size needs (N, {d})"),
        });
    }
    let n = bdims[0];
    let (rh, rw, rc) = (rates.h as i64, rates.w as i64, rates.c as i64);
    let (cb_, hb_, wb_) = (cb as i64, hb as i64, wb as i64);
    // divide: (B, rc, Cb, rh, hb, rw, wb) -> (B, rh, rw, rc, Cb, hb, wb) -> (B*Q, D).
    let q = if rates.blocks() == 1 {
        g.reshape(&format!("{p}.queries"), f, &[-1, d as i64])
    } else {
        let t = g.reshape(&format!("{p}.split"), f, &[-1, rc, cb_, rh, hb_, rw, wb_]);
        let t = g.transpose(&format!("{p}.blocks"), &t, &[0, 3, 5, 1, 2, 4, 6]);
        g.reshape(&format!("{p}.queries"), &t, &[-1, d as i64])
    };
    // Cosine similarity: rows / sqrt(|row|^2 + NORM_EPS); the bank's side is a constant
    // (normalised in f64, divided by the temperature, transposed to (D, N)).
    let sq = g.op("Mul", &format!("{p}.q2"), &[&q, &q], vec![]);
    let ss = g.reduce("ReduceSum", &format!("{p}.q2sum"), &sq, &[1], true);
    let eps = g.scalar(&format!("{p}.norm_eps"), NORM_EPS as f32);
    let ss = g.op("Add", &format!("{p}.q2eps"), &[&ss, &eps], vec![]);
    let norm = g.op("Sqrt", &format!("{p}.qnorm"), &[&ss], vec![]);
    let qn = g.op("Div", &format!("{p}.qn"), &[&q, &norm], vec![]);
    let temperature = cfg.memory.temperature;
    let mut bt = vec![0f32; d * n];
    for i in 0..n {
        let row = &bank[i * d..(i + 1) * d];
        let nrm = (row.iter().map(|&v| v as f64 * v as f64).sum::<f64>() + NORM_EPS).sqrt();
        for (k, &v) in row.iter().enumerate() {
            bt[k * n + i] = (v as f64 / nrm / temperature) as f32;
        }
    }
    let btc = g.f32s(&format!("{p}.bank_normalized_t"), &[d, n], &bt);
    let sim = g.op("MatMul", &format!("{p}.similarity"), &[&qn, &btc], vec![]);
    let prob = g.op("Softmax", &format!("{p}.softmax"), &[&sim], vec![Attr::Int("axis", 1)]);
    let weights = match cfg.memory.shrink {
        Shrink::Renormalize | Shrink::Drop => {
            let thr = g.scalar(&format!("{p}.threshold"), (1.0 / n as f64) as f32);
            let zero = g.scalar(&format!("{p}.zero"), 0.0);
            let keep = g.op("GreaterOrEqual", &format!("{p}.keep"), &[&prob, &thr], vec![]);
            let kept = g.op("Where", &format!("{p}.kept"), &[&keep, &prob, &zero], vec![]);
            if cfg.memory.shrink == Shrink::Drop {
                kept
            } else {
                let sum = g.reduce("ReduceSum", &format!("{p}.kept_sum"), &kept, &[1], true);
                g.op("Div", &format!("{p}.weights"), &[&kept, &sum], vec![])
            }
        }
        Shrink::HardShrink { lambda } => {
            // relu(p - lambda) * p / (|p - lambda| + eps), then / max(sum, eps).
            let lam = g.scalar(&format!("{p}.lambda"), lambda as f32);
            let eps = g.scalar(&format!("{p}.shrink_eps"), SHRINK_EPS as f32);
            let shifted = g.op("Sub", &format!("{p}.shifted"), &[&prob, &lam], vec![]);
            let relu = g.op("Relu", &format!("{p}.relu"), &[&shifted], vec![]);
            let num = g.op("Mul", &format!("{p}.num"), &[&relu, &prob], vec![]);
            let abs = g.op("Abs", &format!("{p}.abs"), &[&shifted], vec![]);
            let den = g.op("Add", &format!("{p}.den"), &[&abs, &eps], vec![]);
            let h = g.op("Div", &format!("{p}.shrunk"), &[&num, &den], vec![]);
            let l1 = g.reduce("ReduceSum", &format!("{p}.l1"), &h, &[1], true);
            let l1 = g.op("Max", &format!("{p}.l1_floor"), &[&l1, &eps], vec![]);
            g.op("Div", &format!("{p}.weights"), &[&h, &l1], vec![])
        }
    };
    let bc = g.f32s(&format!("{p}.bank"), &[n, d], bank);
    let out = g.op("MatMul", &format!("{p}.read"), &[&weights, &bc], vec![]);
    // assemble: (B, rh, rw, rc, Cb, hb, wb) -> (B, rc, Cb, rh, hb, rw, wb) -> (B, C, H, W).
    let (c_, s_) = (c as i64, s as i64);
    Ok(if rates.blocks() == 1 {
        g.reshape(&format!("{p}.out"), &out, &[-1, c_, s_, s_])
    } else {
        let t = g.reshape(&format!("{p}.unblocks"), &out, &[-1, rh, rw, rc, cb_, hb_, wb_]);
        let t = g.transpose(&format!("{p}.assemble"), &t, &[0, 3, 4, 1, 5, 2, 6]);
        g.reshape(&format!("{p}.out"), &t, &[-1, c_, s_, s_])
    })
}

/// The discriminator's features f_D (its stages, without the classifier) of `x`; `tag` names
/// the values of this copy (the weights are shared by both copies).
pub(crate) fn disc_features(g: &mut Graph, w: &Weights, x: &str, tag: &str) -> Result<String> {
    let mut h = x.to_string();
    let mut i = 1;
    while w.has(&format!("discriminator.stage{i}.conv.weight")) {
        let p = format!("discriminator.stage{i}");
        let y = conv_bn(g, w, &p, Layer::Down, &h, &format!("{p}.{tag}"))?;
        h = leaky(g, &format!("{p}.act.{tag}"), &y);
        i += 1;
    }
    if i == 1 {
        return Err(Error::Weight {
            name: "discriminator.stage1.conv.weight".into(),
            problem: "missing: the model has no discriminator stages".into(),
        });
    }
    Ok(h)
}

/// The anomaly-map smoothing of daad-eval as a matrix: `A[i][j]` is the response at pixel `i`
/// of a `side`-pixel line to an impulse at `j` under `AnomalyMap::gaussian_blur` (reflect
/// borders included), so the separable blur of a map M is `A M A^T`. Read from daad-eval's own
/// blur rather than re-derived, so the two cannot drift. None when the config turns smoothing off.
pub(crate) fn blur_operator(side: usize, cfg: &AnomalyMapConfig) -> Option<(f32, Vec<f32>)> {
    let sigma = cfg.sigma_for_width(side);
    if sigma <= 0.0 {
        return None;
    }
    let mut a = vec![0f32; side * side];
    for j in 0..side {
        let mut e = vec![0f32; side];
        e[j] = 1.0;
        // A one-row map: the column pass sees a constant and returns it times sum(kernel) = 1.
        let line =
            AnomalyMap { width: side, height: 1, data: e }.gaussian_blur(sigma, cfg.truncate);
        for (i, v) in line.data.iter().enumerate() {
            a[i * side + j] = *v;
        }
    }
    Some((sigma, a))
}

/// `(v - min) / div` of a raw score (daad-eval's `MinMax::apply`).
fn scale(g: &mut Graph, name: &str, v: &str, s: &Scale) -> String {
    let min = g.scalar(&format!("{name}.min"), s.min as f32);
    let t = g.op("Sub", &format!("{name}.shifted"), &[v, &min], vec![]);
    let div = g.scalar(&format!("{name}.range"), s.div as f32);
    g.op("Div", name, &[&t, &div], vec![])
}

/// Per image, from squared differences (B, C, H, W): their mean, or the L2 distance
/// sqrt(sum + eps) (daad-model's `per_image_distance`, the run's loss reduction).
fn per_image_distance(g: &mut Graph, name: &str, sq: &str, reduction: LossReduction) -> String {
    match reduction {
        LossReduction::Mean => g.reduce("ReduceMean", name, sq, &[1, 2, 3], false),
        LossReduction::L2 => {
            let sum = g.reduce("ReduceSum", &format!("{name}.sum"), sq, &[1, 2, 3], false);
            let eps = g.scalar(&format!("{name}.eps"), L2_EPS as f32);
            let padded = g.op("Add", &format!("{name}.padded"), &[&sum, &eps], vec![]);
            g.op("Sqrt", name, &[&padded], vec![])
        }
    }
}

/// The per-image outputs computed from x and x_hat.
pub(crate) struct Heads {
    /// Raw R(x), (B,).
    pub r: String,
    /// Raw L(x), (B,), with a discriminator.
    pub l: Option<String>,
    /// The calibrated score, (B,).
    pub score: String,
    /// The smoothed anomaly map (B, 1, S, S), when asked for.
    pub map: Option<String>,
    /// Sigma of the smoothing in pixels (0: none).
    pub sigma: f32,
}

/// R, L, the score with the run's scaling, and the smoothed map (daad-model's `infer` +
/// daad-eval's `Calibration::score` + daad-eval's `AnomalyMap::postprocess` at model size).
pub(crate) fn heads(
    g: &mut Graph,
    w: &Weights,
    model: &DaadModel,
    spec: &ScoreSpec,
    x: &str,
    x_hat: &str,
    map_cfg: Option<&AnomalyMapConfig>,
) -> Result<Heads> {
    let cfg = model.config();
    let diff = g.op("Sub", "error", &[x, x_hat], vec![]);
    let sq = g.op("Mul", "squared_error", &[&diff, &diff], vec![]);
    let r = per_image_distance(g, "r_raw", &sq, cfg.loss_reduction);
    let l = if model.has_discriminator() {
        let fx = disc_features(g, w, x, "x")?;
        let fxh = disc_features(g, w, x_hat, "x_hat")?;
        let dd = g.op("Sub", "feature_error", &[&fx, &fxh], vec![]);
        let dsq = g.op("Mul", "squared_feature_error", &[&dd, &dd], vec![]);
        Some(per_image_distance(g, "l_raw", &dsq, cfg.loss_reduction))
    } else {
        None
    };
    let rs = scale(g, "r_scaled", &r, &spec.r);
    let ls = match (&l, &spec.l) {
        (Some(l), Some(s)) => Some(scale(g, "l_scaled", l, s)),
        _ => None,
    };
    let score = match (spec.kind, &ls) {
        (ScoreKind::Reconstruction, _) | (ScoreKind::Fused, None) => rs,
        (ScoreKind::Alignment, Some(ls)) => ls.clone(),
        (ScoreKind::Fused, Some(ls)) => {
            let gr = g.scalar("gamma", spec.gamma as f32);
            let gl = g.scalar("one_minus_gamma", (1.0 - spec.gamma) as f32);
            let a = g.op("Mul", "score_r", &[&rs, &gr], vec![]);
            let b = g.op("Mul", "score_l", &[ls, &gl], vec![]);
            g.op("Add", "score_fused", &[&a, &b], vec![])
        }
        (ScoreKind::Alignment, None) => {
            return Err(Error::Unsupported(
                "the score is L(x) but the model has no discriminator or no L scaling".into(),
            ))
        }
    };
    let (mut map, mut sigma) = (None, 0.0);
    if let Some(map_cfg) = map_cfg {
        let raw = g.reduce("ReduceMean", "map_raw", &sq, &[1], true);
        let side = cfg.image_size;
        map = Some(match blur_operator(side, map_cfg) {
            None => raw,
            Some((s, a)) => {
                sigma = s;
                let mut at = vec![0f32; side * side];
                for i in 0..side {
                    for j in 0..side {
                        at[j * side + i] = a[i * side + j];
                    }
                }
                let atc = g.f32s("map_blur_t", &[side, side], &at);
                let ac = g.f32s("map_blur", &[side, side], &a);
                let rows = g.op("MatMul", "map_rows", &[&raw, &atc], vec![]);
                g.op("MatMul", "map_smoothed", &[&ac, &rows], vec![])
            }
        });
    }
    Ok(Heads { r, l, score, map, sigma })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A M A^T is daad-eval's separable blur, borders included (sigma large enough to reflect
    /// more than once at 16 px: radius 16 > side).
    #[test]
    fn blur_operator_is_daad_evals_blur() {
        for (side, sigma_at_256) in [(16usize, 64.0f32), (32, 4.0)] {
            let cfg = AnomalyMapConfig { sigma_at_256, truncate: 4.0 };
            let (sigma, a) = blur_operator(side, &cfg).unwrap();
            let data: Vec<f32> =
                (0..side * side).map(|i| ((i * 37) % 101) as f32 / 100.0).collect();
            let want = AnomalyMap { width: side, height: side, data: data.clone() }
                .gaussian_blur(sigma, cfg.truncate);
            let mut rows = vec![0f32; side * side]; // M A^T
            for y in 0..side {
                for i in 0..side {
                    rows[y * side + i] =
                        (0..side).map(|j| data[y * side + j] * a[i * side + j]).sum();
                }
            }
            for y in 0..side {
                for x in 0..side {
                    let v: f32 = (0..side).map(|k| a[y * side + k] * rows[k * side + x]).sum();
                    assert!((v - want.data[y * side + x]).abs() < 1e-5, "side {side} ({x}, {y})");
                }
            }
        }
        assert!(blur_operator(32, &AnomalyMapConfig { sigma_at_256: 0.0, truncate: 4.0 }).is_none());
    }
}
