//! Seeded random helpers and noise: value noise (the classic generator) and gradient (Perlin)
//! noise (the `perlin` generator), both pure functions of their inputs and a seed.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

pub(super) fn mix(mut z: u64) -> u64 {
    // splitmix64 finaliser: decorrelates nearby seeds.
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub(super) fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

pub(super) fn uni(rng: &mut ChaCha8Rng, a: f32, b: f32) -> f32 {
    a + (b - a) * rng.random::<f32>()
}

pub(super) fn gauss(rng: &mut ChaCha8Rng) -> f32 {
    let u1: f32 = rng.random::<f32>().max(1e-7);
    let u2: f32 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

pub(super) fn hash2(ix: i32, iy: i32, seed: u32) -> f32 {
    let mut h = (ix as u32).wrapping_mul(0x8da6_b343)
        ^ (iy as u32).wrapping_mul(0xd816_3841)
        ^ seed.wrapping_mul(0xcb1a_b31f);
    h ^= h >> 13;
    h = h.wrapping_mul(0x5bd1_e995);
    h ^= h >> 15;
    (h & 0x00ff_ffff) as f32 / 16_777_216.0
}

pub(super) fn smooth(t: f32) -> f32 {
    t * t * (3.0 - 2.0 * t)
}

pub(super) fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    smooth(((x - e0) / (e1 - e0)).clamp(0.0, 1.0))
}

/// Value noise in [0, 1] on a unit lattice.
pub(super) fn vnoise(x: f32, y: f32, seed: u32) -> f32 {
    let (fx, fy) = (x.floor(), y.floor());
    let (ix, iy) = (fx as i32, fy as i32);
    let (tx, ty) = (smooth(x - fx), smooth(y - fy));
    let a = hash2(ix, iy, seed);
    let b = hash2(ix + 1, iy, seed);
    let c = hash2(ix, iy + 1, seed);
    let d = hash2(ix + 1, iy + 1, seed);
    let top = a + (b - a) * tx;
    let bot = c + (d - c) * tx;
    top + (bot - top) * ty
}

/// Fractal value noise in about [0, 1].
pub(super) fn fbm(x: f32, y: f32, seed: u32, octaves: u32) -> f32 {
    let (mut sum, mut amp, mut freq, mut norm) = (0.0, 1.0, 1.0, 0.0);
    for o in 0..octaves {
        sum += amp * vnoise(x * freq, y * freq, seed.wrapping_add(o * 7919));
        norm += amp;
        amp *= 0.5;
        freq *= 2.0;
    }
    sum / norm
}

/// cos and sin of k * 22.5 degrees, k = 0..16: the gradient directions (a table, because the
/// noise is evaluated millions of times per image set and `sin_cos` dominated its cost).
const DIRS: [(f32, f32); 16] = {
    let mut t = [(0.0, 0.0); 16];
    let mut k = 0;
    while k < 16 {
        // sin(x) = cos(x - 90 degrees) = cos of direction k - 4 (mod 16).
        t[k] = (dir_cos(k), dir_cos(k + 12));
        k += 1;
    }
    t
};

/// cos(k * 22.5 degrees) from the first quadrant's values by symmetry.
const fn dir_cos(k: usize) -> f32 {
    const C: [f32; 5] = [1.0, 0.923_879_5, std::f32::consts::FRAC_1_SQRT_2, 0.382_683_4, 0.0];
    let k = k % 16;
    match k {
        0..=4 => C[k],
        5..=8 => -C[8 - k],
        9..=12 => -C[k - 8],
        _ => C[16 - k],
    }
}

/// Unit gradient of lattice point (`ix`, `iy`): one of 16 directions, chosen by hash.
fn gradient(ix: i32, iy: i32, seed: u32) -> (f32, f32) {
    DIRS[(hash2(ix, iy, seed ^ 0x9e37_79b9) * 16.0) as usize & 15]
}

fn fade(t: f32) -> f32 {
    // Perlin's quintic fade: continuous second derivative, no lattice-aligned creases.
    t * t * t * (t * (t * 6.0 - 15.0) + 10.0)
}

/// Perlin gradient noise in about [-0.7, 0.7], zero at every lattice point.
pub(super) fn perlin(x: f32, y: f32, seed: u32) -> f32 {
    let (fx, fy) = (x.floor(), y.floor());
    let (ix, iy) = (fx as i32, fy as i32);
    let (dx, dy) = (x - fx, y - fy);
    let dot = |gx: i32, gy: i32, ox: f32, oy: f32| {
        let g = gradient(gx, gy, seed);
        g.0 * ox + g.1 * oy
    };
    let n00 = dot(ix, iy, dx, dy);
    let n10 = dot(ix + 1, iy, dx - 1.0, dy);
    let n01 = dot(ix, iy + 1, dx, dy - 1.0);
    let n11 = dot(ix + 1, iy + 1, dx - 1.0, dy - 1.0);
    let (u, v) = (fade(dx), fade(dy));
    let top = n00 + (n10 - n00) * u;
    let bot = n01 + (n11 - n01) * u;
    top + (bot - top) * v
}

/// Fractal Perlin noise (`octaves` octaves, gain 0.5, lacunarity 2), in about [-0.7, 0.7].
pub(super) fn perlin_fbm(x: f32, y: f32, seed: u32, octaves: u32) -> f32 {
    let (mut sum, mut amp, mut freq, mut norm) = (0.0, 1.0, 1.0, 0.0);
    for o in 0..octaves {
        sum += amp * perlin(x * freq, y * freq, seed.wrapping_add(o * 104_729));
        norm += amp;
        amp *= 0.5;
        freq *= 2.0;
    }
    sum / norm
}

#[cfg(test)]
mod tests {
    #[test]
    fn gradient_table_is_the_sixteen_unit_directions() {
        for (k, &(c, s)) in super::DIRS.iter().enumerate() {
            let a = k as f32 * std::f32::consts::TAU / 16.0;
            assert!((c - a.cos()).abs() < 1e-6 && (s - a.sin()).abs() < 1e-6, "{k}: {c} {s}");
        }
    }
}
