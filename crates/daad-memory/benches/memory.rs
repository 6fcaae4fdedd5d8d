//! Forward + backward of the block-wise memory at the four paper scales of a 256x256 input
//! (batch 8, N = 500, r = (8, 8, 1)): fused CPU op vs the reference, measured in the same run.
//! With feature `cuda` and a GPU, also the CUDA kernel vs the reference on the GPU.
//! The process's allocator is set up as in the `daad` binaries (`daad_nn::retain_freed_memory`);
//! `DAAD_MALLOC=default` measures glibc's defaults instead.

use std::hint::black_box;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use criterion::{criterion_group, Criterion, Throughput};
use daad_memory::{Backend, BlockMemory, MemoryConfig};

const SCALES: [(usize, usize); 4] = [(64, 128), (128, 64), (256, 32), (512, 16)];
const BATCH: usize = 8;

fn sync(device: &Device) {
    // Make sure GPU work is done before the clock stops.
    let _ = device.synchronize();
}

fn bench_device(c: &mut Criterion, device: &Device, prefix: &str, backends: &[Backend]) {
    let mut group = c.benchmark_group(format!("{prefix}memory_fwd_bwd"));
    group.sample_size(10);
    group.warm_up_time(std::time::Duration::from_millis(500));
    group.measurement_time(std::time::Duration::from_secs(3));
    for (ch, px) in SCALES {
        let f = Var::from_tensor(
            &Tensor::randn(0f32, 1.0, (BATCH, ch, px, px), device).expect("input"),
        )
        .expect("var");
        let r = Tensor::randn(0f32, 1.0, (BATCH, ch, px, px), device).expect("upstream");
        group.throughput(Throughput::Elements((BATCH * ch * px * px) as u64));
        for &backend in backends {
            let vm = VarMap::new();
            let vb = VarBuilder::from_varmap(&vm, DType::F32, device);
            let cfg = MemoryConfig { backend, ..Default::default() };
            let mem = BlockMemory::new(ch, px, px, &cfg, vb).expect("memory");
            let name = format!("{backend:?}/C{ch}_{px}px");
            group.bench_function(name, |b| {
                b.iter(|| {
                    let (out, _w) = mem.forward_with_weights(f.as_tensor()).expect("forward");
                    let loss = (&out * &r).expect("mul").sum_all().expect("sum");
                    let grads = loss.backward().expect("backward");
                    sync(device);
                    black_box(grads);
                })
            });
        }
    }
    group.finish();
}

fn cpu(c: &mut Criterion) {
    bench_device(c, &Device::Cpu, "cpu_", &[Backend::FusedCpu, Backend::Reference]);
}

#[cfg(feature = "cuda")]
fn cuda(c: &mut Criterion) {
    match Device::new_cuda(0) {
        Ok(device) => bench_device(c, &device, "cuda_", &[Backend::Cuda, Backend::Reference]),
        Err(e) => eprintln!("no CUDA device, skipping the CUDA benchmark: {e}"),
    }
}

#[cfg(not(feature = "cuda"))]
fn cuda(_c: &mut Criterion) {}

criterion_group!(benches, cpu, cuda);

fn main() {
    // Without it every large temporary is a fresh mmap: a quarter of the fused op's samples
    // were page faults, page clearing and TLB shootdowns, which the shipped binaries never pay.
    daad_nn::retain_freed_memory();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
