//! AUPRO: the area under the per-region-overlap (PRO) curve up to a false positive rate of 0.3,
//! divided by 0.3, following the MVTec AD evaluation code (`generic_util.trapezoid`,
//! `pro_curve_util.compute_pro`, `evaluate_experiment.calculate_au_pro`; Bergmann et al.).
//!
//! - Regions are the connected components of each ground-truth mask with **8-connectivity**:
//!   MVTec's code calls `scipy.ndimage.label(gt, structure=np.ones((3, 3)))`, not scipy's
//!   default cross-shaped (4-connected) structure. [`Connectivity`] makes it configurable.
//! - For a threshold t, PRO(t) is the mean over *all regions of all images* of the fraction of the
//!   region's pixels with score >= t, and FPR(t) is the fraction of all normal pixels with score
//!   >= t. One curve point per distinct score; the curve starts at (0, 0).
//! - The area is the trapezoid rule up to the limit, the last segment interpolated linearly.
//!
//! Exact (no threshold binning) and fast: only pixels scoring above the threshold where FPR
//! passes the limit are sorted, found with a 65,536-bucket histogram over the score's bit key.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::anomaly_map::{AnomalyMap, Mask};
use crate::auroc::f32_key;
use crate::error::{check_finite, check_len, Error, Result};

/// The FPR limit of MVTec AD's AUPRO.
pub const DEFAULT_FPR_LIMIT: f64 = 0.3;

/// Which neighbours join a region.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Connectivity {
    /// Edge neighbours only (scipy's default structure).
    Four,
    /// Edge and corner neighbours (MVTec AD's evaluation code).
    #[default]
    Eight,
}

/// Labels the connected regions of `mask`: returns per-pixel labels (0 = background,
/// 1..=n = region) and the size of each region (index `k - 1` for label `k`).
pub fn label_regions(mask: &Mask, connectivity: Connectivity) -> (Vec<u32>, Vec<u64>) {
    let (w, h) = (mask.width as isize, mask.height as isize);
    let mut labels = vec![0u32; mask.data.len()];
    let mut sizes = Vec::new();
    let mut stack = Vec::new();
    let offsets: &[(isize, isize)] = match connectivity {
        Connectivity::Four => &[(-1, 0), (1, 0), (0, -1), (0, 1)],
        Connectivity::Eight => {
            &[(-1, -1), (0, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (0, 1), (1, 1)]
        }
    };
    for start in 0..mask.data.len() {
        if !mask.data[start] || labels[start] != 0 {
            continue;
        }
        let id = sizes.len() as u32 + 1;
        let mut size = 0u64;
        labels[start] = id;
        stack.push(start);
        while let Some(p) = stack.pop() {
            size += 1;
            let (x, y) = ((p as isize) % w, (p as isize) / w);
            for &(dx, dy) in offsets {
                let (nx, ny) = (x + dx, y + dy);
                if nx < 0 || ny < 0 || nx >= w || ny >= h {
                    continue;
                }
                let q = (ny * w + nx) as usize;
                if mask.data[q] && labels[q] == 0 {
                    labels[q] = id;
                    stack.push(q);
                }
            }
        }
        sizes.push(size);
    }
    (labels, sizes)
}

/// The PRO curve up to (and including) the first point whose FPR exceeds `fpr_limit`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProCurve {
    /// False positive rates (over normal pixels), increasing; starts at 0.
    pub fpr: Vec<f64>,
    /// Mean per-region overlap at the same thresholds; starts at 0.
    pub pro: Vec<f64>,
}

/// AUPRO of `maps` against `masks`, integrated up to `fpr_limit` and divided by it.
///
/// Errors when shapes differ, a score is not finite, there is no region or no normal pixel.
pub fn aupro(
    maps: &[&AnomalyMap],
    masks: &[&Mask],
    fpr_limit: f64,
    connectivity: Connectivity,
) -> Result<f64> {
    let curve = pro_curve(maps, masks, fpr_limit, connectivity)?;
    Ok(trapezoid(&curve.fpr, &curve.pro, fpr_limit) / fpr_limit)
}

/// The PRO curve of `maps` against `masks` (see the module docs), up to `fpr_limit`.
pub fn pro_curve(
    maps: &[&AnomalyMap],
    masks: &[&Mask],
    fpr_limit: f64,
    connectivity: Connectivity,
) -> Result<ProCurve> {
    check_len("anomaly maps and masks", maps.len(), masks.len())?;
    if !(fpr_limit > 0.0 && fpr_limit <= 1.0) {
        return Err(Error::invalid("FPR limit", format!("{fpr_limit} is outside (0, 1]")));
    }
    for (i, (m, k)) in maps.iter().zip(masks).enumerate() {
        m.check_same_shape(k, &format!("anomaly map {i} and its mask"))?;
    }
    maps.par_iter()
        .enumerate()
        .try_for_each(|(i, m)| check_finite(&format!("anomaly map {i}"), &m.data))?;

    // Regions per image, then global region ids and the PRO increment 1/size of each.
    let labelled: Vec<(Vec<u32>, Vec<u64>)> =
        masks.par_iter().map(|m| label_regions(m, connectivity)).collect();
    let mut offsets = Vec::with_capacity(labelled.len());
    let mut inv_size: Vec<f64> = Vec::new();
    for (_, sizes) in &labelled {
        offsets.push(inv_size.len() as u32);
        inv_size.extend(sizes.iter().map(|&s| 1.0 / s as f64));
    }
    let n_regions = inv_size.len();
    let n_ok: u64 = masks.par_iter().map(|m| m.data.iter().filter(|&&b| !b).count() as u64).sum();
    if n_regions == 0 || n_ok == 0 {
        return Err(Error::OneClass {
            what: "AUPRO".into(),
            positives: n_regions as u64,
            negatives: n_ok,
        });
    }

    // Histogram of normal pixels over the top 16 bits of the key, to find the lowest bucket
    // that the curve reaches before passing the FPR limit.
    let hist = maps
        .par_iter()
        .zip(masks.par_iter())
        .fold(
            || vec![0u64; 1 << 16],
            |mut h, (m, k)| {
                for (&v, &b) in m.data.iter().zip(&k.data) {
                    if !b {
                        h[(f32_key(v) >> 16) as usize] += 1;
                    }
                }
                h
            },
        )
        .reduce(
            || vec![0u64; 1 << 16],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                a
            },
        );
    let limit_count = fpr_limit * n_ok as f64;
    let mut cum = 0u64;
    let mut cutoff = 0u32; // keep keys whose top 16 bits are >= cutoff
    for bucket in (0..1usize << 16).rev() {
        cum += hist[bucket];
        if cum as f64 > limit_count {
            cutoff = bucket as u32;
            break;
        }
    }

    // Collect (key, tag) of the kept pixels; tag u32::MAX = normal, else global region id.
    const NORMAL: u32 = u32::MAX;
    let mut kept: Vec<u64> = maps
        .par_iter()
        .zip(labelled.par_iter())
        .zip(offsets.par_iter())
        .flat_map_iter(|((m, (labels, _)), &off)| {
            m.data.iter().zip(labels).filter_map(move |(&v, &l)| {
                let key = f32_key(v);
                (key >> 16 >= cutoff).then(|| {
                    let tag = if l == 0 { NORMAL } else { off + l - 1 };
                    ((key as u64) << 32) | tag as u64
                })
            })
        })
        .collect();
    kept.par_sort_unstable_by(|a, b| b.cmp(a));

    let mut curve = ProCurve { fpr: vec![0.0], pro: vec![0.0] };
    let (mut fp, mut pro_sum) = (0u64, 0f64);
    let mut i = 0;
    while i < kept.len() {
        let key = kept[i] >> 32;
        while i < kept.len() && kept[i] >> 32 == key {
            let tag = kept[i] as u32;
            if tag == NORMAL {
                fp += 1;
            } else {
                pro_sum += inv_size[tag as usize];
            }
            i += 1;
        }
        let fpr = fp as f64 / n_ok as f64;
        curve.fpr.push(fpr.min(1.0));
        curve.pro.push((pro_sum / n_regions as f64).min(1.0));
        if fpr > fpr_limit {
            break;
        }
    }
    // MVTec's curve ends at (1, 1); needed only when the limit is 1.
    if *curve.fpr.last().expect("starts with a point") <= fpr_limit {
        curve.fpr.push(1.0);
        curve.pro.push(1.0);
    }
    Ok(curve)
}

/// The trapezoid area under (x, y) for x in [x0, x_max], with the last segment linearly
/// interpolated at `x_max` when `x_max` is not a point of `x` (MVTec's `trapezoid`).
/// `x` must be non-decreasing.
pub fn trapezoid(x: &[f64], y: &[f64], x_max: f64) -> f64 {
    let mut area = 0.0;
    for i in 1..x.len() {
        if x[i] <= x_max {
            area += 0.5 * (y[i] + y[i - 1]) * (x[i] - x[i - 1]);
        } else {
            if x[i - 1] < x_max && !x.contains(&x_max) {
                let y_max = y[i - 1] + (y[i] - y[i - 1]) * (x_max - x[i - 1]) / (x[i] - x[i - 1]);
                area += 0.5 * (y_max + y[i - 1]) * (x_max - x[i - 1]);
            }
            break;
        }
    }
    area
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(w: usize, rows: &[&str]) -> Mask {
        let data = rows.iter().flat_map(|r| r.chars().map(|c| c == '#')).collect();
        Mask::new(w, rows.len(), data).unwrap()
    }

    #[test]
    fn diagonal_touch_is_one_region_with_eight_connectivity() {
        let m = mask(4, &["#...", ".#..", "..#.", "..#."]);
        let (_, eight) = label_regions(&m, Connectivity::Eight);
        assert_eq!(eight, vec![4]);
        let (_, four) = label_regions(&m, Connectivity::Four);
        assert_eq!(four, vec![1, 1, 2]);
    }

    #[test]
    fn perfect_map_gives_one() {
        let m = mask(4, &["##..", "##..", "....", "...#"]);
        let scores: Vec<f32> = m.data.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect();
        let a = AnomalyMap::new(4, 4, scores).unwrap();
        let v = aupro(&[&a], &[&m], 0.3, Connectivity::Eight).unwrap();
        assert!((v - 1.0).abs() < 1e-12, "{v}");
    }

    #[test]
    fn inverted_map_gives_zero_and_constant_map_a_known_value() {
        let m = mask(4, &["##..", "##..", "....", "...."]);
        let inv: Vec<f32> = m.data.iter().map(|&b| if b { 0.0 } else { 1.0 }).collect();
        let a = AnomalyMap::new(4, 4, inv).unwrap();
        assert_eq!(aupro(&[&a], &[&m], 0.3, Connectivity::Eight).unwrap(), 0.0);
        // Constant scores: one point (1, 1); the line from (0, 0) gives area 0.3^2 / 2 -> 0.15.
        let c = AnomalyMap::new(4, 4, vec![0.5; 16]).unwrap();
        let v = aupro(&[&c], &[&m], 0.3, Connectivity::Eight).unwrap();
        assert!((v - 0.15).abs() < 1e-12, "{v}");
    }

    #[test]
    fn trapezoid_interpolates_the_last_segment() {
        let x = [0.0, 0.2, 0.4, 1.0];
        let y = [0.0, 0.5, 1.0, 1.0];
        // 0.5 * 0.5 * 0.2 + (0.5 + 0.75) / 2 * 0.1
        assert!((trapezoid(&x, &y, 0.3) - 0.1125).abs() < 1e-12);
        assert!((trapezoid(&x, &y, 0.4) - 0.2).abs() < 1e-12);
    }

    #[test]
    fn no_region_is_an_error() {
        let m = Mask::empty(3, 3);
        let a = AnomalyMap::new(3, 3, vec![0.0; 9]).unwrap();
        assert!(aupro(&[&a], &[&m], 0.3, Connectivity::Eight).is_err());
    }
}
