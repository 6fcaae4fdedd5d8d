//! Gather / scatter between a (B, C, H, W) map and its block queries (B*Q, D) inside the fused
//! op, in exactly [`crate::divide`]'s order, so the block op needs no divide/assemble tensors.

use rayon::prelude::*;

use crate::config::Rates;

/// Shape of a feature map and its division.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockGeom {
    /// (B, C, H, W).
    pub(crate) shape: (usize, usize, usize, usize),
    /// Division rates (they divide the shape).
    pub(crate) rates: Rates,
}

impl BlockGeom {
    /// Number of query rows B*Q.
    pub(crate) fn rows(&self) -> usize {
        self.shape.0 * self.rates.blocks()
    }

    /// Item dimension D.
    pub(crate) fn dim(&self) -> usize {
        let (_, c, h, w) = self.shape;
        (c / self.rates.c) * (h / self.rates.h) * (w / self.rates.w)
    }

    /// Queries (B*Q, D) from the map `f`.
    pub(crate) fn gather<T: Copy + Send + Sync>(&self, f: &[T], q: &mut [T]) {
        self.gather_then(f, q, |_| ());
    }

    /// Queries (B*Q, D) from the map `f`, calling `then` on each row while it is in cache.
    pub(crate) fn gather_then<T, R, F>(&self, f: &[T], q: &mut [T], then: F) -> Vec<R>
    where
        T: Copy + Send + Sync,
        R: Send,
        F: Fn(&[T]) -> R + Sync,
    {
        let (_, c, h, w) = self.shape;
        let Rates { h: rh, w: rw, c: rc } = self.rates;
        let (cb, hb, wb) = (c / rc, h / rh, w / rw);
        let d = cb * hb * wb;
        q.par_chunks_mut(d)
            .enumerate()
            .map(|(row, qr)| {
                let ic = row % rc;
                let iw = (row / rc) % rw;
                let ih = (row / (rc * rw)) % rh;
                let b = row / (rc * rw * rh);
                for cc in 0..cb {
                    let plane = (b * c + ic * cb + cc) * h * w;
                    for y in 0..hb {
                        let src = plane + (ih * hb + y) * w + iw * wb;
                        let dst = (cc * hb + y) * wb;
                        qr[dst..dst + wb].copy_from_slice(&f[src..src + wb]);
                    }
                }
                then(qr)
            })
            .collect()
    }

    /// The map from queries `q` (B*Q, D) into `f` (inverse of [`Self::gather`]).
    pub(crate) fn scatter<T: Copy + Send + Sync>(&self, q: &[T], f: &mut [T]) {
        let (_, c, h, w) = self.shape;
        let Rates { h: rh, w: rw, c: rc } = self.rates;
        let (cb, hb, wb) = (c / rc, h / rh, w / rw);
        let d = cb * hb * wb;
        f.par_chunks_mut(h * w).enumerate().for_each(|(plane, fp)| {
            let b = plane / c;
            let ch = plane % c;
            let (ic, cc) = (ch / cb, ch % cb);
            for y in 0..h {
                let (ih, yy) = (y / hb, y % hb);
                for iw in 0..rw {
                    let row = ((b * rh + ih) * rw + iw) * rc + ic;
                    let src = row * d + (cc * hb + yy) * wb;
                    let dst = y * w + iw * wb;
                    fp[dst..dst + wb].copy_from_slice(&q[src..src + wb]);
                }
            }
        });
    }
}
