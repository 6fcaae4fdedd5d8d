//! The classic generator's scenes: two textures (`weave`, `grain`) and two objects on a table
//! (`cap`, `nut`). Each draws into a [`Scene`] from its own random draws.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::noise::{fbm, smoothstep, uni};
use super::scene::Scene;

pub(super) fn weave(sc: &mut Scene, rng: &mut ChaCha8Rng) {
    let s = sc.s as f32;
    let threads = uni(rng, 14.0, 18.0);
    let (px, py) = (uni(rng, 0.0, 2.0), uni(rng, 0.0, 2.0));
    let ang = uni(rng, -0.05, 0.05);
    let (ca, sa) = (ang.cos(), ang.sin());
    let base =
        [0.70 + uni(rng, -0.03, 0.03), 0.60 + uni(rng, -0.03, 0.03), 0.44 + uni(rng, -0.03, 0.03)];
    let fib: u32 = rng.random();
    for y in 0..sc.s {
        for x in 0..sc.s {
            let (u, v) = ((x as f32 + 0.5) / s - 0.5, (y as f32 + 0.5) / s - 0.5);
            let a = (ca * u - sa * v) * threads + px;
            let b = (sa * u + ca * v) * threads + py;
            let (i, j) = (a.floor() as i64, b.floor() as i64);
            let (fa, fb) = (a - a.floor(), b - b.floor());
            let pi = std::f32::consts::PI;
            let weft_top = (i + j).rem_euclid(2) == 0;
            let (prof, along, tint) = if weft_top {
                ((pi * fb).sin(), (pi * fa).sin(), [1.0, 0.97, 0.93])
            } else {
                ((pi * fa).sin(), (pi * fb).sin(), [0.94, 0.96, 1.0])
            };
            let fibre = fbm(a * 6.0, b * 6.0, fib, 2) - 0.5;
            let val = 0.45 + 0.5 * prof.powf(0.7) * (0.82 + 0.18 * along) + 0.08 * fibre;
            sc.fg[y * sc.s + x] =
                [base[0] * val * tint[0], base[1] * val * tint[1], base[2] * val * tint[2]];
        }
    }
}

pub(super) fn grain(sc: &mut Scene, rng: &mut ChaCha8Rng) {
    let s = sc.s as f32;
    let rings = uni(rng, 5.0, 8.0);
    let turb = uni(rng, 0.9, 1.4);
    let off = uni(rng, 0.0, 1.0);
    let seed: u32 = rng.random();
    let dark = [0.42 + uni(rng, -0.03, 0.03), 0.27, 0.15];
    let light = [0.78, 0.58 + uni(rng, -0.03, 0.03), 0.36];
    for y in 0..sc.s {
        for x in 0..sc.s {
            let (u, v) = ((x as f32 + 0.5) / s, (y as f32 + 0.5) / s);
            let t = u * rings + turb * fbm(u * 3.0, v * 0.8, seed, 4) + off;
            let ring = 0.5 + 0.5 * (std::f32::consts::TAU * t).sin();
            let streak = fbm(u * 48.0, v * 3.0, seed ^ 0x55, 3);
            let k = (0.75 * ring.powf(1.5) + 0.25 * streak).clamp(0.0, 1.0);
            sc.fg[y * sc.s + x] = [
                dark[0] + (light[0] - dark[0]) * k,
                dark[1] + (light[1] - dark[1]) * k,
                dark[2] + (light[2] - dark[2]) * k,
            ];
        }
    }
}

fn table(sc: &mut Scene, rng: &mut ChaCha8Rng, base: [f32; 3]) {
    let s = sc.s as f32;
    let seed: u32 = rng.random();
    for y in 0..sc.s {
        for x in 0..sc.s {
            let (u, v) = ((x as f32 + 0.5) / s, (y as f32 + 0.5) / s);
            let n = 0.9 + 0.2 * fbm(u * 5.0, v * 5.0, seed, 3);
            sc.bg[y * sc.s + x] = [base[0] * n, base[1] * n, base[2] * n];
        }
    }
}

pub(super) fn cap(sc: &mut Scene, rng: &mut ChaCha8Rng) {
    let s = sc.s as f32;
    table(sc, rng, [0.20, 0.22, 0.25]);
    let (cx, cy) = ((0.5 + uni(rng, -0.05, 0.05)) * s, (0.5 + uni(rng, -0.05, 0.05)) * s);
    let r = uni(rng, 0.29, 0.32) * s;
    let col = [0.78 + uni(rng, -0.04, 0.04), 0.16 + uni(rng, -0.03, 0.03), 0.12];
    let knurl_phase = uni(rng, 0.0, std::f32::consts::TAU);
    let (lx, ly) = (uni(rng, -1.0, 1.0), uni(rng, -1.0, 1.0));
    let hl = (cx + 0.35 * r * lx.clamp(-0.6, 0.6), cy + 0.35 * r * ly.clamp(-0.6, 0.6));
    sc.centre = (cx, cy);
    sc.radius = r;
    for y in 0..sc.s {
        for x in 0..sc.s {
            let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
            let d = (dx * dx + dy * dy).sqrt();
            let i = y * sc.s + x;
            sc.alpha[i] = 1.0 - smoothstep(r - 0.75, r + 0.75, d);
            let rn = d / r;
            let ang = dy.atan2(dx);
            let mut shade = if rn < 0.8 {
                let inner_ring = 1.0 - 0.25 * (-((rn - 0.55) * 40.0).powi(2)).exp();
                let spec = (-(((x as f32 - hl.0).powi(2) + (y as f32 - hl.1).powi(2))
                    / (0.08 * r * r)))
                    .exp();
                (0.92 + 0.08 * (dx * lx + dy * ly) / r) * inner_ring + 0.35 * spec
            } else {
                let knurl = 0.5 + 0.5 * (ang * 48.0 + knurl_phase).cos();
                let edge = 1.0 - 0.5 * smoothstep(0.9, 1.0, rn);
                (0.70 + 0.25 * knurl) * edge
            };
            shade = shade.clamp(0.0, 1.5);
            sc.fg[i] =
                [col[0] * shade, col[1] * shade + 0.05 * (shade - 1.0).max(0.0), col[2] * shade];
        }
    }
}

/// Distance from the centre to the hexagon edge along angle `ang` for circumradius `r`, rotation `rot`.
pub(super) fn hex_radius(ang: f32, r: f32, rot: f32) -> f32 {
    let sector = std::f32::consts::PI / 3.0;
    let a = (ang - rot).rem_euclid(sector) - sector / 2.0;
    r * (sector / 2.0).cos() / a.cos()
}

pub(super) fn nut(sc: &mut Scene, rng: &mut ChaCha8Rng) {
    let s = sc.s as f32;
    table(sc, rng, [0.74, 0.74, 0.72]);
    let (cx, cy) = ((0.5 + uni(rng, -0.05, 0.05)) * s, (0.5 + uni(rng, -0.05, 0.05)) * s);
    let r = uni(rng, 0.31, 0.34) * s;
    let rot = uni(rng, 0.0, std::f32::consts::PI / 3.0);
    let hole_r = 0.42 * r;
    let metal = uni(rng, 0.40, 0.48);
    let brush: u32 = rng.random();
    let lang = uni(rng, 0.0, std::f32::consts::TAU);
    sc.centre = (cx, cy);
    sc.radius = r;
    sc.rot = rot;
    for y in 0..sc.s {
        for x in 0..sc.s {
            let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
            let d = (dx * dx + dy * dy).sqrt();
            let ang = dy.atan2(dx);
            let edge = hex_radius(ang, r, rot);
            let i = y * sc.s + x;
            let outer = 1.0 - smoothstep(edge - 0.75, edge + 0.75, d);
            let inner = smoothstep(hole_r - 0.75, hole_r + 0.75, d);
            sc.alpha[i] = outer * inner;
            // Brushed metal, a bevel lit from `lang` along the outer edges, a chamfer round the hole.
            let brushed = fbm(d / r * 30.0, ang * 2.0, brush, 3) - 0.5;
            let bevel = smoothstep(edge - 0.1 * r, edge, d);
            let sector = std::f32::consts::PI / 3.0;
            let face = ((ang - rot).rem_euclid(std::f32::consts::TAU) / sector).floor() * sector
                + rot
                + sector / 2.0;
            let lit = (face - lang).cos();
            let chamfer = 1.0 - smoothstep(hole_r, hole_r + 0.12 * r, d);
            let v = metal + 0.12 * brushed + bevel * 0.25 * lit + chamfer * 0.22;
            sc.fg[i] = [v, v, v];
        }
    }
}
