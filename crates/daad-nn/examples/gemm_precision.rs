//! GFLOP/s of the f32 and bf16 matrix products (`daad_nn::gemm::matmul`) at the shapes of the
//! DAAD convolutions, the two precisions interleaved round by round (the machine's load moves,
//! so only the ratio within one run means much). Best of `--rounds` rounds (default 5), by wall
//! time and by CPU time (all threads of the process; the steadier number on a loaded machine).
//!
//! `cargo run --release -p daad-nn --example gemm_precision -- [--rounds N]`

use std::time::Instant;

use daad_nn::gemm::{bf16_native, matmul, Mat};
use daad_nn::Precision;

/// (what, m, n, k, a transposed, threads): the products the conv kernels run at batch 8.
const SHAPES: [(&str, usize, usize, usize, bool, usize); 4] = [
    ("64 px enc2 conv 64->128, batch folded", 128, 2048, 1024, false, 2),
    ("256 px enc1 conv 3->64, one item", 64, 16384, 48, false, 1),
    ("256 px enc2 conv 64->128, one item", 128, 4096, 1024, false, 1),
    ("256 px dec2 convT 128->64, one item", 1024, 4096, 128, true, 1),
];

/// CPU seconds of all threads of this process so far (`CLOCK_PROCESS_CPUTIME_ID`).
fn cpu_seconds() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid timespec to write; the clock id is a constant the kernel knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return f64::NAN;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(5usize);
    println!("AVX512_BF16 kernel: {}", bf16_native());
    println!(
        "| product | m x n x k | threads | f32 GFLOP/s | bf16 GFLOP/s | bf16 / f32 \
         | f32 GFLOP/cpu-s | bf16 GFLOP/cpu-s | bf16 / f32 (cpu) |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (what, m, n, k, at, threads) in SHAPES {
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) / 7.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32 - 5.0) / 6.0).collect();
        let av = if at { Mat { data: &a, rs: 1, cs: m } } else { Mat { data: &a, rs: k, cs: 1 } };
        let bv = Mat { data: &b, rs: n, cs: 1 };
        let mut dst = vec![0f32; m * n];
        let flop = 2.0 * (m * n * k) as f64;
        let (mut wall, mut cpu) = ([f64::INFINITY; 2], [f64::INFINITY; 2]);
        for _ in 0..rounds + 1 {
            for (i, p) in [Precision::F32, Precision::Bf16].into_iter().enumerate() {
                let (t, c) = (Instant::now(), cpu_seconds());
                matmul(p, (m, n, k), &mut dst, false, av, bv, threads);
                wall[i] = wall[i].min(t.elapsed().as_secs_f64());
                cpu[i] = cpu[i].min(cpu_seconds() - c);
            }
        }
        let g = |s: f64| flop / s / 1e9;
        let (f, h, fc, hc) = (g(wall[0]), g(wall[1]), g(cpu[0]), g(cpu[1]));
        println!(
            "| {what} | {m}x{n}x{k} | {threads} | {f:.0} | {h:.0} | {:.2} | {fc:.0} | {hc:.0} | {:.2} |",
            h / f,
            hc / fc
        );
    }
}
