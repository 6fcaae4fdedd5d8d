//! The small UNet autoencoder used by `benches/train_step.rs` and `examples/train_step.rs` to time
//! a whole training step (the model crate builds the real model separately). Not part of the
//! library: both include this file with `#[path]`.
//!
//! Encoder: Conv4x4/s2/p1 3->64 (bias, no BN) LeakyReLU(0.2), then 64->128, 128->256, 256->512
//! each with BatchNorm + LeakyReLU(0.2). Decoder: ConvT4x4/s2/p1 512->256 BN ReLU, concat skip f3
//! -> 512->128 BN ReLU, concat f2 -> 256->64 BN ReLU, concat f1 -> 128->3 (bias) tanh. Loss: MSE
//! to the input. Optimiser: Adam (lr 2e-4, betas 0.5/0.999). `scripts/torch_step.py` is the same
//! model in PyTorch.

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use daad_nn::activation::{activation, candle_activation, Activation};
use daad_nn::ops::{candle_conv2d, candle_conv_transpose2d};
use daad_nn::{
    batch_norm2d, conv2d, conv_transpose2d, Adam, BatchNorm2d, Conv2d, Conv2dConfig,
    ConvTranspose2d, ConvTranspose2dConfig, ParamsAdam,
};

/// Which implementation of the layers and optimiser to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impl {
    /// daad-nn's custom ops and fused Adam.
    Fast,
    /// candle's own conv2d / conv_transpose2d, tensor-op batch norm and `candle_nn::AdamW`.
    Candle,
}

const DOWN: Conv2dConfig = Conv2dConfig { padding: 1, stride: 2, dilation: 1 };
const UP: ConvTranspose2dConfig =
    ConvTranspose2dConfig { padding: 1, output_padding: 0, stride: 2, dilation: 1 };

/// The benchmark UNet autoencoder.
pub struct UNetAe {
    imp: Impl,
    enc: Vec<Conv2d>,
    enc_bn: Vec<BatchNorm2d>,
    dec: Vec<ConvTranspose2d>,
    dec_bn: Vec<BatchNorm2d>,
    varmap: VarMap,
}

impl UNetAe {
    /// Builds the model with fresh weights on `device`.
    pub fn new(imp: Impl, device: &Device) -> Result<Self> {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let chans = [3, 64, 128, 256, 512];
        let mut enc = Vec::new();
        let mut enc_bn = Vec::new();
        for i in 0..4 {
            let (cin, cout) = (chans[i], chans[i + 1]);
            enc.push(conv2d(cin, cout, 4, DOWN, i == 0, vb.pp(format!("enc{i}")))?);
            if i > 0 {
                enc_bn.push(batch_norm2d(cout, 1e-5, 0.1, vb.pp(format!("enc{i}_bn")))?);
            }
        }
        let mut dec = Vec::new();
        let mut dec_bn = Vec::new();
        for (i, (cin, cout)) in
            [(512, 256), (512, 128), (256, 64), (128, 3)].into_iter().enumerate()
        {
            dec.push(conv_transpose2d(cin, cout, 4, UP, i == 3, vb.pp(format!("dec{i}")))?);
            if i < 3 {
                dec_bn.push(batch_norm2d(cout, 1e-5, 0.1, vb.pp(format!("dec{i}_bn")))?);
            }
        }
        Ok(Self { imp, enc, enc_bn, dec, dec_bn, varmap })
    }

    /// The model's variables.
    pub fn varmap(&self) -> &VarMap {
        &self.varmap
    }

    fn conv(&self, i: usize, x: &Tensor) -> Result<Tensor> {
        let c = &self.enc[i];
        match self.imp {
            Impl::Fast => c.forward(x),
            Impl::Candle => candle_conv2d(x, c.weight(), c.bias(), *c.config()),
        }
    }

    fn convt(&self, i: usize, x: &Tensor) -> Result<Tensor> {
        let c = &self.dec[i];
        match self.imp {
            Impl::Fast => c.forward(x),
            Impl::Candle => candle_conv_transpose2d(x, c.weight(), c.bias(), *c.config()),
        }
    }

    fn bn_act(&self, bn: &BatchNorm2d, x: &Tensor, train: bool, act: Activation) -> Result<Tensor> {
        match self.imp {
            Impl::Fast => bn.forward_act(x, train, act),
            Impl::Candle => candle_activation(&bn.candle_forward(x, train)?, act),
        }
    }

    fn act(&self, x: &Tensor, act: Activation) -> Result<Tensor> {
        match self.imp {
            Impl::Fast => activation(x, act),
            Impl::Candle => candle_activation(x, act),
        }
    }

    /// Reconstruction of `x (B, 3, S, S)`, S a multiple of 16.
    pub fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let lrelu = Activation::LeakyRelu(0.2);
        let f1 = self.act(&self.conv(0, x)?, lrelu)?; // (B, 64, S/2)
        let f2 = self.bn_act(&self.enc_bn[0], &self.conv(1, &f1)?, train, lrelu)?; // (B, 128, S/4)
        let f3 = self.bn_act(&self.enc_bn[1], &self.conv(2, &f2)?, train, lrelu)?; // (B, 256, S/8)
        let f4 = self.bn_act(&self.enc_bn[2], &self.conv(3, &f3)?, train, lrelu)?; // (B, 512, S/16)
        let d = self.bn_act(&self.dec_bn[0], &self.convt(0, &f4)?, train, Activation::Relu)?; // (B, 256, S/8)
        let d = Tensor::cat(&[&d, &f3], 1)?;
        let d = self.bn_act(&self.dec_bn[1], &self.convt(1, &d)?, train, Activation::Relu)?; // (B, 128, S/4)
        let d = Tensor::cat(&[&d, &f2], 1)?;
        let d = self.bn_act(&self.dec_bn[2], &self.convt(2, &d)?, train, Activation::Relu)?; // (B, 64, S/2)
        let d = Tensor::cat(&[&d, &f1], 1)?;
        self.act(&self.convt(3, &d)?, Activation::Tanh) // (B, 3, S)
    }
}

/// The optimiser matching an [`Impl`].
pub enum AnyAdam {
    /// daad-nn's fused Adam.
    Fast(Adam),
    /// candle_nn's AdamW with weight decay 0 (= Adam).
    Candle(AdamW),
}

/// A model plus its optimiser: one call of [`Trainer::step`] is one training step.
pub struct Trainer {
    /// The model.
    pub model: UNetAe,
    opt: AnyAdam,
}

impl Trainer {
    /// Builds model and optimiser (lr 2e-4, betas 0.5/0.999, eps 1e-8).
    pub fn new(imp: Impl, device: &Device) -> Result<Self> {
        let model = UNetAe::new(imp, device)?;
        let vars = model.varmap.all_vars();
        let opt = match imp {
            Impl::Fast => AnyAdam::Fast(Adam::new(
                vars,
                ParamsAdam { lr: 2e-4, beta1: 0.5, ..ParamsAdam::default() },
            )?),
            Impl::Candle => AnyAdam::Candle(AdamW::new(
                vars,
                ParamsAdamW { lr: 2e-4, beta1: 0.5, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 },
            )?),
        };
        Ok(Self { model, opt })
    }

    /// Forward, MSE loss to the input, backward and Adam step; returns the loss.
    pub fn step(&mut self, x: &Tensor) -> Result<f32> {
        let y = self.model.forward(x, true)?;
        let loss = (y - x)?.sqr()?.mean_all()?;
        match &mut self.opt {
            AnyAdam::Fast(o) => o.backward_step(&loss)?,
            AnyAdam::Candle(o) => o.backward_step(&loss)?,
        }
        loss.to_scalar::<f32>()
    }

    /// Like [`Trainer::step`], returning the seconds spent in forward+loss, backward and the
    /// optimiser step (for profiling).
    pub fn step_timed(&mut self, x: &Tensor) -> Result<[f64; 3]> {
        let t0 = std::time::Instant::now();
        let y = self.model.forward(x, true)?;
        let loss = (y - x)?.sqr()?.mean_all()?;
        loss.to_scalar::<f32>()?;
        let t1 = std::time::Instant::now();
        let grads = loss.backward()?;
        let t2 = std::time::Instant::now();
        match &mut self.opt {
            AnyAdam::Fast(o) => o.step(&grads)?,
            AnyAdam::Candle(o) => o.step(&grads)?,
        }
        let t3 = std::time::Instant::now();
        Ok([(t1 - t0).as_secs_f64(), (t2 - t1).as_secs_f64(), (t3 - t2).as_secs_f64()])
    }

    /// Inference (eval-mode batch norm, no gradient).
    pub fn infer(&self, x: &Tensor) -> Result<Tensor> {
        self.model.forward(&x.detach(), false)
    }
}
