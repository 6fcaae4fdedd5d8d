//! The AVX512_BF16 micro-kernel of [`super::bf16`] and its packing of `b`.

use std::arch::x86_64::*;
use std::mem::transmute;

use super::bf16::{pair, MR, NR};
use super::Mat;

/// `c (mr x nr, row stride ldc) [+]= A panel @ B panel` over `kp` k pairs: `a` holds `kp * MR`
/// pairs (row-interleaved), `b` holds `kp * NR` pairs; `beta` adds to what `c` holds.
///
/// # Safety
/// The CPU has AVX512_BF16, AVX512F and AVX512BW; `a`/`b` hold `kp * MR` / `kp * NR` lanes;
/// `c` is valid for `mr` rows of `nr` elements at stride `ldc`, `mr <= MR`, `nr <= NR`.
#[target_feature(enable = "avx512bf16,avx512f,avx512bw")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn kernel(
    kp: usize,
    a: &[u32],
    b: &[u32],
    c: *mut f32,
    ldc: usize,
    mr: usize,
    nr: usize,
    beta: bool,
) {
    debug_assert!(a.len() >= kp * MR && b.len() >= kp * NR && mr <= MR && nr <= NR);
    const NV: usize = NR / 16;
    // The tile of c is read (and written) after the loop: fetch it now, so that its cache
    // misses (c is large and strided) overlap the products instead of stalling after them.
    for i in 0..mr {
        for v in 0..NV {
            _mm_prefetch::<_MM_HINT_T0>(c.wrapping_add(i * ldc + 16 * v) as *const i8);
        }
    }
    let mut acc = [[_mm512_setzero_ps(); NV]; MR];
    let (mut pa, mut pb) = (a.as_ptr(), b.as_ptr());
    for _ in 0..kp {
        // SAFETY: pa/pb advance by MR/NR lanes kp times inside slices of kp*MR/kp*NR lanes.
        unsafe {
            let mut bv = [_mm512_setzero_ps(); NV];
            for (v, x) in bv.iter_mut().enumerate() {
                *x = _mm512_castsi512_ps(_mm512_loadu_si512(pb.add(16 * v).cast()));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let ai: __m512bh = transmute(_mm512_set1_epi32(*pa.add(i) as i32));
                for (r, x) in row.iter_mut().zip(&bv) {
                    *r = _mm512_dpbf16_ps(*r, ai, transmute::<__m512, __m512bh>(*x));
                }
            }
            pa = pa.add(MR);
            pb = pb.add(NR);
        }
    }
    let lanes = |n: usize| -> __mmask16 { ((1u32 << n.min(16)) - 1) as __mmask16 };
    for (i, row) in acc.iter().enumerate().take(mr) {
        for (v, &x) in row.iter().enumerate() {
            let mask = lanes(nr.saturating_sub(16 * v));
            // Masked loads and stores touch only the nr valid columns (masked-off lanes do not
            // fault), so wrapping_add keeps the pointer arithmetic defined past a short row.
            let p = c.wrapping_add(i * ldc + 16 * v);
            // SAFETY: row i < mr of the tile, columns < nr (the mask), inside c by the contract.
            unsafe {
                let y = if beta { _mm512_add_ps(x, _mm512_maskz_loadu_ps(mask, p)) } else { x };
                _mm512_mask_storeu_ps(p, mask, y);
            }
        }
    }
}

/// Packs rows `p0..p0+kc`, columns `j0..j0+nc` of `b` into `NR`-column panels (each `kp * NR`
/// lanes: per k pair, `NR` columns of (even k, odd k) bf16); columns past `nc` and the k past
/// `kc` are zero. Contiguous rows convert 16 values per instruction.
///
/// # Safety
/// The CPU has AVX512_BF16, AVX512F and AVX512BW; `b` is valid (bounds-checked) for rows
/// `p0..p0+kc` and columns `j0..j0+nc`; `out` holds `nc.div_ceil(NR) * kc.div_ceil(2) * NR` lanes.
#[target_feature(enable = "avx512bf16,avx512f,avx512bw")]
pub(super) unsafe fn pack_b(
    b: Mat<'_>,
    (p0, kc): (usize, usize),
    (j0, nc): (usize, usize),
    out: &mut [u32],
) {
    let kp = kc.div_ceil(2);
    let to_lanes = |x: __m512| -> __m512i {
        // 16 f32 -> 16 bf16 (round to nearest even) -> zero-extended to 16 32-bit lanes.
        let h: __m256i = transmute(_mm512_cvtneps_pbh(x));
        _mm512_cvtepu16_epi32(h)
    };
    for (panel, dst) in out.chunks_exact_mut(kp * NR).enumerate().take(nc.div_ceil(NR)) {
        let j = j0 + panel * NR;
        let cols = NR.min(j0 + nc - j);
        for (q, lanes) in dst.chunks_exact_mut(NR).enumerate() {
            let p = p0 + 2 * q;
            let has_hi = 2 * q + 1 < kc;
            if b.cs == 1 && cols == NR {
                let r0 = &b.data[p * b.rs + j..p * b.rs + j + NR];
                for h in 0..NR / 16 {
                    // SAFETY: r0 (and r1 below) hold NR elements (slices, bounds-checked), the
                    // lanes slice NR lanes.
                    unsafe {
                        let lo = to_lanes(_mm512_loadu_ps(r0.as_ptr().add(16 * h)));
                        let v = if has_hi {
                            let r1 = &b.data[(p + 1) * b.rs + j..(p + 1) * b.rs + j + NR];
                            let hi = to_lanes(_mm512_loadu_ps(r1.as_ptr().add(16 * h)));
                            _mm512_or_si512(lo, _mm512_slli_epi32::<16>(hi))
                        } else {
                            lo
                        };
                        _mm512_storeu_si512(lanes.as_mut_ptr().add(16 * h).cast(), v);
                    }
                }
            } else {
                for (jj, lane) in lanes.iter_mut().enumerate() {
                    *lane = if jj < cols {
                        let at = |p: usize| b.data[p * b.rs + (j + jj) * b.cs];
                        pair(at(p), if has_hi { at(p + 1) } else { 0.0 })
                    } else {
                        0
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::bf16::{bf16_native, pair, NR};
    use super::*;

    // The vector conversion (`vcvtneps2bf16`, full contiguous panels) and the scalar one (edges,
    // strided operands, the `a` panels) give the same bits, ties, NaN and subnormals included.
    #[test]
    fn vector_and_scalar_packing_agree_bit_for_bit() {
        if !bf16_native() {
            eprintln!("no AVX512_BF16 on this CPU: nothing to compare the scalar rounding with");
            return;
        }
        let special = [
            1.0 + 2f32.powi(-8),
            1.0 + 3.0 * 2f32.powi(-8),
            -(1.0 + 2f32.powi(-8)),
            f32::from_bits(1),
            -f32::from_bits(0x007f_ffff),
            f32::MIN_POSITIVE,
            f32::MAX,
            -f32::MAX,
            f32::INFINITY,
            f32::NAN,
            f32::from_bits(0x7f80_0001),
            -0.0,
            0.1,
            -1e-30,
            3.3e38,
            65504.0,
        ];
        let row: Vec<f32> =
            (0..2 * NR).map(|i| special[i % 16] * if i < NR { 1.0 } else { -1.5 }).collect();
        let b = Mat { data: &row, rs: NR, cs: 1 };
        let mut out = vec![0u32; NR];
        // SAFETY: checked bf16_native(); b holds 2 rows of NR, out one k pair of one panel.
        unsafe { pack_b(b, (0, 2), (0, NR), &mut out) };
        for (j, &lane) in out.iter().enumerate() {
            let want = pair(row[j], row[NR + j]);
            assert_eq!(lane, want, "column {j}: {} / {}", row[j], row[NR + j]);
        }
    }
}
