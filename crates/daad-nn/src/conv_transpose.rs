//! `ConvTranspose2d`: a 2-D transposed convolution (PyTorch weight layout `(in, out, k, k)`) whose
//! CPU f32 path is a custom op (gemm + col2im) with its own backward; other devices and dtypes use
//! candle's `conv_transpose2d`.

use crate::error::{Error, Result};
use crate::{ops, Precision};
use candle_core::{Module, Tensor};

/// Hyper-parameters of a [`ConvTranspose2d`] (square kernel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvTranspose2dConfig {
    /// Implicit zero padding removed from every side of the output.
    pub padding: usize,
    /// Extra rows/columns added to one side of the output (must be < stride or < dilation).
    pub output_padding: usize,
    /// Stride.
    pub stride: usize,
    /// Dilation.
    pub dilation: usize,
}

impl Default for ConvTranspose2dConfig {
    fn default() -> Self {
        Self { padding: 0, output_padding: 0, stride: 1, dilation: 1 }
    }
}

impl ConvTranspose2dConfig {
    /// Converts candle-nn's config (which has no groups, so every value is accepted if valid).
    pub fn from_candle(cfg: candle_nn::ConvTranspose2dConfig) -> Result<Self> {
        let c = Self {
            padding: cfg.padding,
            output_padding: cfg.output_padding,
            stride: cfg.stride,
            dilation: cfg.dilation,
        };
        c.validate()?;
        Ok(c)
    }

    /// Checks stride/dilation >= 1 and output_padding < max(stride, dilation) (PyTorch's rule).
    pub fn validate(&self) -> Result<()> {
        for (arg, v) in [("stride", self.stride), ("dilation", self.dilation)] {
            if v == 0 {
                return Err(Error::Unsupported {
                    layer: "ConvTranspose2d",
                    arg,
                    value: "0".into(),
                    hint: "must be at least 1",
                });
            }
        }
        if self.output_padding >= self.stride.max(self.dilation) {
            return Err(Error::Unsupported {
                layer: "ConvTranspose2d",
                arg: "output_padding",
                value: self.output_padding.to_string(),
                hint: "output_padding must be smaller than stride or dilation",
            });
        }
        Ok(())
    }

    /// Output spatial size for input size `n` and kernel `k`, if positive.
    pub fn out_size(&self, n: usize, k: usize) -> Option<usize> {
        let full = (n.max(1) - 1) * self.stride + self.dilation * (k - 1) + self.output_padding + 1;
        (n > 0 && full > 2 * self.padding).then(|| full - 2 * self.padding)
    }
}

/// A 2-D transposed convolution: weight `(in, out, k, k)` "weight", optional bias `(out,)` "bias".
#[derive(Debug, Clone)]
pub struct ConvTranspose2d {
    weight: Tensor,
    bias: Option<Tensor>,
    config: ConvTranspose2dConfig,
    precision: Precision,
}

impl ConvTranspose2d {
    /// Builds the layer from existing tensors, checking their shapes and the config.
    pub fn new(
        weight: Tensor,
        bias: Option<Tensor>,
        config: ConvTranspose2dConfig,
    ) -> Result<Self> {
        config.validate()?;
        let dims = weight.dims().to_vec();
        if dims.len() != 4 || dims[2] != dims[3] || dims[2] == 0 {
            return Err(Error::Shape {
                layer: "ConvTranspose2d",
                what: "weight",
                got: dims,
                expected: "(in, out, k, k) with a square kernel".into(),
            });
        }
        if let Some(b) = &bias {
            if b.dims() != [dims[1]] {
                return Err(Error::Shape {
                    layer: "ConvTranspose2d",
                    what: "bias",
                    got: b.dims().to_vec(),
                    expected: format!("({},)", dims[1]),
                });
            }
        }
        Ok(Self { weight, bias, config, precision: Precision::F32 })
    }

    /// The weight `(in, out, k, k)`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The bias `(out,)`, if any.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// The layer's config.
    pub fn config(&self) -> &ConvTranspose2dConfig {
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

    /// Checks that `x` is `(B, in, H, W)` and gives a non-empty output.
    pub fn check_input(&self, x: &Tensor) -> Result<()> {
        let (cin, _, k, _) = self.weight.dims4()?;
        let d = x.dims();
        let ok = d.len() == 4
            && d[1] == cin
            && self.config.out_size(d[2], k).is_some()
            && self.config.out_size(d[3], k).is_some();
        if !ok {
            return Err(Error::Shape {
                layer: "ConvTranspose2d",
                what: "input",
                got: d.to_vec(),
                expected: format!(
                    "(B, {cin}, H, W) giving a non-empty output (k = {k}, {:?})",
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
        Ok(ops::conv_transpose2d_with_precision(x, w, b, self.config, self.precision)?)
    }
}

impl Module for ConvTranspose2d {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.try_forward(x).map_err(Error::into_candle)
    }
}

/// Creates a [`ConvTranspose2d`] with PyTorch's default init (uniform +-1/sqrt(out*k*k), **(choice)**).
pub fn conv_transpose2d(
    in_c: usize,
    out_c: usize,
    k: usize,
    cfg: ConvTranspose2dConfig,
    bias: bool,
    vb: candle_nn::VarBuilder,
) -> candle_core::Result<ConvTranspose2d> {
    let bound = 1.0 / ((out_c * k * k) as f64).sqrt();
    let init = candle_nn::Init::Uniform { lo: -bound, up: bound };
    let w = vb.get_with_hints((in_c, out_c, k, k), "weight", init)?;
    let b = if bias { Some(vb.get_with_hints(out_c, "bias", init)?) } else { None };
    ConvTranspose2d::new(w, b, cfg).map_err(Error::into_candle)
}
