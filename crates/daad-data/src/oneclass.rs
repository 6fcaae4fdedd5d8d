//! The one-class protocol of the paper's Table 2: train on the training images of class `k`;
//! test on the whole test set, where every image of another class is an anomaly.

use candle_core::{Device, Tensor};
use image::imageops::FilterType;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::mvtec::Label;

/// Raw 8-bit images in CHW order per image, with their class labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawImages {
    /// Channels (1 for MNIST, 3 for CIFAR-10).
    pub channels: usize,
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
    /// `len * channels * height * width` bytes, image after image, each CHW.
    pub pixels: Vec<u8>,
    /// One class label per image.
    pub labels: Vec<u8>,
}

impl RawImages {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Images `indices` resized to `size x size` (triangle filter), grey copied to 3 channels, as
    /// an `(N, 3, size, size)` f32 tensor in [-1, 1] on the CPU.
    pub fn to_tensor(&self, indices: &[usize], size: usize) -> Result<Tensor> {
        if size == 0 {
            return Err(Error::InvalidArgument("image size must be at least 1".into()));
        }
        let (c, h, w) = (self.channels, self.height, self.width);
        let per = c * h * w;
        let s = size as u32;
        let imgs: Vec<Vec<f32>> = indices
            .par_iter()
            .map(|&i| {
                let src = &self.pixels[i * per..(i + 1) * per];
                let mut hwc = vec![0u8; h * w * 3];
                for y in 0..h {
                    for x in 0..w {
                        for ch in 0..3 {
                            let sc = if c == 1 { 0 } else { ch };
                            hwc[(y * w + x) * 3 + ch] = src[sc * h * w + y * w + x];
                        }
                    }
                }
                let img = image::RgbImage::from_raw(w as u32, h as u32, hwc)
                    .expect("buffer of h*w*3 bytes");
                let img = if (w, h) == (size, size) {
                    img
                } else {
                    image::imageops::resize(&img, s, s, FilterType::Triangle)
                };
                let n = size * size;
                let mut out = vec![0f32; 3 * n];
                for (k, p) in img.pixels().enumerate() {
                    for ch in 0..3 {
                        out[ch * n + k] = p.0[ch] as f32 / 127.5 - 1.0;
                    }
                }
                out
            })
            .collect();
        let data: Vec<f32> = imgs.into_iter().flatten().collect();
        Ok(Tensor::from_vec(data, (indices.len(), 3, size, size), &Device::Cpu)?)
    }
}

/// A one-class split: normal class `class`, everything else anomalous.
#[derive(Clone, Debug)]
pub struct OneClassSet {
    /// The normal class.
    pub class: u8,
    /// Training images of `class`, `(N, 3, S, S)` in [-1, 1].
    pub train: Tensor,
    /// The whole test set, `(M, 3, S, S)` in [-1, 1].
    pub test: Tensor,
    /// `Normal` for test images of `class`, `Anomalous` otherwise.
    pub test_labels: Vec<Label>,
    /// The original class of each test image.
    pub test_classes: Vec<u8>,
}

/// The one-class protocol as indices: the training images of `class`, and each test image's
/// label (`Normal` for `class`, `Anomalous` otherwise). Shared by [`one_class`] (tensors) and
/// exporters that write the split as image files.
pub fn one_class_split(
    train: &RawImages,
    test: &RawImages,
    class: u8,
) -> Result<(Vec<usize>, Vec<Label>)> {
    let idx: Vec<usize> = (0..train.len()).filter(|&i| train.labels[i] == class).collect();
    if idx.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "no training images of class {class}; classes are 0-9"
        )));
    }
    let test_labels = test
        .labels
        .iter()
        .map(|&l| if l == class { Label::Normal } else { Label::Anomalous })
        .collect();
    Ok((idx, test_labels))
}

/// Applies the one-class protocol to a train/test pair, resizing to `size x size`.
pub fn one_class(
    train: &RawImages,
    test: &RawImages,
    class: u8,
    size: usize,
) -> Result<OneClassSet> {
    let (idx, test_labels) = one_class_split(train, test, class)?;
    let all: Vec<usize> = (0..test.len()).collect();
    Ok(OneClassSet {
        class,
        train: train.to_tensor(&idx, size)?,
        test: test.to_tensor(&all, size)?,
        test_labels,
        test_classes: test.labels.clone(),
    })
}
