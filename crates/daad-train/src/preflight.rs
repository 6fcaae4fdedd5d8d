//! Up-front checks before any expensive work: the output folder is writable, the disk holds one
//! checkpoint, and the run fits in memory. Each failure is a typed error with the numbers.
//!
//! [`crate::train`] runs [`preflight_train`] itself before loading images; `daad test` and
//! `daad predict` run [`preflight_score`] before scoring, `daad serve` [`check_scoring_memory`].
//! A refusal names its [`Workload`], which decides what the message advises changing.

use std::path::{Path, PathBuf};

use candle_core::Device;
use daad_model::ModelConfig;

use crate::error::bytes;
use crate::{Error, Result};

/// Bytes of one f32.
const F32: u64 = 4;

/// The number of values in a model's weights file (trainable parameters and BatchNorm running
/// statistics), computed from the config without building the model (a huge --image-size would
/// otherwise allocate the very memory this check is about).
pub fn parameter_count(cfg: &ModelConfig) -> Result<u64> {
    let conv = |i: usize, o: usize, k: usize, bias: bool| {
        (i * o * k * k + if bias { o } else { 0 }) as u64
    };
    let bn = |c: usize| 4 * c as u64;
    let (ch, sides, inc) = (cfg.channels(), cfg.feature_sizes(), cfg.in_channels);
    let mut n = 0;
    for l in 0..4 {
        let in_c = if l == 0 { inc } else { ch[l - 1] };
        n += conv(in_c, ch[l], 4, l == 0) + if l > 0 { bn(ch[l]) } else { 0 };
        if cfg.memory_scales[l] {
            let d = cfg
                .scale_rates(l)
                .item_dim(ch[l], sides[l], sides[l])
                .map_err(|e| Error::InvalidConfig(format!("memory at scale {}: {e}", l + 1)))?;
            n += (cfg.memory.n_items * d) as u64;
        }
        let from_below = ch[l.min(3)];
        let skip = if l < 3 && cfg.skips { ch[l] } else { 0 };
        let out_c = if l == 0 { inc } else { ch[l - 1] };
        n += conv(from_below + skip, out_c, 4, l == 0) + if l > 0 { bn(out_c) } else { 0 };
    }
    if cfg.discriminator {
        let (mut side, mut c) = (cfg.image_size / 2, cfg.base_channels);
        n += conv(inc, c, 4, true);
        while side > 4 {
            n += conv(c, 2 * c, 4, false) + bn(2 * c);
            c *= 2;
            side /= 2;
        }
        n += conv(c, 1, side, true);
    }
    Ok(n)
}

/// Bytes of one checkpoint: the weights and Adam's two moments, plus a copy of the weights for
/// the published top-level model where the file system has no hard links.
pub fn checkpoint_bytes(params: u64) -> u64 {
    params * F32 * 4 + (1 << 20)
}

/// A rough estimate of the memory a training run needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// The decoded training and held-out images, kept in host memory.
    pub images: u64,
    /// Weights, gradients and Adam moments (on the training device).
    pub model: u64,
    /// Activations of one step kept for the backward pass (on the training device).
    pub activations: u64,
}

impl MemoryEstimate {
    /// Everything, for a CPU run.
    pub fn total(&self) -> u64 {
        self.images + self.model + self.activations
    }

    /// The parts, for messages.
    pub fn detail(&self) -> String {
        format!(
            "images {}, model and optimiser {}, activations of one step {}",
            bytes(self.images),
            bytes(self.model),
            bytes(self.activations)
        )
    }
}

/// The command a memory check is for: what it holds in memory decides what its user can change
/// when the estimate does not fit, and so what [`Error::InsufficientMemory`] advises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// `daad train` (and xtask's grids): the image size and the batch are flags.
    Train,
    /// `daad test`: the whole test split, decoded at once at the run's image size.
    Test,
    /// `daad predict`: the images of one call, decoded at once at the run's image size.
    Predict,
    /// `daad serve`: one batch of requests at the run's image size.
    Serve,
}

impl Workload {
    /// What is refused, for the message.
    pub fn what(self) -> &'static str {
        match self {
            Workload::Train => "this training run",
            Workload::Test => "testing this run",
            Workload::Predict => "scoring these images",
            Workload::Serve => "serving this run",
        }
    }

    /// What the user of the command can change, for the message.
    pub fn advice(self) -> &'static str {
        match self {
            Workload::Train => "lower --image-size or --batch",
            Workload::Test => {
                "the image size is the run's and the test images are decoded at once: test on a \
                 machine with more memory, or with a run trained at a smaller --image-size"
            }
            Workload::Predict => {
                "the image size is the run's and the images of one call are decoded at once: pass \
                 fewer images per call, or use a run trained at a smaller --image-size"
            }
            Workload::Serve => {
                "the image size is the run's: lower --max-batch, or serve a run trained at a \
                 smaller --image-size"
            }
        }
    }
}

/// Estimates the memory of training `cfg` with `batch` images per step on `n_images` images.
///
/// Activations: each feature map of the encoder, memory and decoder is kept about three times
/// (conv, BatchNorm, activation) and once more as its gradient; the discriminator runs four times
/// a step (D(x), D(x_hat) for G, then again for D). A rough model (it ignores allocator slack and
/// the memories' attention weights, small next to the maps), meant to refuse what cannot fit, not
/// to budget tightly.
pub fn estimate_memory(cfg: &ModelConfig, batch: usize, n_images: usize) -> Result<MemoryEstimate> {
    let s = cfg.image_size as u64;
    let (ch, sides) = (cfg.channels(), cfg.feature_sizes());
    let enc: u64 = (0..4).map(|l| ch[l] as u64 * (sides[l] as u64).pow(2)).sum();
    let mem: u64 = (0..4)
        .filter(|&l| cfg.memory_scales[l])
        .map(|l| ch[l] as u64 * (sides[l] as u64).pow(2))
        .sum();
    let dec = enc + cfg.in_channels as u64 * s * s;
    let mut per_image = (enc + mem + dec) * 3 * 2;
    if cfg.discriminator {
        let (mut side, mut c, mut d) = (s / 2, cfg.base_channels as u64, 0u64);
        d += c * side * side;
        while side > 4 {
            c *= 2;
            side /= 2;
            d += c * side * side;
        }
        per_image += d * 3 * 2 * 4;
    }
    let params = parameter_count(cfg)?;
    Ok(MemoryEstimate {
        images: n_images as u64 * cfg.in_channels as u64 * s * s * F32,
        model: params * F32 * 4,
        activations: per_image * batch as u64 * F32,
    })
}

/// The environment variable that overrides [`available_memory`], in bytes: for a container whose
/// /proc/meminfo shows the host's memory rather than its own limit (and for tests).
pub const AVAILABLE_MEMORY_ENV: &str = "DAAD_AVAILABLE_MEMORY";

/// Available host memory: [`AVAILABLE_MEMORY_ENV`] when set to a number of bytes, else
/// MemAvailable of /proc/meminfo; None where neither can be read.
pub fn available_memory() -> Option<u64> {
    if let Ok(v) = std::env::var(AVAILABLE_MEMORY_ENV) {
        match v.trim().parse() {
            Ok(n) => return Some(n),
            Err(_) => {
                tracing::warn!("{AVAILABLE_MEMORY_ENV}={v:?} is not a number of bytes; ignored")
            }
        }
    }
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The nearest existing folder at or above `path` (where a probe can be written); an existing
/// file on the way (so the folder cannot be created) is an error.
fn existing_ancestor(path: &Path) -> Result<PathBuf> {
    let mut p = path.to_path_buf();
    loop {
        if p.is_dir() {
            return Ok(p);
        }
        if p.exists() {
            return Err(Error::Run {
                path: p,
                problems: vec!["is a file, not a folder; choose another output folder".into()],
            });
        }
        if !p.pop() || p.as_os_str().is_empty() {
            return Ok(PathBuf::from("."));
        }
    }
}

/// Checks that `dir` (or, when it does not exist yet, the folder it would be created in) can
/// be written: creates and removes a probe file. Creates nothing that stays.
pub fn check_writable(dir: &Path) -> Result<()> {
    let base = existing_ancestor(dir)?;
    let probe = base.join(format!(".daad-probe-{}", std::process::id()));
    std::fs::write(&probe, b"probe")
        .and_then(|_| std::fs::remove_file(&probe))
        .map_err(|source| Error::NotWritable { path: base, source })
}

/// Checks that the file system of `dir` has `needed` bytes free; returns what it has.
pub fn check_disk(dir: &Path, needed: u64, detail: &str) -> Result<u64> {
    let base = existing_ancestor(dir)?;
    let available = fs4::available_space(&base).map_err(|e| crate::error::io_err(&base, e))?;
    if available < needed {
        return Err(Error::InsufficientDisk {
            path: base,
            needed,
            available,
            detail: detail.to_string(),
        });
    }
    Ok(available)
}

/// What [`preflight_train`] found.
#[derive(Clone, Debug)]
pub struct Preflight {
    /// Values in the model's weights file.
    pub parameters: u64,
    /// Estimated bytes of one checkpoint.
    pub checkpoint_bytes: u64,
    /// Free bytes on the output's file system.
    pub disk_available: u64,
    /// Estimated memory of the run.
    pub memory: MemoryEstimate,
    /// Host memory available (None where unknown: the memory check was skipped).
    pub memory_available: Option<u64>,
}

/// The checks before a training run: `out` writable, disk for one checkpoint, memory for
/// `n_images` images and a step of `batch` images. On the CPU everything must fit in host
/// memory; on a GPU the images must fit in host memory and, when `device_memory` is given, the
/// model and activations in it (daad does not query the GPU itself).
pub fn preflight_train(
    out: &Path,
    cfg: &ModelConfig,
    batch: usize,
    n_images: usize,
    device: &Device,
    device_memory: Option<u64>,
) -> Result<Preflight> {
    check_writable(out)?;
    let parameters = parameter_count(cfg)?;
    let checkpoint_bytes = checkpoint_bytes(parameters);
    let memory = estimate_memory(cfg, batch, n_images)?;
    let memory_available = available_memory();
    let host_need = if device.is_cpu() { memory.total() } else { memory.images };
    if let Some(avail) = memory_available {
        if host_need > avail {
            return Err(Error::InsufficientMemory {
                needed: host_need,
                available: avail,
                detail: format!(
                    "{} at {} px, batch {batch}, {n_images} images",
                    memory.detail(),
                    cfg.image_size
                ),
                workload: Workload::Train,
            });
        }
    }
    if let (false, Some(avail)) = (device.is_cpu(), device_memory) {
        let need = memory.model + memory.activations;
        if need > avail {
            return Err(Error::InsufficientMemory {
                needed: need,
                available: avail,
                detail: format!(
                    "on the GPU: {} at {} px, batch {batch}",
                    memory.detail(),
                    cfg.image_size
                ),
                workload: Workload::Train,
            });
        }
    }
    let detail =
        format!("{parameters} parameters x 4 bytes x (model, 2 Adam moments, published copy)");
    let disk_available = check_disk(out, checkpoint_bytes, &detail)?;
    Ok(Preflight { parameters, checkpoint_bytes, disk_available, memory, memory_available })
}

/// The memory of scoring `n_images` decoded images with a trained model: the images, the
/// weights, and one inference batch of 8 images (activations without gradients: a quarter of
/// [`estimate_memory`]'s training figure, rounded up).
pub fn estimate_scoring(cfg: &ModelConfig, n_images: usize) -> Result<MemoryEstimate> {
    let train = estimate_memory(cfg, 8, n_images)?;
    Ok(MemoryEstimate {
        images: train.images,
        model: train.model / 4,
        activations: train.activations.div_ceil(4),
    })
}

/// Refuses scoring `memory` on `device` for `workload` when it cannot fit in `available` host
/// memory (all of it on the CPU, the decoded images on a GPU); `None` (unknown) passes.
pub fn check_scoring_memory(
    memory: &MemoryEstimate,
    cfg: &ModelConfig,
    n_images: usize,
    device: &Device,
    workload: Workload,
    available: Option<u64>,
) -> Result<()> {
    let host_need = if device.is_cpu() { memory.total() } else { memory.images };
    match available {
        Some(avail) if host_need > avail => Err(Error::InsufficientMemory {
            needed: host_need,
            available: avail,
            detail: format!(
                "{n_images} images at the run's {} px: images {}, weights {}, activations of one \
                 batch {}",
                cfg.image_size,
                bytes(memory.images),
                bytes(memory.model),
                bytes(memory.activations)
            ),
            workload,
        }),
        _ => Ok(()),
    }
}

/// The checks before scoring `n_images` images with a trained model (`daad test`,
/// `daad predict`, named by `workload`): `out` writable (nothing created), host memory for
/// [`estimate_scoring`] ([`check_scoring_memory`] against [`available_memory`]), and disk for the
/// PNGs written per image (at most a heatmap and a map of 3 x S x S bytes each, uncompressed).
pub fn preflight_score(
    out: &Path,
    cfg: &ModelConfig,
    n_images: usize,
    device: &Device,
    workload: Workload,
) -> Result<MemoryEstimate> {
    check_writable(out)?;
    let memory = estimate_scoring(cfg, n_images)?;
    check_scoring_memory(&memory, cfg, n_images, device, workload, available_memory())?;
    let s = cfg.image_size as u64;
    check_disk(
        out,
        n_images as u64 * 2 * 3 * s * s,
        &format!("{n_images} images x 2 PNGs of at most 3 x {s} x {s} bytes"),
    )?;
    Ok(memory)
}

#[cfg(test)]
mod tests {
    use super::*;
    use daad_model::{DaadModel, Variant};

    #[test]
    fn parameter_count_matches_the_built_model() {
        for v in [Variant::Ae, Variant::AeSkip, Variant::MemAe, Variant::Daad, Variant::DaadPlus] {
            for size in [32, 64] {
                let mut cfg = ModelConfig::for_variant(v, size);
                cfg.memory.n_items = 16;
                let model = DaadModel::new(&cfg, 0, &Device::Cpu).unwrap();
                let built: usize =
                    model.named_vars(|_| true).iter().map(|(_, v)| v.elem_count()).sum();
                assert_eq!(parameter_count(&cfg).unwrap(), built as u64, "{v} at {size}");
            }
        }
    }

    #[test]
    fn a_huge_image_is_refused_with_numbers() {
        let cfg = ModelConfig::for_variant(Variant::DaadPlus, 4096);
        let est = estimate_memory(&cfg, 8, 200).unwrap();
        // 200 images of 3 x 4096 x 4096 f32 alone are 50 GB.
        assert_eq!(est.images, 200 * 3 * 4096 * 4096 * 4);
        assert!(est.total() > 100 << 30, "{est:?}");
        let tmp = tempfile::tempdir().unwrap();
        let err = preflight_train(tmp.path(), &cfg, 8, 200, &Device::Cpu, None).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::InsufficientMemory { .. }), "{msg}");
        assert!(
            msg.contains("GiB") && msg.contains("4096 px") && msg.contains("--image-size"),
            "{msg}"
        );
        assert!(msg.contains("lower --image-size or --batch"), "{msg}");
        // The paper's setting fits a small machine.
        let cfg = ModelConfig::for_variant(Variant::DaadPlus, 256);
        let est = estimate_memory(&cfg, 8, 300).unwrap();
        assert!(est.total() < 8 << 30, "{}", est.detail());
    }

    #[test]
    fn the_memory_advice_names_what_each_command_can_change() {
        let cfg = ModelConfig::for_variant(Variant::Daad, 64);
        let memory = estimate_scoring(&cfg, 10).unwrap();
        let refuse = |w: Workload| {
            let e = check_scoring_memory(&memory, &cfg, 10, &Device::Cpu, w, Some(1)).unwrap_err();
            assert!(matches!(e, Error::InsufficientMemory { workload, .. } if workload == w));
            e.to_string()
        };
        let test = refuse(Workload::Test);
        assert!(test.contains("testing this run") && test.contains("test images"), "{test}");
        let predict = refuse(Workload::Predict);
        assert!(predict.contains("fewer images per call"), "{predict}");
        let serve = refuse(Workload::Serve);
        assert!(serve.contains("lower --max-batch"), "{serve}");
        // None of these commands has an --image-size or --batch flag to lower.
        for m in [&test, &predict, &serve] {
            assert!(m.contains("64 px") && m.contains("the run's"), "{m}");
            assert!(!m.contains("--batch") && !m.contains("lower --image-size"), "{m}");
        }
        // Fits, or unknown: passes.
        let fits = Some(memory.total());
        assert!(check_scoring_memory(&memory, &cfg, 10, &Device::Cpu, Workload::Test, fits).is_ok());
        assert!(check_scoring_memory(&memory, &cfg, 10, &Device::Cpu, Workload::Test, None).is_ok());
    }

    #[test]
    fn writable_probe_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("a/b");
        check_writable(&out).unwrap();
        assert!(!tmp.path().join("a").exists());
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
        let file = tmp.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        assert!(check_writable(&file).is_err());
        assert!(check_writable(&file.join("sub")).is_err());
        let e = check_disk(tmp.path(), u64::MAX, "test").unwrap_err();
        assert!(
            matches!(e, Error::InsufficientDisk { .. }) && e.to_string().contains("free"),
            "{e}"
        );
    }
}
