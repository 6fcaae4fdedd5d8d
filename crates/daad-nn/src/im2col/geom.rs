//! The geometry of one image <-> columns pair.

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
    pub(super) fn identity(&self) -> bool {
        self.p.k == 1
            && self.p.stride == 1
            && self.p.pad == 0
            && self.oh == self.h
            && self.ow == self.w
    }
    /// Range of output columns `ow` whose input column `ow*stride + off` lies in `[0, w)`.
    #[inline]
    pub(super) fn valid(&self, off: isize) -> (usize, usize) {
        let s = self.p.stride as isize;
        let lo = if off >= 0 { 0 } else { (-off + s - 1) / s };
        let hi = if self.w as isize - off <= 0 { 0 } else { (self.w as isize - off + s - 1) / s };
        let hi = (hi as usize).min(self.ow);
        ((lo as usize).min(hi), hi)
    }
}
