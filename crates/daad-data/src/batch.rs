//! A seeded, shuffled batch iterator with seeded random horizontal/vertical flips.
//!
//! The order and the flips of epoch `e` depend only on `(seed, e)`: a resumed run that restarts
//! at epoch `e` sees exactly the batches an uninterrupted run would have seen.

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};

/// Yields shuffled `(B, C, H, W)` batches of an image tensor, optionally flipped, on a chosen device.
#[derive(Clone, Debug)]
pub struct Batcher {
    data: std::result::Result<Arc<Vec<f32>>, String>,
    dims: (usize, usize, usize, usize),
    batch_size: usize,
    seed: u64,
    hflip: bool,
    vflip: bool,
    drop_last: bool,
}

impl Batcher {
    /// A batcher over `images` `(N, C, H, W)` (any float dtype; batches are f32), no flips, keeping
    /// the last partial batch. An invalid input (wrong rank, zero batch size) is reported as an
    /// error by the first item of [`Batcher::epoch`]; use [`Batcher::try_new`] to get it at once.
    pub fn new(images: Tensor, batch_size: usize, seed: u64) -> Self {
        match Self::try_new(images, batch_size, seed) {
            Ok(b) => b,
            Err(e) => Batcher {
                data: Err(e.to_string()),
                dims: (0, 0, 0, 0),
                batch_size,
                seed,
                hflip: false,
                vflip: false,
                drop_last: false,
            },
        }
    }

    /// Like [`Batcher::new`] but reports an invalid input immediately.
    pub fn try_new(images: Tensor, batch_size: usize, seed: u64) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::InvalidArgument("batch size must be at least 1".into()));
        }
        let dims = images.dims4().map_err(|_| {
            Error::InvalidArgument(format!(
                "Batcher needs images of shape (N, C, H, W), got {:?}",
                images.dims()
            ))
        })?;
        let data = images
            .to_device(&Device::Cpu)?
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        Ok(Batcher {
            data: Ok(Arc::new(data)),
            dims,
            batch_size,
            seed,
            hflip: false,
            vflip: false,
            drop_last: false,
        })
    }

    /// Enables seeded random flips: each image is flipped with probability 1/2 per enabled axis.
    pub fn flips(mut self, horizontal: bool, vertical: bool) -> Self {
        self.hflip = horizontal;
        self.vflip = vertical;
        self
    }

    /// Whether to drop the last batch when it is smaller than the batch size.
    pub fn drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.dims.0
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.dims.0 == 0
    }

    /// Number of batches one epoch yields.
    pub fn batches_per_epoch(&self) -> usize {
        let n = self.dims.0;
        if self.batch_size == 0 {
            return 0;
        }
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    /// The permutation and per-image flips `(h, v)` of epoch `epoch`.
    ///
    /// Flip coins are drawn for every image whether or not flips are enabled, so enabling flips
    /// never changes the order.
    pub fn plan(&self, epoch: usize) -> (Vec<usize>, Vec<(bool, bool)>) {
        let n = self.dims.0;
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(epoch as u64);
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng);
        let flips = (0..n)
            .map(|_| {
                let h: bool = rng.random();
                let v: bool = rng.random();
                (h && self.hflip, v && self.vflip)
            })
            .collect();
        (order, flips)
    }

    /// The batches of epoch `epoch` as `(B, C, H, W)` f32 tensors on `device`.
    pub fn epoch(
        &self,
        epoch: usize,
        device: &Device,
    ) -> impl Iterator<Item = Result<Tensor>> + '_ {
        let (order, flips) = match &self.data {
            Ok(_) => self.plan(epoch),
            Err(_) => (Vec::new(), Vec::new()),
        };
        let err = self.data.as_ref().err().cloned();
        let nb = if err.is_some() { 1 } else { self.batches_per_epoch() };
        let device = device.clone();
        (0..nb).map(move |b| {
            if let Some(e) = &err {
                return Err(Error::InvalidArgument(e.clone()));
            }
            let start = b * self.batch_size;
            let end = (start + self.batch_size).min(order.len());
            self.assemble(&order[start..end], &flips, &device)
        })
    }

    fn assemble(&self, idx: &[usize], flips: &[(bool, bool)], device: &Device) -> Result<Tensor> {
        let data = self.data.as_ref().map_err(|e| Error::InvalidArgument(e.clone()))?;
        let (_, c, h, w) = self.dims;
        let per = c * h * w;
        let mut out = Vec::with_capacity(idx.len() * per);
        for &i in idx {
            let src = &data[i * per..(i + 1) * per];
            let (fh, fv) = flips[i];
            if !fh && !fv {
                out.extend_from_slice(src);
                continue;
            }
            for ch in 0..c {
                for y in 0..h {
                    let sy = if fv { h - 1 - y } else { y };
                    let row = &src[ch * h * w + sy * w..ch * h * w + (sy + 1) * w];
                    if fh {
                        out.extend(row.iter().rev());
                    } else {
                        out.extend_from_slice(row);
                    }
                }
            }
        }
        Ok(Tensor::from_vec(out, (idx.len(), c, h, w), &Device::Cpu)?.to_device(device)?)
    }
}
