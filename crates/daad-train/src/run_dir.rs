//! [`RunDir`]: the one type that opens and validates a run folder, reports what is in a folder,
//! and decides what `train` may do with it ([`RunDir::prepare`]).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use candle_core::Device;
use daad_eval::Calibration;
use daad_model::{DaadModel, ModelConfig};

use crate::checkpoint::{
    list_checkpoints, load_trainer, read_config, read_latest, read_state, remove_stale,
    safetensors_metadata, verify_checkpoint, CHECKPOINTS_DIR, CONFIG_FILE, LATEST_FILE, LOG_FILE,
    MODEL_FILE, OPTIMIZER_FILE, STATE_FILE, STEP_KEY,
};
use crate::error::io_err;
use crate::lock::{RunLock, LOCK_FILE};
use crate::{Error, Result, RunConfig, TrainConfig, TrainState, Trainer};

/// A validated run folder: its configuration, its progress, and where its model is.
#[derive(Clone, Debug)]
pub struct RunDir {
    path: PathBuf,
    source: PathBuf,
    config: RunConfig,
    state: TrainState,
    legacy: bool,
    notes: Vec<String>,
}

impl RunDir {
    /// Opens a run folder read-only: resolves the committed checkpoint (`checkpoints/latest`,
    /// falling back to the newest complete checkpoint with a note when it is damaged), checks the
    /// format version on the raw JSON before the full parse, and that every part of the
    /// checkpoint carries the same step. A folder of an older daad (top-level files only, no
    /// `checkpoints/`) opens for evaluation but cannot be resumed.
    pub fn open(path: &Path) -> Result<RunDir> {
        if !path.is_dir() {
            return Err(Error::MissingRun { path: path.to_path_buf() });
        }
        if path.join(CHECKPOINTS_DIR).is_dir() {
            return Self::open_checkpoints(path);
        }
        let missing: Vec<&str> = [CONFIG_FILE, STATE_FILE, MODEL_FILE]
            .into_iter()
            .filter(|f| !path.join(f).is_file())
            .collect();
        if !missing.is_empty() {
            return Err(Error::IncompleteRun {
                dir: path.to_path_buf(),
                entries: describe(path, &missing),
            });
        }
        let config = read_config(path)?;
        let state = read_state(path)?;
        Ok(RunDir {
            path: path.to_path_buf(),
            source: path.to_path_buf(),
            config,
            state,
            legacy: true,
            notes: vec![format!(
                "{} was written by an older daad without checkpoints/: it can be evaluated but not resumed",
                path.display()
            )],
        })
    }

    fn open_checkpoints(path: &Path) -> Result<RunDir> {
        let latest = read_latest(path);
        let mut candidates: Vec<PathBuf> = latest.iter().cloned().collect();
        candidates.extend(
            list_checkpoints(path)
                .into_iter()
                .map(|(_, _, p)| p)
                .filter(|p| Some(p) != latest.as_ref()),
        );
        let mut notes = Vec::new();
        if latest.is_none() {
            notes.push(format!("{}/{LATEST_FILE} is missing or unreadable", CHECKPOINTS_DIR));
        }
        let mut incompatible = None;
        for dir in candidates {
            match verify_checkpoint(&dir) {
                Ok(v) => {
                    if !notes.is_empty() {
                        notes.push(format!(
                            "using the last complete checkpoint {} (step {}, {} epochs)",
                            dir.display(),
                            v.state.global_step,
                            v.state.epochs_done
                        ));
                        for n in &notes {
                            tracing::warn!("{n}");
                        }
                    }
                    let mut rd = RunDir {
                        path: path.to_path_buf(),
                        source: dir,
                        config: v.config,
                        state: v.state,
                        legacy: false,
                        notes,
                    };
                    rd.check_published();
                    return Ok(rd);
                }
                Err(e @ Error::IncompatibleRun { .. }) => incompatible = Some(e),
                Err(e) => notes.push(format!("checkpoint {} is unusable: {e}", dir.display())),
            }
        }
        if let Some(e) = incompatible {
            return Err(e);
        }
        let mut entries = describe(path, &[]);
        entries.extend(notes);
        Err(Error::IncompleteRun { dir: path.to_path_buf(), entries })
    }

    /// Notes (does not fix: opening is read-only) top-level copies that lag the checkpoint, as a
    /// kill during publication leaves them; the next checkpoint republishes them.
    fn check_published(&mut self) {
        let step = self.state.global_step;
        let model = safetensors_metadata(&self.path.join(MODEL_FILE))
            .ok()
            .and_then(|m| m.get(STEP_KEY).and_then(|s| s.parse::<usize>().ok()));
        let state = read_state(&self.path).ok().map(|s| s.global_step);
        if model != Some(step) || state != Some(step) {
            self.notes.push(format!(
                "the top-level {MODEL_FILE}/{STATE_FILE} are not those of the committed checkpoint (step {step}); daad reads the checkpoint"
            ));
        }
    }

    /// The run folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The folder the model is read from (the committed checkpoint, or the run folder itself for
    /// an older daad's run).
    pub fn checkpoint_dir(&self) -> &Path {
        &self.source
    }

    /// config.json of the committed checkpoint.
    pub fn config(&self) -> &RunConfig {
        &self.config
    }

    /// state.json of the committed checkpoint.
    pub fn state(&self) -> &TrainState {
        &self.state
    }

    /// The step every part of the committed checkpoint carries.
    pub fn step(&self) -> usize {
        self.state.global_step
    }

    /// All epochs done and calibrated.
    pub fn is_finished(&self) -> bool {
        self.state.finished
    }

    /// The score scaling and threshold stored by training (None for an unfinished run).
    pub fn calibration(&self) -> Option<&Calibration> {
        self.config.calibration.as_ref()
    }

    /// What opening found worth saying (fallbacks, stale top-level copies, older layout).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Whether the run can be resumed (written with transactional checkpoints).
    pub fn resumable(&self) -> bool {
        !self.legacy
    }

    /// One line describing the run, for messages.
    pub fn summary(&self) -> String {
        format!(
            "{} {}/{} epochs, step {}{}",
            self.config.model.variant,
            self.state.epochs_done,
            self.config.train.epochs,
            self.state.global_step,
            if self.state.finished { ", finished" } else { ", unfinished" }
        )
    }

    /// Builds the model and loads its weights (use it in evaluation mode: [`DaadModel::infer`]).
    pub fn load_model(&self, device: &Device) -> Result<DaadModel> {
        let mut model = DaadModel::new(&self.config.model, 0, device)?;
        model.load(&self.source.join(MODEL_FILE))?;
        Ok(model)
    }

    /// Rebuilds the trainer (weights and optimiser moments) of the committed checkpoint with the
    /// given (possibly extended) config.
    pub(crate) fn load_trainer(&self, config: &RunConfig, device: &Device) -> Result<Trainer> {
        load_trainer(&self.source, config, device)
    }

    /// What is in `path`, for the decisions of [`RunDir::prepare`] and for messages.
    pub fn inspect(path: &Path) -> Result<Contents> {
        if !path.exists() {
            return Ok(Contents::Absent);
        }
        if !path.is_dir() {
            return Err(Error::Run {
                path: path.to_path_buf(),
                problems: vec!["is a file, not a folder; choose a folder for --out".into()],
            });
        }
        let entries = describe(path, &[]);
        if entries.is_empty() {
            return Ok(Contents::Empty);
        }
        match RunDir::open(path) {
            Ok(run) => Ok(Contents::Run(Box::new(run))),
            Err(e @ Error::IncompatibleRun { .. }) => Err(e),
            Err(e) => Ok(Contents::Other { entries, problem: e.to_string() }),
        }
    }

    /// Decides what `train` may do with `out` and takes its lock for the whole run:
    /// - absent or empty: a new run (an absent folder is created, and removed again if the run
    ///   fails before its first checkpoint);
    /// - a complete run: [`Error::RunExists`] unless `mode` is [`WriteMode::Resume`];
    /// - anything else: [`Error::NotEmpty`] listing what is there;
    /// - [`WriteMode::Force`] replaces a daad run or daad's partial files, and never deletes a
    ///   file daad does not write (so `--out .` cannot wipe a user's folder).
    ///
    /// Resume on a folder without a run is [`Error::NoRunToResume`]. Stale temp files and partial
    /// checkpoints of an interrupted writer are removed first.
    pub fn prepare(out: &Path, mode: WriteMode) -> Result<Prepared> {
        let created = match RunDir::inspect(out)? {
            Contents::Absent => {
                if mode == WriteMode::Resume {
                    return Err(Error::NoRunToResume { dir: out.to_path_buf(), entries: vec![] });
                }
                std::fs::create_dir_all(out).map_err(|e| io_err(out, e))?;
                true
            }
            _ => false,
        };
        let lock = match RunLock::acquire(out) {
            Ok(l) => l,
            Err(e) => {
                if created {
                    let _ = std::fs::remove_dir(out);
                }
                return Err(e);
            }
        };
        let mut guard = Prepared { lock: Some(lock), created, committed: false, resume: None };
        remove_stale(out)?;
        match (RunDir::inspect(out)?, mode) {
            (Contents::Absent | Contents::Empty, WriteMode::Resume) => {
                return Err(Error::NoRunToResume { dir: out.to_path_buf(), entries: vec![] })
            }
            (Contents::Absent | Contents::Empty, _) => {}
            (Contents::Run(run), WriteMode::Resume) => {
                if !run.resumable() {
                    return Err(Error::Run {
                        path: out.to_path_buf(),
                        problems: vec![format!(
                            "{}; train a new run into another --out",
                            run.notes().join("; ")
                        )],
                    });
                }
                remove_uncommitted(&run)?;
                guard.committed = true;
                guard.resume = Some(*run);
            }
            (Contents::Run(run), WriteMode::New) => {
                return Err(Error::RunExists {
                    dir: out.to_path_buf(),
                    summary: run.summary(),
                    entries: describe(out, &[]),
                });
            }
            (Contents::Other { entries, .. }, WriteMode::Resume) => {
                return Err(Error::NoRunToResume { dir: out.to_path_buf(), entries })
            }
            (Contents::Other { entries, .. }, WriteMode::New) => {
                let force_allowed = foreign(out).is_empty() && !out.join(MODEL_FILE).exists();
                return Err(Error::NotEmpty { dir: out.to_path_buf(), entries, force_allowed });
            }
            (Contents::Run(_) | Contents::Other { .. }, WriteMode::Force) => {
                let foreign = foreign(out);
                if !foreign.is_empty() {
                    return Err(Error::NotEmpty {
                        dir: out.to_path_buf(),
                        entries: foreign,
                        force_allowed: false,
                    });
                }
                for name in DAAD_ENTRIES {
                    let p = out.join(name);
                    let r = if p.is_dir() {
                        std::fs::remove_dir_all(&p)
                    } else if p.exists() {
                        std::fs::remove_file(&p)
                    } else {
                        Ok(())
                    };
                    r.map_err(|e| io_err(&p, e))?;
                }
                tracing::warn!("--force: the run in {} was deleted", out.display());
            }
        }
        Ok(guard)
    }
}

/// What `train` is asked to do with its output folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// A new run: the folder must be absent or empty.
    New,
    /// Continue the complete run in the folder.
    Resume,
    /// A new run replacing a daad run or daad's partial files (never other files).
    Force,
}

/// What a folder holds ([`RunDir::inspect`]).
#[derive(Debug)]
pub enum Contents {
    /// Nothing at that path.
    Absent,
    /// An empty folder (a lock file left by a finished writer counts as empty).
    Empty,
    /// A complete run.
    Run(Box<RunDir>),
    /// Something else: the entries, and why it is not a run.
    Other {
        /// The names found (folders end in `/`).
        entries: Vec<String>,
        /// Why it does not open as a run.
        problem: String,
    },
}

/// A run folder held by `train`: the lock, and the run to resume. Dropped before the first
/// checkpoint committed (a failed start), it removes what it created so no empty folder stays.
#[derive(Debug)]
pub struct Prepared {
    lock: Option<RunLock>,
    created: bool,
    committed: bool,
    resume: Option<RunDir>,
}

impl Prepared {
    /// The run to resume ([`WriteMode::Resume`]).
    pub fn resume(&self) -> Option<&RunDir> {
        self.resume.as_ref()
    }

    /// Records that a checkpoint is committed: the folder now holds a run and stays.
    pub fn committed(&mut self) {
        self.committed = true;
    }

    /// Leaves the folder as it is on drop (a simulated kill cleans nothing up).
    pub(crate) fn abandon(&mut self) {
        self.committed = true;
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        if let Some(lock) = self.lock.take() {
            let dir = lock.dir().to_path_buf();
            let _ = remove_stale(&dir);
            let _ = std::fs::remove_dir(dir.join(CHECKPOINTS_DIR));
            let _ = std::fs::remove_file(dir.join(LOCK_FILE));
            drop(lock);
            if self.created {
                // remove_dir only removes an empty folder: anything else stays.
                let _ = std::fs::remove_dir(&dir);
            }
        }
    }
}

/// Entries daad writes into a run folder (what `force` may delete).
const DAAD_ENTRIES: [&str; 7] =
    [CHECKPOINTS_DIR, MODEL_FILE, OPTIMIZER_FILE, CONFIG_FILE, STATE_FILE, LOG_FILE, "test"];

/// Entries of `dir` daad did not write.
fn foreign(dir: &Path) -> Vec<String> {
    describe(dir, &[])
        .into_iter()
        .filter(|e| !DAAD_ENTRIES.contains(&e.trim_end_matches('/')))
        .collect()
}

/// The names in `dir` (folders end in `/`, the lock file left out), sorted, then `missing`
/// files as `NAME (missing)`.
fn describe(dir: &Path, missing: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == LOCK_FILE {
                return None;
            }
            Some(if e.path().is_dir() { format!("{name}/") } else { name })
        })
        .collect();
    v.sort();
    v.extend(missing.iter().map(|m| format!("{m} (missing)")));
    v
}

/// Removes checkpoint folders newer than the committed one (written completely but never
/// committed: a kill between the rename and the pointer switch).
fn remove_uncommitted(run: &RunDir) -> Result<()> {
    let Some(name) = run.source.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Ok(());
    };
    let Some(committed) = crate::checkpoint::parse_checkpoint_name(&name) else { return Ok(()) };
    for (s, k, p) in list_checkpoints(&run.path) {
        if (s, k) > committed {
            tracing::warn!(
                "removing {}: written after the committed checkpoint {name}",
                p.display()
            );
            std::fs::remove_dir_all(&p).map_err(|e| io_err(&p, e))?;
        }
    }
    Ok(())
}

/// A setting of a [`crate::TrainSpec`] that a user can set explicitly (a flag). On resume a
/// setting the user did not set is taken from the run; one they set must agree with the run,
/// except the ones that may change ([`Setting::may_change_on_resume`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Setting {
    /// The model variant.
    Variant,
    /// The settings preset.
    Preset,
    /// Image side.
    ImageSize,
    /// Total epochs (may change: extends a run).
    Epochs,
    /// Images per step.
    BatchSize,
    /// Learning rate (may change: an explicit override applies from the resumed step on).
    Lr,
    /// Division rates (spatial and channel).
    Division,
    /// Memory items per bank.
    MemorySize,
    /// Held-out fraction.
    ValFraction,
    /// Seed.
    Seed,
    /// Loss weights (reconstruction, adversarial, alignment).
    Losses,
    /// Score weight g.
    Gamma,
    /// Checkpoint interval (may change).
    CheckpointEvery,
    /// Threshold quantile of the calibration (may change: applies at the end).
    ThresholdQuantile,
    /// Random flips.
    Flips,
}

impl Setting {
    /// Whether a resumed run may take a new value of this setting (it changes neither the model
    /// nor the data order): epochs, learning rate, checkpoint interval, threshold quantile.
    pub fn may_change_on_resume(self) -> bool {
        matches!(
            self,
            Setting::Epochs | Setting::Lr | Setting::CheckpointEvery | Setting::ThresholdQuantile
        )
    }
}

/// The settings a user set explicitly ([`crate::TrainSpec::explicit`]); empty = all defaults.
pub type Explicit = BTreeSet<Setting>;

/// The effective model and training configs of a resumed run: the run's own, with only the
/// explicitly set settings that may change taken from the spec. Every explicit setting that
/// conflicts with the run is listed in one [`Error::ResumeConflicts`].
pub fn resume_configs(
    run: &RunDir,
    model: &ModelConfig,
    train: &TrainConfig,
    explicit: &Explicit,
) -> Result<(ModelConfig, TrainConfig)> {
    let (rm, rt) = (&run.config.model, &run.config.train);
    let mut conflicts = Vec::new();
    let mut check = |s: Setting, name: &str, differs: bool, ours: String, theirs: String| {
        if explicit.contains(&s) && differs && !s.may_change_on_resume() {
            conflicts.push(format!("{name} is {theirs} in the run, the command asks for {ours}"));
        }
    };
    check(
        Setting::Variant,
        "variant",
        model.variant != rm.variant,
        model.variant.to_string(),
        rm.variant.to_string(),
    );
    check(
        Setting::Preset,
        "preset",
        train.preset != rt.preset,
        train.preset.to_string(),
        rt.preset.to_string(),
    );
    check(
        Setting::ImageSize,
        "image size",
        model.image_size != rm.image_size,
        model.image_size.to_string(),
        rm.image_size.to_string(),
    );
    check(
        Setting::BatchSize,
        "batch size",
        train.batch_size != rt.batch_size,
        train.batch_size.to_string(),
        rt.batch_size.to_string(),
    );
    check(
        Setting::Division,
        "division rates",
        model.memory.rates != rm.memory.rates,
        format!("{:?}", model.memory.rates),
        format!("{:?}", rm.memory.rates),
    );
    check(
        Setting::MemorySize,
        "memory size",
        model.memory.n_items != rm.memory.n_items,
        model.memory.n_items.to_string(),
        rm.memory.n_items.to_string(),
    );
    check(
        Setting::ValFraction,
        "validation fraction",
        train.val_fraction != rt.val_fraction,
        train.val_fraction.to_string(),
        rt.val_fraction.to_string(),
    );
    check(
        Setting::Seed,
        "seed",
        train.seed != rt.seed,
        train.seed.to_string(),
        rt.seed.to_string(),
    );
    check(
        Setting::Losses,
        "loss weights",
        model.losses != rm.losses || model.discriminator != rm.discriminator,
        format!("{:?}", model.losses),
        format!("{:?}", rm.losses),
    );
    check(
        Setting::Gamma,
        "gamma",
        model.gamma != rm.gamma,
        model.gamma.to_string(),
        rm.gamma.to_string(),
    );
    check(
        Setting::Flips,
        "flips",
        (train.flip_h, train.flip_v) != (rt.flip_h, rt.flip_v),
        format!("{:?}", (train.flip_h, train.flip_v)),
        format!("{:?}", (rt.flip_h, rt.flip_v)),
    );
    let mut t = rt.clone();
    if explicit.contains(&Setting::Epochs) {
        if train.epochs < run.state.epochs_done {
            conflicts.push(format!(
                "epochs {} is fewer than the {} the run has done",
                train.epochs, run.state.epochs_done
            ));
        }
        t.epochs = train.epochs;
    }
    if explicit.contains(&Setting::Lr) {
        t.lr = train.lr;
    }
    if explicit.contains(&Setting::CheckpointEvery) {
        t.checkpoint_every = train.checkpoint_every;
    }
    if explicit.contains(&Setting::ThresholdQuantile) {
        t.threshold_quantile = train.threshold_quantile;
    }
    if !conflicts.is_empty() {
        return Err(Error::ResumeConflicts { dir: run.path.clone(), conflicts });
    }
    Ok((rm.clone(), t))
}

/// A trained run loaded for evaluation: [`RunDir::open`] plus [`RunDir::load_model`].
pub struct Run {
    /// The run folder.
    pub dir: PathBuf,
    /// The model (use it in evaluation mode: [`DaadModel::infer`]).
    pub model: DaadModel,
    /// config.json.
    pub config: RunConfig,
    /// state.json.
    pub state: TrainState,
}

impl Run {
    /// Opens and validates a run folder ([`RunDir::open`]) and loads its model.
    pub fn load(dir: &Path, device: &Device) -> Result<Run> {
        let rd = RunDir::open(dir)?;
        let model = rd.load_model(device)?;
        Ok(Run { dir: rd.path, model, config: rd.config, state: rd.state })
    }

    /// The score scaling and threshold stored by training (None for an unfinished run).
    pub fn calibration(&self) -> Option<&Calibration> {
        self.config.calibration.as_ref()
    }
}
