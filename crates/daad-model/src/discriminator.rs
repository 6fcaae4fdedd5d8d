//! The DCGAN discriminator (GANomaly-style pyramid) with its feature output f_D.

use candle_core::{Module, Tensor};
use candle_nn::VarBuilder;
use daad_nn::{activation, batch_norm2d, conv2d, BatchNorm2d, Conv2d, Conv2dConfig, Precision};

use crate::generator::{down, BN_EPS, BN_MOMENTUM, LEAKY};
use crate::{ModelConfig, Result};

/// **(choice)** GANomaly's DCGAN discriminator: Conv 4x4 s2 p1 stages (BatchNorm except the
/// first, LeakyReLU 0.2), channels doubling from `base_channels` until the map is 4x4; f_D is the
/// activation of that last stage, and a 4x4 valid conv maps it to one real/fake logit.
/// Vars: `stage{i}.conv`, `stage{i}.bn`, `classifier`.
pub struct Discriminator {
    stages: Vec<(Conv2d, Option<BatchNorm2d>)>,
    classifier: Conv2d,
}

impl Discriminator {
    /// Builds the discriminator for `cfg.image_size` under `vb`.
    pub fn new(cfg: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        let mut stages = Vec::new();
        let mut side = cfg.image_size / 2;
        let mut c = cfg.base_channels;
        stages.push((down(cfg.in_channels, c, true, vb.pp("stage1.conv"))?, None));
        while side > 4 {
            let vbl = vb.pp(format!("stage{}", stages.len() + 1));
            let conv = down(c, 2 * c, false, vbl.pp("conv"))?;
            let bn = batch_norm2d(2 * c, BN_EPS, BN_MOMENTUM, vbl.pp("bn"))?;
            stages.push((conv, Some(bn)));
            c *= 2;
            side /= 2;
        }
        let classifier = conv2d(
            c,
            1,
            side,
            Conv2dConfig { padding: 0, stride: 1, dilation: 1 },
            true,
            vb.pp("classifier"),
        )?;
        Ok(Self { stages, classifier })
    }

    /// Sets the precision of every convolution's forward product.
    pub(crate) fn set_precision(&mut self, precision: Precision) {
        self.stages.iter_mut().for_each(|(c, _)| c.set_precision(precision));
        self.classifier.set_precision(precision);
    }

    /// x (B, C, S, S) -> (logits (B,), f_D (B, C_D, 4, 4)).
    pub fn forward(&self, x: &Tensor, train: bool) -> candle_core::Result<(Tensor, Tensor)> {
        let mut h = x.clone();
        for (conv, bn) in &self.stages {
            let y = conv.forward(&h)?;
            h = match bn {
                Some(bn) => bn.forward_act(&y, train, LEAKY)?,
                None => activation(&y, LEAKY)?,
            };
        }
        let logits = self.classifier.forward(&h)?.flatten_all()?;
        Ok((logits, h))
    }
}
