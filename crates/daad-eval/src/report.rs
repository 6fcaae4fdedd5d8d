//! Reports: `metrics.json` (the schema of DESIGN.md), the per-image scores CSV, and a markdown
//! table laid out like the paper's Tables 1 and 3 (categories as rows, variants as columns,
//! mean last, optionally the paper's numbers and the differences beside ours).

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The contents of `metrics.json`, exactly the keys of DESIGN.md; `null` where undefined
/// (pixel metrics without masks; image metrics when the test set has one class only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Dataset category, e.g. "bottle".
    pub category: String,
    /// Model variant, e.g. "daad+".
    pub variant: String,
    /// Training preset, e.g. "paper" or "ci".
    pub preset: String,
    /// Side of the square model input in pixels.
    pub image_size: usize,
    /// Epochs trained.
    pub epochs: usize,
    /// Number of test images.
    pub n_test: usize,
    /// Image-level AUROC (the paper's metric).
    pub image_auroc: Option<f64>,
    /// Pixel-level AUROC of the anomaly maps.
    pub pixel_auroc: Option<f64>,
    /// MVTec AD's AUPRO (FPR limit 0.3, normalised).
    pub aupro: Option<f64>,
    /// F1-max over image-score thresholds.
    pub f1_max: Option<f64>,
    /// The threshold reported with the run (F1-max threshold unless overridden).
    pub threshold: Option<f64>,
    /// Memory addressing per scale over the run's last training epoch (absent without memory
    /// and in metrics written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Vec<daad_model::ScaleDiagnostics>>,
}

/// The run description that goes into `metrics.json` beside the measured values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// Dataset category.
    pub category: String,
    /// Model variant name.
    pub variant: String,
    /// Training preset name.
    pub preset: String,
    /// Side of the square model input in pixels.
    pub image_size: usize,
    /// Epochs trained.
    pub epochs: usize,
    /// Memory addressing per scale over the last training epoch (from the run's state).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Vec<daad_model::ScaleDiagnostics>>,
}

impl Metrics {
    /// Writes pretty JSON to `path` (creating the parent folder).
    pub fn write(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self)
            .map_err(|source| Error::Json { path: path.to_path_buf(), source })?;
        write_text(path, &(json + "\n"))
    }

    /// Reads a `metrics.json`.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        serde_json::from_str(&text)
            .map_err(|source| Error::Json { path: path.to_path_buf(), source })
    }
}

/// Writes `text` to `path` atomically (daad-model's one atomic writer), creating the parent
/// folder.
pub(crate) fn write_text(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
    }
    daad_data::io::write_atomic(path, text.as_bytes())
        .map_err(|source| Error::Io { path: path.to_path_buf(), source })
}

/// One row of the per-image scores CSV.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreRow {
    /// Image path.
    pub path: String,
    /// `true` for an anomalous image.
    pub anomalous: bool,
    /// Defect folder name ("good" for normal images).
    pub defect: String,
    /// Raw reconstruction score R(x).
    pub r: f64,
    /// Raw alignment score L(x), if the variant has one.
    pub l: Option<f64>,
    /// Fused, scaled anomaly score A(x).
    pub score: f64,
}

/// The CSV text: header `path,label,defect,r,l,score`, label `normal`/`anomalous`, `l` empty
/// when absent, fields quoted per RFC 4180 where needed.
pub fn scores_csv(rows: &[ScoreRow]) -> String {
    let mut s = String::from("path,label,defect,r,l,score\n");
    for r in rows {
        let l = r.l.map(|v| v.to_string()).unwrap_or_default();
        let label = if r.anomalous { "anomalous" } else { "normal" };
        let _ = writeln!(
            s,
            "{},{},{},{},{},{}",
            csv_field(&r.path),
            label,
            csv_field(&r.defect),
            r.r,
            l,
            r.score
        );
    }
    s
}

/// Writes [`scores_csv`] to `path`.
pub fn write_scores_csv(rows: &[ScoreRow], path: &Path) -> Result<()> {
    write_text(path, &scores_csv(rows))
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One value of a results table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableEntry {
    /// Row: the category.
    pub category: String,
    /// Column: the variant.
    pub variant: String,
    /// The value, e.g. image AUROC.
    pub value: f64,
}

impl TableEntry {
    /// A table entry.
    pub fn new(category: &str, variant: &str, value: f64) -> Self {
        TableEntry { category: category.into(), variant: variant.into(), value }
    }
}

/// The paper's Table 3 (image AUROC on MVTec AD), with MVTec's folder names as categories and
/// the CLI's variant names (`ae`, `memae`, `ae-skip`, `daad`, `daad+`).
pub fn paper_table3() -> Vec<TableEntry> {
    const VARIANTS: [&str; 5] = ["ae", "memae", "ae-skip", "daad", "daad+"];
    const ROWS: [(&str, [f64; 5]); 15] = [
        ("carpet", [0.411, 0.454, 0.385, 0.671, 0.866]),
        ("grid", [0.841, 0.946, 0.879, 0.975, 0.957]),
        ("leather", [0.615, 0.611, 0.570, 0.628, 0.862]),
        ("tile", [0.696, 0.630, 0.986, 0.825, 0.882]),
        ("wood", [0.961, 0.967, 0.977, 0.957, 0.982]),
        ("bottle", [0.955, 0.954, 0.713, 0.975, 0.976]),
        ("cable", [0.688, 0.694, 0.579, 0.720, 0.844]),
        ("capsule", [0.819, 0.831, 0.747, 0.866, 0.767]),
        ("hazelnut", [0.884, 0.891, 0.828, 0.893, 0.921]),
        ("metal_nut", [0.565, 0.537, 0.336, 0.552, 0.758]),
        ("pill", [0.882, 0.883, 0.853, 0.898, 0.900]),
        ("screw", [0.956, 0.992, 1.000, 1.000, 0.987]),
        ("toothbrush", [0.977, 0.972, 0.742, 0.989, 0.992]),
        ("transistor", [0.776, 0.793, 0.749, 0.814, 0.876]),
        ("zipper", [0.878, 0.871, 0.696, 0.906, 0.859]),
    ];
    ROWS.iter()
        .flat_map(|(c, vals)| {
            VARIANTS.iter().zip(vals).map(move |(v, &x)| TableEntry::new(c, v, x))
        })
        .collect()
}

/// A markdown table of `entries`: categories as rows (first-seen order), variants as columns,
/// a last "mean" row over the categories present. With `paper` given, each cell reads
/// `ours (paper, +diff)` where the paper has a value, and the mean row compares against the
/// paper's mean over the same categories.
pub fn markdown_table(
    metric: &str,
    entries: &[TableEntry],
    paper: Option<&[TableEntry]>,
) -> String {
    let mut cats: Vec<&str> = Vec::new();
    let mut vars: Vec<&str> = Vec::new();
    for e in entries {
        if !cats.contains(&e.category.as_str()) {
            cats.push(&e.category);
        }
        if !vars.contains(&e.variant.as_str()) {
            vars.push(&e.variant);
        }
    }
    let find = |list: &[TableEntry], c: &str, v: &str| {
        list.iter().rev().find(|e| e.category == c && e.variant == v).map(|e| e.value)
    };
    let cell = |ours: Option<f64>, theirs: Option<f64>| match (ours, theirs) {
        (None, _) => "-".to_string(),
        (Some(o), None) => format!("{o:.3}"),
        (Some(o), Some(p)) => format!("{o:.3} ({p:.3}, {:+.3})", o - p),
    };
    let mut s =
        format!("| {metric} | {} |\n|---|{}\n", vars.join(" | "), "---|".repeat(vars.len()));
    for c in &cats {
        let cells: Vec<String> = vars
            .iter()
            .map(|v| cell(find(entries, c, v), paper.and_then(|p| find(p, c, v))))
            .collect();
        let _ = writeln!(s, "| {c} | {} |", cells.join(" | "));
    }
    let means: Vec<String> = vars
        .iter()
        .map(|v| {
            let ours: Vec<(&str, f64)> =
                cats.iter().filter_map(|c| find(entries, c, v).map(|x| (*c, x))).collect();
            if ours.is_empty() {
                return "-".to_string();
            }
            let m = ours.iter().map(|x| x.1).sum::<f64>() / ours.len() as f64;
            let pm = paper.and_then(|p| {
                let vals: Option<Vec<f64>> = ours.iter().map(|(c, _)| find(p, c, v)).collect();
                vals.map(|vals| vals.iter().sum::<f64>() / vals.len() as f64)
            });
            let n = if ours.len() < cats.len() {
                format!(" [{} of {}]", ours.len(), cats.len())
            } else {
                String::new()
            };
            cell(Some(m), pm) + &n
        })
        .collect();
    let _ = writeln!(s, "| mean | {} |", means.join(" | "));
    if paper.is_some() {
        s.push_str("\nCells: ours (paper, ours - paper).\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_json_has_exactly_the_design_keys() {
        let m = Metrics {
            category: "bottle".into(),
            variant: "daad".into(),
            preset: "ci".into(),
            image_size: 64,
            epochs: 3,
            n_test: 10,
            image_auroc: Some(0.9),
            pixel_auroc: None,
            aupro: None,
            f1_max: Some(0.8),
            threshold: Some(0.4),
            memory: None,
        };
        let v: serde_json::Value = serde_json::to_value(&m).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        keys.sort();
        let mut want = vec![
            "category",
            "variant",
            "preset",
            "image_size",
            "epochs",
            "n_test",
            "image_auroc",
            "pixel_auroc",
            "aupro",
            "f1_max",
            "threshold",
        ];
        want.sort();
        assert_eq!(keys, want);
        assert!(v["pixel_auroc"].is_null());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out/metrics.json");
        m.write(&p).unwrap();
        assert_eq!(Metrics::read(&p).unwrap(), m);
    }

    #[test]
    fn csv_quotes_and_leaves_missing_l_empty() {
        let rows = vec![
            ScoreRow {
                path: "a,b.png".into(),
                anomalous: true,
                defect: "crack".into(),
                r: 0.5,
                l: None,
                score: 1.0,
            },
            ScoreRow {
                path: "c.png".into(),
                anomalous: false,
                defect: "good".into(),
                r: 0.25,
                l: Some(2.0),
                score: 0.0,
            },
        ];
        assert_eq!(
            scores_csv(&rows),
            "path,label,defect,r,l,score\n\"a,b.png\",anomalous,crack,0.5,,1\nc.png,normal,good,0.25,2,0\n"
        );
    }

    #[test]
    fn table_has_mean_last_and_paper_differences() {
        let e = vec![
            TableEntry::new("carpet", "daad", 0.7),
            TableEntry::new("grid", "daad", 0.9),
            TableEntry::new("carpet", "ae", 0.5),
        ];
        let t = markdown_table("image AUROC", &e, Some(&paper_table3()));
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "| image AUROC | daad | ae |");
        assert_eq!(lines[2], "| carpet | 0.700 (0.671, +0.029) | 0.500 (0.411, +0.089) |");
        assert_eq!(lines[3], "| grid | 0.900 (0.975, -0.075) | - |");
        // Paper mean over carpet and grid for daad: (0.671 + 0.975) / 2 = 0.823.
        assert_eq!(lines[4], "| mean | 0.800 (0.823, -0.023) | 0.500 (0.411, +0.089) [1 of 2] |");
        // The paper's own means (Table 3's last row), recomputed from its rows.
        let p = paper_table3();
        for (v, want) in
            [("ae", 0.794), ("memae", 0.802), ("ae-skip", 0.736), ("daad", 0.845), ("daad+", 0.895)]
        {
            let vals: Vec<f64> = p.iter().filter(|x| x.variant == v).map(|x| x.value).collect();
            assert_eq!(vals.len(), 15);
            let m = vals.iter().sum::<f64>() / 15.0;
            assert!((m - want).abs() < 0.0015, "{v}: {m}");
        }
    }
}
