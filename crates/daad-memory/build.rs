//! Compiles kernels/*.cu to PTX in OUT_DIR with nvcc, only when the `cuda` feature is on.
//!
//! nvcc is `$NVCC`, else `$CUDA_ROOT/bin/nvcc` / `$CUDA_PATH/bin/nvcc`, else `nvcc` on PATH.
//! The target is `sm_$CUDA_COMPUTE_CAP` (default 80; PTX of a lower arch JIT-compiles on newer
//! GPUs). Without the feature nothing CUDA is built and nvcc is never needed.

use std::path::PathBuf;
use std::process::Command;

const KERNELS: &[&str] = &["attention"];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    for var in ["NVCC", "CUDA_ROOT", "CUDA_PATH", "CUDA_COMPUTE_CAP"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let nvcc = std::env::var_os("NVCC")
        .map(PathBuf::from)
        .or_else(|| {
            ["CUDA_ROOT", "CUDA_PATH"].iter().find_map(|v| {
                let p = PathBuf::from(std::env::var_os(v)?).join("bin").join("nvcc");
                p.exists().then_some(p)
            })
        })
        .unwrap_or_else(|| PathBuf::from("nvcc"));
    let cap = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "80".into());
    let cap: String = cap.chars().filter(|c| c.is_ascii_digit()).collect();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR is set by cargo"));
    for name in KERNELS {
        let src = format!("kernels/{name}.cu");
        println!("cargo:rerun-if-changed={src}");
        let ptx = out_dir.join(format!("{name}.ptx"));
        let status = Command::new(&nvcc)
            .args(["-ptx", "-O3", &format!("-arch=sm_{cap}"), "-o"])
            .arg(&ptx)
            .arg(&src)
            .status()
            .unwrap_or_else(|e| {
                panic!(
                    "could not run nvcc ({}): {e}; install CUDA or set NVCC / CUDA_ROOT \
                     (scripts/check-ptx.sh shows a pip-installed nvcc)",
                    nvcc.display()
                )
            });
        if !status.success() {
            panic!("nvcc failed on {src} ({status})");
        }
    }
}
