//! `DaadModel`: generator (+ optional discriminator) with its variables, seeded init, save/load.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use daad_nn::Precision;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::discriminator::Discriminator;
use crate::generator::Generator;
use crate::io::{load_safetensors, save_safetensors};
use crate::score::{error_map, per_image_distance};
use crate::{AnomalyOutput, Error, ModelConfig, Result};

/// Format tag written into model.safetensors' metadata.
pub const WEIGHTS_FORMAT: &str = "daad-model-weights";
/// Version of the weights layout; bumped when var names or shapes change.
pub const WEIGHTS_FORMAT_VERSION: u32 = 1;

/// The full network of a variant; owns its variables (`generator.*`, `discriminator.*`).
pub struct DaadModel {
    cfg: ModelConfig,
    device: Device,
    varmap: VarMap,
    generator: Generator,
    discriminator: Option<Discriminator>,
    precision: Precision,
}

fn is_running_stat(name: &str) -> bool {
    name.ends_with("running_mean") || name.ends_with("running_var")
}

impl DaadModel {
    /// Builds the model of `cfg` on `device` with a seeded DCGAN initialisation.
    pub fn new(cfg: &ModelConfig, seed: u64, device: &Device) -> Result<Self> {
        cfg.validate()?;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let generator = Generator::new(cfg, vb.pp("generator"))?;
        let discriminator = if cfg.discriminator {
            Some(Discriminator::new(cfg, vb.pp("discriminator"))?)
        } else {
            None
        };
        let model = Self {
            cfg: cfg.clone(),
            device: device.clone(),
            varmap,
            generator,
            discriminator,
            precision: Precision::F32,
        };
        model.init(seed)?;
        Ok(model)
    }

    /// DCGAN init (Radford et al., as GANomaly's `weights_init`): conv weights N(0, 0.02),
    /// BatchNorm scale N(1, 0.02), biases 0; memory banks U(-1/sqrt(D), 1/sqrt(D)) as MemAE.
    /// Seeded (ChaCha8 over the sorted var names) so that a run is reproducible.
    fn init(&self, seed: u64) -> Result<()> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for (name, var) in self.named_vars(|_| true) {
            if is_running_stat(&name) {
                continue;
            }
            let n = var.elem_count();
            let values: Vec<f32> = if name.ends_with("bank") {
                let d = var.dims().last().copied().unwrap_or(1).max(1);
                let a = 1.0 / (d as f64).sqrt();
                (0..n).map(|_| rng.random_range(-a..a) as f32).collect()
            } else if name.ends_with("bias") {
                vec![0.0; n]
            } else if name.contains(".bn.") {
                (0..n).map(|_| (1.0 + 0.02 * normal(&mut rng)) as f32).collect()
            } else {
                (0..n).map(|_| (0.02 * normal(&mut rng)) as f32).collect()
            };
            var.set(&Tensor::from_vec(values, var.shape(), &self.device)?)?;
        }
        Ok(())
    }

    /// The config the model was built from.
    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// The device the variables live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The precision of the convolutions' forward products ([`Precision::F32`] unless set).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Sets the precision of the forward products of every convolution (generator and
    /// discriminator) and memory (gradients stay f32, so this is meant for inference). bf16 on a
    /// device other than the CPU, or with a memory that cannot run it (dot-product similarity,
    /// reference backend), is a typed error; on a CPU without AVX512_BF16 it runs the portable
    /// kernel (slower than f32) and says so in a warning.
    pub fn set_precision(&mut self, precision: Precision) -> Result<()> {
        precision.check_device(&self.device).map_err(|e| Error::Layer(Box::new(e)))?;
        if precision == Precision::Bf16 && !daad_nn::gemm::bf16_native() {
            tracing::warn!(
                "this CPU has no AVX512_BF16: bf16 products run the portable kernel (operands \
                 rounded, then f32 products), slower than f32; use --precision f32 for speed"
            );
        }
        self.generator.set_precision(precision)?;
        if let Some(d) = self.discriminator.as_mut() {
            d.set_precision(precision);
        }
        self.precision = precision;
        Ok(())
    }

    /// All variables (trainable and BatchNorm running stats).
    pub fn varmap(&self) -> &VarMap {
        &self.varmap
    }

    /// Variables whose name passes `keep`, sorted by name (a stable order for optimiser state).
    pub fn named_vars(&self, keep: impl Fn(&str) -> bool) -> Vec<(String, Var)> {
        let data = self.varmap.data().lock().expect("varmap lock poisoned");
        let mut v: Vec<(String, Var)> =
            data.iter().filter(|(n, _)| keep(n)).map(|(n, v)| (n.clone(), v.clone())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Trainable generator variables (no running stats), sorted by name.
    pub fn generator_vars(&self) -> Vec<Var> {
        self.named_vars(|n| n.starts_with("generator.") && !is_running_stat(n))
            .into_iter()
            .map(|(_, v)| v)
            .collect()
    }

    /// Trainable discriminator variables (empty without one), sorted by name.
    pub fn discriminator_vars(&self) -> Vec<Var> {
        self.named_vars(|n| n.starts_with("discriminator.") && !is_running_stat(n))
            .into_iter()
            .map(|(_, v)| v)
            .collect()
    }

    /// Whether the model has a discriminator.
    pub fn has_discriminator(&self) -> bool {
        self.discriminator.is_some()
    }

    /// x (B, C, S, S) in [-1, 1] -> x_hat (B, C, S, S); `train` = BatchNorm batch stats + running-average update.
    pub fn reconstruct(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        self.generator.forward(x, train)
    }

    /// [`DaadModel::reconstruct`] that also returns each scale's addressing weights (B*Q, N)
    /// (`None` at scales without memory), for [`daad_memory::DiagnosticsAccumulator`].
    pub fn reconstruct_with_weights(
        &self,
        x: &Tensor,
        train: bool,
    ) -> candle_core::Result<(Tensor, [Option<Tensor>; 4])> {
        self.generator.forward_with_weights(x, train)
    }

    /// Discriminator on x: (logits (B,), f_D (B, C_D, 4, 4)); None without a discriminator.
    pub fn disc_features(
        &self,
        x: &Tensor,
        train: bool,
    ) -> candle_core::Result<Option<(Tensor, Tensor)>> {
        self.discriminator.as_ref().map(|d| d.forward(x, train)).transpose()
    }

    /// Evaluation-mode forward (BatchNorm running stats, gradients detached): reconstruction,
    /// error map and the raw per-image scores R (and L with a discriminator).
    pub fn infer(&self, x: &Tensor) -> Result<AnomalyOutput> {
        let x = x.detach();
        let x_hat = self.reconstruct(&x, false)?.detach();
        let reduction = self.cfg.loss_reduction;
        let r = per_image_distance(&x, &x_hat, reduction)?;
        let map = error_map(&x, &x_hat)?;
        let l = match &self.discriminator {
            Some(d) => {
                let (_, fx) = d.forward(&x, false)?;
                let (_, fxh) = d.forward(&x_hat, false)?;
                Some(per_image_distance(&fx.detach(), &fxh.detach(), reduction)?)
            }
            None => None,
        };
        Ok(AnomalyOutput {
            reconstruction: x_hat,
            error_map: map,
            reconstruction_score: r,
            alignment_score: l,
        })
    }

    /// Writes every variable (running stats included) to a safetensors file, atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let (tensors, meta) = self.weights_with_metadata();
        save_safetensors(path, &tensors, meta)
    }

    /// Every weight by name and the safetensors metadata [`DaadModel::load`] checks (format,
    /// version, variant, image size): what a weights file holds, for writers that add their own
    /// metadata (a checkpoint adds its step).
    pub fn weights_with_metadata(&self) -> (Vec<(String, Tensor)>, HashMap<String, String>) {
        let tensors: Vec<(String, Tensor)> = self
            .named_vars(|_| true)
            .into_iter()
            .map(|(n, v)| (n, v.as_tensor().clone()))
            .collect();
        let meta = HashMap::from([
            ("format".to_string(), WEIGHTS_FORMAT.to_string()),
            ("format_version".to_string(), WEIGHTS_FORMAT_VERSION.to_string()),
            ("variant".to_string(), self.cfg.variant.name().to_string()),
            ("image_size".to_string(), self.cfg.image_size.to_string()),
        ]);
        (tensors, meta)
    }

    /// Loads weights saved by [`DaadModel::save`]; every mismatch (format, variant, missing or
    /// unexpected or wrongly shaped tensor) is listed in one error that names the file.
    pub fn load(&mut self, path: &Path) -> Result<()> {
        let (tensors, meta) = load_safetensors(path, &self.device)?;
        let mut mismatches = Vec::new();
        match meta.get("format").map(String::as_str) {
            Some(WEIGHTS_FORMAT) => {}
            other => mismatches.push(format!("format is {other:?}, expected {WEIGHTS_FORMAT:?}")),
        }
        if let Some(v) = meta.get("format_version") {
            if v != &WEIGHTS_FORMAT_VERSION.to_string() {
                mismatches
                    .push(format!("format version {v}, this build reads {WEIGHTS_FORMAT_VERSION}"));
            }
        }
        if let Some(v) = meta.get("variant") {
            if v != self.cfg.variant.name() {
                mismatches
                    .push(format!("variant is {v}, the config asks for {}", self.cfg.variant));
            }
        }
        let vars = self.named_vars(|_| true);
        for (name, var) in &vars {
            match tensors.get(name) {
                None => mismatches.push(format!("tensor `{name}` is missing")),
                Some(t) if t.dims() != var.dims() => mismatches.push(format!(
                    "tensor `{name}` has shape {:?}, the model needs {:?}",
                    t.dims(),
                    var.dims()
                )),
                Some(t) if t.dtype() != var.dtype() => mismatches.push(format!(
                    "tensor `{name}` is {:?}, the model needs {:?}",
                    t.dtype(),
                    var.dtype()
                )),
                Some(_) => {}
            }
        }
        let mut extra: Vec<&String> =
            tensors.keys().filter(|k| !vars.iter().any(|(n, _)| n == *k)).collect();
        extra.sort();
        for k in extra {
            mismatches
                .push(format!("unexpected tensor `{k}` (a different variant or architecture?)"));
        }
        if !mismatches.is_empty() {
            return Err(Error::Checkpoint { path: path.to_path_buf(), mismatches });
        }
        for (name, var) in &vars {
            var.set(&tensors[name])?;
        }
        Ok(())
    }
}

/// A standard normal sample (Box-Muller; rand 0.9 has no Normal without rand_distr).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}
