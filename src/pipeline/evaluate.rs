//! [`test`]: a trained run on a category's test split. Raw R(x), L(x) and error maps from the
//! [`Detector`], scaled and fused per daad-eval's [`Scaling`] and [`ScoreKind`] (records hold the
//! true raw R and L whichever score ranks), measured with daad-eval, written as
//! `metrics.json` (DESIGN.md schema), `scores.csv`, `roc.png` and heatmap PNGs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Device;
use daad_data::{mvtec, Preprocess, Sample};
use daad_eval::{
    AnomalyMap, AnomalyMapConfig, EvalConfig, Evaluation, Evaluator, HeatmapOptions, HeatmapRange,
    ImageRecord, InferOptions, Mask, Metrics, ReportPaths, RunInfo, Scaling, ScalingMode,
    ScoreKind,
};
use daad_nn::Precision;
use daad_train::preflight::{preflight_score, Workload};
use rayon::prelude::*;
use serde::Serialize;

use super::files::{create_dir, safe_stem, OutputDir};
use crate::detector::Detector;
use crate::error::{Error, Result};

/// Default number of heatmap PNGs `daad test` writes.
pub const DEFAULT_MAX_HEATMAPS: usize = 16;

/// The `daad test` flags as values.
#[derive(Clone, Debug, PartialEq)]
pub struct TestOptions {
    /// The run folder written by `daad train`.
    pub run: PathBuf,
    /// Dataset root in MVTec AD layout.
    pub data_root: PathBuf,
    /// Category folder under the root.
    pub category: String,
    /// Output folder (metrics.json, scores.csv, roc.png, heatmaps/).
    pub out: PathBuf,
    /// Score scaling.
    pub scaling: Scaling,
    /// Score to rank by.
    pub score: ScoreKind,
    /// Reported threshold; overrides the F1-max one.
    pub threshold: Option<f64>,
    /// At most this many heatmap PNGs (0 = none).
    pub max_heatmaps: usize,
    /// Precision of the model's matrix products (bf16: CPU only).
    pub precision: Precision,
}

impl TestOptions {
    /// The paper's protocol (test-set scaling, fused score) with the default number of heatmaps.
    pub fn new(
        run: impl Into<PathBuf>,
        data_root: impl Into<PathBuf>,
        category: impl Into<String>,
        out: impl Into<PathBuf>,
    ) -> Self {
        TestOptions {
            run: run.into(),
            data_root: data_root.into(),
            category: category.into(),
            out: out.into(),
            scaling: Scaling::TestSet,
            score: ScoreKind::Fused,
            threshold: None,
            max_heatmaps: DEFAULT_MAX_HEATMAPS,
            precision: Precision::F32,
        }
    }
}

/// What [`test`] measured and wrote.
#[derive(Clone, Debug, Serialize)]
pub struct TestReport {
    /// The contents of metrics.json.
    pub metrics: Metrics,
    /// Everything daad-eval computed (scores, ROC curve, F1-max, images/s).
    pub evaluation: Evaluation,
    /// metrics.json, scores.csv and roc.png.
    pub paths: ReportPaths,
    /// The heatmap PNGs written.
    pub heatmaps: Vec<PathBuf>,
    /// The scaling used.
    pub scaling: Scaling,
    /// The score used.
    pub score: ScoreKind,
    /// Wall-clock seconds of the whole test (loading included).
    pub seconds: f64,
    /// A short human-readable summary (a markdown table).
    pub summary: String,
}

/// The folder for cached preprocessed test images **(choice)**: `ROOT/.daad-cache` (shared by
/// every run that tests on this dataset; hidden, so not taken for a category), else `OUT/.daad-cache`
/// when the dataset is read-only.
fn cache_dir(data_root: &Path, out: &Path) -> Option<PathBuf> {
    [data_root.join(".daad-cache"), out.join(".daad-cache")]
        .into_iter()
        .find(|d| std::fs::create_dir_all(d).is_ok())
}

/// Order in which test images get heatmaps: defects round-robin (so every defect type shows),
/// then normal images.
fn heatmap_order(samples: &[Sample]) -> Vec<usize> {
    let mut defects: Vec<&str> =
        samples.iter().filter(|s| s.label.is_anomalous()).map(|s| s.defect.as_str()).collect();
    defects.sort_unstable();
    defects.dedup();
    let groups: Vec<Vec<usize>> = defects
        .iter()
        .map(|d| (0..samples.len()).filter(|&i| samples[i].defect == *d).collect())
        .collect();
    let mut order = Vec::new();
    for k in 0..groups.iter().map(Vec::len).max().unwrap_or(0) {
        order.extend(groups.iter().filter_map(|g| g.get(k).copied()));
    }
    order.extend((0..samples.len()).filter(|&i| !samples[i].label.is_anomalous()));
    order
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.4}"))
}

/// Evaluates the run `opts.run` on the test split of `opts.category` and writes the reports into
/// `opts.out`; `progress(done, total)` is called as test images pass through the model.
pub fn test(
    opts: &TestOptions,
    device: &Device,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<TestReport> {
    let t0 = Instant::now();
    if let Some(t) = opts.threshold.filter(|t| !t.is_finite()) {
        return Err(Error::option("--threshold", format!("{t} is not a finite number")));
    }
    let detector = Detector::open(&opts.run, device)?.with_precision(opts.precision)?;
    let run = detector.run();
    let cfg = &run.config;
    let has_l = run.model.has_discriminator();
    if opts.score == ScoreKind::Alignment && !has_l {
        return Err(Error::NoAlignment {
            path: run.dir.clone(),
            variant: cfg.model.variant.name().to_string(),
        });
    }
    let index = mvtec::index_category(&opts.data_root, &opts.category)?;
    // Up front (issue 13): a read-only or full output, or images that cannot fit, fail here.
    preflight_score(&opts.out, &cfg.model, index.test.len(), device, Workload::Test)?;
    // From here on an error removes the folder again (when this call created it).
    let out_dir = OutputDir::claim(&opts.out);
    let out = out_dir.create()?.to_path_buf();
    let size = cfg.model.image_size;
    let pre = Preprocess::new(size);
    let samples = &index.test;
    let paths: Vec<PathBuf> = samples.iter().map(|s| s.image.clone()).collect();
    let images = pre.load_images(&paths, cache_dir(&opts.data_root, &out).as_deref())?;
    let has_masks = samples.iter().any(|s| s.mask.is_some());
    let masks =
        if has_masks { Some(Mask::batch_from_tensor(&pre.load_masks(samples)?)?) } else { None };
    tracing::info!(
        "{} test images of {}/{} at {size} px ({} anomalous, masks: {has_masks}) loaded in {:.1}s",
        samples.len(),
        opts.data_root.display(),
        opts.category,
        samples.iter().filter(|s| s.label.is_anomalous()).count(),
        t0.elapsed().as_secs_f64()
    );

    let raw = detector.raw(&images, InferOptions::default(), progress)?;
    drop(images);
    let map_cfg = AnomalyMapConfig::default();
    let maps: Vec<AnomalyMap> =
        raw.maps.par_iter().map(|m| m.postprocess(&map_cfg, None)).collect();

    let scaling = match opts.scaling {
        Scaling::TestSet => ScalingMode::TestSet,
        Scaling::Stored => {
            ScalingMode::Stored(detector.require_calibration()?.scaling_for(opts.score)?)
        }
    };
    let mut evaluator = Evaluator::new(EvalConfig {
        scaling,
        gamma: cfg.model.gamma,
        kind: opts.score,
        threshold: opts.threshold,
        ..EvalConfig::default()
    });
    let mut masks = masks.map(|m| m.into_iter().map(Some).collect::<Vec<_>>());
    for (i, (s, map)) in samples.iter().zip(maps.iter()).enumerate() {
        // Only defects with a ground_truth folder have a real mask; the rest stay None (the
        // evaluator treats a normal image without a mask as all-normal).
        let mask = if s.mask.is_some() { masks.as_mut().and_then(|m| m[i].take()) } else { None };
        evaluator.update(ImageRecord {
            path: s.image.clone(),
            anomalous: s.label.is_anomalous(),
            defect: s.defect.clone(),
            r: raw.r[i],
            l: raw.l.as_ref().map(|l| l[i]),
            map: Some(map.clone()),
            mask,
        })?;
    }
    evaluator.add_timing(samples.len(), raw.seconds);
    let evaluation = evaluator.compute()?;
    let info = RunInfo {
        category: opts.category.clone(),
        variant: cfg.model.variant.name().to_string(),
        preset: cfg.train.preset.name().to_string(),
        image_size: size,
        epochs: run.state.epochs_done,
        memory: run.state.history.last().map(|r| r.memory.clone()).filter(|m| !m.is_empty()),
    };
    let metrics = evaluation.metrics(&info);
    let paths_written = evaluation.write_reports(&out, &info, evaluator.records())?;

    let heatmaps = write_heatmaps(samples, &maps, opts.max_heatmaps, &out.join("heatmaps"))?;
    let seconds = t0.elapsed().as_secs_f64();
    let summary = summarize(opts, &metrics, &evaluation, &paths_written, heatmaps.len(), seconds);
    tracing::info!(
        "test of {} on {}/{} done in {seconds:.1}s",
        run.dir.display(),
        opts.data_root.display(),
        opts.category
    );
    out_dir.keep();
    Ok(TestReport {
        metrics,
        evaluation,
        paths: paths_written,
        heatmaps,
        scaling: opts.scaling,
        score: opts.score,
        seconds,
        summary,
    })
}

/// Writes up to `max` heatmap overlays (at each image's original size, the ground-truth
/// contour in green) into `dir`. The colour range is shared by all test images **(choice)**, so
/// normal images look cold and the colours compare across images.
fn write_heatmaps(
    samples: &[Sample],
    maps: &[AnomalyMap],
    max: usize,
    dir: &Path,
) -> Result<Vec<PathBuf>> {
    if max == 0 || maps.is_empty() {
        return Ok(Vec::new());
    }
    let all: Vec<&AnomalyMap> = maps.iter().collect();
    let opts = HeatmapOptions { range: HeatmapRange::fit(&all)?, ..HeatmapOptions::default() };
    create_dir(dir)?;
    let chosen: Vec<usize> = heatmap_order(samples).into_iter().take(max).collect();
    chosen
        .par_iter()
        .map(|&i| {
            let s = &samples[i];
            let path = dir.join(format!(
                "{}_{}.png",
                safe_stem(Path::new(&s.defect)),
                safe_stem(&s.image)
            ));
            let mask = s.mask.as_deref().map(Mask::from_png).transpose()?;
            daad_eval::write_heatmap(&s.image, &maps[i], &opts, mask.as_ref(), &path)?;
            Ok(path)
        })
        .collect()
}

fn summarize(
    opts: &TestOptions,
    m: &Metrics,
    e: &Evaluation,
    paths: &ReportPaths,
    n_heatmaps: usize,
    seconds: f64,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} ({}, {} preset, {} px, {} epochs): {} test images ({} anomalous), scaling {}, score {}, \
         {} products",
        m.category,
        m.variant,
        m.preset,
        m.image_size,
        m.epochs,
        m.n_test,
        e.n_anomalous,
        opts.scaling,
        opts.score,
        opts.precision
    );
    let _ = writeln!(s, "| metric | value |\n|---|---|");
    let _ = writeln!(s, "| image AUROC | {} |", fmt_opt(m.image_auroc));
    let _ = writeln!(s, "| pixel AUROC | {} |", fmt_opt(m.pixel_auroc));
    let _ = writeln!(s, "| AUPRO (FPR <= 0.3) | {} |", fmt_opt(m.aupro));
    let _ = writeln!(s, "| F1-max | {} |", fmt_opt(m.f1_max));
    let source = if opts.threshold.is_some() { "given" } else { "F1-max" };
    let _ = writeln!(s, "| threshold ({source}) | {} |", fmt_opt(m.threshold));
    for d in m.memory.iter().flatten() {
        let _ = writeln!(
            s,
            "| memory f{} (last epoch) | kept {:.1} % of {}, entropy {:.2} nats, {} items used |",
            d.scale,
            100.0 * d.stats.kept_fraction,
            d.stats.n_items,
            d.stats.entropy,
            d.stats.items_used
        );
    }
    let _ = writeln!(
        s,
        "| images/s (model) | {} |",
        e.images_per_second.map_or("n/a".into(), |v| format!("{v:.1}"))
    );
    let _ = write!(
        s,
        "wrote {}, {}{}, {n_heatmaps} heatmaps in {} ({seconds:.1}s)",
        paths.metrics.display(),
        paths.scores.display(),
        paths.roc.as_ref().map_or(String::new(), |p| format!(", {}", p.display())),
        opts.out.join("heatmaps").display()
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use daad_data::Label;

    fn sample(defect: &str, i: usize) -> Sample {
        Sample {
            image: format!("{defect}/{i:03}.png").into(),
            label: if defect == "good" { Label::Normal } else { Label::Anomalous },
            defect: defect.into(),
            mask: None,
        }
    }

    #[test]
    fn heatmaps_cover_every_defect_first() {
        let s = vec![sample("crack", 0), sample("crack", 1), sample("good", 0), sample("hole", 0)];
        assert_eq!(heatmap_order(&s), vec![0, 3, 1, 2]);
    }
}
