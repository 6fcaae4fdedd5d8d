//! The generator: DCGAN-style encoder, block memory on the encoder->decoder connections, decoder.

use candle_core::{Module, Tensor};
use candle_nn::VarBuilder;
use daad_memory::BlockMemory;
use daad_nn::{
    activation, batch_norm2d, conv2d, conv_transpose2d, Activation, BatchNorm2d, Conv2d,
    Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig, Precision,
};

use crate::{DivisionRule, Error, ModelConfig, Result};

/// BatchNorm settings of PyTorch (the paper's framework): eps 1e-5, momentum 0.1.
/// (`pub`: the ONNX export folds BatchNorm with the same eps.)
pub const BN_EPS: f64 = 1e-5;
pub(crate) const BN_MOMENTUM: f64 = 0.1;
/// LeakyReLU slope of the DCGAN encoder and discriminator.
pub const LEAKY: Activation = Activation::LeakyRelu(0.2);

/// Conv 4x4, stride 2, padding 1: halves the side.
pub(crate) fn down(
    in_c: usize,
    out_c: usize,
    bias: bool,
    vb: VarBuilder,
) -> candle_core::Result<Conv2d> {
    conv2d(in_c, out_c, 4, Conv2dConfig { padding: 1, stride: 2, dilation: 1 }, bias, vb)
}

/// ConvTranspose 4x4, stride 2, padding 1: doubles the side.
fn up(
    in_c: usize,
    out_c: usize,
    bias: bool,
    vb: VarBuilder,
) -> candle_core::Result<ConvTranspose2d> {
    let cfg = ConvTranspose2dConfig { padding: 1, output_padding: 0, stride: 2, dilation: 1 };
    conv_transpose2d(in_c, out_c, 4, cfg, bias, vb)
}

/// Encoder, memories and decoder. Vars: `enc{l}.conv`, `enc{l}.bn`, `memory{l}.bank`, `dec{l}.conv`, `dec{l}.bn`.
pub struct Generator {
    enc: Vec<(Conv2d, Option<BatchNorm2d>)>,
    memory: Vec<Option<BlockMemory>>,
    dec: Vec<(ConvTranspose2d, Option<BatchNorm2d>)>,
    skips: bool,
}

impl Generator {
    /// Builds the generator of `cfg` (validated by the caller) under `vb`.
    pub fn new(cfg: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        let ch = cfg.channels();
        let sides = cfg.feature_sizes();
        let mut enc = Vec::with_capacity(4);
        for l in 0..4 {
            let in_c = if l == 0 { cfg.in_channels } else { ch[l - 1] };
            let vbl = vb.pp(format!("enc{}", l + 1));
            // No BatchNorm on the first stage (DCGAN); convs followed by BN carry no bias.
            let conv = down(in_c, ch[l], l == 0, vbl.pp("conv"))?;
            let bn = if l == 0 {
                None
            } else {
                Some(batch_norm2d(ch[l], BN_EPS, BN_MOMENTUM, vbl.pp("bn"))?)
            };
            enc.push((conv, bn));
        }
        let mut memory = Vec::with_capacity(4);
        for l in 0..4 {
            if !cfg.memory_scales[l] {
                memory.push(None);
                continue;
            }
            let rates = cfg.scale_rates(l);
            if rates != cfg.memory.rates && cfg.division_rule == DivisionRule::PaperGrid {
                tracing::warn!(
                    "f{} is {}x{}x{}, smaller than the division rates {:?}: clamped to {:?} (one-pixel blocks)",
                    l + 1,
                    ch[l],
                    sides[l],
                    sides[l],
                    cfg.memory.rates,
                    rates
                );
            }
            let mut mcfg = cfg.memory.clone();
            mcfg.rates = rates;
            let mem = BlockMemory::new(
                ch[l],
                sides[l],
                sides[l],
                &mcfg,
                vb.pp(format!("memory{}", l + 1)),
            )
            .map_err(|source| Error::Memory { scale: l + 1, source })?;
            memory.push(Some(mem));
        }
        if cfg.memory_scales.iter().any(|&m| m) {
            // At debug: models are also built to test and predict; the training banner prints it.
            tracing::debug!("{}", cfg.describe_blocks());
        }
        let mut dec = Vec::with_capacity(4);
        for l in 0..4 {
            // dec{l+1} maps the scale-(l+1) decoder input to the side of scale l.
            let from_below = if l == 3 { ch[3] } else { ch[l] };
            let skip = if l < 3 && cfg.skips { ch[l] } else { 0 };
            let out_c = if l == 0 { cfg.in_channels } else { ch[l - 1] };
            let vbl = vb.pp(format!("dec{}", l + 1));
            let conv = up(from_below + skip, out_c, l == 0, vbl.pp("conv"))?;
            let bn = if l == 0 {
                None
            } else {
                Some(batch_norm2d(out_c, BN_EPS, BN_MOMENTUM, vbl.pp("bn"))?)
            };
            dec.push((conv, bn));
        }
        Ok(Self { enc, memory, dec, skips: cfg.skips })
    }

    /// Sets the precision of every convolution's and memory's forward products; a memory that
    /// cannot run bf16 (dot-product similarity, reference backend) is an error and changes
    /// nothing.
    pub(crate) fn set_precision(&mut self, precision: Precision) -> Result<()> {
        // Set on copies, kept only when every memory accepts (the copies share the banks).
        self.memory = self
            .memory
            .iter()
            .enumerate()
            .map(|(l, mem)| {
                let Some(mut mem) = mem.clone() else { return Ok(None) };
                mem.set_precision(precision)
                    .map_err(|source| Error::Memory { scale: l + 1, source })?;
                Ok(Some(mem))
            })
            .collect::<Result<_>>()?;
        self.enc.iter_mut().for_each(|(c, _)| c.set_precision(precision));
        self.dec.iter_mut().for_each(|(c, _)| c.set_precision(precision));
        Ok(())
    }

    /// x (B, C, S, S) in [-1, 1] -> x_hat (B, C, S, S) in (-1, 1); `train` picks BatchNorm's mode.
    pub fn forward(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        Ok(self.forward_with_weights(x, train)?.0)
    }

    /// [`Generator::forward`] plus each scale's addressing weights (`None` without memory).
    pub fn forward_with_weights(
        &self,
        x: &Tensor,
        train: bool,
    ) -> candle_core::Result<(Tensor, [Option<Tensor>; 4])> {
        // Encoder: f1..f4 at S/2..S/16.
        let mut feats = Vec::with_capacity(4);
        let mut h = x.clone();
        for (conv, bn) in &self.enc {
            let y = conv.forward(&h)?;
            h = match bn {
                Some(bn) => bn.forward_act(&y, train, LEAKY)?,
                None => activation(&y, LEAKY)?,
            };
            feats.push(h.clone());
        }
        // Memory on each connection (identity where a scale has none).
        let mut weights: [Option<Tensor>; 4] = Default::default();
        let mut through = |l: usize| -> candle_core::Result<Tensor> {
            match &self.memory[l] {
                Some(m) => {
                    let (out, w) = m.forward_with_weights(&feats[l])?;
                    weights[l] = Some(w);
                    Ok(out)
                }
                None => Ok(feats[l].clone()),
            }
        };
        // Decoder: z_hat (B, 8c, S/16) -> ... -> (B, C, S).
        let mut d = through(3)?;
        for l in (0..4).rev() {
            if l < 3 && self.skips {
                d = Tensor::cat(&[&d, &through(l)?], 1)?;
            }
            let (conv, bn) = &self.dec[l];
            let y = conv.forward(&d)?;
            d = match bn {
                Some(bn) => bn.forward_act(&y, train, Activation::Relu)?,
                None => activation(&y, Activation::Tanh)?,
            };
        }
        Ok((d, weights))
    }
}
