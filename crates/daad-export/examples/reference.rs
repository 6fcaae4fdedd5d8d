//! daad's own outputs for images, for scripts/check-onnx.sh: one JSON line per image with the raw
//! scores, the calibrated score (the calibration's kind), the smoothed anomaly map at model size
//! and the reconstruction. With DAAD_BENCH=N it also times candle's model + map (on stderr), for
//! scripts/bench-onnx.sh.
//!   cargo run -p daad-export --example reference -- RUN IMAGE...

use anyhow::{bail, Context, Result};
use std::time::Instant;

use candle_core::{Device, Tensor};
use daad_data::Preprocess;
use daad_eval::{AnomalyMap, AnomalyMapConfig};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((run, images)) = args.split_first() else {
        bail!("usage: reference RUN IMAGE...");
    };
    let run = daad_train::RunDir::open(run.as_ref()).context("opening the run")?;
    let cal = run.calibration().context("the run has no calibration")?;
    let model = run.load_model(&Device::Cpu).context("loading the model")?;
    let paths: Vec<std::path::PathBuf> = images.iter().map(Into::into).collect();
    let x = Preprocess::new(run.config().model.image_size).load_images(&paths, None)?;
    for (i, path) in paths.iter().enumerate() {
        let o = model.infer(&x.narrow(0, i, 1)?)?;
        let r = o.reconstruction_score.to_vec1::<f32>()?[0] as f64;
        let l = o.alignment_score.map(|t| t.to_vec1::<f32>()).transpose()?.map(|v| v[0] as f64);
        let map =
            AnomalyMap::from_tensor(&o.error_map)?.postprocess(&AnomalyMapConfig::default(), None);
        let rec = o.reconstruction.flatten_all()?.to_vec1::<f32>()?;
        let line = serde_json::json!({
            "path": path, "r": r, "l": l, "score": cal.score(r, l)?,
            "map": map.data, "reconstruction": rec,
        });
        println!("{line}");
    }
    if let Some(n) = std::env::var("DAAD_BENCH").ok().and_then(|v| v.parse::<usize>().ok()) {
        // The model alone (what the ONNX graph computes), for the images/s comparison.
        for batch in [1, 8] {
            let xb = Tensor::cat(&vec![x.narrow(0, 0, 1)?; batch], 0)?;
            model.infer(&xb)?; // warm-up
            let (t0, mut done) = (Instant::now(), 0);
            while done < n {
                let o = model.infer(&xb)?;
                let maps = AnomalyMap::batch_from_tensor(&o.error_map)?;
                maps.iter().for_each(|m| drop(m.postprocess(&AnomalyMapConfig::default(), None)));
                done += batch;
            }
            let ips = done as f64 / t0.elapsed().as_secs_f64();
            eprintln!(
                "reference: bench daad {}px batch {batch}: {ips:.1} images/s (candle cpu, model + map)",
                run.config().model.image_size
            );
        }
    }
    Ok(())
}
