//! The losses of section 3.2: L_rec, L_adv (D: BCE real/fake; G: non-saturating) and L_ali.

use candle_core::{Result, Tensor};
use daad_model::score::per_image_distance;
use daad_model::LossReduction;

/// Mean squared error over all elements (L_rec on images, L_ali on f_D features).
pub fn mse(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    (a - b)?.sqr()?.mean_all()
}

/// L_rec or L_ali with a reduction: the mean of squares over all elements ([`mse`], the
/// default), or the batch mean of the per-image L2 distance ||a - b||_2 (the paper's eq. 4, 6).
pub fn distance(a: &Tensor, b: &Tensor, reduction: LossReduction) -> Result<Tensor> {
    match reduction {
        LossReduction::Mean => mse(a, b),
        LossReduction::L2 => per_image_distance(a, b, reduction)?.mean_all(),
    }
}

/// Mean binary cross-entropy of logits against a constant target in {0, 1}, computed stably as
/// max(z, 0) - z t + log(1 + exp(-|z|)).
pub fn bce_with_logits(logits: &Tensor, target: f64) -> Result<Tensor> {
    let pos = logits.relu()?;
    let soft = ((logits.abs()?.neg()?.exp()? + 1.0)?).log()?;
    ((pos - (logits * target)?)? + soft)?.mean_all()
}

/// Discriminator loss: 0.5 (BCE(D(x), 1) + BCE(D(x_hat), 0)) (GANomaly's halving; choice).
pub fn discriminator_loss(real_logits: &Tensor, fake_logits: &Tensor) -> Result<Tensor> {
    (bce_with_logits(real_logits, 1.0)? + bce_with_logits(fake_logits, 0.0)?)? * 0.5
}

/// Generator's non-saturating adversarial loss: BCE(D(x_hat), 1).
pub fn generator_adv_loss(fake_logits: &Tensor) -> Result<Tensor> {
    bce_with_logits(fake_logits, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn bce_matches_closed_form() -> Result<()> {
        // -log(sigmoid(z)) for target 1, -log(1 - sigmoid(z)) for target 0, by hand.
        let z = [-30.0f64, -2.0, 0.0, 1.5, 40.0];
        let t = Tensor::new(&z.map(|v| v as f32), &Device::Cpu)?;
        let got1 = bce_with_logits(&t, 1.0)?.to_scalar::<f32>()? as f64;
        let got0 = bce_with_logits(&t, 0.0)?.to_scalar::<f32>()? as f64;
        let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
        // ln(1 + e^v) computed stably for the reference too.
        let softplus = |v: f64| v.max(0.0) + (-v.abs()).exp().ln_1p();
        let want1 = z.iter().map(|&v| softplus(-v)).sum::<f64>() / 5.0;
        let want0 = z.iter().map(|&v| softplus(v)).sum::<f64>() / 5.0;
        assert!((got1 - want1).abs() < 1e-4 * want1.max(1.0), "{got1} vs {want1}");
        assert!((got0 - want0).abs() < 1e-4 * want0.max(1.0), "{got0} vs {want0}");
        assert!((-(sig(1.5)).ln() - softplus(-1.5)).abs() < 1e-12);
        let d = discriminator_loss(&t, &t)?.to_scalar::<f32>()? as f64;
        assert!((d - 0.5 * (want1 + want0)).abs() < 1e-3);
        Ok(())
    }

    #[test]
    fn l2_distance_by_hand() -> Result<()> {
        // Two images of 4 values: errors (3, 4, 0, 0) -> 5 and (1, 0, 0, 0) -> 1; mean 3.
        // The mean of squares is (9 + 16 + 1) / 8 = 3.25.
        let a = Tensor::new(&[[3f32, 4., 0., 0.], [1., 0., 0., 0.]], &Device::Cpu)?;
        let b = Tensor::zeros((2, 4), candle_core::DType::F32, &Device::Cpu)?;
        let l2 = distance(&a, &b, LossReduction::L2)?.to_scalar::<f32>()?;
        assert!((l2 - 3.0).abs() < 1e-5, "{l2}");
        assert_eq!(distance(&a, &b, LossReduction::Mean)?.to_scalar::<f32>()?, 3.25);
        // The L2 gradient stays finite at an exact reconstruction.
        let v = candle_core::Var::from_tensor(&b)?;
        let g = distance(v.as_tensor(), &b, LossReduction::L2)?.backward()?;
        let grad = g.get(v.as_tensor()).unwrap().abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(grad.is_finite());
        Ok(())
    }

    #[test]
    fn mse_by_hand() -> Result<()> {
        let a = Tensor::new(&[1f32, 2., 3., 4.], &Device::Cpu)?;
        let b = Tensor::new(&[1f32, 0., 3., 0.], &Device::Cpu)?;
        assert_eq!(mse(&a, &b)?.to_scalar::<f32>()?, 5.0);
        Ok(())
    }
}
