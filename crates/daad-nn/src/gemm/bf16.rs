//! The bf16 product: `dst [+]= bf16(a) @ bf16(b)` with f32 accumulation (oneDNN's autocast).
//!
//! Two kernels that compute the same thing:
//! - AVX512_BF16 (`vdpbf16ps`, [`super::bf16_avx512`]): BLIS-style blocking. For each `KC`-deep
//!   slice of k, `b` is packed into `NR`-column panels and `a` into `MR`-row panels, both as
//!   bf16 pairs (two consecutive k in one 32-bit lane, the layout `vdpbf16ps` multiplies), then
//!   an `MR x NR` micro-kernel accumulates in f32 registers. Threads split the columns (or, for
//!   few columns, the rows), each with its own packed panels.
//! - Portable: the operands rounded to bf16 (kept as f32 values), then the f32 `gemm`. Products
//!   of two bf16 are exact in f32, so both kernels differ only by f32 summation order.
//!
//! Rounding is IEEE round-to-nearest-even, with NaN kept quiet and f32 subnormals flushed to
//! zero, exactly as `vcvtneps2bf16` (the AVX512_BF16 conversion) does; `vdpbf16ps` also treats
//! subnormal inputs as zero.

use std::cell::RefCell;

use rayon::prelude::*;

use super::{matmul_f32, Mat};

/// Rows of the micro-kernel's tile: 6 x 4 accumulator zmm. (12 x 2 reaches the same peak with
/// its data in L1, but was ~15 % slower on the model's shapes: one broadcast per two products
/// instead of per four.)
pub(super) const MR: usize = 6;
/// Columns of the micro-kernel's tile (a multiple of 16: zmm of 16 f32).
pub(super) const NR: usize = 64;
/// Depth of one packed slice (even): an `NR`-column panel of `b` is `KC * NR * 2` bytes = 32 KiB.
/// (128 measured the same within the noise; 256 halves the passes over `dst`.)
const KC: usize = 256;
/// Rows of `a` run against one panel of `b` before the next (a multiple of `MR`): their packed
/// panels, `MC * KC * 2` bytes = 72 KiB, stay in L2.
const MC: usize = 144;
/// Columns of `b` packed at once (a multiple of `NR`): `KC * NC * 2` bytes = 512 KiB (L2 / L3).
const NC: usize = 1024;

/// Which bf16 kernel [`matmul_bf16`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bf16Kernel {
    /// The AVX512_BF16 kernel; on a CPU without it, the portable one.
    Avx512,
    /// Round the operands to bf16, then the f32 `gemm` (any CPU; slower than f32 alone).
    Portable,
}

impl Bf16Kernel {
    /// The fastest kernel this CPU runs.
    pub fn best() -> Self {
        if bf16_native() {
            Bf16Kernel::Avx512
        } else {
            Bf16Kernel::Portable
        }
    }
}

/// Whether this CPU has the AVX512_BF16 instructions the fast bf16 kernel needs.
pub fn bf16_native() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static NATIVE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *NATIVE.get_or_init(|| {
            std::arch::is_x86_feature_detected!("avx512bf16")
                && std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `x` rounded to bf16 (the upper 16 bits of an f32) as [`vcvtneps2bf16`] rounds it.
#[inline]
pub(super) fn to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        // Quiet NaN, sign and top payload kept.
        return ((bits >> 16) | 0x40) as u16;
    }
    if bits & 0x7f80_0000 == 0 {
        // Zero or subnormal: signed zero.
        return ((bits >> 16) & 0x8000) as u16;
    }
    // Round to nearest even on the 16 dropped bits (overflow to infinity is the correct result).
    let rounded = bits.wrapping_add(0x7fff + ((bits >> 16) & 1));
    (rounded >> 16) as u16
}

/// `x` rounded to the nearest bf16, as an f32 (what both kernels multiply).
pub fn round_bf16(x: f32) -> f32 {
    f32::from_bits(u32::from(to_bf16(x)) << 16)
}

/// Two bf16 in one 32-bit lane: `lo` in the low half (the even k), `hi` in the high half.
#[inline]
pub(super) fn pair(lo: f32, hi: f32) -> u32 {
    u32::from(to_bf16(lo)) | (u32::from(to_bf16(hi)) << 16)
}

/// `dst (m x n, row-major) [+]= bf16(a) (m x k) @ bf16(b) (k x n)`, f32 accumulation, on
/// `threads` rayon threads. [`Bf16Kernel::Avx512`] on a CPU without AVX512_BF16 runs the portable
/// kernel. Panics if a view is too short for its shape (a caller's bug).
pub fn matmul_bf16(
    kernel: Bf16Kernel,
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    accumulate: bool,
    a: Mat<'_>,
    b: Mat<'_>,
    threads: usize,
) {
    if super::done_without_product((m, n, k), dst, accumulate, a, b) {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if kernel == Bf16Kernel::Avx512 && bf16_native() {
        return blocked((m, n, k), dst, accumulate, a, b, threads);
    }
    let _ = kernel;
    portable((m, n, k), dst, accumulate, a, b, threads)
}

/// The portable kernel: round both operands to bf16 values, then the f32 product.
fn portable(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    accumulate: bool,
    a: Mat<'_>,
    b: Mat<'_>,
    threads: usize,
) {
    let rounded = |v: Mat<'_>, rows: usize, cols: usize| -> Vec<f32> {
        let mut out = vec![0f32; rows * cols];
        out.par_chunks_mut(cols).enumerate().for_each(|(i, row)| {
            for (j, o) in row.iter_mut().enumerate() {
                *o = round_bf16(v.data[i * v.rs + j * v.cs]);
            }
        });
        out
    };
    let (ar, br) = (rounded(a, m, k), rounded(b, k, n));
    let (av, bv) = (Mat { data: &ar, rs: k, cs: 1 }, Mat { data: &br, rs: n, cs: 1 });
    matmul_f32((m, n, k), dst, accumulate, av, bv, threads);
}

/// `dst` shared by the threads of one product; each writes a disjoint block of it.
#[derive(Clone, Copy)]
struct DstPtr(*mut f32);
// SAFETY: the threads of `blocked` write disjoint (row or column) ranges of the destination.
unsafe impl Send for DstPtr {}
// SAFETY: as above; the pointer itself is only copied.
unsafe impl Sync for DstPtr {}

/// The AVX512_BF16 kernel over the whole product, split over `threads`.
#[cfg(target_arch = "x86_64")]
fn blocked(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    accumulate: bool,
    a: Mat<'_>,
    b: Mat<'_>,
    threads: usize,
) {
    let c = DstPtr(dst.as_mut_ptr());
    let run = |rows: (usize, usize), cols: (usize, usize)| {
        // SAFETY: bf16_native() was checked by the caller; the views were bounds-checked for
        // (m, n, k) and dst holds m*n elements; concurrent calls get disjoint row or column
        // ranges of dst.
        unsafe { block(rows, cols, k, c, n, accumulate, a, b) }
    };
    let t = threads.max(1);
    if t == 1 {
        return run((0, m), (0, n));
    }
    // Split the columns when each thread gets at least two panels, else the rows.
    if n >= 2 * NR * t {
        let per = n.div_ceil(t).div_ceil(NR) * NR;
        (0..n.div_ceil(per))
            .into_par_iter()
            .for_each(|i| run((0, m), (i * per, ((i + 1) * per).min(n))));
    } else {
        let per = m.div_ceil(t).div_ceil(MR) * MR;
        (0..m.div_ceil(per))
            .into_par_iter()
            .for_each(|i| run((i * per, ((i + 1) * per).min(m)), (0, n)));
    }
}

thread_local! {
    /// Packed panels of `a` and `b`, reused across products on this thread.
    static PACKED: RefCell<(Vec<u32>, Vec<u32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// One thread's share: rows `r0..r1` and columns `c0..c1` of `dst` (row stride `ldc`).
///
/// # Safety
/// The CPU has AVX512_BF16; `a`, `b` are valid for the whole product and `dst` for
/// `r1 * ldc` elements; no other thread writes this block of `dst` meanwhile.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
unsafe fn block(
    (r0, r1): (usize, usize),
    (c0, c1): (usize, usize),
    k: usize,
    dst: DstPtr,
    ldc: usize,
    accumulate: bool,
    a: Mat<'_>,
    b: Mat<'_>,
) {
    use super::bf16_avx512::{kernel, pack_b};
    PACKED.with_borrow_mut(|(pa, pb)| {
        // All of this thread's `a` is packed once (it is the smaller operand: the weights), as
        // (k slice, row block) groups of MR-row panels, and reused for every column block.
        let (rows, kslices) = (r1 - r0, k.div_ceil(KC));
        let mpanels_all = rows.div_ceil(MR);
        let kp_full = KC / 2;
        pa.resize(kslices * mpanels_all * kp_full * MR, 0);
        for (s, pc) in (0..k).step_by(KC).enumerate() {
            let kc = KC.min(k - pc);
            let kp = kc.div_ceil(2);
            let base = s * mpanels_all * kp_full * MR;
            pack_a(a, (r0, rows), (pc, kc), &mut pa[base..base + mpanels_all * kp * MR]);
        }
        for jc in (c0..c1).step_by(NC) {
            let nc = NC.min(c1 - jc);
            let npanels = nc.div_ceil(NR);
            for (s, pc) in (0..k).step_by(KC).enumerate() {
                let kc = KC.min(k - pc);
                let kp = kc.div_ceil(2);
                pb.resize(npanels * kp * NR, 0);
                // SAFETY: the caller's contract (AVX512_BF16, `b` valid for rows pc..pc+kc and
                // columns jc..jc+nc).
                unsafe { pack_b(b, (pc, kc), (jc, nc), pb) };
                let beta = accumulate || pc > 0;
                let base = s * mpanels_all * kp_full * MR;
                for ic in (0..rows).step_by(MC) {
                    let mc = MC.min(rows - ic);
                    for jr in 0..npanels {
                        let nr = NR.min(nc - jr * NR);
                        let bp = &pb[jr * kp * NR..(jr + 1) * kp * NR];
                        for ir in (ic / MR)..(ic + mc).div_ceil(MR) {
                            let mr = MR.min(rows - ir * MR);
                            let ap = &pa[base + ir * kp * MR..base + (ir + 1) * kp * MR];
                            let tile = dst.0.wrapping_add((r0 + ir * MR) * ldc + jc + jr * NR);
                            // SAFETY: the tile's mr rows and nr columns lie inside this
                            // thread's block of dst; the panels hold kp pairs.
                            unsafe { kernel(kp, ap, bp, tile, ldc, mr, nr, beta) };
                        }
                    }
                }
            }
        }
    });
}

/// Packs rows `i0..i0+mc`, k `p0..p0+kc` of `a` into `MR`-row panels: for each k pair, `MR`
/// lanes of (even k, odd k) bf16; rows past `mc` and the k past `kc` are zero.
fn pack_a(a: Mat<'_>, (i0, mc): (usize, usize), (p0, kc): (usize, usize), out: &mut [u32]) {
    let kp = kc.div_ceil(2);
    for (panel, dst) in out.chunks_exact_mut(kp * MR).enumerate() {
        let rows = MR.min(mc - panel * MR);
        for (q, lanes) in dst.chunks_exact_mut(MR).enumerate() {
            let p = p0 + 2 * q;
            for (i, lane) in lanes.iter_mut().enumerate() {
                *lane = if i < rows {
                    let row = (i0 + panel * MR + i) * a.rs;
                    let lo = a.data[row + p * a.cs];
                    let hi = if 2 * q + 1 < kc { a.data[row + (p + 1) * a.cs] } else { 0.0 };
                    pair(lo, hi)
                } else {
                    0
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_nearest_even_with_quiet_nan_and_flushed_subnormals() {
        // 1 + 2^-8 is halfway between bf16 1.0 and 1 + 2^-7: ties go to the even (1.0).
        assert_eq!(round_bf16(1.0 + 2f32.powi(-8)), 1.0);
        // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6: goes up to even.
        assert_eq!(round_bf16(1.0 + 3.0 * 2f32.powi(-8)), 1.0 + 2f32.powi(-6));
        assert_eq!(round_bf16(1.0 + 2f32.powi(-8) + 2f32.powi(-20)), 1.0 + 2f32.powi(-7));
        assert_eq!(round_bf16(-3.0), -3.0);
        assert_eq!(round_bf16(f32::MAX), f32::INFINITY);
        assert_eq!(round_bf16(f32::NEG_INFINITY), f32::NEG_INFINITY);
        assert!(round_bf16(f32::from_bits(0x7f80_0001)).is_nan());
        assert_eq!(round_bf16(-f32::from_bits(1)).to_bits(), (-0f32).to_bits());
        assert_eq!(pair(1.0, -2.0), 0xc000_3f80);
    }
}
