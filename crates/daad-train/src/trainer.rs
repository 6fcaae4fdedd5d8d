//! One optimisation step: generator step (L_rec, L_adv, L_ali) then discriminator step on the
//! detached reconstruction (the order of GANomaly's training loop).

use std::collections::HashMap;

use candle_core::{Tensor, Var};
use candle_nn::Optimizer;
use daad_model::{DaadModel, DiagnosticsAccumulator, LossWeights, ScaleDiagnostics};
use daad_nn::{Adam, ParamsAdam};
use serde::{Deserialize, Serialize};

use crate::loss::{discriminator_loss, distance, generator_adv_loss};
use crate::{Result, TrainConfig};

/// The losses of one step (unweighted; `total` is the weighted generator loss).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepLosses {
    /// L_rec (MSE).
    pub rec: f64,
    /// Generator L_adv (0 when off).
    pub adv: f64,
    /// L_ali (0 when off).
    pub ali: f64,
    /// Discriminator loss (0 without a discriminator).
    pub disc: f64,
    /// rec_w L_rec + adv_w L_adv + ali_w L_ali.
    pub total: f64,
}

/// The weighted terms of the generator loss (e.g. 50 L_rec, 0.5 L_adv, 0.5 L_ali): shows which
/// term dominates under a loss reduction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WeightedLosses {
    /// rec_w L_rec.
    pub rec: f64,
    /// adv_w L_adv.
    pub adv: f64,
    /// ali_w L_ali.
    pub ali: f64,
}

impl StepLosses {
    /// The weighted terms under `w`.
    pub fn weighted(&self, w: &LossWeights) -> WeightedLosses {
        WeightedLosses { rec: w.rec * self.rec, adv: w.adv * self.adv, ali: w.ali * self.ali }
    }
}

/// A loss that is not finite, reported by [`Trainer::step`] before any parameter changes.
#[derive(Clone, Copy, Debug)]
pub struct NonFinite {
    /// Which loss.
    pub what: &'static str,
    /// Its value.
    pub value: f64,
}

/// The model with its two Adam optimisers.
pub struct Trainer {
    model: DaadModel,
    opt_g: Adam,
    opt_d: Option<Adam>,
    /// Addressing statistics of each scale's memory since the last [`Trainer::take_memory_diagnostics`].
    memory: [Option<DiagnosticsAccumulator>; 4],
}

fn adam(vars: Vec<Var>, cfg: &TrainConfig) -> candle_core::Result<Adam> {
    let params = ParamsAdam {
        lr: cfg.lr,
        beta1: cfg.beta1,
        beta2: cfg.beta2,
        eps: 1e-8,
        weight_decay: cfg.weight_decay,
        decoupled: false,
    };
    Adam::new(vars, params)
}

fn scalar(t: &Tensor) -> candle_core::Result<f64> {
    t.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()
}

impl Trainer {
    /// Wraps a model with fresh Adam optimisers (G, and D when the model has one).
    pub fn new(model: DaadModel, cfg: &TrainConfig) -> Result<Self> {
        let opt_g = adam(model.generator_vars(), cfg)?;
        let opt_d = if model.has_discriminator() {
            Some(adam(model.discriminator_vars(), cfg)?)
        } else {
            None
        };
        let cfg = model.config();
        let memory = std::array::from_fn(|l| {
            cfg.memory_scales[l].then(|| DiagnosticsAccumulator::new(cfg.memory.n_items))
        });
        Ok(Self { model, opt_g, opt_d, memory })
    }

    /// The model being trained.
    pub fn model(&self) -> &DaadModel {
        &self.model
    }

    /// Each memory scale's addressing statistics over the steps since the last call (an epoch
    /// when called at its end), then starts afresh.
    pub fn take_memory_diagnostics(&mut self) -> Vec<ScaleDiagnostics> {
        let mut out = Vec::new();
        for (l, acc) in self.memory.iter_mut().enumerate() {
            if let Some(acc) = acc {
                if let Some(stats) = acc.finish() {
                    out.push(ScaleDiagnostics { scale: l + 1, stats });
                }
                *acc = DiagnosticsAccumulator::new(acc.n_items());
            }
        }
        out
    }

    /// Gives the model back.
    pub fn into_model(self) -> DaadModel {
        self.model
    }

    /// One step on a batch x (B, C, S, S): a generator update, then a discriminator update.
    /// A non-finite loss returns `Ok(Err(..))` before the optimiser that would use it steps.
    pub fn step(&mut self, x: &Tensor) -> Result<std::result::Result<StepLosses, NonFinite>> {
        let w = self.model.config().losses;
        let reduction = self.model.config().loss_reduction;
        let (x_hat, weights) = self.model.reconstruct_with_weights(x, true)?;
        for (l, (acc, w)) in self.memory.iter_mut().zip(weights.iter()).enumerate() {
            if let (Some(acc), Some(w)) = (acc.as_mut(), w) {
                acc.update(w)
                    .map_err(|source| daad_model::Error::Memory { scale: l + 1, source })?;
            }
        }
        let rec = distance(&x_hat, x, reduction)?;
        let mut losses = StepLosses { rec: scalar(&rec)?, ..Default::default() };
        let mut total = (&rec * w.rec)?;
        if self.model.has_discriminator() && (w.adv > 0.0 || w.ali > 0.0) {
            let (fake_logits, f_fake) =
                self.model.disc_features(&x_hat, true)?.expect("has discriminator");
            if w.adv > 0.0 {
                let adv = generator_adv_loss(&fake_logits)?;
                losses.adv = scalar(&adv)?;
                total = (total + (adv * w.adv)?)?;
            }
            if w.ali > 0.0 {
                let (_, f_real) = self.model.disc_features(x, true)?.expect("has discriminator");
                let ali = distance(&f_fake, &f_real.detach(), reduction)?;
                losses.ali = scalar(&ali)?;
                total = (total + (ali * w.ali)?)?;
            }
        }
        losses.total = scalar(&total)?;
        for (what, value) in [
            ("reconstruction", losses.rec),
            ("adversarial", losses.adv),
            ("alignment", losses.ali),
            ("total", losses.total),
        ] {
            if !value.is_finite() {
                return Ok(Err(NonFinite { what, value }));
            }
        }
        let grads = total.backward()?;
        self.opt_g.step(&grads)?;
        if let Some(opt_d) = self.opt_d.as_mut() {
            let fake = x_hat.detach();
            let (real_logits, _) = self.model.disc_features(x, true)?.expect("has discriminator");
            let (fake_logits, _) =
                self.model.disc_features(&fake, true)?.expect("has discriminator");
            let d_loss = discriminator_loss(&real_logits, &fake_logits)?;
            losses.disc = scalar(&d_loss)?;
            if !losses.disc.is_finite() {
                return Ok(Err(NonFinite { what: "discriminator", value: losses.disc }));
            }
            let grads = d_loss.backward()?;
            opt_d.step(&grads)?;
        }
        Ok(Ok(losses))
    }

    /// Both optimisers' state as named tensors: `g.<key>` and `d.<key>` (keys of daad-nn's Adam).
    pub fn export_optimizer(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        for (prefix, opt) in [("g", Some(&self.opt_g)), ("d", self.opt_d.as_ref())] {
            if let Some(opt) = opt {
                let mut state: Vec<(String, Tensor)> = opt.export_state()?.into_iter().collect();
                state.sort_by(|a, b| a.0.cmp(&b.0));
                out.extend(state.into_iter().map(|(k, t)| (format!("{prefix}.{k}"), t)));
            }
        }
        Ok(out)
    }

    /// Restores state written by [`Trainer::export_optimizer`].
    pub fn import_optimizer(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        for (prefix, opt) in [("g.", Some(&mut self.opt_g)), ("d.", self.opt_d.as_mut())] {
            if let Some(opt) = opt {
                let part: HashMap<String, Tensor> = state
                    .iter()
                    .filter_map(|(k, t)| k.strip_prefix(prefix).map(|k| (k.to_string(), t.clone())))
                    .collect();
                opt.import_state(&part)?;
            }
        }
        Ok(())
    }
}
