//! `daad export`: a tiny trained run exported to ONNX carries the calibration in its metadata,
//! and a bad format is refused with the flag named.

mod common;

use anyhow::{ensure, Context, Result};
use common::{daad, daad_ok, synth, train};

#[test]
fn export_writes_onnx_with_calibration_metadata() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let (data, run, onnx) =
        (tmp.path().join("data"), tmp.path().join("run"), tmp.path().join("m.onnx"));
    synth(&data, "cap", 32, Some(10), 2, 2)?;
    let tiny = ["--epochs", "1", "--memory-size", "20", "--val-fraction", "0.3"];
    train(&data, "cap", &run, "daad+", &tiny)?;
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
