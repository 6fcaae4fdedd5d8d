//! Experiment grids: cells (category x variant x knobs), deterministic sharding, resumable results.
//!
//! A results folder holds one sub-folder per cell: `cells/<cell>/run/` (the training run, with its
//! checkpoints, so a killed cell resumes) and `cells/<cell>/metrics.json`, written atomically last.
//! A cell whose `metrics.json` exists is finished and skipped; `--collect` reads whatever cells exist.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use daad::eval::Metrics;
use serde::{Deserialize, Serialize};

/// One experiment: a category trained and tested with one variant and its knobs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Dataset category (an MVTec category, a synthetic one, or a digit class).
    pub category: String,
    /// Model variant: ae, ae-skip, memae, daad, daad+.
    pub variant: String,
    /// Spatial division rate r_h = r_w, where the grid varies it (Table 4).
    pub division: Option<usize>,
    /// Channel division rate r_c, where the grid varies it.
    pub channel_division: Option<usize>,
    /// Table 5 knobs: adversarial loss, alignment loss, L(x) in the score, R(x) in the score.
    pub adversarial: Option<[bool; 4]>,
    /// Memory softmax temperature, where the grid varies it (addressing ablation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Memory similarity (cosine, dot), where the grid varies it (addressing ablation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similarity: Option<String>,
    /// Training seed, where the grid repeats cells over seeds (`--seeds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl Cell {
    /// A cell with only category and variant set.
    pub fn new(category: &str, variant: &str) -> Self {
        Self {
            category: category.to_string(),
            variant: variant.to_string(),
            division: None,
            channel_division: None,
            adversarial: None,
            temperature: None,
            similarity: None,
            seed: None,
        }
    }

    /// A stable, file-system-safe name, unique within a grid.
    pub fn name(&self) -> String {
        let mut name = format!("{}__{}", self.category, self.variant.replace('+', "plus"));
        if let Some(r) = self.division {
            name.push_str(&format!("__r{r}"));
        }
        if let Some(rc) = self.channel_division {
            name.push_str(&format!("__rc{rc}"));
        }
        if let Some(flags) = self.adversarial {
            let bits: String = flags.iter().map(|b| if *b { '1' } else { '0' }).collect();
            name.push_str(&format!("__adv{bits}"));
        }
        if let Some(t) = self.temperature {
            // `0.1` -> `t0p1`: no dots in folder names.
            name.push_str(&format!("__t{}", format!("{t}").replace('.', "p").replace('-', "m")));
        }
        if let Some(s) = &self.similarity {
            name.push_str(&format!("__sim{s}"));
        }
        if let Some(seed) = self.seed {
            name.push_str(&format!("__s{seed}"));
        }
        name
    }
}

/// A shard of a grid: `K/N` means "the K-th of N machines", K in 1..=N.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This machine's index, 1-based.
    pub index: usize,
    /// Number of machines.
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (k, n) =
            s.split_once('/').ok_or_else(|| format!("shard '{s}' must look like K/N, e.g. 2/5"))?;
        let index: usize =
            k.trim().parse().map_err(|_| format!("shard index '{k}' is not a number"))?;
        let count: usize =
            n.trim().parse().map_err(|_| format!("shard count '{n}' is not a number"))?;
        if count == 0 || index == 0 || index > count {
            return Err(format!("shard '{s}': need 1 <= K <= N"));
        }
        Ok(Self { index, count })
    }
}

/// The cells of `cells` that belong to `shard`: the grid is sorted by name and dealt round-robin,
/// so every machine computes the same split without talking to the others.
pub fn shard_cells(cells: &[Cell], shard: Shard) -> Vec<Cell> {
    let mut sorted: Vec<Cell> = cells.to_vec();
    sorted.sort_by_key(Cell::name);
    sorted.dedup_by_key(|c| c.name());
    sorted
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % shard.count == shard.index - 1)
        .map(|(_, c)| c)
        .collect()
}

/// The folder of one cell inside a results folder.
pub fn cell_dir(results: &Path, cell: &Cell) -> PathBuf {
    results.join("cells").join(cell.name())
}

/// The metrics file of a finished cell.
pub fn metrics_path(results: &Path, cell: &Cell) -> PathBuf {
    cell_dir(results, cell).join("metrics.json")
}

/// Writes `bytes` to `path` atomically (daad's one atomic writer), creating its folder first.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("path has no parent folder")?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    daad::data::io::write_atomic(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// A finished cell: its definition and its metrics.json as written by `daad test`.
#[derive(Clone, Debug)]
pub struct CellResult {
    /// The cell.
    pub cell: Cell,
    /// Its metrics.json (typed).
    pub metrics: Metrics,
}

impl CellResult {
    /// The image AUROC of this cell.
    pub fn image_auroc(&self) -> Option<f64> {
        self.metrics.image_auroc
    }
}

/// A finished cell of one seed with only its image AUROC set (for table tests).
#[cfg(test)]
pub fn test_result(category: &str, variant: &str, seed: u64, auroc: f64) -> CellResult {
    let mut cell = Cell::new(category, variant);
    cell.seed = Some(seed);
    CellResult { cell, metrics: test_metrics(category, variant, auroc) }
}

/// A metrics.json with only the cell's identity and image AUROC set (for table tests).
#[cfg(test)]
pub fn test_metrics(category: &str, variant: &str, image_auroc: f64) -> Metrics {
    Metrics {
        category: category.into(),
        variant: variant.into(),
        preset: "ci".into(),
        image_size: 32,
        epochs: 1,
        n_test: 2,
        image_auroc: Some(image_auroc),
        pixel_auroc: None,
        aupro: None,
        f1_max: None,
        threshold: None,
        memory: None,
    }
}

/// Reads every finished cell of a results folder (any shard's), sorted by name.
pub fn collect(results: &Path) -> Result<Vec<CellResult>> {
    let cells_dir = results.join("cells");
    if !cells_dir.is_dir() {
        bail!("{} has no cells/ folder: run the grid first", results.display());
    }
    let mut out = Vec::new();
    for entry in
        fs::read_dir(&cells_dir).with_context(|| format!("reading {}", cells_dir.display()))?
    {
        let dir = entry?.path();
        let (cell_file, metrics_file) = (dir.join("cell.json"), dir.join("metrics.json"));
        if !metrics_file.is_file() || !cell_file.is_file() {
            continue;
        }
        let cell: Cell = serde_json::from_slice(&fs::read(&cell_file)?)
            .with_context(|| format!("parsing {}", cell_file.display()))?;
        let metrics = Metrics::read(&metrics_file)?;
        out.push(CellResult { cell, metrics });
    }
    out.sort_by_key(|r| r.cell.name());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Vec<Cell> {
        let mut cells = Vec::new();
        for c in ["carpet", "grid", "bottle", "screw"] {
            for v in ["ae", "memae", "ae-skip", "daad", "daad+"] {
                cells.push(Cell::new(c, v));
            }
        }
        cells
    }

    #[test]
    fn three_shards_cover_every_cell_exactly_once() {
        let cells = grid();
        let mut seen: Vec<String> = Vec::new();
        for k in 1..=3 {
            let part = shard_cells(&cells, Shard { index: k, count: 3 });
            assert!(part.len() >= 6 && part.len() <= 7, "shard {k} has {} cells", part.len());
            seen.extend(part.iter().map(Cell::name));
        }
        seen.sort();
        let mut all: Vec<String> = cells.iter().map(Cell::name).collect();
        all.sort();
        assert_eq!(seen, all);
    }

    #[test]
    fn sharding_ignores_input_order() {
        let cells = grid();
        let mut reversed = cells.clone();
        reversed.reverse();
        let s = Shard { index: 2, count: 3 };
        assert_eq!(shard_cells(&cells, s), shard_cells(&reversed, s));
    }

    #[test]
    fn shard_parsing_rejects_bad_values() {
        assert_eq!("2/3".parse::<Shard>().unwrap(), Shard { index: 2, count: 3 });
        for bad in ["0/3", "4/3", "3", "a/b", "1/0"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn names_are_unique_and_safe() {
        let mut c = Cell::new("metal_nut", "daad+");
        c.division = Some(4);
        c.adversarial = Some([true, false, true, true]);
        assert_eq!(c.name(), "metal_nut__daadplus__r4__adv1011");
        c.temperature = Some(0.1);
        c.similarity = Some("dot".into());
        c.seed = Some(2);
        assert_eq!(c.name(), "metal_nut__daadplus__r4__adv1011__t0p1__simdot__s2");
        // A cell without a seed keeps its old name, so results of earlier grids are reused.
        assert_eq!(Cell::new("cap", "ae").name(), "cap__ae");
        let mut seeded = Cell::new("cap", "ae");
        seeded.seed = Some(0);
        assert_ne!(seeded.name(), Cell::new("cap", "ae").name());
    }

    #[test]
    fn cells_written_before_seeds_load() {
        let json = r#"{"category":"cap","variant":"ae","division":null,"channel_division":null,"adversarial":null}"#;
        let c: Cell = serde_json::from_str(json).unwrap();
        assert_eq!(c, Cell::new("cap", "ae"));
    }

    #[test]
    fn collect_reads_finished_cells_only() {
        let dir = tempfile::tempdir().unwrap();
        let done = Cell::new("carpet", "ae");
        let unfinished = Cell::new("carpet", "daad");
        for cell in [&done, &unfinished] {
            write_atomic(
                &cell_dir(dir.path(), cell).join("cell.json"),
                &serde_json::to_vec(cell).unwrap(),
            )
            .unwrap();
        }
        test_metrics("carpet", "ae", 0.75).write(&metrics_path(dir.path(), &done)).unwrap();
        let results = collect(dir.path()).unwrap();
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].cell, done);
        assert_eq!(results[0].image_auroc(), Some(0.75));
    }
}
