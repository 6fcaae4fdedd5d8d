//! Tensor-level anomaly scores of a batch: R(x) = mean over pixels of (x - x_hat)^2,
//! L(x) = mean of (f_D(x) - f_D(x_hat))^2 (paper eq. 4, 6) and the per-pixel error map. Their
//! scaling, fusion and threshold (eq. 7) live in daad-eval's `Calibration`.

use candle_core::{Tensor, D};

/// R(x) per image: (B, ...) x, x_hat -> (B,) mean of the squared error over all but the batch dim.
pub fn reconstruction_score(x: &Tensor, x_hat: &Tensor) -> candle_core::Result<Tensor> {
    per_image_mse(x, x_hat)
}

/// L(x) per image: (B, ...) f_D(x), f_D(x_hat) -> (B,) mean squared feature difference.
pub fn alignment_score(fx: &Tensor, fx_hat: &Tensor) -> candle_core::Result<Tensor> {
    per_image_mse(fx, fx_hat)
}

fn per_image_mse(a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    let b_sz = a.dim(0)?;
    (a - b)?.sqr()?.reshape((b_sz, ()))?.mean(D::Minus1)
}

/// Per-pixel error map: (B, C, H, W) -> (B, 1, H, W), the channel mean of (x - x_hat)^2.
pub fn error_map(x: &Tensor, x_hat: &Tensor) -> candle_core::Result<Tensor> {
    (x - x_hat)?.sqr()?.mean_keepdim(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn scores_by_hand() -> candle_core::Result<()> {
        let x = Tensor::new(&[[[[1f32, 1.], [1., 1.]]], [[[0f32, 0.], [0., 2.]]]], &Device::Cpu)?;
        let y = Tensor::zeros((2, 1, 2, 2), candle_core::DType::F32, &Device::Cpu)?;
        // image 0: four errors of 1 -> 1; image 1: one error of 4 -> 1.
        assert_eq!(reconstruction_score(&x, &y)?.to_vec1::<f32>()?, vec![1.0, 1.0]);
        assert_eq!(error_map(&x, &y)?.dims(), &[2, 1, 2, 2]);
        assert_eq!(alignment_score(&x, &x)?.to_vec1::<f32>()?, vec![0.0, 0.0]);
        Ok(())
    }
}
