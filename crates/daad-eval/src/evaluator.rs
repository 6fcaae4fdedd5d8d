//! The streaming evaluator: gather one record per test image (raw R(x), L(x), optional anomaly
//! map and mask) with `update`, then `compute` every metric at once; `clear` starts over
//! (the update/compute/clear shape of burn's metrics).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::anomaly_map::{AnomalyMap, Mask};
use crate::aupro::{aupro, Connectivity, DEFAULT_FPR_LIMIT};
use crate::auroc::{image_auroc, pixel_auroc};
use crate::error::{Error, Result};
use crate::f1::{f1_max, F1Max};
use crate::plot::write_roc_png;
use crate::report::{write_scores_csv, Metrics, RunInfo, ScoreRow};
use crate::roc::{roc_curve, RocCurve};
use crate::scoring::{ScalingMode, ScoreKind, ScoreScaling, DEFAULT_GAMMA};

/// One test image's raw results.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageRecord {
    /// Image path (reported in the CSV and in errors).
    pub path: PathBuf,
    /// `true` for an anomalous (defect) image.
    pub anomalous: bool,
    /// Defect folder name, "good" for normal images.
    pub defect: String,
    /// Raw reconstruction score R(x).
    pub r: f64,
    /// Raw alignment score L(x) (variants with a discriminator).
    pub l: Option<f64>,
    /// The (smoothed) anomaly map, for pixel metrics.
    pub map: Option<AnomalyMap>,
    /// The ground-truth mask; `None` on a normal image means all normal.
    pub mask: Option<Mask>,
}

/// What to compute and how.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalConfig {
    /// Where the score scaling comes from (default: the test set, the paper's protocol).
    pub scaling: ScalingMode,
    /// g for [`ScalingMode::TestSet`] (a stored scaling carries its own).
    pub gamma: f64,
    /// The score that ranks the images; records always hold the raw R and L, and a stored
    /// scaling must be the one for this kind ([`crate::Calibration::scaling_for`]).
    pub kind: ScoreKind,
    /// FPR limit of AUPRO (default 0.3).
    pub fpr_limit: f64,
    /// Region connectivity for AUPRO (default 8, as MVTec's code).
    pub connectivity: Connectivity,
    /// A threshold that overrides the F1-max one in the report (`--threshold`).
    pub threshold: Option<f64>,
    /// Whether to compute pixel AUROC and AUPRO when maps and masks are present.
    pub pixel_metrics: bool,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            scaling: ScalingMode::TestSet,
            gamma: DEFAULT_GAMMA,
            kind: ScoreKind::Fused,
            fpr_limit: DEFAULT_FPR_LIMIT,
            connectivity: Connectivity::Eight,
            threshold: None,
            pixel_metrics: true,
        }
    }
}

/// Everything computed from the records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The scaling the scores were computed with.
    pub scaling: ScoreScaling,
    /// Fused anomaly score of each record, in record order.
    pub scores: Vec<f64>,
    /// Number of records.
    pub n_test: usize,
    /// Number of anomalous records.
    pub n_anomalous: usize,
    /// Image AUROC; `None` when the records hold one class only.
    pub image_auroc: Option<f64>,
    /// The image ROC curve; `None` when one class only.
    pub roc: Option<RocCurve>,
    /// F1-max and its threshold; `None` without anomalous records.
    pub f1: Option<F1Max>,
    /// Pixel AUROC; `None` without masks or maps.
    pub pixel_auroc: Option<f64>,
    /// AUPRO; `None` without masks or maps.
    pub aupro: Option<f64>,
    /// Number of images that entered the pixel metrics.
    pub n_pixel_images: usize,
    /// The reported threshold: the configured override, else the F1-max threshold.
    pub threshold: Option<f64>,
    /// Inference throughput, when timings were given.
    pub images_per_second: Option<f64>,
}

/// Gathers [`ImageRecord`]s and computes an [`Evaluation`].
#[derive(Clone, Debug, Default)]
pub struct Evaluator {
    cfg: EvalConfig,
    records: Vec<ImageRecord>,
    timed_images: usize,
    seconds: f64,
}

impl Evaluator {
    /// An empty evaluator.
    pub fn new(cfg: EvalConfig) -> Self {
        Evaluator { cfg, ..Default::default() }
    }

    /// The configuration.
    pub fn config(&self) -> &EvalConfig {
        &self.cfg
    }

    /// Adds one image's record (errors name the image on non-finite scores or a map/mask
    /// shape mismatch, and on L present for some records but not others).
    pub fn update(&mut self, record: ImageRecord) -> Result<()> {
        let name = record.path.display().to_string();
        if !record.r.is_finite() || record.l.is_some_and(|l| !l.is_finite()) {
            return Err(Error::NotFinite {
                what: format!("raw scores of {name}"),
                index: self.records.len(),
                value: if record.r.is_finite() { record.l.unwrap_or(f64::NAN) } else { record.r },
            });
        }
        if let Some(first) = self.records.first() {
            if first.l.is_some() != record.l.is_some() {
                return Err(Error::invalid(
                    "alignment score",
                    format!(
                        "{name} has L(x) {} but earlier images do not agree",
                        if record.l.is_some() { "present" } else { "absent" }
                    ),
                ));
            }
        }
        if let (Some(map), Some(mask)) = (&record.map, &record.mask) {
            map.check_same_shape(mask, &format!("anomaly map and mask of {name}"))?;
        }
        self.records.push(record);
        Ok(())
    }

    /// Adds many records.
    pub fn extend(&mut self, records: impl IntoIterator<Item = ImageRecord>) -> Result<()> {
        records.into_iter().try_for_each(|r| self.update(r))
    }

    /// Records inference time: `images` images took `seconds` (for images/s).
    pub fn add_timing(&mut self, images: usize, seconds: f64) {
        self.timed_images += images;
        self.seconds += seconds;
    }

    /// The records so far.
    pub fn records(&self) -> &[ImageRecord] {
        &self.records
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there is no record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Drops all records and timings (the configuration stays).
    pub fn clear(&mut self) {
        self.records.clear();
        self.timed_images = 0;
        self.seconds = 0.0;
    }

    /// Scores every record and computes all metrics that the records allow.
    pub fn compute(&self) -> Result<Evaluation> {
        if self.records.is_empty() {
            return Err(Error::Empty {
                what: "the evaluator's records (call update first)".into(),
            });
        }
        let r: Vec<f64> = self.records.iter().map(|x| x.r).collect();
        let l: Option<Vec<f64>> = self.records.iter().map(|x| x.l).collect();
        let (r, l) = self.cfg.kind.columns(&r, l.as_deref())?;
        let scaling = match &self.cfg.scaling {
            ScalingMode::TestSet => ScoreScaling::fit(&r, l.as_deref(), self.cfg.gamma)?,
            ScalingMode::Stored(s) => s.clone(),
        };
        let scores = scaling.scores(&r, l.as_deref())?;
        let labels: Vec<bool> = self.records.iter().map(|x| x.anomalous).collect();
        let n_anomalous = labels.iter().filter(|&&b| b).count();
        let two_classes = n_anomalous > 0 && n_anomalous < labels.len();
        let image_auroc = two_classes.then(|| image_auroc(&scores, &labels)).transpose()?;
        let roc = two_classes.then(|| roc_curve(&scores, &labels)).transpose()?;
        let f1 = (n_anomalous > 0).then(|| f1_max(&scores, &labels)).transpose()?;
        let (pixel_auroc, aupro, n_pixel_images) = self.pixel_metrics()?;
        Ok(Evaluation {
            scaling,
            scores,
            n_test: self.records.len(),
            n_anomalous,
            image_auroc,
            roc,
            f1,
            pixel_auroc,
            aupro,
            n_pixel_images,
            threshold: self.cfg.threshold.or(f1.map(|f| f.threshold)),
            images_per_second: (self.seconds > 0.0)
                .then(|| self.timed_images as f64 / self.seconds),
        })
    }

    fn pixel_metrics(&self) -> Result<(Option<f64>, Option<f64>, usize)> {
        let has_masks = self.records.iter().any(|x| x.mask.is_some());
        if !self.cfg.pixel_metrics || !has_masks {
            return Ok((None, None, 0));
        }
        if let Some(x) = self.records.iter().find(|x| x.map.is_none()) {
            tracing::warn!(image = %x.path.display(), "no anomaly map for this image: pixel metrics skipped");
            return Ok((None, None, 0));
        }
        // Normal images without a mask file are all-normal ground truth.
        let empties: Vec<Option<Mask>> = self
            .records
            .iter()
            .map(|x| {
                let m = x.map.as_ref().expect("checked above");
                (x.mask.is_none() && !x.anomalous).then(|| Mask::empty(m.width, m.height))
            })
            .collect();
        let mut maps = Vec::new();
        let mut masks = Vec::new();
        for (x, empty) in self.records.iter().zip(&empties) {
            match (&x.mask, empty) {
                (Some(mask), _) => masks.push(mask),
                (None, Some(empty)) => masks.push(empty),
                (None, None) => {
                    tracing::warn!(image = %x.path.display(), "anomalous image without a mask: left out of pixel metrics");
                    continue;
                }
            }
            maps.push(x.map.as_ref().expect("checked above"));
        }
        let any_defect = masks.iter().any(|m| m.any());
        if !any_defect {
            return Ok((None, None, maps.len()));
        }
        let pa = pixel_auroc(&maps, &masks)?;
        let ap = aupro(&maps, &masks, self.cfg.fpr_limit, self.cfg.connectivity)?;
        Ok((Some(pa), Some(ap), maps.len()))
    }
}

/// Paths of the files written by [`Evaluation::write_reports`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportPaths {
    /// `metrics.json`.
    pub metrics: PathBuf,
    /// `scores.csv`.
    pub scores: PathBuf,
    /// `roc.png`, when the ROC curve exists.
    pub roc: Option<PathBuf>,
}

impl Evaluation {
    /// The `metrics.json` contents for this evaluation of the run `info`.
    pub fn metrics(&self, info: &RunInfo) -> Metrics {
        Metrics {
            category: info.category.clone(),
            variant: info.variant.clone(),
            preset: info.preset.clone(),
            image_size: info.image_size,
            epochs: info.epochs,
            n_test: self.n_test,
            image_auroc: self.image_auroc,
            pixel_auroc: self.pixel_auroc,
            aupro: self.aupro,
            f1_max: self.f1.map(|f| f.f1),
            threshold: self.threshold,
            memory: info.memory.clone(),
        }
    }

    /// The CSV rows of `records` (which must be the evaluator's, in order).
    pub fn score_rows(&self, records: &[ImageRecord]) -> Result<Vec<ScoreRow>> {
        crate::error::check_len("records and scores", records.len(), self.scores.len())?;
        Ok(records
            .iter()
            .zip(&self.scores)
            .map(|(x, &score)| ScoreRow {
                path: x.path.display().to_string(),
                anomalous: x.anomalous,
                defect: x.defect.clone(),
                r: x.r,
                l: x.l,
                score,
            })
            .collect())
    }

    /// Writes `metrics.json`, `scores.csv` and (when defined) `roc.png` into `dir`.
    pub fn write_reports(
        &self,
        dir: &Path,
        info: &RunInfo,
        records: &[ImageRecord],
    ) -> Result<ReportPaths> {
        let paths = ReportPaths {
            metrics: dir.join("metrics.json"),
            scores: dir.join("scores.csv"),
            roc: self.roc.as_ref().map(|_| dir.join("roc.png")),
        };
        self.metrics(info).write(&paths.metrics)?;
        write_scores_csv(&self.score_rows(records)?, &paths.scores)?;
        if let (Some(curve), Some(p)) = (&self.roc, &paths.roc) {
            write_roc_png(curve, p)?;
        }
        Ok(paths)
    }
}
