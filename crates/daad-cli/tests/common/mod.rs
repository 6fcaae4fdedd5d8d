//! Helpers shared by the integration tests of the `daad` binary: running it, a small synthetic
//! dataset and a tiny training run.
// Each test binary uses a part of these.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};

use anyhow::{ensure, Context, Result};

/// The `daad` binary as a command, with only warnings logged.
pub fn command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_daad"));
    cmd.env("RUST_LOG", "warn");
    cmd
}

/// Runs `cmd` to its end.
pub fn output(cmd: &mut Command) -> Result<Output> {
    cmd.output().context("running the daad binary")
}

/// stdout, then stderr, for messages.
pub fn text(o: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Runs `daad ARGS`.
pub fn daad(args: &[&dyn AsRef<OsStr>]) -> Result<Output> {
    output(command().args(args.iter().map(|a| a.as_ref())))
}

/// Requires that `o` (of `daad ARGS`) succeeded; returns its stdout.
pub fn ok(args: &[&dyn AsRef<OsStr>], o: Output) -> Result<String> {
    ensure!(
        o.status.success(),
        "daad {:?} failed: {}",
        args.iter().map(|a| a.as_ref().to_string_lossy().into_owned()).collect::<Vec<_>>(),
        text(&o)
    );
    Ok(String::from_utf8(o.stdout)?)
}

/// Runs `daad ARGS` and requires success; returns stdout.
pub fn daad_ok(args: &[&dyn AsRef<OsStr>]) -> Result<String> {
    ok(args, daad(args)?)
}

/// Runs `daad ARGS` and requires failure; returns stderr.
pub fn daad_err(args: &[&dyn AsRef<OsStr>]) -> Result<String> {
    let o = daad(args)?;
    ensure!(
        !o.status.success(),
        "daad unexpectedly succeeded: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    Ok(String::from_utf8(o.stderr)?)
}

/// The arguments of `daad test --run RUN --data DATA --category CATEGORY --out OUT EXTRA...`.
pub fn test_args<'a>(
    run: &'a dyn AsRef<OsStr>,
    data: &'a dyn AsRef<OsStr>,
    category: &'a dyn AsRef<OsStr>,
    out: &'a dyn AsRef<OsStr>,
    extra: &[&'a dyn AsRef<OsStr>],
) -> Vec<&'a dyn AsRef<OsStr>> {
    let mut args: Vec<&'a dyn AsRef<OsStr>> =
        vec![&"test", &"--run", run, &"--data", data, &"--category", category, &"--out", out];
    args.extend_from_slice(extra);
    args
}

/// `daad synth` of one `category` at `size` px into `root`: `n_train` training images (None:
/// synth's default), `n_good` + `n_defect` test images.
pub fn synth(
    root: &Path,
    category: &str,
    size: usize,
    n_train: Option<usize>,
    n_good: usize,
    n_defect: usize,
) -> Result<()> {
    let mut cmd = command();
    cmd.args(["synth", "--categories", category, "--size", &size.to_string()])
        .args(["--n-test-good", &n_good.to_string(), "--n-test-defect", &n_defect.to_string()])
        .arg("--out")
        .arg(root);
    if let Some(n) = n_train {
        cmd.args(["--n-train", &n.to_string()]);
    }
    let o = output(&mut cmd)?;
    ensure!(o.status.success(), "synth failed: {}", text(&o));
    Ok(())
}

/// `daad train --preset ci` of `category` of `data` as `variant` into `out`, with `extra` flags.
pub fn train_cmd(
    data: &Path,
    category: &str,
    out: &Path,
    variant: &str,
    extra: &[&str],
) -> Command {
    let mut cmd = command();
    cmd.args(["train", "--category", category, "--preset", "ci", "--variant", variant])
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out)
        .args(extra);
    cmd
}

/// Runs [`train_cmd`] and requires success.
pub fn train(data: &Path, category: &str, out: &Path, variant: &str, extra: &[&str]) -> Result<()> {
    let o = output(&mut train_cmd(data, category, out, variant, extra))?;
    ensure!(o.status.success(), "train failed: {}", text(&o));
    Ok(())
}
