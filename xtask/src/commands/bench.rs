//! `cargo xtask bench [--against-pytorch PYTHON]`: DAAD's training step time, inference images/s
//! and peak memory on this machine's CPU, optionally beside the PyTorch port
//! (`scripts/torch_daad_step.py`) in interleaved rounds (ours, theirs, ours, ...), so that load
//! on a shared machine hits both sides alike and the spread between rounds shows the noise.
//!
//! Inference is also measured with the model's products (convolutions and memories) in bf16
//! (`--precision bf16` of `daad test`/`predict`), its repetitions interleaved with the f32 ones
//! in the same process; `--no-bf16` skips it.
//!
//! Every measurement runs in a fresh process (this binary with the hidden `--worker SIZE`, or
//! the Python script), so each peak RSS is that of one size's inference + training alone.
//! Writes `bench.json` and `bench.md` (commit, CPU model, flags, load) to `--out`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use daad::model::{DaadModel, ModelConfig};
use daad::nn::Precision;
use daad::train::{preset_configs, Preset, Trainer, Variant};

use crate::grid;

/// Arguments of `cargo xtask bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Image sizes to measure.
    #[arg(long, value_delimiter = ',', default_value = "64,128,256")]
    pub sizes: Vec<usize>,
    /// Batch size.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Timed repetitions per round (the median is the round's value), after one warm-up.
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// Rounds per size; with `--against-pytorch` ours and PyTorch's alternate.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Variant to measure.
    #[arg(long, default_value = "daad")]
    pub variant: Variant,
    /// Memory size N.
    #[arg(long, default_value_t = 500)]
    pub memory_size: usize,
    /// Python interpreter with PyTorch: also measure `scripts/torch_daad_step.py` (optional; no
    /// test or CI step needs PyTorch).
    #[arg(long, value_name = "PYTHON")]
    pub against_pytorch: Option<PathBuf>,
    /// Run PyTorch with the allocator setup our processes use (freed memory kept for reuse:
    /// `GLIBC_TUNABLES` as in `daad_nn::allocator`), to compare like with like; without it
    /// PyTorch runs with glibc's defaults, as it does when installed.
    #[arg(long, requires = "against_pytorch")]
    pub torch_same_allocator: bool,
    /// Skip the bf16 inference measurement (on a CPU without AVX512_BF16 it runs the slow
    /// portable kernel).
    #[arg(long)]
    pub no_bf16: bool,
    /// Output folder for bench.md and bench.json.
    #[arg(long, default_value = "results/bench")]
    pub out: PathBuf,
    /// Internal: measure one size in this process and print one JSON line.
    #[arg(long, hide = true)]
    pub worker: Option<usize>,
}

/// One round of one side: medians of that round's timed repetitions and the process's peak RSS.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy)]
struct Sample {
    train_step_ms: f64,
    infer_img_s: f64,
    /// Inference with bf16 products (ours only; None with `--no-bf16`).
    #[serde(default)]
    infer_img_s_bf16: Option<f64>,
    peak_rss_mb: f64,
}

/// One row of bench.json: medians over the rounds (the fields the issue names), then the rounds.
#[derive(serde::Serialize, Debug)]
struct Row {
    size: usize,
    train_step_ms: f64,
    torch_train_step_ms: Option<f64>,
    infer_img_s: f64,
    infer_img_s_bf16: Option<f64>,
    torch_infer_img_s: Option<f64>,
    peak_rss_mb: f64,
    torch_peak_rss_mb: Option<f64>,
    batch: usize,
    ours_rounds: Vec<Sample>,
    torch_rounds: Vec<Sample>,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

fn median_ms(reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    Ok(medians_ms(reps, 1, |_| f())?[0])
}

/// `f(0..n)`: one warm-up of each, then `reps` rounds calling them in turn (so that load hits
/// them alike): each one's median in ms.
fn medians_ms(reps: usize, n: usize, mut f: impl FnMut(usize) -> Result<()>) -> Result<Vec<f64>> {
    for i in 0..n {
        f(i)?;
    }
    let mut times = vec![Vec::with_capacity(reps); n];
    for _ in 0..reps.max(1) {
        for (i, t) in times.iter_mut().enumerate() {
            let t0 = Instant::now();
            f(i)?;
            t.push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    Ok(times.into_iter().map(median).collect())
}

/// This process's peak resident set (VmHWM) in MiB.
fn peak_rss_mb() -> Result<f64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .context("no VmHWM in /proc/self/status")?;
    Ok(kb / 1024.0)
}

/// The worker: inference then training of one size on the CPU, in this process.
fn measure_ours(size: usize, args: &Args) -> Result<Sample> {
    let device = Device::Cpu;
    let (_, train_cfg) = preset_configs(Preset::Paper, args.variant);
    let mut model_cfg = ModelConfig::for_variant(args.variant, size);
    model_cfg.memory.n_items = args.memory_size;
    let mut model = DaadModel::new(&model_cfg, 0, &device).context("building the model")?;
    let x = Tensor::rand(-1f32, 1f32, (args.batch, 3, size, size), &device)?;
    let precisions: &[Precision] =
        if args.no_bf16 { &[Precision::F32] } else { &[Precision::F32, Precision::Bf16] };
    let ms = medians_ms(args.reps, precisions.len(), |i| {
        model.set_precision(precisions[i])?;
        model.infer(&x)?;
        Ok(())
    })?;
    let (infer_ms, bf16_ms) = (ms[0], ms.get(1).copied());
    model.set_precision(Precision::F32)?;
    let mut trainer = Trainer::new(model, &train_cfg)?;
    let step_ms = median_ms(args.reps, || {
        trainer.step(&x)?.map_err(|e| anyhow::anyhow!("non-finite loss: {e:?}"))?;
        Ok(())
    })?;
    Ok(Sample {
        train_step_ms: step_ms,
        infer_img_s: args.batch as f64 / (infer_ms / 1e3),
        infer_img_s_bf16: bf16_ms.map(|ms| args.batch as f64 / (ms / 1e3)),
        peak_rss_mb: peak_rss_mb()?,
    })
}

/// Runs this binary as a worker for `size` and parses its JSON line.
fn run_ours(size: usize, args: &Args) -> Result<Sample> {
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let out = Command::new(exe)
        .args(["bench", "--worker", &size.to_string()])
        .args(["--batch", &args.batch.to_string(), "--reps", &args.reps.to_string()])
        .args(["--variant", args.variant.name(), "--memory-size", &args.memory_size.to_string()])
        .args(args.no_bf16.then_some("--no-bf16"))
        .output()
        .context("running the bench worker")?;
    if !out.status.success() {
        bail!("bench worker for {size} px failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    last_json(&out.stdout).with_context(|| format!("parsing the worker's output for {size} px"))
}

/// Runs the PyTorch port for `size` and parses its JSON line.
fn run_torch(python: &Path, size: usize, args: &Args, threads: usize) -> Result<Sample> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/torch_daad_step.py");
    let out = Command::new(python)
        .arg(script)
        .args(["--sizes", &size.to_string(), "--batch", &args.batch.to_string()])
        .args(["--steps", &args.reps.to_string(), "--variant", args.variant.name()])
        .args(["--memory-size", &args.memory_size.to_string(), "--threads", &threads.to_string()])
        .arg("--infer")
        .envs(
            args.torch_same_allocator
                .then_some(("GLIBC_TUNABLES", daad::nn::allocator::GLIBC_TUNABLES_EQUIVALENT)),
        )
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    if !out.status.success() {
        bail!("{script} failed for {size} px: {}", String::from_utf8_lossy(&out.stderr));
    }
    #[derive(serde::Deserialize)]
    struct Torch {
        median_s: f64,
        infer_median_s: f64,
        peak_rss_mb: f64,
    }
    let t: Torch = last_json(&out.stdout).context("parsing the PyTorch script's output")?;
    Ok(Sample {
        train_step_ms: t.median_s * 1e3,
        infer_img_s: args.batch as f64 / t.infer_median_s,
        infer_img_s_bf16: None,
        peak_rss_mb: t.peak_rss_mb,
    })
}

fn last_json<T: serde::de::DeserializeOwned>(stdout: &[u8]) -> Result<T> {
    let text = String::from_utf8_lossy(stdout);
    let line =
        text.lines().rev().find(|l| l.trim_start().starts_with('{')).context("no JSON line")?;
    Ok(serde_json::from_str(line)?)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn cpu_flags() -> String {
    let flags = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("flags").map(str::to_string)))
        .unwrap_or_default();
    let have: Vec<&str> = ["avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni"]
        .into_iter()
        .filter(|f| flags.split_whitespace().any(|x| x == *f))
        .collect();
    have.join(" ")
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn commit() -> String {
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn torch_version(python: &Path) -> String {
    Command::new(python)
        .args(["-c", "import torch; print(torch.__version__)"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "?".into())
}

/// How the code that runs the step was built: the kernels' debug assertions (daad-nn, built
/// like daad-memory/model/train by the workspace's profile overrides) and this binary's profile.
fn build_profile() -> &'static str {
    match (daad::nn::KERNELS_DEBUG_ASSERTIONS, cfg!(debug_assertions)) {
        (true, _) => "kernels with debug assertions (not representative: see docs/PERFORMANCE.md)",
        (false, true) => "dev profile (hot crates at opt-level 3 without debug assertions)",
        (false, false) => "release profile",
    }
}

/// `a / b` per round, as "r1 r2 r3".
fn ratios(a: &[f64], b: &[f64]) -> String {
    a.iter().zip(b).map(|(x, y)| format!("{:.2}", x / y)).collect::<Vec<_>>().join(" ")
}

/// Runs `cargo xtask bench`.
pub fn run(args: Args) -> Result<()> {
    if let Some(size) = args.worker {
        let s = measure_ours(size, &args)?;
        println!("{}", serde_json::to_string(&s)?);
        return Ok(());
    }
    if daad::nn::KERNELS_DEBUG_ASSERTIONS {
        tracing::warn!(
            "the kernels were built with debug assertions: timings are not representative \
             (build with the workspace's dev profile overrides or `cargo run -p xtask --release -- bench`)"
        );
    }
    let threads = rayon::current_num_threads();
    let load_before = load_average();
    let mut rows = Vec::new();
    for &size in &args.sizes {
        let (mut ours, mut torch) = (Vec::new(), Vec::new());
        for round in 0..args.rounds.max(1) {
            let s = run_ours(size, &args)?;
            let bf16 = s.infer_img_s_bf16.map_or(String::new(), |v| format!(" ({v:.1} in bf16)"));
            println!(
                "{size} px round {round}: ours  step {:.0} ms, {:.1} img/s{bf16}, {:.0} MiB",
                s.train_step_ms, s.infer_img_s, s.peak_rss_mb
            );
            ours.push(s);
            if let Some(py) = &args.against_pytorch {
                let t = run_torch(py, size, &args, threads)?;
                println!(
                    "{size} px round {round}: torch step {:.0} ms, {:.1} img/s, {:.0} MiB",
                    t.train_step_ms, t.infer_img_s, t.peak_rss_mb
                );
                torch.push(t);
            }
        }
        let med = |v: &[Sample], f: fn(&Sample) -> f64| median(v.iter().map(f).collect());
        let opt = |v: &[Sample], f: fn(&Sample) -> f64| (!v.is_empty()).then(|| med(v, f));
        rows.push(Row {
            size,
            train_step_ms: med(&ours, |s| s.train_step_ms),
            torch_train_step_ms: opt(&torch, |s| s.train_step_ms),
            infer_img_s: med(&ours, |s| s.infer_img_s),
            infer_img_s_bf16: (!args.no_bf16)
                .then(|| median(ours.iter().filter_map(|s| s.infer_img_s_bf16).collect())),
            torch_infer_img_s: opt(&torch, |s| s.infer_img_s),
            peak_rss_mb: med(&ours, |s| s.peak_rss_mb),
            torch_peak_rss_mb: opt(&torch, |s| s.peak_rss_mb),
            batch: args.batch,
            ours_rounds: ours,
            torch_rounds: torch,
        });
    }
    let md = markdown(&args, &rows, threads, &load_before);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    grid::write_atomic(&args.out.join("bench.md"), md.as_bytes())?;
    grid::write_atomic(&args.out.join("bench.json"), &serde_json::to_vec_pretty(&rows)?)?;
    println!("\n{md}");
    Ok(())
}

fn markdown(args: &Args, rows: &[Row], threads: usize, load_before: &str) -> String {
    let profile = build_profile();
    let mut md = format!(
        "# cargo xtask bench\n\n\
         - commit {}, {} ({} threads; flags: {})\n\
         - {}, batch {}, N = {}, CPU f32 (bf16 column: {}); each round is a fresh process: one warm-up, then the median of {} timed repetitions; \
         {} rounds, interleaved (ours, PyTorch, ours, ...)\n\
         - build: {profile}, rayon threads {threads}; RAYON_NUM_THREADS={}\n\
         - load average before {load_before}, after {}\n",
        commit(),
        cpu_model(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        cpu_flags(),
        args.variant,
        args.batch,
        args.memory_size,
        if args.no_bf16 {
            "skipped, --no-bf16".to_string()
        } else {
            format!(
                "inference with the products of the convolutions and memories in bf16, \
                 repetitions interleaved with the f32 ones; AVX512_BF16 kernel: {}",
                daad::nn::gemm::bf16_native()
            )
        },
        args.reps,
        args.rounds,
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset".into()),
        load_average(),
    );
    let _ = writeln!(
        md,
        "- allocator, ours: {:?} (`daad_nn::retain_freed_memory`)",
        daad::nn::retain_freed_memory()
    );
    if let Some(py) = &args.against_pytorch {
        let allocator = if args.torch_same_allocator {
            format!(
                "the same as ours, GLIBC_TUNABLES={}",
                daad::nn::allocator::GLIBC_TUNABLES_EQUIVALENT
            )
        } else {
            "glibc's defaults".to_string()
        };
        let _ = writeln!(
            md,
            "- PyTorch {} (`{}`), torch.set_num_threads({threads}), allocator: {allocator}",
            torch_version(py),
            py.display()
        );
    }
    md.push_str(
        "\n| size | train step ms, ours / PyTorch | ratio (per round) | inference img/s, ours / \
         PyTorch | ratio (per round) | inference img/s, ours bf16 | bf16 / PyTorch f32 (per \
         round) | bf16 / ours f32 | peak RSS MiB, ours / PyTorch |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    let f = |v: Option<f64>, p: usize| v.map_or("-".to_string(), |v| format!("{v:.p$}"));
    for r in rows {
        let col = |v: &[Sample], g: fn(&Sample) -> f64| v.iter().map(g).collect::<Vec<_>>();
        let (ot, tt) =
            (col(&r.ours_rounds, |s| s.train_step_ms), col(&r.torch_rounds, |s| s.train_step_ms));
        let (oi, ti) =
            (col(&r.ours_rounds, |s| s.infer_img_s), col(&r.torch_rounds, |s| s.infer_img_s));
        let ratio = |a: f64, b: Option<f64>| b.map_or("-".to_string(), |b| format!("{:.2}", a / b));
        let bi: Vec<f64> = r.ours_rounds.iter().filter_map(|s| s.infer_img_s_bf16).collect();
        let bf16_vs_torch = match r.infer_img_s_bf16 {
            Some(b) if !ti.is_empty() => {
                format!("**{}** ({})", ratio(b, r.torch_infer_img_s), ratios(&bi, &ti))
            }
            _ => "-".to_string(),
        };
        let _ = writeln!(
            md,
            "| {} | {:.0} / {} | **{}** ({}) | {:.1} / {} | **{}** ({}) | {} | {} | {} | {:.0} / {} |",
            r.size,
            r.train_step_ms,
            f(r.torch_train_step_ms, 0),
            ratio(r.train_step_ms, r.torch_train_step_ms),
            ratios(&ot, &tt),
            r.infer_img_s,
            f(r.torch_infer_img_s, 1),
            ratio(r.infer_img_s, r.torch_infer_img_s),
            ratios(&oi, &ti),
            f(r.infer_img_s_bf16, 1),
            bf16_vs_torch,
            r.infer_img_s_bf16.map_or("-".to_string(), |b| format!("{:.2} ({})", b / r.infer_img_s, ratios(&bi, &oi))),
            r.peak_rss_mb,
            f(r.torch_peak_rss_mb, 0),
        );
    }
    md.push_str(
        "\nTrain step ratio: ours / PyTorch time (< 1: we are faster). Inference ratio: ours / \
         PyTorch images/s (> 1: we are faster). Medians over the rounds; the per-round ratios \
         in brackets show the noise. bf16: training stays f32.\n",
    );
    md
}
