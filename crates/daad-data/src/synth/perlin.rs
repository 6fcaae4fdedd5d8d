//! The Perlin generator: scenes built from gradient noise (a veined `marble` texture, a `pebble`
//! on sand) and defects shaped by thresholded Perlin noise, in the spirit of DRAEM's anomaly
//! synthesis (Zavrtanik et al., ICCV 2021): a foreign texture blended in, a tint, a smoothed
//! patch, ridged cracks. Its statistics differ from the classic generator's on purpose
//! (smooth multi-octave noise instead of periodic patterns and geometric defects), so that a
//! setting chosen on one kind of data can be checked on the other.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::noise::{perlin, perlin_fbm, smoothstep, uni};
use super::scene::{Kind, Scene};

const TAU: f32 = std::f32::consts::TAU;

/// Turbulence: the sum of |noise| over octaves, in about [0, 0.7].
fn turbulence(x: f32, y: f32, seed: u32, octaves: u32) -> f32 {
    let (mut sum, mut amp, mut freq, mut norm) = (0.0, 1.0, 1.0, 0.0);
    for o in 0..octaves {
        sum += amp * perlin(x * freq, y * freq, seed.wrapping_add(o * 7_777)).abs();
        norm += amp;
        amp *= 0.5;
        freq *= 2.0;
    }
    sum / norm
}

fn lerp3(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t]
}

/// Veined stone: a sine of a direction, warped by turbulence, with fine mottling.
pub(super) fn marble(sc: &mut Scene, rng: &mut ChaCha8Rng) {
    let s = sc.s as f32;
    let freq = uni(rng, 2.5, 4.0);
    let ang = uni(rng, 0.0, TAU);
    let (ca, sa) = (ang.cos(), ang.sin());
    let warp = uni(rng, 4.0, 6.0);
    let phase = uni(rng, 0.0, TAU);
    let seed: u32 = rng.random();
    let mottle: u32 = rng.random();
    let base = [0.80 + uni(rng, -0.03, 0.03), 0.78, 0.74 + uni(rng, -0.03, 0.03)];
    let vein = [0.36, 0.38 + uni(rng, -0.03, 0.03), 0.42];
    for y in 0..sc.s {
        for x in 0..sc.s {
            let (u, v) = ((x as f32 + 0.5) / s, (y as f32 + 0.5) / s);
            let t = turbulence(u * 4.0, v * 4.0, seed, 4);
            let w = (TAU * freq * (ca * u + sa * v) + warp * t + phase).sin();
            // Thin dark veins where the warped sine crosses zero.
            let k = (1.0 - w.abs()).powi(6);
            let m = 0.06 * perlin_fbm(u * 24.0, v * 24.0, mottle, 2);
            let c = lerp3(base, vein, k);
            sc.fg[y * sc.s + x] = [c[0] + m, c[1] + m, c[2] + m];
        }
    }
}

/// An irregular stone on fine sand: a noise-modulated outline, mottled surface, soft shading.
pub(super) fn pebble(sc: &mut Scene, rng: &mut ChaCha8Rng) {
    let s = sc.s as f32;
    let sand: u32 = rng.random();
    let sand_col = [0.78 + uni(rng, -0.03, 0.03), 0.70, 0.55];
    let (cx, cy) = ((0.5 + uni(rng, -0.05, 0.05)) * s, (0.5 + uni(rng, -0.05, 0.05)) * s);
    let r = uni(rng, 0.28, 0.32) * s;
    let outline: u32 = rng.random();
    let surface: u32 = rng.random();
    let stone = [0.42 + uni(rng, -0.04, 0.04), 0.45, 0.44 + uni(rng, -0.04, 0.04)];
    let lang = uni(rng, 0.0, TAU);
    let (lx, ly) = (lang.cos(), lang.sin());
    sc.centre = (cx, cy);
    sc.radius = r;
    for y in 0..sc.s {
        for x in 0..sc.s {
            let (u, v) = ((x as f32 + 0.5) / s, (y as f32 + 0.5) / s);
            let i = y * sc.s + x;
            let g = 0.9 + 0.25 * perlin_fbm(u * 40.0, v * 40.0, sand, 2);
            sc.bg[i] = [sand_col[0] * g, sand_col[1] * g, sand_col[2] * g];
            let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
            let d = (dx * dx + dy * dy).sqrt();
            let a = dy.atan2(dx);
            // Noise on a circle so the outline closes smoothly.
            let edge =
                r * (1.0 + 0.25 * perlin_fbm(1.5 * a.cos() + 3.0, 1.5 * a.sin() + 3.0, outline, 3));
            sc.alpha[i] = 1.0 - smoothstep(edge - 0.75, edge + 0.75, d);
            let rn = (d / edge).min(1.0);
            let nz = (1.0 - rn * rn).max(0.0).sqrt();
            let lit = 0.78 + 0.15 * ((dx * lx + dy * ly) / edge.max(1.0)) * (1.0 - nz) + 0.15 * nz;
            let mot = 1.0 + 0.14 * perlin_fbm(u * 10.0, v * 10.0, surface, 4);
            sc.fg[i] = [stone[0] * lit * mot, stone[1] * lit * mot, stone[2] * lit * mot];
        }
    }
}

/// The defect region: a disc around a random point (on the object for `pebble`) in which a
/// thresholded Perlin noise decides membership, as in DRAEM's masks. Returns (pixel, weight in
/// (0, 1]) pairs; never empty.
fn region(sc: &Scene, kind: Kind, rng: &mut ChaCha8Rng, size: (f32, f32)) -> Vec<(usize, f32)> {
    let s = sc.s as f32;
    let c = if kind.is_object() {
        let (a, rr) = (uni(rng, 0.0, TAU), sc.radius * uni(rng, 0.0, 0.55).sqrt());
        (sc.centre.0 + rr * a.cos(), sc.centre.1 + rr * a.sin())
    } else {
        (uni(rng, 0.15, 0.85) * s, uni(rng, 0.15, 0.85) * s)
    };
    let rad = (uni(rng, size.0, size.1) * s).max(1.5);
    let scale = uni(rng, 1.5, 3.0) / rad;
    let seed: u32 = rng.random();
    let x0 = (c.0 - rad).floor().max(0.0) as usize;
    let x1 = ((c.0 + rad).ceil().min(s - 1.0)).max(0.0) as usize;
    let y0 = (c.1 - rad).floor().max(0.0) as usize;
    let y1 = ((c.1 + rad).ceil().min(s - 1.0)).max(0.0) as usize;
    let mut out = Vec::new();
    for y in y0..=y1 {
        for x in x0..=x1 {
            let (dx, dy) = (x as f32 + 0.5 - c.0, y as f32 + 0.5 - c.1);
            let fall = 1.0 - (dx * dx + dy * dy) / (rad * rad);
            if fall <= 0.0 {
                continue;
            }
            let i = y * sc.s + x;
            if kind.is_object() && sc.alpha[i] <= 0.5 {
                continue;
            }
            let n = perlin_fbm(x as f32 * scale, y as f32 * scale, seed, 3);
            let w = n + 0.45 * fall - 0.2;
            if w > 0.0 {
                out.push((i, (w * 4.0).min(1.0)));
            }
        }
    }
    if out.is_empty() {
        let (x, y) = ((c.0 as usize).min(sc.s - 1), (c.1 as usize).min(sc.s - 1));
        out.push((y * sc.s + x, 1.0));
    }
    out
}

/// Draws Perlin defect number `d` (an index into [`super::PERLIN_DEFECTS`]), marking `mask`.
pub(super) fn defect(
    d: usize,
    sc: &mut Scene,
    kind: Kind,
    mask: &mut [bool],
    rng: &mut ChaCha8Rng,
) {
    match d {
        0 => blend(sc, kind, mask, rng),
        1 => tint(sc, kind, mask, rng),
        2 => smooth_patch(sc, kind, mask, rng),
        _ => crack(sc, kind, mask, rng),
    }
}

/// A foreign texture (noise at another scale and colour) blended in with opacity beta.
fn blend(sc: &mut Scene, kind: Kind, mask: &mut [bool], rng: &mut ChaCha8Rng) {
    let px = region(sc, kind, rng, (0.06, 0.11));
    let beta = uni(rng, 0.35, 0.65);
    let seed: u32 = rng.random();
    let freq = uni(rng, 8.0, 20.0) / sc.s as f32;
    let col_a = [uni(rng, 0.2, 0.8), uni(rng, 0.2, 0.8), uni(rng, 0.2, 0.8)];
    let col_b = [uni(rng, 0.2, 0.8), uni(rng, 0.2, 0.8), uni(rng, 0.2, 0.8)];
    for (i, w) in px {
        let (x, y) = ((i % sc.s) as f32, (i / sc.s) as f32);
        let t = (0.5 + perlin_fbm(x * freq, y * freq, seed, 3)).clamp(0.0, 1.0);
        let foreign = lerp3(col_a, col_b, t);
        let b = beta * (0.5 + 0.5 * w);
        sc.fg[i] = lerp3(sc.fg[i], foreign, b);
        mask[i] = true;
    }
}

/// A colour shift: each channel scaled by its own factor.
fn tint(sc: &mut Scene, kind: Kind, mask: &mut [bool], rng: &mut ChaCha8Rng) {
    let px = region(sc, kind, rng, (0.06, 0.11));
    let mut f = [0f32; 3];
    for v in f.iter_mut() {
        let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
        *v = sign * uni(rng, 0.15, 0.30);
    }
    for (i, w) in px {
        for (c, v) in sc.fg[i].iter_mut().enumerate() {
            *v *= 1.0 + f[c] * (0.4 + 0.6 * w);
        }
        mask[i] = true;
    }
}

/// Detail removed: the patch is replaced by a box blur of itself (a smudge, a polished spot).
fn smooth_patch(sc: &mut Scene, kind: Kind, mask: &mut [bool], rng: &mut ChaCha8Rng) {
    let px = region(sc, kind, rng, (0.06, 0.11));
    let k = (sc.s / 32).max(1) as isize;
    let s = sc.s as isize;
    let src = sc.fg.clone();
    for (i, _) in px {
        let (x, y) = ((i as isize) % s, (i as isize) / s);
        let mut acc = [0f32; 3];
        let mut n = 0f32;
        for yy in (y - k).max(0)..=(y + k).min(s - 1) {
            for xx in (x - k).max(0)..=(x + k).min(s - 1) {
                let p = src[(yy * s + xx) as usize];
                for c in 0..3 {
                    acc[c] += p[c];
                }
                n += 1.0;
            }
        }
        // Slightly darker too, so the patch differs even where the texture is already smooth.
        sc.fg[i] = [acc[0] / n * 0.92, acc[1] / n * 0.92, acc[2] / n * 0.92];
        mask[i] = true;
    }
}

/// Cracks: thin dark lines where ridged noise is near zero, inside a disc.
fn crack(sc: &mut Scene, kind: Kind, mask: &mut [bool], rng: &mut ChaCha8Rng) {
    let px = region(sc, kind, rng, (0.10, 0.16));
    let seed: u32 = rng.random();
    let freq = uni(rng, 3.0, 5.0) / sc.s as f32 * 4.0;
    // At least ~0.6 px half-width at any image size, so small images get lines, not dots.
    let width = uni(rng, 0.035, 0.06).max(0.6 * freq);
    let dark = uni(rng, 0.45, 0.65);
    let mut any = false;
    let first = px[0].0;
    for &(i, _) in &px {
        let (x, y) = ((i % sc.s) as f32, (i / sc.s) as f32);
        if perlin(x * freq, y * freq, seed).abs() < width {
            for v in sc.fg[i].iter_mut() {
                *v *= dark;
            }
            mask[i] = true;
            any = true;
        }
    }
    if !any {
        // Too small to cross a ridge: one dark pixel, so every defect image has a defect.
        for v in sc.fg[first].iter_mut() {
            *v *= dark;
        }
        mask[first] = true;
    }
}
