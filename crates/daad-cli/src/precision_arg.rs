//! [`PrecisionArgs`]: the `--precision` flag of `daad test`, `predict` and `serve`, and its one
//! conversion.

use daad::nn::Precision;

/// The precision flag, flattened into every command that scores images.
#[derive(clap::Args, Debug, Clone)]
pub struct PrecisionArgs {
    /// Precision of the matrix products (convolutions and memories): f32, or bf16 (operands
    /// rounded to bfloat16, f32 accumulation; CPU only; fast on CPUs with AVX512_BF16, slower
    /// elsewhere).
    #[arg(long, default_value = "f32")]
    pub precision: String,
}

impl PrecisionArgs {
    /// The parsed precision (an unknown name is an error that lists the known ones).
    pub fn precision(&self) -> Result<Precision, daad::nn::Error> {
        self.precision.parse()
    }
}
