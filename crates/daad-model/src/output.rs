//! The one inference output type.

use candle_core::Tensor;

/// What a forward pass in evaluation mode gives for a batch of B images.
#[derive(Clone, Debug)]
pub struct AnomalyOutput {
    /// x_hat (B, C, S, S) in (-1, 1).
    pub reconstruction: Tensor,
    /// Per-pixel squared error averaged over channels, (B, 1, S, S) (not smoothed).
    pub error_map: Tensor,
    /// Raw R(x), (B,).
    pub reconstruction_score: Tensor,
    /// Raw L(x), (B,); None when the model has no discriminator.
    pub alignment_score: Option<Tensor>,
}
