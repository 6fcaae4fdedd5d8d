//! Per-pixel anomaly maps and ground-truth masks: Gaussian smoothing (separable, scipy's
//! `gaussian_filter` conventions) and bilinear resizing to the original image size.

use std::path::Path;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{check_finite, Error, Result};

/// A per-pixel anomaly map (row-major, `height` rows of `width` values; higher = more anomalous).
#[derive(Clone, Debug, PartialEq)]
pub struct AnomalyMap {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width * height` values, row-major.
    pub data: Vec<f32>,
}

/// A ground-truth mask (row-major; `true` = anomalous pixel).
#[derive(Clone, Debug, PartialEq)]
pub struct Mask {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width * height` flags, row-major.
    pub data: Vec<bool>,
}

/// How raw error maps become anomaly maps.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnomalyMapConfig {
    /// Gaussian sigma in pixels for a 256-pixel-wide map, scaled linearly with the map width;
    /// 0 disables smoothing. Default 4 **(choice: the paper has no pixel maps; 4 px is the
    /// common choice of anomalib's reconstruction models)**.
    pub sigma_at_256: f32,
    /// The kernel reaches `truncate * sigma` pixels each side (scipy's default 4).
    pub truncate: f32,
}

impl Default for AnomalyMapConfig {
    fn default() -> Self {
        AnomalyMapConfig { sigma_at_256: 4.0, truncate: 4.0 }
    }
}

impl AnomalyMapConfig {
    /// The sigma in pixels for a map `width` pixels wide.
    pub fn sigma_for_width(&self, width: usize) -> f32 {
        self.sigma_at_256 * width as f32 / 256.0
    }
}

impl AnomalyMap {
    /// A map from row-major values (errors when `data.len() != width * height`).
    pub fn new(width: usize, height: usize, data: Vec<f32>) -> Result<Self> {
        check_area("anomaly map", width, height, data.len())?;
        Ok(AnomalyMap { width, height, data })
    }

    /// One map from a tensor of shape (H, W), (1, H, W) or (1, 1, H, W); channels are averaged
    /// for (C, H, W) and (1, C, H, W).
    pub fn from_tensor(t: &Tensor) -> Result<Self> {
        let t = match t.rank() {
            2 => t.unsqueeze(0)?.unsqueeze(0)?,
            3 => t.unsqueeze(0)?,
            4 if t.dim(0)? == 1 => t.clone(),
            _ => {
                return Err(Error::invalid(
                    "error-map tensor",
                    format!("shape {:?}: expected (H,W), (C,H,W) or (1,C,H,W)", t.dims()),
                ))
            }
        };
        Ok(Self::batch_from_tensor(&t)?.remove(0))
    }

    /// One map per item of a (B, C, H, W) tensor (channels averaged, e.g. a per-channel squared
    /// error becomes the per-pixel mean squared error).
    pub fn batch_from_tensor(t: &Tensor) -> Result<Vec<Self>> {
        let (b, c, h, w) = t.dims4()?;
        if c == 0 {
            return Err(Error::invalid("error-map tensor", "zero channels"));
        }
        let t = t.to_dtype(candle_core::DType::F32)?.mean(1)?; // (B, H, W)
        let v = t.flatten_all()?.to_vec1::<f32>()?;
        Ok(v.chunks(h * w)
            .take(b)
            .map(|d| AnomalyMap { width: w, height: h, data: d.to_vec() })
            .collect())
    }

    /// Checks that `mask` has this map's shape; `what` names the pair in the error.
    pub fn check_same_shape(&self, mask: &Mask, what: &str) -> Result<()> {
        if (self.width, self.height) == (mask.width, mask.height) {
            Ok(())
        } else {
            Err(Error::Shape {
                what: what.to_string(),
                left: (self.width, self.height),
                right: (mask.width, mask.height),
            })
        }
    }

    /// Gaussian smoothing with `sigma` pixels, separable, border mode "reflect"
    /// (`d c b a | a b c d | d c b a`), kernel radius `round(truncate * sigma)`: the same
    /// conventions as `scipy.ndimage.gaussian_filter`.
    pub fn gaussian_blur(&self, sigma: f32, truncate: f32) -> AnomalyMap {
        if sigma <= 0.0 || self.data.is_empty() {
            return self.clone();
        }
        let kernel = gaussian_kernel(sigma as f64, truncate as f64);
        let (w, h) = (self.width, self.height);
        // Rows, then columns as the rows of the transpose: every pass reads contiguous memory.
        let rows = blur_rows(&self.data, w, h, &kernel);
        let cols = blur_rows(&transpose(&rows, w, h), h, w, &kernel);
        let out = transpose(&cols, h, w);
        AnomalyMap { width: w, height: h, data: out }
    }

    /// Bilinear resize to `width` x `height` with half-pixel centres (PyTorch's
    /// `interpolate(mode="bilinear", align_corners=False)`, OpenCV's `INTER_LINEAR`).
    pub fn resize_bilinear(&self, width: usize, height: usize) -> AnomalyMap {
        if (width, height) == (self.width, self.height) {
            return self.clone();
        }
        if self.data.is_empty() {
            return AnomalyMap { width, height, data: vec![0.0; width * height] };
        }
        let xs = axis_weights(self.width, width);
        let ys = axis_weights(self.height, height);
        let mut out = Vec::with_capacity(width * height);
        for &(y0, y1, fy) in &ys {
            let (r0, r1) = (&self.data[y0 * self.width..], &self.data[y1 * self.width..]);
            for &(x0, x1, fx) in &xs {
                let top = r0[x0] + (r0[x1] - r0[x0]) * fx;
                let bottom = r1[x0] + (r1[x1] - r1[x0]) * fx;
                out.push(top + (bottom - top) * fy);
            }
        }
        AnomalyMap { width, height, data: out }
    }

    /// Smooths with `cfg` and resizes to `out` (width, height) when given: the anomaly map that
    /// the metrics and heatmaps use.
    pub fn postprocess(&self, cfg: &AnomalyMapConfig, out: Option<(usize, usize)>) -> AnomalyMap {
        let s = self.gaussian_blur(cfg.sigma_for_width(self.width), cfg.truncate);
        match out {
            Some((w, h)) => s.resize_bilinear(w, h),
            None => s,
        }
    }

    /// Minimum and maximum value (errors on an empty map or a non-finite value).
    pub fn range(&self) -> Result<(f32, f32)> {
        if self.data.is_empty() {
            return Err(Error::Empty { what: "anomaly map".into() });
        }
        check_finite("anomaly map", &self.data)?;
        Ok(self
            .data
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v))))
    }

    /// (x, y) of the largest value (the first one in row-major order on ties).
    pub fn argmax(&self) -> Option<(usize, usize)> {
        let mut best: Option<(usize, f32)> = None;
        for (i, &v) in self.data.iter().enumerate() {
            if best.is_none_or(|(_, b)| v > b) {
                best = Some((i, v));
            }
        }
        best.map(|(i, _)| (i % self.width, i / self.width))
    }
}

impl Mask {
    /// A mask from row-major flags (errors when `data.len() != width * height`).
    pub fn new(width: usize, height: usize, data: Vec<bool>) -> Result<Self> {
        check_area("mask", width, height, data.len())?;
        Ok(Mask { width, height, data })
    }

    /// An all-normal mask (the ground truth of a defect-free image).
    pub fn empty(width: usize, height: usize) -> Self {
        Mask { width, height, data: vec![false; width * height] }
    }

    /// One mask from a tensor of shape (H, W), (1, H, W) or (1, 1, H, W); values > 0.5 are anomalous.
    pub fn from_tensor(t: &Tensor) -> Result<Self> {
        let m = AnomalyMap::from_tensor(t)?;
        Ok(Mask {
            width: m.width,
            height: m.height,
            data: m.data.iter().map(|&v| v > 0.5).collect(),
        })
    }

    /// One mask per item of a (B, 1, H, W) tensor, e.g. `daad_data::Preprocess::load_masks`.
    pub fn batch_from_tensor(t: &Tensor) -> Result<Vec<Self>> {
        Ok(AnomalyMap::batch_from_tensor(t)?
            .into_iter()
            .map(|m| Mask {
                width: m.width,
                height: m.height,
                data: m.data.iter().map(|&v| v > 0.5).collect(),
            })
            .collect())
    }

    /// Reads a mask PNG (MVTec's `NNN_mask.png`: grey, > 127 = anomalous).
    pub fn from_png(path: &Path) -> Result<Self> {
        let img = image::open(path)
            .map_err(|source| Error::Image { path: path.to_path_buf(), source })?
            .into_luma8();
        let (w, h) = img.dimensions();
        Ok(Mask {
            width: w as usize,
            height: h as usize,
            data: img.pixels().map(|p| p.0[0] > 127).collect(),
        })
    }

    /// Nearest-neighbour resize (masks stay binary).
    pub fn resize_nearest(&self, width: usize, height: usize) -> Mask {
        if self.data.is_empty() {
            return Mask::empty(width, height);
        }
        let mut data = Vec::with_capacity(width * height);
        for y in 0..height {
            let sy = ((y as f64 + 0.5) * self.height as f64 / height as f64) as usize;
            let sy = sy.min(self.height - 1);
            for x in 0..width {
                let sx = (((x as f64 + 0.5) * self.width as f64 / width as f64) as usize)
                    .min(self.width - 1);
                data.push(self.data[sy * self.width + sx]);
            }
        }
        Mask { width, height, data }
    }

    /// Whether any pixel is anomalous.
    pub fn any(&self) -> bool {
        self.data.iter().any(|&b| b)
    }
}

fn check_area(what: &str, width: usize, height: usize, len: usize) -> Result<()> {
    if width * height == len {
        Ok(())
    } else {
        Err(Error::invalid(what, format!("{len} values do not fill {width}x{height}")))
    }
}

/// Normalised Gaussian weights for offsets -r..=r, r = round(truncate * sigma) (scipy's rule).
fn gaussian_kernel(sigma: f64, truncate: f64) -> Vec<f32> {
    let r = (truncate * sigma + 0.5) as isize;
    let w: Vec<f64> = (-r..=r).map(|i| (-0.5 * (i * i) as f64 / (sigma * sigma)).exp()).collect();
    let s: f64 = w.iter().sum();
    w.iter().map(|v| (v / s) as f32).collect()
}

/// Convolves each row of a `w` x `h` image with `kernel` (odd length), reflecting at the ends.
fn blur_rows(data: &[f32], w: usize, h: usize, kernel: &[f32]) -> Vec<f32> {
    let r = kernel.len() / 2;
    let mut out = vec![0f32; w * h];
    let mut padded = vec![0f32; w + 2 * r];
    for y in 0..h {
        let row = &data[y * w..(y + 1) * w];
        for (i, p) in padded.iter_mut().enumerate() {
            *p = row[reflect(i as isize - r as isize, w)];
        }
        for (x, o) in out[y * w..(y + 1) * w].iter_mut().enumerate() {
            *o = padded[x..x + kernel.len()].iter().zip(kernel).map(|(a, b)| a * b).sum();
        }
    }
    out
}

/// The transpose of a row-major `w` x `h` image (a row-major `h` x `w` one).
fn transpose(data: &[f32], w: usize, h: usize) -> Vec<f32> {
    let mut out = vec![0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            out[x * h + y] = data[y * w + x];
        }
    }
    out
}

/// scipy's "reflect" index: the image mirrored about its edges, repeated as often as needed.
#[inline]
fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    let period = 2 * n;
    let m = i.rem_euclid(period);
    (if m < n { m } else { period - 1 - m }) as usize
}

/// For each output index: (lower source index, upper source index, weight of the upper).
fn axis_weights(n_in: usize, n_out: usize) -> Vec<(usize, usize, f32)> {
    let scale = n_in as f64 / n_out as f64;
    (0..n_out)
        .map(|o| {
            let src = ((o as f64 + 0.5) * scale - 0.5).max(0.0);
            let i0 = (src.floor() as usize).min(n_in - 1);
            let i1 = (i0 + 1).min(n_in - 1);
            (i0, i1, (src - i0 as f64) as f32)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_matches_scipy_convention() {
        // n = 4: ... b a | a b c d | d c b a ...
        let idx: Vec<usize> = (-5..9).map(|i| reflect(i, 4)).collect();
        assert_eq!(idx, vec![3, 3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0, 0]);
    }

    #[test]
    fn blur_keeps_constants_and_mass_in_the_interior() {
        let m = AnomalyMap::new(20, 10, vec![2.5; 200]).unwrap();
        let b = m.gaussian_blur(3.0, 4.0);
        assert!(b.data.iter().all(|v| (v - 2.5).abs() < 1e-5));
        let mut d = vec![0f32; 41 * 41];
        d[20 * 41 + 20] = 1.0;
        let b = AnomalyMap::new(41, 41, d).unwrap().gaussian_blur(2.0, 4.0);
        let s: f32 = b.data.iter().sum();
        assert!((s - 1.0).abs() < 1e-5);
        assert_eq!(b.argmax(), Some((20, 20)));
    }

    // Known answer: torch.nn.functional.interpolate(torch.tensor([[[[0., 1.]]]]), size=(1, 4),
    // mode="bilinear", align_corners=False) == [0, 0.25, 0.75, 1].
    #[test]
    fn bilinear_matches_half_pixel_convention() {
        let m = AnomalyMap::new(2, 1, vec![0.0, 1.0]).unwrap();
        let r = m.resize_bilinear(4, 1);
        assert_eq!(r.data, vec![0.0, 0.25, 0.75, 1.0]);
        let c = AnomalyMap::new(3, 2, vec![1.5; 6]).unwrap().resize_bilinear(7, 5);
        assert!(c.data.iter().all(|&v| v == 1.5));
        let down = AnomalyMap::new(4, 1, vec![0.0, 1.0, 2.0, 3.0]).unwrap().resize_bilinear(2, 1);
        assert_eq!(down.data, vec![0.5, 2.5]);
    }

    #[test]
    fn tensors_convert() {
        let t = Tensor::from_vec(
            (0..24).map(|v| v as f32).collect::<Vec<_>>(),
            (2, 3, 2, 2),
            &candle_core::Device::Cpu,
        )
        .unwrap();
        let maps = AnomalyMap::batch_from_tensor(&t).unwrap();
        assert_eq!(maps.len(), 2);
        // Channel mean of item 0 at pixel 0: (0 + 4 + 8) / 3.
        assert_eq!(maps[0].data[0], 4.0);
        let m = Mask::from_tensor(
            &Tensor::new(&[[0f32, 1.0], [1.0, 0.0]], &candle_core::Device::Cpu).unwrap(),
        )
        .unwrap();
        assert_eq!(m.data, vec![false, true, true, false]);
        assert!(AnomalyMap::new(2, 2, vec![0.0; 3]).is_err());
    }
}
