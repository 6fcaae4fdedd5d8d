//! [`generate`]: renders every image of every category in parallel and writes the MVTec layout,
//! one category at a time through a temporary folder renamed into place.

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::config::{SynthConfig, MARKER};
use super::noise::{fnv, mix};
use super::scene::{render, Kind};
use crate::error::{Error, Result};

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
    let kinds = cfg.check()?;
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
    let defects = kind.defects();
    let mut per_defect = [0usize; 4];
    for i in 0..cfg.n_test_defect {
        let d = i % defects.len();
        jobs.push(Job {
            split: 2,
            index: i,
            dir: tmp.join("test").join(defects[d]),
            defect: Some(d),
            file_index: per_defect[d],
        });
        per_defect[d] += 1;
    }
    let mut dirs: Vec<PathBuf> = jobs.iter().map(|j| j.dir.clone()).collect();
    for (d, n) in per_defect.iter().enumerate() {
        if *n > 0 {
            dirs.push(tmp.join("ground_truth").join(defects[d]));
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
                .join(defects[d])
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
        "family": format!("{:?}", kind.generator()).to_lowercase(),
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
