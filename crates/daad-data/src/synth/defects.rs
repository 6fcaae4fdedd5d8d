//! The classic generator's defects: scratch, hole, stain and missing piece. Each sets `mask`
//! exactly where it changed the scene.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::noise::{fbm, uni};
use super::scene::{Kind, Scene};

/// Draws defect number `d` (an index into [`super::DEFECTS`]) into `sc`, marking `mask`.
pub(super) fn apply(d: usize, sc: &mut Scene, kind: Kind, mask: &mut [bool], rng: &mut ChaCha8Rng) {
    match d {
        0 => scratch(sc, kind, mask, rng),
        1 => hole(sc, kind, mask, rng),
        2 => stain(sc, kind, mask, rng),
        _ => missing(sc, kind, mask, rng),
    }
}

/// A random point well inside the object (objects) or anywhere away from the border (textures).
fn interior_point(sc: &Scene, kind: Kind, rng: &mut ChaCha8Rng) -> (f32, f32) {
    let s = sc.s as f32;
    match kind {
        Kind::Cap => {
            let (a, rr) =
                (uni(rng, 0.0, std::f32::consts::TAU), sc.radius * uni(rng, 0.0, 0.65).sqrt());
            (sc.centre.0 + rr * a.cos(), sc.centre.1 + rr * a.sin())
        }
        Kind::Nut => {
            let a = uni(rng, 0.0, std::f32::consts::TAU);
            let rr = sc.radius * uni(rng, 0.58, 0.74);
            (sc.centre.0 + rr * a.cos(), sc.centre.1 + rr * a.sin())
        }
        _ => (uni(rng, 0.15, 0.85) * s, uni(rng, 0.15, 0.85) * s),
    }
}

pub(super) fn on_object(sc: &Scene, kind: Kind, i: usize) -> bool {
    !kind.is_object() || sc.alpha[i] > 0.5
}

fn scratch(sc: &mut Scene, kind: Kind, mask: &mut [bool], rng: &mut ChaCha8Rng) {
    let s = sc.s as f32;
    let p0 = interior_point(sc, kind, rng);
    let ang = uni(rng, 0.0, std::f32::consts::TAU);
    let len = uni(rng, 0.15, 0.32) * s;
    let p2 = (p0.0 + len * ang.cos(), p0.1 + len * ang.sin());
    let bend = uni(rng, -0.25, 0.25) * len;
    let p1 = ((p0.0 + p2.0) / 2.0 - bend * ang.sin(), (p0.1 + p2.1) / 2.0 + bend * ang.cos());
    let hw = (0.005 * s).max(0.7);
    let pts: Vec<(f32, f32)> = (0..=48)
        .map(|k| {
            let t = k as f32 / 48.0;
            let a = (1.0 - t) * (1.0 - t);
            let b = 2.0 * t * (1.0 - t);
            let c = t * t;
            (a * p0.0 + b * p1.0 + c * p2.0, a * p0.1 + b * p1.1 + c * p2.1)
        })
        .collect();
    let (bright, amount) = match kind {
        Kind::Weave => (false, uni(rng, 0.45, 0.6)),
        Kind::Grain => (true, uni(rng, 0.35, 0.5)),
        _ => (true, uni(rng, 0.45, 0.65)),
    };
    let (minx, maxx) =
        pts.iter().fold((f32::MAX, f32::MIN), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
    let (miny, maxy) =
        pts.iter().fold((f32::MAX, f32::MIN), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
    let x0 = ((minx - hw - 1.0).floor().max(0.0)) as usize;
    let x1 = ((maxx + hw + 1.0).ceil().min(s - 1.0)).max(0.0) as usize;
    let y0 = ((miny - hw - 1.0).floor().max(0.0)) as usize;
    let y1 = ((maxy + hw + 1.0).ceil().min(s - 1.0)).max(0.0) as usize;
    for y in y0..=y1 {
        for x in x0..=x1 {
            let p = (x as f32 + 0.5, y as f32 + 0.5);
            let d = pts.windows(2).map(|w| seg_dist(p, w[0], w[1])).fold(f32::MAX, f32::min);
            let i = y * sc.s + x;
            if d <= hw && on_object(sc, kind, i) {
                mask[i] = true;
                for c in sc.fg[i].iter_mut() {
                    *c = if bright { *c + (0.95 - *c) * amount } else { *c * (1.0 - amount) };
                }
            }
        }
    }
}

fn seg_dist(p: (f32, f32), a: (f32, f32), b: (f32, f32)) -> f32 {
    let (abx, aby) = (b.0 - a.0, b.1 - a.1);
    let l2 = abx * abx + aby * aby;
    let t =
        if l2 > 0.0 { (((p.0 - a.0) * abx + (p.1 - a.1) * aby) / l2).clamp(0.0, 1.0) } else { 0.0 };
    let (qx, qy) = (a.0 + t * abx - p.0, a.1 + t * aby - p.1);
    (qx * qx + qy * qy).sqrt()
}

/// Pixels of an irregular blob: radius `r` modulated by noise over the angle.
pub(super) fn blob(sc: &Scene, c: (f32, f32), r: f32, rough: f32, seed: u32) -> Vec<(usize, f32)> {
    let s = sc.s as f32;
    let mut out = Vec::new();
    let rmax = r * (1.0 + rough);
    let x0 = (c.0 - rmax).floor().max(0.0) as usize;
    let x1 = (c.0 + rmax).ceil().min(s - 1.0).max(0.0) as usize;
    let y0 = (c.1 - rmax).floor().max(0.0) as usize;
    let y1 = (c.1 + rmax).ceil().min(s - 1.0).max(0.0) as usize;
    for y in y0..=y1 {
        for x in x0..=x1 {
            let (dx, dy) = (x as f32 + 0.5 - c.0, y as f32 + 0.5 - c.1);
            let ang = dy.atan2(dx);
            // Noise on a circle so the outline closes smoothly.
            let n = fbm(2.0 + 1.5 * ang.cos(), 2.0 + 1.5 * ang.sin(), seed, 3) - 0.5;
            let edge = r * (1.0 + 2.0 * rough * n);
            let d = (dx * dx + dy * dy).sqrt();
            if d <= edge {
                out.push((y * sc.s + x, d / edge));
            }
        }
    }
    out
}

fn hole(sc: &mut Scene, kind: Kind, mask: &mut [bool], rng: &mut ChaCha8Rng) {
    let s = sc.s as f32;
    let c = interior_point(sc, kind, rng);
    let r = uni(rng, 0.025, 0.05) * s;
    let r = r.max(1.2);
    let seed: u32 = rng.random();
    let rim = if kind.is_object() { 1.3 } else { 1.0 };
    for (i, t) in blob(sc, c, r * rim, 0.15, seed) {
        if !on_object(sc, kind, i) {
            continue;
        }
        mask[i] = true;
        let t_in = t * rim;
        if kind.is_object() && t_in < 1.0 {
            // A through-hole: the table shows, darkened by the hole's shadow.
            sc.alpha[i] = 0.0;
            for c in sc.bg[i].iter_mut() {
                *c *= 0.35 + 0.35 * t_in;
            }
        } else if kind.is_object() {
            for c in sc.fg[i].iter_mut() {
                *c *= 0.55;
            }
        } else {
            let v = 0.05 + 0.08 * t;
            sc.fg[i] = [v, v * 0.9, v * 0.8];
        }
    }
}

fn stain(sc: &mut Scene, kind: Kind, mask: &mut [bool], rng: &mut ChaCha8Rng) {
    let s = sc.s as f32;
    let c = interior_point(sc, kind, rng);
    let r = uni(rng, 0.04, 0.08) * s;
    let seed: u32 = rng.random();
    let strength = uni(rng, 0.25, 0.45);
    let tint = match kind {
        Kind::Nut => [0.55, 0.50, 0.45],
        Kind::Cap => [0.45, 0.75, 0.55],
        _ => [0.55, 0.48, 0.35],
    };
    for (i, t) in blob(sc, c, r, 0.3, seed) {
        if !on_object(sc, kind, i) {
            continue;
        }
        mask[i] = true;
        let k = strength * (1.0 - 0.5 * t * t);
        for (ch, v) in sc.fg[i].iter_mut().enumerate() {
            *v *= 1.0 - k * (1.0 - tint[ch]);
        }
    }
}

fn missing(sc: &mut Scene, kind: Kind, mask: &mut [bool], rng: &mut ChaCha8Rng) {
    let s = sc.s as f32;
    let seed: u32 = rng.random();
    match kind {
        Kind::Cap | Kind::Nut => {
            // A bite out of the outline: a blob centred on the edge (at a corner for the nut).
            let a = if kind == Kind::Nut {
                sc.rot + (rng.random_range(0..6) as f32) * std::f32::consts::PI / 3.0
            } else {
                uni(rng, 0.0, std::f32::consts::TAU)
            };
            let rr = if kind == Kind::Nut { sc.radius } else { sc.radius * 1.02 };
            let c = (sc.centre.0 + rr * a.cos(), sc.centre.1 + rr * a.sin());
            let r = uni(rng, 0.07, 0.11) * s;
            for (i, _) in blob(sc, c, r, 0.2, seed) {
                if sc.alpha[i] > 0.5 {
                    mask[i] = true;
                    sc.alpha[i] = 0.0;
                }
            }
        }
        _ => {
            // Material worn through: the backing shows in an irregular patch.
            let c = interior_point(sc, kind, rng);
            let r = uni(rng, 0.05, 0.09) * s;
            let backing = if kind == Kind::Weave { [0.22, 0.19, 0.16] } else { [0.86, 0.72, 0.52] };
            for (i, t) in blob(sc, c, r, 0.25, seed) {
                mask[i] = true;
                let y = (i / sc.s) as f32;
                let x = (i % sc.s) as f32;
                let n = 0.85 + 0.3 * fbm(x / s * 40.0, y / s * 40.0, seed ^ 0xabc, 2) + 0.1 * t;
                sc.fg[i] = [backing[0] * n, backing[1] * n, backing[2] * n];
            }
        }
    }
}
