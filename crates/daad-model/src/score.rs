//! Tensor-level anomaly scores of a batch: R(x) = mean over pixels of (x - x_hat)^2,
//! L(x) = mean of (f_D(x) - f_D(x_hat))^2, or with [`LossReduction::L2`] the paper's
//! ||x - x_hat||_2 and ||f_D(x) - f_D(x_hat)||_2 (eq. 4, 6), and the per-pixel error map. Their
//! scaling, fusion and threshold (eq. 7) live in daad-eval's `Calibration`.

use candle_core::{Tensor, D};

use crate::LossReduction;

/// Added to the sum of squares before the square root of [`LossReduction::L2`] **(choice)**:
/// keeps the gradient finite when a reconstruction is exact.
pub const L2_EPS: f64 = 1e-12;

/// Per image (B, ...) a, b -> (B,): the mean of squares, or the L2 distance.
pub fn per_image_distance(
    a: &Tensor,
    b: &Tensor,
    reduction: LossReduction,
) -> candle_core::Result<Tensor> {
    let b_sz = a.dim(0)?;
    let sq = (a - b)?.sqr()?.reshape((b_sz, ()))?;
    match reduction {
        LossReduction::Mean => sq.mean(D::Minus1),
        LossReduction::L2 => (sq.sum(D::Minus1)? + L2_EPS)?.sqrt(),
    }
}

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
    fn l2_reduction_by_hand() -> candle_core::Result<()> {
        // image 0: four errors of 1 -> sqrt(4) = 2; image 1: one error of 2 -> sqrt(4) = 2;
        // the mean of squares gives 1 for both.
        let x = Tensor::new(&[[[[1f32, 1.], [1., 1.]]], [[[0f32, 0.], [0., 2.]]]], &Device::Cpu)?;
        let y = Tensor::zeros((2, 1, 2, 2), candle_core::DType::F32, &Device::Cpu)?;
        let l2 = per_image_distance(&x, &y, LossReduction::L2)?.to_vec1::<f32>()?;
        assert!(l2.iter().all(|v| (v - 2.0).abs() < 1e-5), "{l2:?}");
        let mean = per_image_distance(&x, &y, LossReduction::Mean)?.to_vec1::<f32>()?;
        assert_eq!(mean, vec![1.0, 1.0]);
        Ok(())
    }

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
