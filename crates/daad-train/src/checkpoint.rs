//! Run files and transactional checkpoints (the checkpointer, apart from the training loop).
//!
//! A run folder:
//!
//! ```text
//! out/
//!   checkpoints/step-0000000120/   one complete checkpoint: model.safetensors, optimizer.safetensors,
//!                                  state.json, config.json, each carrying the step (global_step)
//!   checkpoints/latest             the committed checkpoint's folder name (the commit point)
//!   model.safetensors config.json state.json train_log.jsonl   published copies of `latest`
//!   .daad.lock                     advisory lock of the writing process (holds its pid)
//! ```
//!
//! [`Checkpointer::save`] writes a checkpoint into `checkpoints/.step-N.tmp-PID/`, fsyncs every
//! file and the folder, renames it to `step-N`, then switches `latest` (temp + rename + fsync of
//! the folder): a kill at any point leaves the previous checkpoint committed and intact. Only then
//! are the top-level files replaced (hard links, each by rename), and old checkpoints pruned to the
//! last `keep`. Readers ([`crate::RunDir`]) resolve `latest`, so a kill during publication never
//! shows them a mix of steps.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use daad_eval::Calibration;
use daad_model::ModelConfig;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::io_err;
use crate::{EpochRecord, Error, Result, StepLosses, TrainConfig, Trainer};

/// Version of the run folder layout (config.json, state.json, optimizer.safetensors).
/// 2: config.json stores daad-eval's `Calibration` (scaling, kind, threshold).
pub const RUN_FORMAT_VERSION: u32 = 2;
/// The weights file of a run.
pub const MODEL_FILE: &str = "model.safetensors";
/// The optimiser state file of a run.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// The configuration file of a run.
pub const CONFIG_FILE: &str = "config.json";
/// The progress file of a run.
pub const STATE_FILE: &str = "state.json";
/// The per-epoch log of a run.
pub const LOG_FILE: &str = "train_log.jsonl";
/// The folder of the checkpoints inside a run folder.
pub const CHECKPOINTS_DIR: &str = "checkpoints";
/// The pointer file (inside [`CHECKPOINTS_DIR`]) naming the committed checkpoint.
pub const LATEST_FILE: &str = "latest";
/// Checkpoints kept by default (the committed one and the one before it).
pub const DEFAULT_KEEP: usize = 2;
/// The key carrying the checkpoint's step in safetensors metadata and config.json.
pub const STEP_KEY: &str = "checkpoint_step";
const OPTIMIZER_FORMAT: &str = "daad-optimizer";
/// safetensors caps its header at 100 MB; a larger length is a corrupt file.
const MAX_HEADER: u64 = 100_000_000;

/// Which data a run was trained on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataInfo {
    /// Dataset root (MVTec layout).
    pub root: PathBuf,
    /// Category name.
    pub category: String,
    /// Images trained on.
    pub n_train: usize,
    /// Images held out for calibration.
    pub n_val: usize,
    /// File names (relative to the root) of the held-out images.
    pub val_images: Vec<String>,
}

/// config.json: everything needed to rebuild the model and its score scaling.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// [`RUN_FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// daad-train's crate version of the writer.
    pub crate_version: String,
    /// The model.
    pub model: ModelConfig,
    /// The training settings.
    pub train: TrainConfig,
    /// Score scaling and threshold from normal images (set when training finishes).
    pub calibration: Option<Calibration>,
    /// The data.
    pub data: DataInfo,
}

/// Running sums of the epoch in progress (so an interrupted epoch resumes with its averages).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochAccum {
    /// Steps summed.
    pub steps: usize,
    /// Sum of the step losses.
    pub sums: StepLosses,
    /// Images seen.
    pub images: usize,
    /// Seconds spent.
    pub seconds: f64,
}

impl EpochAccum {
    /// Adds one step.
    pub fn add(&mut self, l: &StepLosses, images: usize, seconds: f64) {
        self.steps += 1;
        self.sums.rec += l.rec;
        self.sums.adv += l.adv;
        self.sums.ali += l.ali;
        self.sums.disc += l.disc;
        self.sums.total += l.total;
        self.images += images;
        self.seconds += seconds;
    }

    /// Mean losses.
    pub fn mean(&self) -> StepLosses {
        let n = self.steps.max(1) as f64;
        let s = self.sums;
        StepLosses {
            rec: s.rec / n,
            adv: s.adv / n,
            ali: s.ali / n,
            disc: s.disc / n,
            total: s.total / n,
        }
    }
}

/// state.json: where training stands. The only randomness is a pure function of the seed (init,
/// validation split) and of (seed, epoch) (batch order and flips), so the seed is the RNG state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// [`RUN_FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// Complete epochs.
    pub epochs_done: usize,
    /// Batches done of epoch `epochs_done` (non-zero after an interrupt).
    pub batches_done: usize,
    /// Optimiser steps so far (the step every file of a checkpoint carries).
    pub global_step: usize,
    /// The run's seed (RNG state, see above).
    pub seed: u64,
    /// All epochs done and calibration written.
    pub finished: bool,
    /// Sums of the unfinished epoch.
    pub partial: EpochAccum,
    /// One record per finished epoch.
    pub history: Vec<EpochRecord>,
}

impl TrainState {
    /// The state of a run that has not started.
    pub fn new(seed: u64) -> Self {
        Self {
            format_version: RUN_FORMAT_VERSION,
            epochs_done: 0,
            batches_done: 0,
            global_step: 0,
            seed,
            finished: false,
            partial: EpochAccum::default(),
            history: Vec::new(),
        }
    }
}

/// Reads a JSON file; a missing or malformed file is an error naming it.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Run {
        path: path.to_path_buf(),
        problems: vec![format!("cannot read ({e}); is this a run folder written by `daad train`?")],
    })?;
    parse_json(path, &text)
}

fn parse_json<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::Run {
        path: path.to_path_buf(),
        problems: vec![format!("malformed or corrupt JSON: {e}")],
    })
}

/// Writes a JSON file atomically and durably.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("config types serialise");
    replace_durably(path, text.as_bytes())
}

/// A run JSON file read with its format version checked on the raw JSON before the full parse
/// (so a file from another daad, whose fields may differ, gets the version message), and its
/// checkpoint step (None for files written before transactional checkpoints).
fn read_versioned<T: DeserializeOwned>(path: &Path) -> Result<(T, Option<usize>)> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Run {
        path: path.to_path_buf(),
        problems: vec![format!("cannot read ({e}); is this a run folder written by `daad train`?")],
    })?;
    let raw: serde_json::Value = parse_json(path, &text)?;
    let found = raw.get("format_version");
    if found.and_then(|v| v.as_u64()) != Some(RUN_FORMAT_VERSION as u64) {
        return Err(Error::IncompatibleRun {
            path: path.to_path_buf(),
            found: found.map_or_else(|| "missing".to_string(), |v| v.to_string()),
            expected: RUN_FORMAT_VERSION,
        });
    }
    let step = raw.get(STEP_KEY).and_then(|v| v.as_u64()).map(|s| s as usize);
    Ok((parse_json(path, &text)?, step))
}

/// Reads and checks config.json of a folder (a run folder or a checkpoint folder).
pub fn read_config(dir: &Path) -> Result<RunConfig> {
    Ok(read_versioned(&dir.join(CONFIG_FILE))?.0)
}

/// Reads and checks state.json of a folder (a run folder or a checkpoint folder).
pub fn read_state(dir: &Path) -> Result<TrainState> {
    Ok(read_versioned(&dir.join(STATE_FILE))?.0)
}

/// Reads only the metadata of a safetensors file (its header), without the tensors.
pub(crate) fn safetensors_metadata(path: &Path) -> Result<HashMap<String, String>> {
    let corrupt = |why: String| Error::Run {
        path: path.to_path_buf(),
        problems: vec![format!(
            "not a readable safetensors file ({why}); the file is corrupt or truncated"
        )],
    };
    let mut f = File::open(path).map_err(|e| io_err(path, e))?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len).map_err(|e| corrupt(e.to_string()))?;
    let n = u64::from_le_bytes(len);
    if n > MAX_HEADER {
        return Err(corrupt(format!("header of {n} bytes")));
    }
    let mut header = Vec::with_capacity(n as usize);
    f.take(n).read_to_end(&mut header).map_err(|e| corrupt(e.to_string()))?;
    if header.len() as u64 != n {
        return Err(corrupt("header cut short".into()));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&header).map_err(|e| corrupt(e.to_string()))?;
    Ok(v.get("__metadata__")
        .and_then(|m| m.as_object())
        .map(|m| {
            m.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string()))).collect()
        })
        .unwrap_or_default())
}

/// The parts of one checkpoint folder, read and checked: every part carries the same step.
#[derive(Clone, Debug)]
pub(crate) struct Verified {
    pub config: RunConfig,
    pub state: TrainState,
}

/// Reads a checkpoint folder and checks that model, optimiser, state and config carry one step.
pub(crate) fn verify_checkpoint(dir: &Path) -> Result<Verified> {
    let (config, config_step): (RunConfig, _) = read_versioned(&dir.join(CONFIG_FILE))?;
    let (state, _): (TrainState, _) = read_versioned(&dir.join(STATE_FILE))?;
    let step = state.global_step;
    let mut problems = Vec::new();
    let mut check = |what: &str, found: Option<usize>| match found {
        Some(s) if s == step => {}
        Some(s) => problems.push(format!("{what} is at step {s}, {STATE_FILE} at step {step}")),
        None => problems.push(format!("{what} carries no step")),
    };
    check(CONFIG_FILE, config_step);
    for file in [MODEL_FILE, OPTIMIZER_FILE] {
        let meta = safetensors_metadata(&dir.join(file))?;
        check(file, meta.get(STEP_KEY).and_then(|s| s.parse().ok()));
    }
    if !problems.is_empty() {
        return Err(Error::Run { path: dir.to_path_buf(), problems });
    }
    Ok(Verified { config, state })
}

/// Rebuilds a trainer (model weights and optimiser moments) from a checkpoint folder.
pub(crate) fn load_trainer(
    dir: &Path,
    config: &RunConfig,
    device: &candle_core::Device,
) -> Result<Trainer> {
    let mut model = daad_model::DaadModel::new(&config.model, 0, device)?;
    model.load(&dir.join(MODEL_FILE))?;
    let mut trainer = Trainer::new(model, &config.train)?;
    let path = dir.join(OPTIMIZER_FILE);
    let (state, meta) = daad_model::io::load_safetensors(&path, device)?;
    let mut problems = Vec::new();
    if meta.get("format").map(String::as_str) != Some(OPTIMIZER_FORMAT) {
        problems.push(format!("format is {:?}, expected {OPTIMIZER_FORMAT:?}", meta.get("format")));
    }
    if meta.get("variant").map(String::as_str) != Some(config.model.variant.name()) {
        problems.push(format!(
            "variant is {:?}, config.json says {}",
            meta.get("variant"),
            config.model.variant
        ));
    }
    if !problems.is_empty() {
        return Err(Error::Run { path, problems });
    }
    trainer.import_optimizer(&state).map_err(|e| Error::Run {
        path: path.clone(),
        problems: vec![format!("optimiser state does not fit the model: {e}")],
    })?;
    Ok(trainer)
}

/// Test hook (feature `failpoints`): make the n-th file operation of [`Checkpointer::save`] on
/// this thread fail as a kill would (nothing is cleaned up).
#[cfg(feature = "failpoints")]
pub mod failpoints {
    use std::cell::Cell;

    thread_local! {
        static FAIL_AT: Cell<Option<usize>> = const { Cell::new(None) };
        static COUNT: Cell<usize> = const { Cell::new(0) };
    }

    /// Fails the `op`-th operation (1-based, counted over all saves from now on); None disarms.
    pub fn arm(op: Option<usize>) {
        FAIL_AT.with(|f| f.set(op));
        COUNT.with(|c| c.set(0));
    }

    /// Operations counted since [`arm`] (to learn how many a save has).
    pub fn count() -> usize {
        COUNT.with(|c| c.get())
    }

    pub(crate) fn hit() -> crate::Result<()> {
        let n = COUNT.with(|c| {
            c.set(c.get() + 1);
            c.get()
        });
        if FAIL_AT.with(|f| f.get()) == Some(n) {
            FAIL_AT.with(|f| f.set(None));
            return Err(crate::Error::FaultInjected(n));
        }
        Ok(())
    }
}

#[inline]
fn failpoint() -> Result<()> {
    #[cfg(feature = "failpoints")]
    failpoints::hit()?;
    Ok(())
}

/// Whether an error is an injected kill (then nothing may be cleaned up, as after a real kill).
pub(crate) fn is_injected(_e: &Error) -> bool {
    #[cfg(feature = "failpoints")]
    if matches!(_e, Error::FaultInjected(_)) {
        return true;
    }
    false
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    daad_data::io::write_synced(path, bytes).map_err(|e| io_err(path, e))
}

fn sync_dir(dir: &Path) -> Result<()> {
    daad_data::io::sync_dir(dir).map_err(|e| io_err(dir, e))
}

fn tmp_name(name: &str) -> String {
    format!(".{name}.tmp-{}", std::process::id())
}

/// Whether a file name is a temporary of the atomic writer (`.NAME.tmp-PID`).
pub(crate) fn is_temp_name(name: &str) -> bool {
    daad_data::io::is_temp_name(name)
}

/// Replaces `path` by `bytes` durably (daad-data's one atomic writer).
fn replace_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    daad_data::io::write_atomic(path, bytes).map_err(|e| io_err(path, e))
}

/// Publishes `src` as `dst` by rename: a hard link (no copy) where the file system has them.
fn publish_file(src: &Path, dst: &Path) -> Result<()> {
    let name = dst.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dst.with_file_name(tmp_name(&name));
    let _ = std::fs::remove_file(&tmp);
    if std::fs::hard_link(src, &tmp).is_err() {
        std::fs::copy(src, &tmp).map_err(|e| io_err(&tmp, e))?;
        File::open(&tmp).and_then(|f| f.sync_all()).map_err(|e| io_err(&tmp, e))?;
    }
    std::fs::rename(&tmp, dst).map_err(|e| io_err(dst, e))
}

/// A checkpoint folder name: `step-N` (zero-padded so names sort by step), `step-N.k` for the
/// k-th later checkpoint at the same step (e.g. the final one after a stop at the last step).
fn checkpoint_name(step: usize, k: usize) -> String {
    if k == 0 {
        format!("step-{step:010}")
    } else {
        format!("step-{step:010}.{k}")
    }
}

/// Parses a checkpoint folder name into (step, k).
pub(crate) fn parse_checkpoint_name(name: &str) -> Option<(usize, usize)> {
    let rest = name.strip_prefix("step-")?;
    let (step, k) = match rest.split_once('.') {
        Some((s, k)) => (s, k.parse().ok()?),
        None => (rest, 0),
    };
    Some((step.parse().ok()?, k))
}

/// The committed-name checkpoint folders of a run, newest first.
pub(crate) fn list_checkpoints(run: &Path) -> Vec<(usize, usize, PathBuf)> {
    let dir = run.join(CHECKPOINTS_DIR);
    let mut out: Vec<(usize, usize, PathBuf)> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let (s, k) = parse_checkpoint_name(&name)?;
            e.path().is_dir().then(|| (s, k, e.path()))
        })
        .collect();
    out.sort_by_key(|c| std::cmp::Reverse((c.0, c.1)));
    out
}

/// The folder `checkpoints/latest` names, if the pointer is there and well formed.
pub(crate) fn read_latest(run: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(run.join(CHECKPOINTS_DIR).join(LATEST_FILE)).ok()?;
    let name = text.trim();
    parse_checkpoint_name(name)?;
    Some(run.join(CHECKPOINTS_DIR).join(name))
}

/// Removes what an interrupted writer leaves: temp files of the run folder and of `checkpoints/`
/// and partial checkpoint folders. Call only while holding the run's lock. Returns what it removed.
pub fn remove_stale(run: &Path) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for dir in [run.to_path_buf(), run.join(CHECKPOINTS_DIR)] {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !is_temp_name(&name) {
                continue;
            }
            let p = e.path();
            let r = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
            r.map_err(|err| io_err(&p, err))?;
            removed.push(p);
        }
    }
    // A checkpoints/ folder left empty by a first checkpoint that never completed.
    let _ = std::fs::remove_dir(run.join(CHECKPOINTS_DIR));
    Ok(removed)
}

/// Writes transactional checkpoints into a run folder and keeps the last `keep`.
#[derive(Clone, Debug)]
pub struct Checkpointer {
    run: PathBuf,
    keep: usize,
}

impl Checkpointer {
    /// A checkpointer for the run folder `run` keeping the last `keep` (at least 1) checkpoints.
    pub fn new(run: &Path, keep: usize) -> Self {
        Self { run: run.to_path_buf(), keep: keep.max(1) }
    }

    /// Writes one checkpoint of `trainer` at `state.global_step` and commits it; on an error the
    /// partial checkpoint is removed and the previous one stays committed. Returns its folder.
    pub fn save(
        &self,
        trainer: &Trainer,
        config: &RunConfig,
        state: &TrainState,
    ) -> Result<PathBuf> {
        let ckpts = self.run.join(CHECKPOINTS_DIR);
        let mut k = 0;
        while ckpts.join(checkpoint_name(state.global_step, k)).exists() {
            k += 1;
        }
        let name = checkpoint_name(state.global_step, k);
        let tmp = ckpts.join(tmp_name(&name));
        match self.save_into(&tmp, &name, trainer, config, state) {
            Ok(p) => Ok(p),
            Err(e) if is_injected(&e) => Err(e),
            Err(e) => {
                // Whatever the failure, no partial checkpoint or temp file outlives it.
                let _ = std::fs::remove_dir_all(&tmp);
                let _ = remove_stale(&self.run);
                Err(e)
            }
        }
    }

    fn save_into(
        &self,
        tmp: &Path,
        name: &str,
        trainer: &Trainer,
        config: &RunConfig,
        state: &TrainState,
    ) -> Result<PathBuf> {
        let ckpts = self.run.join(CHECKPOINTS_DIR);
        std::fs::create_dir_all(&ckpts).map_err(|e| io_err(&ckpts, e))?;
        let _ = std::fs::remove_dir_all(tmp);
        std::fs::create_dir(tmp).map_err(|e| io_err(tmp, e))?;
        let step = state.global_step.to_string();

        // 1. the model, with the step in its metadata (read by DaadModel::load like its own files)
        let (tensors, mut meta) = trainer.model().weights_with_metadata();
        meta.insert(STEP_KEY.to_string(), step.clone());
        write_synced(&tmp.join(MODEL_FILE), &serialize(&tmp.join(MODEL_FILE), &tensors, meta)?)?;
        failpoint()?;
        // 2. the optimiser
        let meta = HashMap::from([
            ("format".to_string(), OPTIMIZER_FORMAT.to_string()),
            ("format_version".to_string(), RUN_FORMAT_VERSION.to_string()),
            ("variant".to_string(), config.model.variant.name().to_string()),
            (STEP_KEY.to_string(), step),
        ]);
        let opt = trainer.export_optimizer()?;
        write_synced(
            &tmp.join(OPTIMIZER_FILE),
            &serialize(&tmp.join(OPTIMIZER_FILE), &opt, meta)?,
        )?;
        failpoint()?;
        // 3. state.json (its global_step is the step)
        write_synced(&tmp.join(STATE_FILE), &to_json(state, None))?;
        failpoint()?;
        // 4. config.json with the step
        write_synced(&tmp.join(CONFIG_FILE), &to_json(config, Some(state.global_step)))?;
        failpoint()?;
        // 5. complete and durable: give it its committed name
        sync_dir(tmp)?;
        let dir = ckpts.join(name);
        std::fs::rename(tmp, &dir).map_err(|e| io_err(&dir, e))?;
        sync_dir(&ckpts)?;
        failpoint()?;
        // 6. the commit point
        replace_durably(&ckpts.join(LATEST_FILE), format!("{name}\n").as_bytes())?;
        failpoint()?;
        // 7. publish the top-level copies users and older tools read
        for file in [MODEL_FILE, CONFIG_FILE, STATE_FILE] {
            publish_file(&dir.join(file), &self.run.join(file))?;
            failpoint()?;
        }
        let mut log = String::new();
        for r in &state.history {
            log.push_str(&serde_json::to_string(r).expect("records serialise"));
            log.push('\n');
        }
        replace_durably(&self.run.join(LOG_FILE), log.as_bytes())?;
        failpoint()?;
        // 8. keep the last `keep` (the committed one always among them)
        for (_, _, old) in list_checkpoints(&self.run).into_iter().skip(self.keep) {
            if old != dir {
                std::fs::remove_dir_all(&old).map_err(|e| io_err(&old, e))?;
            }
        }
        failpoint()?;
        Ok(dir)
    }
}

fn serialize(
    path: &Path,
    tensors: &[(String, candle_core::Tensor)],
    meta: HashMap<String, String>,
) -> Result<Vec<u8>> {
    let cpu: Vec<(String, candle_core::Tensor)> = tensors
        .iter()
        .map(|(n, t)| Ok((n.clone(), t.to_device(&candle_core::Device::Cpu)?.contiguous()?)))
        .collect::<candle_core::Result<_>>()?;
    safetensors::serialize(cpu.iter().map(|(n, t)| (n.as_str(), t)), Some(meta)).map_err(|e| {
        Error::Run { path: path.to_path_buf(), problems: vec![format!("cannot serialise: {e}")] }
    })
}

fn to_json<T: Serialize>(value: &T, step: Option<usize>) -> Vec<u8> {
    let mut v = serde_json::to_value(value).expect("run types serialise");
    if let (Some(step), Some(obj)) = (step, v.as_object_mut()) {
        obj.insert(STEP_KEY.to_string(), step.into());
    }
    serde_json::to_vec_pretty(&v).expect("run types serialise")
}
