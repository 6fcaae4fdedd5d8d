//! `daad export`: a tiny trained run exported to ONNX carries the calibration in its metadata,
//! and a bad format is refused with the flag named.

use std::process::{Command, Output};

use anyhow::{ensure, Context, Result};

fn daad(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Result<Output> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_daad"));
    for a in args {
        cmd.arg(a);
    }
    cmd.env("RUST_LOG", "warn");
    cmd.output().context("running the daad binary")
}

fn daad_ok(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Result<String> {
    let out = daad(args)?;
    ensure!(
        out.status.success(),
        "daad failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

#[test]
fn export_writes_onnx_with_calibration_metadata() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (data, run, onnx) =
        (tmp.path().join("data"), tmp.path().join("run"), tmp.path().join("m.onnx"));
    daad_ok(&[
        &"synth",
        &"--out",
        &data,
        &"--categories",
        &"cap",
        &"--size",
        &"32",
        &"--seed",
        &"0",
        &"--n-train",
        &"10",
        &"--n-test-good",
        &"2",
        &"--n-test-defect",
        &"2",
    ])?;
    daad_ok(&[
        &"train",
        &"--data",
        &data,
        &"--category",
        &"cap",
        &"--out",
        &run,
        &"--variant",
        &"daad+",
        &"--preset",
        &"ci",
        &"--epochs",
        &"1",
        &"--memory-size",
        &"20",
        &"--val-fraction",
        &"0.3",
    ])?;
    daad_ok(&[
        &"export",
        &"--run",
        &run,
        &"--format",
        &"onnx",
        &"--out",
        &onnx,
        &"--outputs",
        &"score,map,reconstruction",
    ])?;
    let bytes = std::fs::read(&onnx).context("reading the exported file")?;
    let text = String::from_utf8_lossy(&bytes);
    for key in
        ["daad.threshold", "daad.scaling", "daad.score_kind", "daad.variant", "daad.image_size"]
    {
        ensure!(text.contains(key), "metadata key {key} missing from the ONNX file");
    }
    let bad = daad(&[&"export", &"--run", &run, &"--format", &"tflite", &"--out", &onnx])?;
    ensure!(!bad.status.success(), "--format tflite was accepted");
    ensure!(
        String::from_utf8_lossy(&bad.stderr).contains("--format"),
        "error does not name --format"
    );
    Ok(())
}
