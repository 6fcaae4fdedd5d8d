//! Model-free anomaly baselines on preprocessed images (CHW f32, one image after another), the
//! one home of the checks that the synthetic set is neither trivial nor impossible. Used by the
//! `synth_baseline` example and by `tests/synth.rs` (through `#[path]`).

/// Image AUROC by ranks (Mann-Whitney U): P(score of a random anomaly > score of a random
/// normal), ties counted half.
pub fn auroc(scores: &[f32], anomalous: &[bool]) -> f64 {
    let (mut num, mut pairs) = (0f64, 0f64);
    for (i, &si) in scores.iter().enumerate() {
        if !anomalous[i] {
            continue;
        }
        for (j, &sj) in scores.iter().enumerate() {
            if anomalous[j] {
                continue;
            }
            pairs += 1.0;
            num += if si > sj {
                1.0
            } else if si == sj {
                0.5
            } else {
                0.0
            };
        }
    }
    num / pairs
}

/// Per-pixel mean and variance over the training images.
fn moments(train: &[f32], per: usize) -> (Vec<f32>, Vec<f32>) {
    let n = (train.len() / per) as f32;
    let mut mean = vec![0f32; per];
    let mut var = vec![0f32; per];
    for img in train.chunks_exact(per) {
        for (m, v) in mean.iter_mut().zip(img) {
            *m += v / n;
        }
    }
    for img in train.chunks_exact(per) {
        for ((s, v), m) in var.iter_mut().zip(img).zip(&mean) {
            *s += (v - m) * (v - m) / n;
        }
    }
    (mean, var)
}

/// `mean-diff`: mean over pixels of (x - mean training image)^2 (global, aligned).
pub fn mean_diff(train: &[f32], test: &[f32], size: usize) -> Vec<f32> {
    let per = 3 * size * size;
    let (mean, _) = moments(train, per);
    test.chunks_exact(per)
        .map(|img| img.iter().zip(&mean).map(|(v, m)| (v - m) * (v - m)).sum::<f32>() / per as f32)
        .collect()
}

/// `z-max`: the largest 3x3-averaged per-pixel z-score against the training images' per-pixel
/// mean and standard deviation (local, aligned).
pub fn z_max(train: &[f32], test: &[f32], size: usize) -> Vec<f32> {
    let (n, per) = (size * size, 3 * size * size);
    let (mean, var) = moments(train, per);
    test.chunks_exact(per)
        .map(|img| {
            let z: Vec<f32> = (0..n)
                .map(|i| {
                    (0..3)
                        .map(|c| {
                            let k = c * n + i;
                            (img[k] - mean[k]).abs() / (var[k].sqrt() + 0.02)
                        })
                        .sum::<f32>()
                        / 3.0
                })
                .collect();
            let mut best = 0f32;
            for y in 1..size - 1 {
                for x in 1..size - 1 {
                    let mut s = 0.0;
                    for dy in 0..3 {
                        for dx in 0..3 {
                            s += z[(y + dy - 1) * size + x + dx - 1];
                        }
                    }
                    best = best.max(s / 9.0);
                }
            }
            best
        })
        .collect()
}

/// Features of each `b x b` block (b = size / 8): mean R, G, B and the standard deviation of
/// luminance.
fn blocks(img: &[f32], size: usize) -> Vec<[f32; 4]> {
    let (n, b) = (size * size, (size / 8).max(1));
    let mut out = Vec::new();
    for by in (0..size - b + 1).step_by(b) {
        for bx in (0..size - b + 1).step_by(b) {
            let (mut m, mut l, mut l2) = ([0f32; 3], 0f32, 0f32);
            for y in by..by + b {
                for x in bx..bx + b {
                    let i = y * size + x;
                    let lum = (img[i] + img[n + i] + img[2 * n + i]) / 3.0;
                    for (c, mc) in m.iter_mut().enumerate() {
                        *mc += img[c * n + i];
                    }
                    l += lum;
                    l2 += lum * lum;
                }
            }
            let k = (b * b) as f32;
            let var = (l2 / k - (l / k) * (l / k)).max(0.0);
            out.push([m[0] / k, m[1] / k, m[2] / k, var.sqrt()]);
        }
    }
    out
}

/// `block-NN`: the largest distance of a test block's (colour, contrast) features to the nearest
/// training block anywhere (position-free, so it suits textures), features scaled by their
/// training standard deviation.
pub fn block_nn(train: &[f32], test: &[f32], size: usize) -> Vec<f32> {
    let per = 3 * size * size;
    let bank: Vec<[f32; 4]> = train.chunks_exact(per).flat_map(|i| blocks(i, size)).collect();
    let mut mu = [0f32; 4];
    let mut sd = [0f32; 4];
    for f in &bank {
        for d in 0..4 {
            mu[d] += f[d] / bank.len() as f32;
        }
    }
    for f in &bank {
        for d in 0..4 {
            sd[d] += (f[d] - mu[d]).powi(2) / bank.len() as f32;
        }
    }
    let sd = sd.map(|v| v.sqrt() + 1e-3);
    test.chunks_exact(per)
        .map(|img| {
            blocks(img, size)
                .iter()
                .map(|f| {
                    bank.iter()
                        .map(|g| (0..4).map(|d| ((f[d] - g[d]) / sd[d]).powi(2)).sum::<f32>())
                        .fold(f32::MAX, f32::min)
                })
                .fold(0f32, f32::max)
        })
        .collect()
}
