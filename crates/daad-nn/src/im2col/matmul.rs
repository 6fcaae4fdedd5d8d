//! The `gemm` call on strided f32 matrices, and how a batched kernel spreads over the rayon pool
//! (threads over the batch, or inside each product: never both, so they do not compete).

use gemm::Parallelism;

/// A strided read-only matrix view for [`matmul`].
#[derive(Clone, Copy)]
pub(super) struct Mat<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

/// `dst (m x n, row-major) [+]= a (m x kd) @ b (kd x n)` with the `gemm` crate's kernel.
pub(super) fn matmul(
    (m, n, kd): (usize, usize, usize),
    dst: &mut [f32],
    accumulate: bool,
    a: Mat<'_>,
    b: Mat<'_>,
    par: Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    if kd == 0 {
        if !accumulate {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    // Bounds: the largest index each operand is read at must lie inside its slice, which makes
    // the unsafe gemm call below sound.
    assert!(dst.len() >= m * n);
    assert!((m - 1) * a.rs + (kd - 1) * a.cs < a.data.len());
    assert!((kd - 1) * b.rs + (n - 1) * b.cs < b.data.len());
    // SAFETY: the pointers are valid for every index gemm touches (checked above), dst does not
    // alias the inputs (it is a distinct &mut slice), and f32 is a supported type.
    unsafe {
        gemm::gemm(
            m,
            n,
            kd,
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

/// How to spread a batched kernel over the rayon pool.
#[derive(Clone, Copy)]
pub(super) enum Plan {
    /// One batch item per task, single-threaded gemm.
    PerItem,
    /// Items one after another, each gemm multi-threaded.
    InsideGemm(usize),
}

pub(super) fn plan(batch: usize) -> Plan {
    let nt = rayon::current_num_threads();
    if nt <= 1 {
        Plan::InsideGemm(1)
    } else if batch % nt == 0 || batch >= 4 * nt {
        Plan::PerItem
    } else {
        Plan::InsideGemm(nt)
    }
}

pub(super) fn gemm_par(threads: usize) -> Parallelism {
    if threads <= 1 {
        Parallelism::None
    } else {
        Parallelism::Rayon(threads)
    }
}

/// All of the pool's threads inside one product.
pub(super) fn threads() -> Parallelism {
    gemm_par(rayon::current_num_threads())
}
