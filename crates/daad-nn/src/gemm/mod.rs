//! The matrix product every convolution reduces to, in f32 (the `gemm` crate) or in bf16
//! (operands rounded to bfloat16, f32 accumulation: [`bf16`]).
//!
//! `dst (m x n, row-major) [+]= a (m x k) @ b (k x n)` on strided f32 views. All of the
//! convolution kernels in `im2col` call [`matmul`]; it is public for benchmarks and tests.

mod bf16;
#[cfg(target_arch = "x86_64")]
mod bf16_avx512;

pub use bf16::{bf16_native, matmul_bf16, round_bf16, Bf16Kernel};

use gemm::Parallelism;

use crate::Precision;

/// A strided read-only f32 matrix view: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Clone, Copy, Debug)]
pub struct Mat<'a> {
    /// The elements (every index the product reads must lie inside).
    pub data: &'a [f32],
    /// Row stride.
    pub rs: usize,
    /// Column stride.
    pub cs: usize,
}

/// Checks that every index of an `rows x cols` view lies inside its slice (what makes the
/// kernels' unchecked reads sound).
pub(crate) fn check_view(v: Mat<'_>, rows: usize, cols: usize, what: &str) {
    assert!(
        rows == 0 || cols == 0 || (rows - 1) * v.rs + (cols - 1) * v.cs < v.data.len(),
        "gemm: {what} view ({rows} x {cols}, strides {} {}) exceeds its {} elements",
        v.rs,
        v.cs,
        v.data.len()
    );
}

/// Checks the shapes of a product (panics if a view is too short, a caller's bug) and settles
/// the empty ones: true when there is nothing left to multiply (`m`, `n` or `k` is 0).
pub(crate) fn done_without_product(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    accumulate: bool,
    a: Mat<'_>,
    b: Mat<'_>,
) -> bool {
    if m == 0 || n == 0 {
        return true;
    }
    assert!(dst.len() >= m * n, "gemm: dst has {} elements, needs {m} x {n}", dst.len());
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(0.0);
        }
        return true;
    }
    check_view(a, m, k, "a");
    check_view(b, k, n, "b");
    false
}

/// `dst (m x n, row-major) [+]= a (m x k) @ b (k x n)` at `precision`, on `threads` rayon threads
/// (1: the calling thread only). Panics if a view is too short for its shape (a caller's bug).
pub fn matmul(
    precision: Precision,
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    accumulate: bool,
    a: Mat<'_>,
    b: Mat<'_>,
    threads: usize,
) {
    match precision {
        Precision::F32 => matmul_f32((m, n, k), dst, accumulate, a, b, threads),
        Precision::Bf16 => {
            matmul_bf16(Bf16Kernel::best(), (m, n, k), dst, accumulate, a, b, threads)
        }
    }
}

/// The f32 product with the `gemm` crate's kernel.
pub(crate) fn matmul_f32(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    accumulate: bool,
    a: Mat<'_>,
    b: Mat<'_>,
    threads: usize,
) {
    if done_without_product((m, n, k), dst, accumulate, a, b) {
        return;
    }
    let par = if threads <= 1 { Parallelism::None } else { Parallelism::Rayon(threads) };
    // SAFETY: the pointers are valid for every index gemm touches (checked above), dst does not
    // alias the inputs (it is a distinct &mut slice), and f32 is a supported type.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}
