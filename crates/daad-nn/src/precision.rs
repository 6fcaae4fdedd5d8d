//! [`Precision`]: the number format of a layer's matrix products.

use std::fmt;
use std::str::FromStr;

use candle_core::Device;

use crate::error::{Error, Result};

/// The precision of the convolutions' matrix products (inference only: backward is always f32).
///
/// `Bf16` follows oneDNN's autocast: activations and weights stay f32 in memory, the operands of
/// each product are rounded to bfloat16 (round to nearest even), the products accumulate in f32
/// and the outputs are f32. Everything that is not a product (bias, BatchNorm, activations, the
/// memory op) is unchanged.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// f32 operands (the default, and what training uses).
    #[default]
    F32,
    /// bfloat16 operands, f32 accumulation ([`crate::gemm::bf16_native`] says whether the CPU
    /// has the AVX512_BF16 kernel; otherwise a slower portable path gives the same results).
    Bf16,
}

impl Precision {
    /// Every precision, in the order the command line lists them.
    pub const ALL: [Precision; 2] = [Precision::F32, Precision::Bf16];

    /// The name used on the command line and in files (`f32`, `bf16`).
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }

    /// Checks that this precision is implemented on `device`: bf16 products exist on the CPU
    /// only (the CUDA path runs candle's own f32 convolutions).
    pub fn check_device(self, device: &Device) -> Result<()> {
        if self == Precision::Bf16 && !device.is_cpu() {
            return Err(Error::Unsupported {
                layer: "model",
                arg: "precision",
                value: "bf16".into(),
                hint: "bf16 matrix products are implemented on the CPU only; use precision f32 \
                       (`--precision f32`) on this device",
            });
        }
        Ok(())
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Precision::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| Error::UnknownPrecision(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_is_an_error() {
        for p in Precision::ALL {
            assert_eq!(p.name().parse::<Precision>().ok(), Some(p));
            assert_eq!(serde_json::to_string(&p).ok(), Some(format!("\"{p}\"")));
        }
        assert_eq!("BF16".parse::<Precision>().ok(), Some(Precision::Bf16));
        assert!(matches!("fp16".parse::<Precision>(), Err(Error::UnknownPrecision(_))));
        assert!(Precision::Bf16.check_device(&Device::Cpu).is_ok());
    }
}
