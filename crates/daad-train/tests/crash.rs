//! A kill at every file operation of a checkpoint write (injected with the `failpoints` hook,
//! which stops the writer where it is and cleans nothing up, as SIGKILL would) leaves a folder
//! that `--resume` either continues bit-exactly or refuses clearly: never a mixed state.

mod common;

use std::sync::atomic::AtomicBool;

use anyhow::Result;
use candle_core::Device;
use daad_model::Variant;
use daad_train::{
    failpoints, train, Error, NoProgress, Run, RunDir, TrainReport, TrainSpec, CHECKPOINTS_DIR,
    MODEL_FILE, STATE_FILE,
};

fn run(spec: &TrainSpec) -> daad_train::Result<TrainReport> {
    train(spec, &Device::Cpu, &mut NoProgress, &AtomicBool::new(false))
}

fn final_weights(dir: &std::path::Path) -> Result<Vec<u32>> {
    Ok(common::weights(&Run::load(dir, &Device::Cpu)?.model))
}

fn leftovers(dir: &std::path::Path) -> Vec<String> {
    common::tree(dir).into_iter().filter(|n| n.contains(".tmp-")).collect()
}

#[test]
fn a_kill_at_any_file_of_a_checkpoint_resumes_exactly_or_refuses() -> Result<()> {
    let dir = tempfile::tempdir()?;
    // 6 images: 1 held out, 5 trained in 2 full batches of 2 per epoch; 2 epochs, a checkpoint
    // after each, the last one holding the calibration. A narrow model keeps 40 runs fast.
    let (root, cat) = common::synth(dir.path(), 6);
    let spec_for = |name: &str| {
        let mut s = common::spec(&root, &cat, &dir.path().join(name), Variant::Daad);
        s.model.base_channels = 8;
        s.train.batch_size = 2;
        s.train.checkpoint_every = 1;
        s
    };
    failpoints::arm(None);
    let full = run(&spec_for("full"))?;
    let ops = failpoints::count();
    assert!(ops >= 2 * 11, "{ops} checkpoint operations in 2 checkpoints");
    let per_save = ops / 2;
    let want = final_weights(&full.run)?;

    for k in 1..=ops {
        let name = format!("kill-{k}");
        let mut spec = spec_for(&name);
        failpoints::arm(Some(k));
        let err = run(&spec).expect_err("the injected kill");
        assert!(matches!(err, Error::FaultInjected(n) if n == k), "{k}: {err}");
        failpoints::arm(None);

        // What a reader sees is one complete checkpoint, or no run at all.
        let opened = RunDir::open(&spec.out);
        spec.resume = true;
        match opened {
            Ok(rd) => {
                let step = rd.step();
                assert!(step == full.global_step / 2 || step == full.global_step, "{k}: {step}");
                let done = run(&spec).map_err(|e| anyhow::anyhow!("kill {k}: resume: {e}"))?;
                assert_eq!(done.global_step, full.global_step, "{k}");
                assert!(final_weights(&spec.out)? == want, "kill {k}: resumed weights differ");
                assert_eq!(done.calibration, full.calibration, "{k}");
            }
            Err(e) => {
                // Killed inside the first checkpoint before it was renamed into place.
                assert!(k < per_save, "{k}: {e}");
                let err = run(&spec).unwrap_err();
                assert!(matches!(err, Error::NoRunToResume { .. }), "{k}: {err}");
                // The partial checkpoint was cleaned up: a new run starts there.
                spec.resume = false;
                run(&spec)?;
                assert!(final_weights(&spec.out)? == want, "kill {k}: rerun weights differ");
            }
        }
        assert!(leftovers(&spec.out).is_empty(), "{k}: {:?}", leftovers(&spec.out));
        // The published top-level files are those of the last checkpoint.
        let top: daad_train::TrainState =
            serde_json::from_str(&std::fs::read_to_string(spec.out.join(STATE_FILE))?)?;
        assert_eq!(top.global_step, full.global_step, "{k}");
        std::fs::remove_dir_all(&spec.out)?;
    }
    Ok(())
}

#[test]
fn a_damaged_latest_checkpoint_falls_back_to_the_previous_one() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (root, cat) = common::synth(dir.path(), 10);
    let mut spec = common::spec(&root, &cat, &dir.path().join("run"), Variant::Daad);
    spec.train.checkpoint_every = 1;
    spec.train.epochs = 3;
    let full = run(&spec)?;
    let want = final_weights(&full.run)?;
    // Keep the last 2 of 3 checkpoints.
    let ckpts: Vec<_> = std::fs::read_dir(spec.out.join(CHECKPOINTS_DIR))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("step-"))
        .collect();
    assert_eq!(ckpts.len(), 2, "{ckpts:?}");

    // Mixed parts: the latest checkpoint's model replaced by the previous one's. Readers refuse
    // the mix, say so, and use the previous complete checkpoint.
    let latest = RunDir::open(&spec.out)?.checkpoint_dir().to_path_buf();
    let mut sorted = ckpts.clone();
    sorted.sort();
    let previous = spec.out.join(CHECKPOINTS_DIR).join(&sorted[0]);
    std::fs::copy(previous.join(MODEL_FILE), latest.join(MODEL_FILE))?;
    let rd = RunDir::open(&spec.out)?;
    assert_eq!(rd.checkpoint_dir(), previous);
    let notes = rd.notes().join("\n");
    assert!(
        notes.contains("model.safetensors is at step") && notes.contains("using the last complete"),
        "{notes}"
    );
    // Resuming from it redoes the last epoch exactly.
    spec.resume = true;
    let again = run(&spec)?;
    assert_eq!(again.global_step, full.global_step);
    assert!(final_weights(&spec.out)? == want, "weights differ after the fallback");
    Ok(())
}

/// Makes the top-level model path a folder at the first step, so publishing the first
/// checkpoint fails with an I/O error.
struct BlockPublish(std::path::PathBuf);

impl daad_train::Progress for BlockPublish {
    fn step(&mut self, s: &daad_train::StepInfo) {
        if s.global_step == 1 {
            std::fs::create_dir_all(self.0.join(MODEL_FILE)).unwrap();
        }
    }
}

#[test]
fn an_io_error_during_a_checkpoint_leaves_no_temp_files() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (root, cat) = common::synth(dir.path(), 6);
    let mut spec = common::spec(&root, &cat, &dir.path().join("run"), Variant::Daad);
    spec.model.base_channels = 8;
    let err =
        train(&spec, &Device::Cpu, &mut BlockPublish(spec.out.clone()), &AtomicBool::new(false))
            .unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(leftovers(&spec.out).is_empty(), "{:?}", common::tree(&spec.out));
    // The checkpoint committed before the failed publication is intact and resumable.
    std::fs::remove_dir(spec.out.join(MODEL_FILE))?;
    assert_eq!(RunDir::open(&spec.out)?.state().epochs_done, 1);
    spec.resume = true;
    assert_eq!(run(&spec)?.epochs_done, 2);
    Ok(())
}
