//! Run folders: resume reproduces an uninterrupted run; corrupt or mismatched files are named.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use candle_core::Device;
use daad_model::Variant;
use daad_train::{train, Error, NoProgress, Progress, Run, RunDir, StepInfo, MODEL_FILE};

/// Raises the stop flag after `after` steps (what Ctrl-C does in the CLI).
struct StopAfter<'a> {
    after: usize,
    flag: &'a AtomicBool,
}

impl Progress for StopAfter<'_> {
    fn step(&mut self, s: &StepInfo) {
        if s.global_step >= self.after {
            self.flag.store(true, Ordering::SeqCst);
        }
    }
}

#[test]
fn interrupted_then_resumed_matches_uninterrupted() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (root, cat) = common::synth(dir.path(), 20);
    let dev = Device::Cpu;

    let full = common::spec(&root, &cat, &dir.path().join("full"), Variant::DaadPlus);
    let a = train(&full, &dev, &mut NoProgress, &AtomicBool::new(false))?;
    assert!(!a.interrupted && a.epochs_done == 2);

    // Same seed, stopped mid-epoch: 20 images, 2 held out, 18 trained in 4 full batches of 4 per
    // epoch; stopping after 5 steps interrupts the second epoch.
    let mut part = common::spec(&root, &cat, &dir.path().join("part"), Variant::DaadPlus);
    let flag = AtomicBool::new(false);
    let b = train(&part, &dev, &mut StopAfter { after: 5, flag: &flag }, &flag)?;
    assert!(b.interrupted && b.epochs_done == 1 && b.global_step == 5, "{b:?}");
    // Starting again without --resume refuses to overwrite.
    let err = train(&part, &dev, &mut NoProgress, &AtomicBool::new(false)).unwrap_err();
    assert!(matches!(err, Error::RunExists { .. }), "{err}");
    assert!(err.to_string().contains("--resume"), "{err}");
    part.resume = true;
    let c = train(&part, &dev, &mut NoProgress, &AtomicBool::new(false))?;
    assert!(!c.interrupted && c.epochs_done == 2 && c.global_step == a.global_step);

    let (la, lc) = (a.last.unwrap().losses, c.last.unwrap().losses);
    for (x, y) in [(la.total, lc.total), (la.rec, lc.rec), (la.disc, lc.disc)] {
        assert!((x - y).abs() <= 1e-5 * x.abs().max(1e-3), "final losses differ: {la:?} vs {lc:?}");
    }
    let (ra, rc) = (Run::load(&a.run, &dev)?, Run::load(&c.run, &dev)?);
    // Bit-exact: the resumed run is the uninterrupted one.
    assert!(common::weights(&ra.model) == common::weights(&rc.model), "weights differ");
    let (ca, cc) = (ra.calibration().unwrap(), rc.calibration().unwrap());
    // Two held-out images (< MIN_HOLDOUT_IMAGES): no threshold, scaling over every image.
    assert!(ca.threshold.is_none() && cc.threshold.is_none(), "{ca:?}");
    assert!(ca == cc && ca.n_images > 2, "{ca:?} vs {cc:?}");
    assert_eq!(ra.state.history.len(), 2);
    Ok(())
}

#[test]
fn corrupt_or_mismatched_runs_name_the_file() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (root, cat) = common::synth(dir.path(), 6);
    let dev = Device::Cpu;
    let mut spec = common::spec(&root, &cat, &dir.path().join("run"), Variant::Daad);
    spec.train.epochs = 1;
    let rep = train(&spec, &dev, &mut NoProgress, &AtomicBool::new(false))?;
    let run = rep.run;
    Run::load(&run, &dev)?;
    // Readers use the committed checkpoint: damage that one.
    let ck = RunDir::open(&run)?.checkpoint_dir().to_path_buf();
    assert!(ck.starts_with(run.join("checkpoints")), "{}", ck.display());

    // config.json edited to another variant: the weights no longer fit.
    let cfg_path = ck.join("config.json");
    let good_cfg = std::fs::read_to_string(&cfg_path)?;
    let mut v: serde_json::Value = serde_json::from_str(&good_cfg)?;
    v["model"]["variant"] = "ae-skip".into();
    v["model"]["memory_scales"] = serde_json::json!([false, false, false, false]);
    std::fs::write(&cfg_path, serde_json::to_string(&v)?)?;
    let msg = Run::load(&run, &dev).err().unwrap().to_string();
    assert!(msg.contains("model.safetensors") && msg.contains("variant is daad"), "{msg}");
    assert!(msg.contains("unexpected tensor `generator.memory1.bank`"), "{msg}");

    // A future format version.
    v["format_version"] = 99.into();
    std::fs::write(&cfg_path, serde_json::to_string(&v)?)?;
    let msg = Run::load(&run, &dev).err().unwrap().to_string();
    assert!(msg.contains("config.json") && msg.contains("format version 99"), "{msg}");

    // Corrupt JSON.
    std::fs::write(&cfg_path, "{ not json")?;
    let msg = Run::load(&run, &dev).err().unwrap().to_string();
    assert!(msg.contains("config.json") && msg.contains("malformed"), "{msg}");

    // Truncated weights.
    std::fs::write(&cfg_path, &good_cfg)?;
    let bytes = std::fs::read(ck.join(MODEL_FILE))?;
    std::fs::write(ck.join(MODEL_FILE), &bytes[..100])?;
    let msg = Run::load(&run, &dev).err().unwrap().to_string();
    assert!(msg.contains("model.safetensors") && msg.contains("corrupt"), "{msg}");

    // Not a run at all.
    let msg = Run::load(&dir.path().join("nope"), &dev).err().unwrap().to_string();
    assert!(msg.contains("nope") && msg.contains("no such run folder"), "{msg}");
    Ok(())
}
