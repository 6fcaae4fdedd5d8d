//! The categories, the image under construction ([`Scene`]) and [`render`], which draws one
//! normal scene, optionally one defect with its exact mask, and the sensor model on top.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::noise::{gauss, uni};
use super::{classic, defects, perlin};

/// Which generator draws a category: they differ in statistics on purpose, so that settings
/// chosen on one can be checked on the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generator {
    /// Hand-modelled scenes (fabric, wood, a cap, a nut) with geometric defects
    /// (scratch, hole, stain, missing piece).
    Classic,
    /// Perlin-noise textures and objects with noise-shaped defects in the spirit of DRAEM's
    /// anomaly synthesis (a thresholded Perlin mask filled with foreign texture, a tint, a
    /// smoothed patch or ridged cracks).
    Perlin,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Weave,
    Grain,
    Cap,
    Nut,
    Marble,
    Pebble,
}

impl Kind {
    #[cfg(test)]
    pub(super) const ALL: [Kind; 6] =
        [Kind::Weave, Kind::Grain, Kind::Cap, Kind::Nut, Kind::Marble, Kind::Pebble];

    pub(super) fn from_name(n: &str) -> Option<Kind> {
        match n {
            "weave" => Some(Kind::Weave),
            "grain" => Some(Kind::Grain),
            "cap" => Some(Kind::Cap),
            "nut" => Some(Kind::Nut),
            "marble" => Some(Kind::Marble),
            "pebble" => Some(Kind::Pebble),
            _ => None,
        }
    }
    pub(super) fn generator(self) -> Generator {
        match self {
            Kind::Marble | Kind::Pebble => Generator::Perlin,
            _ => Generator::Classic,
        }
    }
    /// The defect folder names of this category's generator.
    pub(super) fn defects(self) -> &'static [&'static str; 4] {
        match self.generator() {
            Generator::Classic => &super::DEFECTS,
            Generator::Perlin => &super::PERLIN_DEFECTS,
        }
    }
    pub(super) fn grey(self) -> bool {
        matches!(self, Kind::Nut)
    }
    pub(super) fn is_object(self) -> bool {
        matches!(self, Kind::Cap | Kind::Nut | Kind::Pebble)
    }
}

/// An image under construction: a foreground layer with coverage over a background layer.
pub(super) struct Scene {
    pub(super) s: usize,
    pub(super) fg: Vec<[f32; 3]>,
    pub(super) alpha: Vec<f32>,
    pub(super) bg: Vec<[f32; 3]>,
    /// Object centre and radius in pixels (objects only).
    pub(super) centre: (f32, f32),
    pub(super) radius: f32,
    /// Hexagon rotation (nut only).
    pub(super) rot: f32,
}

impl Scene {
    pub(super) fn new(s: usize) -> Self {
        Scene {
            s,
            fg: vec![[0.0; 3]; s * s],
            alpha: vec![1.0; s * s],
            bg: vec![[0.0; 3]; s * s],
            centre: (0.0, 0.0),
            radius: 0.0,
            rot: 0.0,
        }
    }
    pub(super) fn compose(&self) -> Vec<[f32; 3]> {
        self.fg
            .iter()
            .zip(&self.bg)
            .zip(&self.alpha)
            .map(|((f, b), &a)| {
                [b[0] + (f[0] - b[0]) * a, b[1] + (f[1] - b[1]) * a, b[2] + (f[2] - b[2]) * a]
            })
            .collect()
    }
}

pub(super) fn render(
    kind: Kind,
    s: usize,
    defect: Option<usize>,
    rng: &mut ChaCha8Rng,
) -> (Vec<[f32; 3]>, Option<Vec<bool>>) {
    let mut sc = Scene::new(s);
    // Sensor parameters are drawn first so that the scene and its noise do not depend on whether
    // (or which) defect follows: a defect image differs from its normal twin only inside the mask.
    let noise_seed: u32 = rng.random();
    let gain = uni(rng, 0.92, 1.08);
    let (gx, gy) = (uni(rng, -0.08, 0.08), uni(rng, -0.08, 0.08));
    let sigma = uni(rng, 0.012, 0.025);
    match kind {
        Kind::Weave => classic::weave(&mut sc, rng),
        Kind::Grain => classic::grain(&mut sc, rng),
        Kind::Cap => classic::cap(&mut sc, rng),
        Kind::Nut => classic::nut(&mut sc, rng),
        Kind::Marble => perlin::marble(&mut sc, rng),
        Kind::Pebble => perlin::pebble(&mut sc, rng),
    }
    let mask = defect.map(|d| {
        let mut m = vec![false; s * s];
        match kind.generator() {
            Generator::Classic => defects::apply(d, &mut sc, kind, &mut m, rng),
            Generator::Perlin => perlin::defect(d, &mut sc, kind, &mut m, rng),
        }
        m
    });
    let mut img = sc.compose();
    // Sensor: global gain, a lighting gradient and Gaussian noise, all per image.
    let mut nrng = ChaCha8Rng::seed_from_u64(noise_seed as u64);
    for y in 0..s {
        for x in 0..s {
            let (u, v) = ((x as f32 + 0.5) / s as f32 - 0.5, (y as f32 + 0.5) / s as f32 - 0.5);
            let light = gain * (1.0 + gx * u * 2.0 + gy * v * 2.0);
            let p = &mut img[y * s + x];
            let n = sigma * gauss(&mut nrng);
            for c in p.iter_mut() {
                *c = (*c * light + n).clamp(0.0, 1.0);
            }
        }
    }
    (img, mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders the same draw with and without each defect: pixels outside the mask are identical,
    /// and (almost) every pixel inside it changed.
    #[test]
    fn masks_are_exactly_the_changed_pixels() {
        for kind in Kind::ALL {
            for (d, name) in kind.defects().iter().enumerate() {
                for seed in 0..3u64 {
                    let base = ChaCha8Rng::seed_from_u64(seed * 31 + d as u64);
                    let (normal, none) = render(kind, 64, None, &mut base.clone());
                    assert!(none.is_none());
                    let (img, mask) = render(kind, 64, Some(d), &mut base.clone());
                    let mask = mask.expect("defect images have masks");
                    let (mut inside, mut changed_inside) = (0, 0);
                    for i in 0..img.len() {
                        let changed = img[i] != normal[i];
                        if mask[i] {
                            inside += 1;
                            changed_inside += changed as usize;
                        } else {
                            assert!(
                                !changed,
                                "{kind:?}/{}: pixel {i} changed outside the mask",
                                name
                            );
                        }
                    }
                    assert!(inside > 0, "{kind:?}/{}: empty mask", name);
                    assert!(
                        changed_inside * 10 >= inside * 9,
                        "{kind:?}/{}: only {changed_inside} of {inside} mask pixels changed",
                        name
                    );
                }
            }
        }
    }
}
