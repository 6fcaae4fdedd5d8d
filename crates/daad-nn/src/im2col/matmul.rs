//! The matrix product the kernels call ([`crate::gemm::matmul`], f32 or bf16), and how a batched
//! kernel spreads over the rayon pool (threads over the batch, or inside each product: never
//! both, so they do not compete).

pub(super) use crate::gemm::{matmul, Mat};

/// How to spread a batched kernel over the rayon pool.
#[derive(Clone, Copy)]
pub(super) enum Plan {
    /// One batch item per task, single-threaded products.
    PerItem,
    /// Items one after another, each product on this many threads.
    InsideGemm(usize),
}

pub(super) fn plan(batch: usize) -> Plan {
    let nt = rayon::current_num_threads();
    if nt <= 1 {
        Plan::InsideGemm(1)
    } else if batch.is_multiple_of(nt) || batch >= 4 * nt {
        Plan::PerItem
    } else {
        Plan::InsideGemm(nt)
    }
}

/// All of the pool's threads inside one product.
pub(super) fn threads() -> usize {
    rayon::current_num_threads()
}
