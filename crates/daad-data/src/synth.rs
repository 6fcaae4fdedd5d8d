//! A deterministic synthetic defect dataset in MVTec AD layout: the project's test fixture and demo data.
//!
//! Four categories: two textures (`weave`, a woven fabric; `grain`, a wood grain) and two objects
//! (`cap`, a round knurled cap on a dark table; `nut`, a grey hexagon nut on a light table). Normal
//! images vary in pattern phase, position, rotation, lighting and sensor noise; test defects are
//! `scratch`, `hole`, `stain` and `missing` (a missing piece), each with an exact mask (the set of
//! pixels the defect changed). Everything derives from the seed: the same config writes the same
//! bytes, and a category's images do not depend on which other categories are generated.

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::error::{Error, Result};

/// The categories the generator knows.
pub const SYNTH_CATEGORIES: &[&str] = &["weave", "grain", "cap", "nut"];

/// The defect kinds, which are also the test/ground-truth folder names.
pub const DEFECTS: [&str; 4] = ["scratch", "hole", "stain", "missing"];

/// Name of the marker file that identifies a folder written by this generator.
pub const MARKER: &str = ".daad-synth.json";

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SynthConfig {
    /// Categories to write (from [`SYNTH_CATEGORIES`]).
    pub categories: Vec<String>,
    /// Side length of the square images in pixels.
    pub size: usize,
    /// Seed of everything random.
    pub seed: u64,
    /// Images in `train/good`.
    pub n_train: usize,
    /// Images in `test/good`.
    pub n_test_good: usize,
    /// Defect images in `test/<defect>`, spread round-robin over the four defect kinds.
    pub n_test_defect: usize,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            categories: SYNTH_CATEGORIES.iter().map(|s| s.to_string()).collect(),
            size: 256,
            seed: 0,
            n_train: 60,
            n_test_good: 12,
            n_test_defect: 24,
        }
    }
}

impl SynthConfig {
    /// Number of image files (masks excluded) this config writes.
    pub fn total_images(&self) -> usize {
        self.categories.len() * (self.n_train + self.n_test_good + self.n_test_defect)
    }
}

/// Writes the dataset described by `cfg` under `out` (`out/<category>/...`).
///
/// An existing category folder is replaced only if this generator wrote it (it holds [`MARKER`]);
/// otherwise this is an error, so user data is never overwritten.
pub fn generate(out: &Path, cfg: &SynthConfig) -> Result<()> {
    generate_with_progress(out, cfg, &|| {})
}

/// Like [`generate`], calling `tick` once per image written (from worker threads).
pub fn generate_with_progress(
    out: &Path,
    cfg: &SynthConfig,
    tick: &(dyn Fn() + Sync),
) -> Result<()> {
    if cfg.size < 8 {
        return Err(Error::InvalidArgument(format!(
            "synth size {} is too small; use at least 8 (e.g. 64 or 256)",
            cfg.size
        )));
    }
    if cfg.size > 4096 {
        return Err(Error::InvalidArgument(format!(
            "synth size {} is too large; use at most 4096",
            cfg.size
        )));
    }
    if cfg.n_train == 0 || cfg.n_test_good + cfg.n_test_defect == 0 {
        return Err(Error::InvalidArgument(
            "synth needs at least one training image and one test image".into(),
        ));
    }
    if cfg.categories.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "no categories given; choose from {}",
            SYNTH_CATEGORIES.join(", ")
        )));
    }
    let mut kinds = Vec::new();
    for c in &cfg.categories {
        let kind = Kind::from_name(c).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "unknown synth category `{c}`; choose from {}",
                SYNTH_CATEGORIES.join(", ")
            ))
        })?;
        kinds.push((c.clone(), kind));
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io("creating folder", out, e))?;
    for (name, kind) in kinds {
        write_category(out, &name, kind, cfg, tick)?;
    }
    Ok(())
}

fn write_category(
    out: &Path,
    name: &str,
    kind: Kind,
    cfg: &SynthConfig,
    tick: &(dyn Fn() + Sync),
) -> Result<()> {
    let final_dir = out.join(name);
    if final_dir.exists() {
        if !final_dir.join(MARKER).is_file() {
            return Err(Error::InvalidArgument(format!(
                "{} exists and was not written by `daad synth`; choose another --out or delete it",
                final_dir.display()
            )));
        }
        std::fs::remove_dir_all(&final_dir)
            .map_err(|e| Error::io("removing old synth folder", &final_dir, e))?;
    }
    // Build in a temporary sibling and rename, so an interrupted run never leaves half a category.
    let tmp = out.join(format!(".{name}.synth-tmp"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| Error::io("removing stale folder", &tmp, e))?;
    }
    let mut jobs: Vec<Job> = Vec::new();
    for i in 0..cfg.n_train {
        jobs.push(Job {
            split: 0,
            index: i,
            dir: tmp.join("train/good"),
            defect: None,
            file_index: i,
        });
    }
    for i in 0..cfg.n_test_good {
        jobs.push(Job {
            split: 1,
            index: i,
            dir: tmp.join("test/good"),
            defect: None,
            file_index: i,
        });
    }
    let mut per_defect = [0usize; 4];
    for i in 0..cfg.n_test_defect {
        let d = i % DEFECTS.len();
        jobs.push(Job {
            split: 2,
            index: i,
            dir: tmp.join("test").join(DEFECTS[d]),
            defect: Some(d),
            file_index: per_defect[d],
        });
        per_defect[d] += 1;
    }
    let mut dirs: Vec<PathBuf> = jobs.iter().map(|j| j.dir.clone()).collect();
    for (d, n) in per_defect.iter().enumerate() {
        if *n > 0 {
            dirs.push(tmp.join("ground_truth").join(DEFECTS[d]));
        }
    }
    dirs.dedup();
    for d in &dirs {
        std::fs::create_dir_all(d).map_err(|e| Error::io("creating folder", d, e))?;
    }
    let cat_seed = mix(cfg.seed ^ fnv(name));
    jobs.par_iter().try_for_each(|job| {
        let mut rng = ChaCha8Rng::seed_from_u64(mix(
            cat_seed ^ mix((job.split as u64) << 32 | job.index as u64)
        ));
        let (img, mask) = render(kind, cfg.size, job.defect, &mut rng);
        let file = job.dir.join(format!("{:03}.png", job.file_index));
        save(&file, &img, cfg.size, kind.grey())?;
        if let (Some(d), Some(mask)) = (job.defect, mask) {
            let mfile = tmp
                .join("ground_truth")
                .join(DEFECTS[d])
                .join(format!("{:03}_mask.png", job.file_index));
            let px: Vec<u8> = mask.iter().map(|&m| if m { 255 } else { 0 }).collect();
            let s = cfg.size as u32;
            let buf =
                image::GrayImage::from_raw(s, s, px).expect("mask buffer has size*size pixels");
            buf.save(&mfile).map_err(|source| Error::Encode { path: mfile.clone(), source })?;
        }
        tick();
        Ok::<(), Error>(())
    })?;
    let marker = tmp.join(MARKER);
    let json = serde_json::to_string_pretty(&serde_json::json!({
        "generator": "daad synth", "category": name, "size": cfg.size, "seed": cfg.seed,
        "n_train": cfg.n_train, "n_test_good": cfg.n_test_good, "n_test_defect": cfg.n_test_defect,
    }))
    .expect("json of plain values");
    std::fs::write(&marker, json).map_err(|e| Error::io("writing", &marker, e))?;
    std::fs::rename(&tmp, &final_dir)
        .map_err(|e| Error::io("renaming into place", &final_dir, e))?;
    Ok(())
}

struct Job {
    split: u8,
    index: usize,
    dir: PathBuf,
    defect: Option<usize>,
    file_index: usize,
}

fn save(path: &Path, img: &[[f32; 3]], s: usize, grey: bool) -> Result<()> {
    let q = |v: f32| (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8;
    let s32 = s as u32;
    let res = if grey {
        let px: Vec<u8> =
            img.iter().map(|p| q(0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2])).collect();
        image::GrayImage::from_raw(s32, s32, px).expect("size*size pixels").save(path)
    } else {
        let px: Vec<u8> = img.iter().flat_map(|p| [q(p[0]), q(p[1]), q(p[2])]).collect();
        image::RgbImage::from_raw(s32, s32, px).expect("size*size pixels").save(path)
    };
    res.map_err(|source| Error::Encode { path: path.to_path_buf(), source })
}

// ---------------------------------------------------------------------------------------------
// Random helpers and noise.

fn mix(mut z: u64) -> u64 {
    // splitmix64 finaliser: decorrelates nearby seeds.
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

fn uni(rng: &mut ChaCha8Rng, a: f32, b: f32) -> f32 {
    a + (b - a) * rng.random::<f32>()
}

fn gauss(rng: &mut ChaCha8Rng) -> f32 {
    let u1: f32 = rng.random::<f32>().max(1e-7);
    let u2: f32 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
}

fn hash2(ix: i32, iy: i32, seed: u32) -> f32 {
    let mut h = (ix as u32).wrapping_mul(0x8da6_b343)
        ^ (iy as u32).wrapping_mul(0xd816_3841)
        ^ seed.wrapping_mul(0xcb1a_b31f);
    h ^= h >> 13;
    h = h.wrapping_mul(0x5bd1_e995);
    h ^= h >> 15;
    (h & 0x00ff_ffff) as f32 / 16_777_216.0
}

fn smooth(t: f32) -> f32 {
    t * t * (3.0 - 2.0 * t)
}

fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    smooth(((x - e0) / (e1 - e0)).clamp(0.0, 1.0))
}

/// Value noise in [0, 1] on a unit lattice.
fn vnoise(x: f32, y: f32, seed: u32) -> f32 {
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
fn fbm(x: f32, y: f32, seed: u32, octaves: u32) -> f32 {
    let (mut sum, mut amp, mut freq, mut norm) = (0.0, 1.0, 1.0, 0.0);
    for o in 0..octaves {
        sum += amp * vnoise(x * freq, y * freq, seed.wrapping_add(o * 7919));
        norm += amp;
        amp *= 0.5;
        freq *= 2.0;
    }
    sum / norm
}

// ---------------------------------------------------------------------------------------------
// Scenes.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Weave,
    Grain,
    Cap,
    Nut,
}

impl Kind {
    fn from_name(n: &str) -> Option<Kind> {
        match n {
            "weave" => Some(Kind::Weave),
            "grain" => Some(Kind::Grain),
            "cap" => Some(Kind::Cap),
            "nut" => Some(Kind::Nut),
            _ => None,
        }
    }
    fn grey(self) -> bool {
        matches!(self, Kind::Nut)
    }
    fn is_object(self) -> bool {
        matches!(self, Kind::Cap | Kind::Nut)
    }
}

/// An image under construction: a foreground layer with coverage over a background layer.
struct Scene {
    s: usize,
    fg: Vec<[f32; 3]>,
    alpha: Vec<f32>,
    bg: Vec<[f32; 3]>,
    /// Object centre and radius in pixels (objects only).
    centre: (f32, f32),
    radius: f32,
    /// Hexagon rotation (nut only).
    rot: f32,
}

impl Scene {
    fn new(s: usize) -> Self {
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
    fn compose(&self) -> Vec<[f32; 3]> {
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

fn render(
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
        Kind::Weave => weave(&mut sc, rng),
        Kind::Grain => grain(&mut sc, rng),
        Kind::Cap => cap(&mut sc, rng),
        Kind::Nut => nut(&mut sc, rng),
    }
    let mask = defect.map(|d| {
        let mut m = vec![false; s * s];
        match d {
            0 => scratch(&mut sc, kind, &mut m, rng),
            1 => hole(&mut sc, kind, &mut m, rng),
            2 => stain(&mut sc, kind, &mut m, rng),
            _ => missing(&mut sc, kind, &mut m, rng),
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

fn weave(sc: &mut Scene, rng: &mut ChaCha8Rng) {
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

fn grain(sc: &mut Scene, rng: &mut ChaCha8Rng) {
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

fn cap(sc: &mut Scene, rng: &mut ChaCha8Rng) {
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
fn hex_radius(ang: f32, r: f32, rot: f32) -> f32 {
    let sector = std::f32::consts::PI / 3.0;
    let a = (ang - rot).rem_euclid(sector) - sector / 2.0;
    r * (sector / 2.0).cos() / a.cos()
}

fn nut(sc: &mut Scene, rng: &mut ChaCha8Rng) {
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

// ---------------------------------------------------------------------------------------------
// Defects. Each sets `mask` exactly where it changed the scene.

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

fn on_object(sc: &Scene, kind: Kind, i: usize) -> bool {
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
        Kind::Cap | Kind::Nut => (true, uni(rng, 0.45, 0.65)),
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
fn blob(sc: &Scene, c: (f32, f32), r: f32, rough: f32, seed: u32) -> Vec<(usize, f32)> {
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
        Kind::Weave | Kind::Grain => {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders the same draw with and without each defect: pixels outside the mask are identical,
    /// and (almost) every pixel inside it changed.
    #[test]
    fn masks_are_exactly_the_changed_pixels() {
        for kind in [Kind::Weave, Kind::Grain, Kind::Cap, Kind::Nut] {
            for (d, name) in DEFECTS.iter().enumerate() {
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
