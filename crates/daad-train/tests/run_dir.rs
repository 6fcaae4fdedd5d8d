//! The run folder: what `train` may write, what it refuses (with the contents listed), resume
//! conflicts, the lock, validation on open, and no empty folders after a failed start.

mod common;

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;

use anyhow::Result;
use candle_core::Device;
use daad_model::Variant;
use daad_train::{
    train, Error, NoProgress, Progress, RunDir, RunLock, Setting, StepInfo, CONFIG_FILE,
    MODEL_FILE, STATE_FILE,
};

fn no_stop() -> AtomicBool {
    AtomicBool::new(false)
}

#[test]
fn a_model_without_state_is_never_overwritten() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (root, cat) = common::synth(dir.path(), 6);
    let dev = Device::Cpu;
    let mut spec = common::spec(&root, &cat, &dir.path().join("run"), Variant::Daad);
    spec.train.epochs = 1;
    train(&spec, &dev, &mut NoProgress, &no_stop())?;

    // The defect of issue 13: a folder with a model and its config but no state.json.
    let kept = dir.path().join("kept");
    std::fs::create_dir(&kept)?;
    for f in [MODEL_FILE, CONFIG_FILE] {
        std::fs::copy(spec.out.join(f), kept.join(f))?;
    }
    let model = std::fs::read(kept.join(MODEL_FILE))?;
    let mut again = spec.clone();
    again.out = kept.clone();
    let err = train(&again, &dev, &mut NoProgress, &no_stop()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::NotEmpty { force_allowed: false, .. }), "{msg}");
    assert!(msg.contains("model.safetensors") && msg.contains("config.json"), "{msg}");
    assert!(!msg.contains("--resume") && !msg.contains("--force"), "{msg}");
    again.resume = true;
    let err = train(&again, &dev, &mut NoProgress, &no_stop()).unwrap_err();
    assert!(matches!(err, Error::NoRunToResume { .. }), "{err}");
    assert!(err.to_string().contains("model.safetensors"), "{err}");
    assert_eq!(std::fs::read(kept.join(MODEL_FILE))?, model, "the model was touched");

    // Opening it for evaluation says it is incomplete and never advises --resume.
    let err = RunDir::open(&kept).unwrap_err();
    assert!(matches!(err, Error::IncompleteRun { .. }), "{err}");
    assert!(err.to_string().contains("state.json (missing)"), "{err}");
    assert!(!err.to_string().contains("--resume"), "{err}");
    Ok(())
}

#[test]
fn a_users_folder_is_listed_and_never_deleted() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (root, cat) = common::synth(dir.path(), 6);
    let mine = dir.path().join("mine");
    std::fs::create_dir(&mine)?;
    std::fs::write(mine.join(CONFIG_FILE), "my own settings")?;
    std::fs::write(mine.join("notes.txt"), "mine")?;
    let mut spec = common::spec(&root, &cat, &mine, Variant::Daad);
    spec.train.epochs = 1;
    let err = train(&spec, &Device::Cpu, &mut NoProgress, &no_stop()).unwrap_err();
    assert!(err.to_string().contains("config.json, notes.txt"), "{err}");
    // --force replaces daad's files only: a folder with other files is refused, listing them.
    spec.force = true;
    let err = train(&spec, &Device::Cpu, &mut NoProgress, &no_stop()).unwrap_err();
    assert!(matches!(&err, Error::NotEmpty { entries, .. } if entries == &["notes.txt"]), "{err}");
    assert_eq!(std::fs::read_to_string(mine.join(CONFIG_FILE))?, "my own settings");
    assert!(mine.join("notes.txt").exists());
    Ok(())
}

#[test]
fn resume_needs_a_run_and_force_replaces_one() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (root, cat) = common::synth(dir.path(), 6);
    let dev = Device::Cpu;
    let out = dir.path().join("typo");
    let mut spec = common::spec(&root, &cat, &out, Variant::Daad);
    spec.train.epochs = 1;
    spec.resume = true;
    // A mistyped folder: an error, not a fresh run, and nothing is created.
    let err = train(&spec, &dev, &mut NoProgress, &no_stop()).unwrap_err();
    assert!(matches!(err, Error::NoRunToResume { .. }), "{err}");
    assert!(!out.exists());
    std::fs::create_dir(&out)?;
    let err = train(&spec, &dev, &mut NoProgress, &no_stop()).unwrap_err();
    assert!(matches!(err, Error::NoRunToResume { .. }), "{err}");
    assert_eq!(std::fs::read_dir(&out)?.count(), 0, "{:?}", common::tree(&out));

    spec.resume = false;
    let first = train(&spec, &dev, &mut NoProgress, &no_stop())?;
    let err = train(&spec, &dev, &mut NoProgress, &no_stop()).unwrap_err();
    assert!(matches!(err, Error::RunExists { .. }), "{err}");
    assert!(!err.to_string().contains("--force"), "{err}");
    spec.force = true;
    spec.train.seed = 9;
    let second = train(&spec, &dev, &mut NoProgress, &no_stop())?;
    assert_eq!(second.config.train.seed, 9);
    assert_ne!(first.config.train.seed, 9);
    spec.resume = true;
    assert!(matches!(
        train(&spec, &dev, &mut NoProgress, &no_stop()).unwrap_err(),
        Error::InvalidConfig(_)
    ));
    Ok(())
}

#[test]
fn resume_lists_every_conflict_and_keeps_the_runs_epochs() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (root, cat) = common::synth(dir.path(), 6);
    let dev = Device::Cpu;
    let mut spec = common::spec(&root, &cat, &dir.path().join("run"), Variant::Daad);
    spec.train.epochs = 1;
    let done = train(&spec, &dev, &mut NoProgress, &no_stop())?;
    let steps = done.global_step;

    // Conflicting explicit settings: each one listed; an explicit lr is an allowed override.
    let mut other = common::spec(&root, &cat, &spec.out, Variant::DaadPlus);
    other.model.image_size = 64;
    other.train.seed = 11;
    other.train.lr = 5e-4;
    other.resume = true;
    other.explicit = [Setting::Variant, Setting::ImageSize, Setting::Seed, Setting::Lr].into();
    let err = train(&other, &dev, &mut NoProgress, &no_stop()).unwrap_err();
    let Error::ResumeConflicts { conflicts, .. } = &err else { panic!("{err}") };
    assert_eq!(conflicts.len(), 3, "{err}");
    let msg = err.to_string();
    for what in ["variant is daad in the run, the command asks for daad+", "image size", "seed"] {
        assert!(msg.contains(what), "{what}: {msg}");
    }

    // The same settings, not explicit (preset defaults): the run's own are used. Without an
    // explicit --epochs the finished 1-epoch run is not extended to the preset's epochs.
    other.explicit.clear();
    other.train.epochs = 50;
    let again = train(&other, &dev, &mut NoProgress, &no_stop())?;
    assert_eq!((again.epochs_done, again.global_step), (1, steps));
    assert_eq!(again.config.model.variant, Variant::Daad);
    assert_eq!(again.config.train.epochs, 1);

    // An explicit --epochs extends it; fewer epochs than done is a conflict.
    other.explicit = [Setting::Epochs].into();
    other.train.epochs = 2;
    let longer = train(&other, &dev, &mut NoProgress, &no_stop())?;
    assert_eq!((longer.epochs_done, longer.global_step), (2, 2 * steps));
    other.train.epochs = 1;
    let err = train(&other, &dev, &mut NoProgress, &no_stop()).unwrap_err();
    assert!(err.to_string().contains("fewer than the 2"), "{err}");
    Ok(())
}

/// Blocks the training thread at its first step until told to go on.
struct Hold {
    started: mpsc::Sender<()>,
    go: mpsc::Receiver<()>,
}

impl Progress for Hold {
    fn step(&mut self, s: &StepInfo) {
        if s.global_step == 1 {
            self.started.send(()).unwrap();
            self.go.recv().unwrap();
        }
    }
}

#[test]
fn a_second_writer_fails_at_once_naming_the_pid() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (root, cat) = common::synth(dir.path(), 6);
    let out = dir.path().join("run");
    let mut spec = common::spec(&root, &cat, &out, Variant::Daad);
    spec.train.epochs = 1;

    // Two lock attempts.
    std::fs::create_dir(&out)?;
    let held = RunLock::acquire(&out)?;
    let err = RunLock::acquire(&out).unwrap_err();
    assert!(matches!(err, Error::Locked { pid: Some(p), .. } if p == std::process::id()), "{err}");
    assert!(err.to_string().contains(&format!("pid {}", std::process::id())), "{err}");
    drop(held);

    // Two trainings: the second fails while the first is running, and the first completes.
    let (started_tx, started_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel();
    let first = {
        let spec = spec.clone();
        std::thread::spawn(move || {
            let mut hold = Hold { started: started_tx, go: go_rx };
            train(&spec, &Device::Cpu, &mut hold, &AtomicBool::new(false)).map(|r| r.epochs_done)
        })
    };
    started_rx.recv()?;
    let err = train(&spec, &Device::Cpu, &mut NoProgress, &no_stop()).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    go_tx.send(())?;
    assert_eq!(first.join().unwrap()?, 1);
    // Released at the end: a resume can take it.
    spec.resume = true;
    train(&spec, &Device::Cpu, &mut NoProgress, &no_stop())?;
    Ok(())
}

#[test]
fn a_run_that_fails_before_its_first_checkpoint_leaves_no_folder() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (root, cat) = common::synth(dir.path(), 6);
    let out = dir.path().join("boom");
    let mut spec = common::spec(&root, &cat, &out, Variant::Ae);
    spec.train.epochs = 3;
    spec.train.batch_size = 2;
    // A learning rate that overflows f32: the weights are infinite after the first step, so the
    // second step's loss is not finite (before the first checkpoint, at the end of epoch 1).
    spec.train.lr = f64::MAX;
    let err = train(&spec, &Device::Cpu, &mut NoProgress, &no_stop()).unwrap_err();
    assert!(matches!(err, Error::NonFiniteLoss { .. }), "{err}");
    assert!(!out.exists(), "left behind: {:?}", common::tree(&out));
    // An existing empty folder stays empty.
    std::fs::create_dir(&out)?;
    assert!(train(&spec, &Device::Cpu, &mut NoProgress, &no_stop()).is_err());
    assert!(common::tree(&out).is_empty(), "{:?}", common::tree(&out));
    Ok(())
}

#[test]
fn a_huge_image_size_is_refused_before_loading() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (root, cat) = common::synth(dir.path(), 6);
    let out = dir.path().join("big");
    let mut spec = common::spec(&root, &cat, &out, Variant::DaadPlus);
    spec.model.image_size = 4096;
    spec.model.memory.n_items = 500;
    let t = std::time::Instant::now();
    let err = train(&spec, &Device::Cpu, &mut NoProgress, &no_stop()).unwrap_err();
    assert!(matches!(err, Error::InsufficientMemory { .. }), "{err}");
    assert!(t.elapsed().as_secs() < 5, "took {:?}", t.elapsed());
    assert!(!out.exists());
    Ok(())
}

fn fake_run(dir: &Path, config: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(CONFIG_FILE), config).unwrap();
    std::fs::write(dir.join(STATE_FILE), "{}").unwrap();
    std::fs::write(dir.join(MODEL_FILE), b"").unwrap();
}

/// The checks of the facade's former `load_run`, now RunDir::open's.
#[test]
fn open_checks_the_version_before_parsing() {
    let tmp = tempfile::tempdir().unwrap();
    let e = RunDir::open(&tmp.path().join("nope")).unwrap_err();
    assert!(matches!(e, Error::MissingRun { .. }) && e.to_string().contains("daad train"), "{e}");
    let e = RunDir::open(tmp.path()).unwrap_err();
    assert!(
        matches!(&e, Error::IncompleteRun { entries, .. } if entries[0] == "config.json (missing)"),
        "{e}"
    );
    // A future config with unknown fields: the version message, not a parse error.
    fake_run(tmp.path(), r#"{"format_version": 999, "something_new": true}"#);
    let e = RunDir::open(tmp.path()).unwrap_err();
    assert!(matches!(&e, Error::IncompatibleRun { found, .. } if found == "999"), "{e}");
    assert!(e.to_string().contains("config.json"), "{e}");
    fake_run(tmp.path(), r#"{"model": {}}"#);
    let e = RunDir::open(tmp.path()).unwrap_err();
    assert!(matches!(&e, Error::IncompatibleRun { found, .. } if found == "missing"), "{e}");
    fake_run(tmp.path(), "{not json");
    let e = RunDir::open(tmp.path()).unwrap_err();
    assert!(matches!(e, Error::Run { .. }) && e.to_string().contains("config.json"), "{e}");
    assert!(e.to_string().contains("malformed"), "{e}");
}
