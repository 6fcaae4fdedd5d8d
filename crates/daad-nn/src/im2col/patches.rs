//! im2col and col2im (its adjoint): copies between an image and its patch matrix.

use rayon::prelude::*;

use super::geom::Geom;

/// Writes `im2col(img)` (`rows x cols`, row-major) into `cols`.
pub(super) fn im2col(g: &Geom, img: &[f32], cols: &mut [f32]) {
    let (k, n, hw) = (g.p.k, g.cols(), g.h * g.w);
    debug_assert_eq!(img.len(), g.img_len());
    debug_assert_eq!(cols.len(), g.rows() * n);
    for (row, dst) in cols.chunks_exact_mut(n).enumerate() {
        let (c, kh, kw) = (row / (k * k), (row / k) % k, row % k);
        im2col_row(g, &img[c * hw..(c + 1) * hw], kh, kw, dst);
    }
}

/// Adds `col2im(cols)` into `img` (the adjoint of [`im2col`]).
pub(super) fn col2im_add(g: &Geom, cols: &[f32], img: &mut [f32]) {
    let (k, n, hw) = (g.p.k, g.cols(), g.h * g.w);
    debug_assert_eq!(img.len(), g.img_len());
    debug_assert_eq!(cols.len(), g.rows() * n);
    for (row, src) in cols.chunks_exact(n).enumerate() {
        let (c, kh, kw) = (row / (k * k), (row / k) % k, row % k);
        col2im_row(g, src, kh, kw, &mut img[c * hw..(c + 1) * hw]);
    }
}

/// One item's segment of one im2col row: patch element (kh, kw) of `plane` (one channel).
#[inline]
pub(super) fn im2col_row(g: &Geom, plane: &[f32], kh: usize, kw: usize, dst: &mut [f32]) {
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
pub(super) fn col2im_row(g: &Geom, src: &[f32], kh: usize, kw: usize, plane: &mut [f32]) {
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
pub(super) fn im2col_all(g: &Geom, batch: usize, img: &[f32]) -> Vec<f32> {
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
