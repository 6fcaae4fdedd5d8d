//! Issue 13 through the `daad` binary as a child process: SIGINT, SIGTERM and SIGHUP stop a
//! training after its step with a checkpoint and exit 128 + signal; a process-group signal
//! delivered twice (what `timeout -s INT` does) and a second signal during the checkpoint are
//! one stop; `--resume` continues; SIGKILL at any moment leaves a folder that `--resume`
//! continues or refuses clearly; up-front checks and small-data calibration.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use common::{command as daad, output as run, text};
use serde_json::Value;

const CATEGORY: &str = "weave";

/// A tiny synthetic dataset: `n_train` good 32 px images of one category.
fn synth(root: &Path, n_train: usize) -> Result<()> {
    common::synth(root, CATEGORY, 32, Some(n_train), 2, 4)
}

/// `daad train` of the tiny set at 32 px into `out` with `extra` flags.
fn train_cmd(data: &Path, out: &Path, extra: &[&str]) -> Command {
    let flags = [&["--batch", "4", "--memory-size", "16"], extra].concat();
    common::train_cmd(data, CATEGORY, out, "daad", &flags)
}

/// Spawns `cmd` with stderr piped; returns the child and a channel of its stderr lines.
fn spawn(mut cmd: Command, own_group: bool) -> Result<(Child, mpsc::Receiver<String>)> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    if own_group {
        cmd.process_group(0);
    }
    let mut child = cmd.spawn().context("spawning daad train")?;
    let err = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(std::result::Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Ok((child, rx))
}

/// Waits for the first epoch line on stderr (the run is past its setup).
fn wait_for_epoch(rx: &mpsc::Receiver<String>) -> Result<Vec<String>> {
    let mut seen = Vec::new();
    loop {
        let line = rx.recv_timeout(Duration::from_secs(60)).with_context(|| {
            format!("no epoch line within 60 s; stderr so far:\n{}", seen.join("\n"))
        })?;
        let is_epoch = line.starts_with("epoch");
        seen.push(line);
        if is_epoch {
            return Ok(seen);
        }
    }
}

fn kill(pid: i32, sig: i32) -> Result<()> {
    // SAFETY: kill(2) with a pid we spawned (or its negated process group); no memory involved.
    let rc = unsafe { libc::kill(pid, sig) };
    ensure!(rc == 0, "kill({pid}, {sig}) failed: {}", std::io::Error::last_os_error());
    Ok(())
}

fn finish(child: Child, rx: mpsc::Receiver<String>) -> Result<(i32, String)> {
    let out = child.wait_with_output()?;
    let mut err: Vec<String> = rx.try_iter().collect();
    err.push(String::from_utf8_lossy(&out.stdout).into_owned());
    let code = out.status.code().with_context(|| {
        format!("daad was killed by a signal ({:?}):\n{}", out.status, err.join("\n"))
    })?;
    Ok((code, err.join("\n")))
}

fn state(run: &Path) -> Result<Value> {
    Ok(serde_json::from_str(&std::fs::read_to_string(run.join("state.json"))?)?)
}

/// Stops a long run with `sig` after its first epoch; checks the status and that `--resume`
/// (to one epoch more than the checkpoint holds) continues and finishes.
fn stop_and_resume(sig: i32, own_group_twice: bool) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (data, out) = (tmp.path().join("data"), tmp.path().join("run"));
    synth(&data, 10)?;
    let (child, rx) = spawn(train_cmd(&data, &out, &["--epochs", "500"]), own_group_twice)?;
    let pid = child.id() as i32;
    wait_for_epoch(&rx)?;
    if own_group_twice {
        // `timeout -s INT`: the signal to the child, then to its process group; then a third
        // one while the checkpoint is being written. All one stop.
        kill(pid, sig)?;
        kill(-pid, sig)?;
        std::thread::sleep(Duration::from_millis(20));
        kill(pid, sig)?;
    } else {
        kill(pid, sig)?;
    }
    let (code, log) = finish(child, rx)?;
    ensure!(code == 128 + sig, "exit status {code}, expected {}:\n{log}", 128 + sig);
    ensure!(log.contains("checkpoint"), "{log}");
    let done = state(&out)?["epochs_done"].as_u64().context("epochs_done")? as usize;
    ensure!((1..500).contains(&done), "{done} epochs in the checkpoint");
    let next = (done + 1).to_string();
    let o = run(&mut train_cmd(&data, &out, &["--resume", "--epochs", &next]))?;
    ensure!(o.status.success(), "resume failed: {}", text(&o));
    let s = state(&out)?;
    ensure!(s["epochs_done"] == done as u64 + 1 && s["finished"] == true, "{s}");
    Ok(())
}

#[test]
fn sigint_checkpoints_exits_130_and_resumes() -> Result<()> {
    stop_and_resume(libc::SIGINT, false)
}

#[test]
fn sigterm_checkpoints_exits_143_and_resumes() -> Result<()> {
    stop_and_resume(libc::SIGTERM, false)
}

#[test]
fn sighup_checkpoints_exits_129_and_resumes() -> Result<()> {
    stop_and_resume(libc::SIGHUP, false)
}

#[test]
fn a_process_group_signal_and_a_second_one_are_one_stop() -> Result<()> {
    stop_and_resume(libc::SIGINT, true)
}

/// SIGKILL at several moments of a run that checkpoints every epoch (so some kills land inside
/// a checkpoint write): `--resume` either continues to the end or refuses with a message that
/// names the run folder; it never panics and never accepts a mixed state.
#[test]
fn sigkill_at_any_moment_leaves_a_resumable_or_clearly_refused_run() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    synth(&data, 10)?;
    for (k, delay_ms) in [0u64, 3, 10, 30].into_iter().enumerate() {
        let out = tmp.path().join(format!("run{k}"));
        let cmd = train_cmd(&data, &out, &["--epochs", "500", "--checkpoint-every", "1"]);
        let (mut child, rx) = spawn(cmd, false)?;
        wait_for_epoch(&rx)?;
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill()?;
        child.wait()?;
        let o = run(&mut train_cmd(&data, &out, &["--resume", "--epochs", "3"]))?;
        let t = text(&o);
        ensure!(!t.contains("panicked"), "{t}");
        if o.status.success() {
            let s = state(&out)?;
            ensure!(s["finished"] == true, "kill after {delay_ms} ms: {s}");
        } else {
            ensure!(t.contains(&format!("run{k}")) && t.contains("error:"), "unclear refusal: {t}");
        }
        let leftovers: Vec<PathBuf> = std::fs::read_dir(&out)?
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().contains(".tmp-"))
            .collect();
        ensure!(leftovers.is_empty(), "temp files after resume: {leftovers:?}");
    }
    Ok(())
}

/// Issue 13.7: 8 good images at --val-fraction 0.1 hold out one; the run must not judge its
/// own training images anomalous (before: zero range, threshold 0, everything anomalous).
#[test]
fn small_data_never_judges_training_images_anomalous() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (data, out) = (tmp.path().join("data"), tmp.path().join("run"));
    synth(&data, 8)?;
    let o = run(&mut train_cmd(&data, &out, &["--epochs", "2"]))?;
    ensure!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    ensure!(
        t.contains("warning") && t.contains("threshold none"),
        "no weak-threshold warning: {t}"
    );
    let good = data.join(CATEGORY).join("train/good");
    let o = run(daad()
        .arg("predict")
        .arg("--run")
        .arg(&out)
        .arg("--out")
        .arg(tmp.path().join("p"))
        .arg(&good))?;
    ensure!(o.status.success(), "{}", text(&o));
    let lines: Vec<Value> = String::from_utf8(o.stdout)?
        .lines()
        .map(serde_json::from_str)
        .collect::<std::result::Result<_, _>>()?;
    ensure!(lines.len() == 8, "{lines:?}");
    for l in &lines {
        ensure!(l["verdict"] == "unknown", "{l}");
        ensure!(l["score"].as_f64().is_some_and(|s| s.is_finite()), "{l}");
    }
    let scores: Vec<f64> = lines.iter().map(|l| l["score"].as_f64().unwrap()).collect();
    ensure!(scores.iter().any(|&s| s != scores[0]), "every score equal: {scores:?}");
    Ok(())
}

/// Issue 13.8/13.9 through the CLI: `daad train` needs only train/good; `--image-size 4096` is
/// refused up front with numbers (before: an allocation abort, exit 134) and leaves no folder;
/// `predict` on a folder with a corrupt image scores the rest, reports the bad one on its own
/// line, prints the codec cause once and exits 1; a read-only output is refused before scoring.
#[test]
fn up_front_checks_and_per_image_failures() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (data, out) = (tmp.path().join("data"), tmp.path().join("run"));
    synth(&data, 8)?;
    // Only train/good.
    std::fs::remove_dir_all(data.join(CATEGORY).join("test"))?;
    std::fs::remove_dir_all(data.join(CATEGORY).join("ground_truth"))?;
    let huge = tmp.path().join("huge");
    let o = run(&mut train_cmd(&data, &huge, &["--image-size", "4096"]))?;
    let t = text(&o);
    ensure!(o.status.code() == Some(1), "{:?}: {t}", o.status);
    ensure!(t.contains("GiB") && t.contains("4096"), "{t}");
    ensure!(!huge.exists(), "a refused run left {}", huge.display());

    let o = run(&mut train_cmd(&data, &out, &["--epochs", "1", "--val-fraction", "0.5"]))?;
    ensure!(o.status.success(), "train with only train/good: {}", text(&o));

    let imgs = tmp.path().join("imgs");
    std::fs::create_dir_all(imgs.join("sub"))?;
    let good = data.join(CATEGORY).join("train/good");
    let first = std::fs::read_dir(&good)?.next().unwrap()?.path();
    std::fs::copy(&first, imgs.join("a.png"))?;
    std::fs::copy(&first, imgs.join("sub/c.png"))?;
    std::fs::write(imgs.join("b.png"), b"\x89PNG\r\n\x1a\nnot really")?;
    let pred = tmp.path().join("pred");
    let o = run(daad().arg("predict").arg("--run").arg(&out).arg("--out").arg(&pred).arg(&imgs))?;
    ensure!(o.status.code() == Some(1), "{:?}: {}", o.status, text(&o));
    let lines: Vec<Value> = String::from_utf8(o.stdout.clone())?
        .lines()
        .map(serde_json::from_str)
        .collect::<std::result::Result<_, _>>()?;
    ensure!(lines.len() == 3, "{lines:?}");
    ensure!(lines[0]["score"].is_f64() && lines[2]["score"].is_f64(), "{lines:?}");
    ensure!(lines[1]["error"].as_str().is_some_and(|e| e.contains("b.png")), "{lines:?}");
    let err = String::from_utf8(o.stderr)?;
    let e = err.lines().find(|l| l.starts_with("error:")).context("no error line")?;
    ensure!(e.contains("1 of 3"), "{e}");
    // The codec's message once per mention of the file.
    let cause = lines[1]["error"].as_str().unwrap();
    ensure!(e.matches(cause).count() == 1, "{e}");

    // An output that cannot be created (under a file) is refused before any scoring, naming
    // the path (a read-only folder takes the same path through the probe; root ignores modes).
    let blocker = tmp.path().join("a-file");
    std::fs::write(&blocker, b"x")?;
    let o = run(daad()
        .arg("predict")
        .arg("--run")
        .arg(&out)
        .arg("--out")
        .arg(blocker.join("p"))
        .arg(&first))?;
    let t = text(&o);
    ensure!(!o.status.success() && t.contains("a-file") && t.contains("not a folder"), "{t}");
    ensure!(!t.contains("\"score\""), "scored before refusing: {t}");
    Ok(())
}
