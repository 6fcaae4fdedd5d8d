//! The crate's typed error.

use std::path::PathBuf;

use crate::preflight::Workload;

/// Errors of daad-train.
///
/// The run-folder variants say what is there and what to do; none advises a command that would
/// delete a trained model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A loss became NaN or infinite; the run folder keeps the last good checkpoint.
    #[error("{what} loss is {value} at epoch {epoch}, step {step}: training stopped; the last good checkpoint (if any) in {} is kept — lower the learning rate or check the data", run.display())]
    NonFiniteLoss {
        /// Which loss.
        what: &'static str,
        /// Its value.
        value: f64,
        /// 0-based epoch.
        epoch: usize,
        /// Global step.
        step: usize,
        /// The run folder.
        run: PathBuf,
    },
    /// A run folder or one of its files that cannot be used; one message per mismatch.
    #[error("{}: {}", path.display(), problems.join("; "))]
    Run {
        /// The offending file or folder.
        path: PathBuf,
        /// What is wrong and what to do.
        problems: Vec<String>,
    },
    /// The run folder to open does not exist or is not a folder.
    #[error("{}: no such run folder; pass the --out folder of a `daad train` run", path.display())]
    MissingRun {
        /// The path that was given.
        path: PathBuf,
    },
    /// The folder holds no complete checkpoint (training stopped before its first one, or files
    /// were removed); nothing can be evaluated or resumed from it.
    #[error("{} holds no complete daad run (found: {}); it cannot be evaluated or resumed — train into a new --out folder", dir.display(), list(entries))]
    IncompleteRun {
        /// The folder.
        dir: PathBuf,
        /// What is in it.
        entries: Vec<String>,
    },
    /// A run file written by a daad with another format version (checked before the full parse).
    #[error("{}: run format version {found}, this build of daad reads version {expected}; use the daad that wrote it, or train a new run into another --out folder", path.display())]
    IncompatibleRun {
        /// The file (config.json or state.json).
        path: PathBuf,
        /// The version found (`missing` when absent).
        found: String,
        /// The version this build reads.
        expected: u32,
    },
    /// `train` without resume on a folder that holds a run: nothing is overwritten.
    #[error("{} already holds a daad run ({}; found: {}); pass --resume to continue it, or choose another --out for a new run", dir.display(), summary, list(entries))]
    RunExists {
        /// The folder.
        dir: PathBuf,
        /// What the run is (epochs, step, finished).
        summary: String,
        /// What is in it.
        entries: Vec<String>,
    },
    /// `train` on a folder that holds something other than a daad run: nothing is overwritten.
    #[error("{} is not empty and holds no complete daad run (found: {}); choose another --out{}", dir.display(), list(entries), if *force_allowed { " (or --force, which deletes these files)" } else { "" })]
    NotEmpty {
        /// The folder.
        dir: PathBuf,
        /// What is in it.
        entries: Vec<String>,
        /// Every entry is a file daad writes and none is a model, so `force` may replace them
        /// (files daad did not write are never deleted, so `force` does not apply otherwise).
        force_allowed: bool,
    },
    /// Resume asked on a folder without a run to continue.
    #[error("--resume: {} holds no run to continue ({}); leave out --resume to start a new run there", dir.display(), if entries.is_empty() { "it is empty or absent".to_string() } else { format!("found: {}", list(entries)) })]
    NoRunToResume {
        /// The folder.
        dir: PathBuf,
        /// What is in it.
        entries: Vec<String>,
    },
    /// Resume asked with settings that differ from the run's; each conflict is listed.
    #[error("--resume: the command conflicts with the run in {}: {}; drop these flags to continue the run as it was trained, or train a new run into another --out", dir.display(), conflicts.join("; "))]
    ResumeConflicts {
        /// The run folder.
        dir: PathBuf,
        /// One line per conflicting setting.
        conflicts: Vec<String>,
    },
    /// Another process is writing the run folder.
    #[error("{} is being written by another daad process{}; wait for it to finish or choose another --out", dir.display(), match pid { Some(p) => format!(" (pid {p})"), None => String::new() })]
    Locked {
        /// The run folder.
        dir: PathBuf,
        /// The holder's process id, as written into the lock file.
        pid: Option<u32>,
    },
    /// The output folder cannot be written.
    #[error("{} is not writable ({source}); choose another output folder", path.display())]
    NotWritable {
        /// The folder probed.
        path: PathBuf,
        /// The failed probe.
        source: std::io::Error,
    },
    /// Not enough free disk for one checkpoint.
    #[error("{}: {} free, one checkpoint needs about {} ({}); free some space or choose another output folder", path.display(), bytes(*available), bytes(*needed), detail)]
    InsufficientDisk {
        /// The folder.
        path: PathBuf,
        /// Estimated bytes needed.
        needed: u64,
        /// Bytes available.
        available: u64,
        /// How the need was estimated.
        detail: String,
    },
    /// The estimated memory of a command exceeds what the machine has; the advice names what
    /// the user of that command can change.
    #[error("not enough memory: {} needs about {} ({}), {} is available; {}", workload.what(), bytes(*needed), detail, bytes(*available), workload.advice())]
    InsufficientMemory {
        /// Estimated bytes.
        needed: u64,
        /// Available bytes.
        available: u64,
        /// The parts of the estimate.
        detail: String,
        /// The command refused (it decides the advice).
        workload: Workload,
    },
    /// A fault injected by a test (feature `failpoints`): behaves like a kill, nothing is cleaned.
    #[cfg(feature = "failpoints")]
    #[error("injected fault after checkpoint operation {0}")]
    FaultInjected(usize),
    /// A training configuration that cannot run.
    #[error("invalid training config: {0}")]
    InvalidConfig(String),
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The io error.
        source: std::io::Error,
    },
    /// The model crate's error.
    #[error(transparent)]
    Model(#[from] daad_model::Error),
    /// The data crate's error.
    #[error(transparent)]
    Data(#[from] daad_data::Error),
    /// The layers crate's error (optimiser state).
    #[error(transparent)]
    Nn(#[from] daad_nn::Error),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// Calibration or inference failed (daad-eval).
    #[error(transparent)]
    Eval(#[from] daad_eval::Error),
}

/// Result alias of daad-train.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn io_err(path: &std::path::Path, source: std::io::Error) -> Error {
    Error::Io { path: path.to_path_buf(), source }
}

fn list(entries: &[String]) -> String {
    const SHOWN: usize = 12;
    let mut s = entries.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if entries.len() > SHOWN {
        s.push_str(&format!(" and {} more", entries.len() - SHOWN));
    }
    if s.is_empty() {
        s.push_str("nothing");
    }
    s
}

/// Bytes in binary units, for messages.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
