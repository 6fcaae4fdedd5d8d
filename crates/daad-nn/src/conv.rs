//! `Conv2d`: a 2-D convolution layer whose CPU f32 path is a custom op (im2col + gemm) with its
//! own backward; other devices and dtypes use candle's `conv2d`.

use crate::error::{Error, Result};
use crate::{ops, Precision};
use candle_core::{Module, Tensor};

/// Hyper-parameters of a [`Conv2d`] (square kernel, same value for both spatial axes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dConfig {
    /// Zero padding on every side.
    pub padding: usize,
    /// Stride.
    pub stride: usize,
    /// Dilation.
    pub dilation: usize,
}

impl Default for Conv2dConfig {
    fn default() -> Self {
        Self { padding: 0, stride: 1, dilation: 1 }
    }
}

impl Conv2dConfig {
    /// Converts candle-nn's config, rejecting what this layer does not implement (`groups != 1`).
    pub fn from_candle(cfg: candle_nn::Conv2dConfig) -> Result<Self> {
        if cfg.groups != 1 {
            return Err(Error::Unsupported {
                layer: "Conv2d",
                arg: "groups",
                value: cfg.groups.to_string(),
                hint:
                    "only groups = 1 is implemented; use candle_nn::Conv2d for grouped convolutions",
            });
        }
        let c = Self { padding: cfg.padding, stride: cfg.stride, dilation: cfg.dilation };
        c.validate()?;
        Ok(c)
    }

    /// Checks that stride and dilation are at least 1.
    pub fn validate(&self) -> Result<()> {
        for (arg, v) in [("stride", self.stride), ("dilation", self.dilation)] {
            if v == 0 {
                return Err(Error::Unsupported {
                    layer: "Conv2d",
                    arg,
                    value: "0".into(),
                    hint: "must be at least 1",
                });
            }
        }
        Ok(())
    }

    /// Output spatial size for an input size `n` and kernel size `k`, if the kernel fits.
    pub fn out_size(&self, n: usize, k: usize) -> Option<usize> {
        let span = self.dilation * (k - 1) + 1;
        let padded = n + 2 * self.padding;
        (padded >= span).then(|| (padded - span) / self.stride + 1)
    }
}

/// A 2-D convolution: weight `(out, in, k, k)` named "weight", optional bias `(out,)` "bias".
#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: Tensor,
    bias: Option<Tensor>,
    config: Conv2dConfig,
    precision: Precision,
}

impl Conv2d {
    /// Builds the layer from existing tensors, checking their shapes and the config.
    pub fn new(weight: Tensor, bias: Option<Tensor>, config: Conv2dConfig) -> Result<Self> {
        config.validate()?;
        let dims = weight.dims().to_vec();
        if dims.len() != 4 || dims[2] != dims[3] || dims[2] == 0 {
            return Err(Error::Shape {
                layer: "Conv2d",
                what: "weight",
                got: dims,
                expected: "(out, in, k, k) with a square kernel".into(),
            });
        }
        if let Some(b) = &bias {
            if b.dims() != [dims[0]] {
                return Err(Error::Shape {
                    layer: "Conv2d",
                    what: "bias",
                    got: b.dims().to_vec(),
                    expected: format!("({},)", dims[0]),
                });
            }
        }
        Ok(Self { weight, bias, config, precision: Precision::F32 })
    }

    /// The weight `(out, in, k, k)`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The bias `(out,)`, if any.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// The layer's config.
    pub fn config(&self) -> &Conv2dConfig {
        &self.config
    }

    /// The precision of the forward product ([`Precision::F32`] unless set).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Sets the precision of the forward product (the gradients stay f32).
    pub fn set_precision(&mut self, precision: Precision) {
        self.precision = precision;
    }

    /// Checks that `x` is `(B, in, H, W)` and large enough for the kernel.
    pub fn check_input(&self, x: &Tensor) -> Result<()> {
        let (_, cin, k, _) = self.weight.dims4()?;
        let d = x.dims();
        let ok = d.len() == 4
            && d[1] == cin
            && self.config.out_size(d[2], k).is_some()
            && self.config.out_size(d[3], k).is_some();
        if !ok {
            return Err(Error::Shape {
                layer: "Conv2d",
                what: "input",
                got: d.to_vec(),
                expected: format!(
                    "(B, {cin}, H, W) with H, W + 2*padding >= dilation*(k-1)+1 (k = {k}, {:?})",
                    self.config
                ),
            });
        }
        Ok(())
    }

    /// Forward pass with the crate's typed error.
    pub fn try_forward(&self, x: &Tensor) -> Result<Tensor> {
        self.check_input(x)?;
        let (w, b) = (&self.weight, self.bias.as_ref());
        Ok(ops::conv2d_with_precision(x, w, b, self.config, self.precision)?)
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.try_forward(x).map_err(Error::into_candle)
    }
}

/// Creates a [`Conv2d`] with PyTorch's default init (uniform +-1/sqrt(fan_in), **(choice)**).
pub fn conv2d(
    in_c: usize,
    out_c: usize,
    k: usize,
    cfg: Conv2dConfig,
    bias: bool,
    vb: candle_nn::VarBuilder,
) -> candle_core::Result<Conv2d> {
    let bound = 1.0 / ((in_c * k * k) as f64).sqrt();
    let init = candle_nn::Init::Uniform { lo: -bound, up: bound };
    let w = vb.get_with_hints((out_c, in_c, k, k), "weight", init)?;
    let b = if bias { Some(vb.get_with_hints(out_c, "bias", init)?) } else { None };
    Conv2d::new(w, b, cfg).map_err(Error::into_candle)
}
