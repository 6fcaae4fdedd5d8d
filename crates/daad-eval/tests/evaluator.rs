//! The evaluator end to end on seeded synthetic records: scores, metrics, reports on disk.

use anyhow::Result;
use daad_eval::{
    AnomalyMap, AnomalyMapConfig, Calibration, CalibrationSource, EvalConfig, Evaluator,
    ImageRecord, Mask, Metrics, RunInfo, ScalingMode, ScoreScaling,
};
use rand::{Rng, SeedableRng};

/// 12 records, every third normal; anomalous ones have a 4x4 defect square scoring higher and
/// larger R and L, so all metrics should be well above chance.
fn records(seed: u64, with_l: bool) -> Vec<ImageRecord> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..12)
        .map(|i| {
            let anomalous = i % 3 != 0;
            let mut mask = Mask::empty(16, 16);
            if anomalous {
                let (x0, y0) = (rng.random_range(0..12), rng.random_range(0..12));
                for y in y0..y0 + 4 {
                    for x in x0..x0 + 4 {
                        mask.data[y * 16 + x] = true;
                    }
                }
            }
            let data = mask
                .data
                .iter()
                .map(|&m| rng.random::<f32>() + if m { 0.8 } else { 0.0 })
                .collect();
            let map = AnomalyMap::new(16, 16, data)
                .unwrap()
                .postprocess(&AnomalyMapConfig { sigma_at_256: 16.0, truncate: 4.0 }, None);
            ImageRecord {
                path: format!("test/{}/{i:03}.png", if anomalous { "crack" } else { "good" })
                    .into(),
                anomalous,
                defect: if anomalous { "crack".into() } else { "good".into() },
                r: rng.random::<f64>() * 0.01 + if anomalous { 0.006 } else { 0.0 },
                l: with_l.then(|| rng.random::<f64>() * 3.0 + if anomalous { 1.0 } else { 0.0 }),
                map: Some(map),
                mask: anomalous.then_some(mask),
            }
        })
        .collect()
}

#[test]
fn computes_all_metrics_and_writes_reports() -> Result<()> {
    let mut ev = Evaluator::new(EvalConfig::default());
    ev.extend(records(1, true))?;
    ev.add_timing(12, 0.5);
    let e = ev.compute()?;
    assert_eq!((e.n_test, e.n_anomalous, e.n_pixel_images), (12, 8, 12));
    // Test-set scaling: the fused scores span [0, 1] exactly when one image has both extremes,
    // and always lie within it.
    assert!(e.scores.iter().all(|&s| (0.0..=1.0).contains(&s)));
    for m in [e.image_auroc, e.pixel_auroc, e.aupro, e.f1.map(|f| f.f1)] {
        let m = m.expect("defined");
        assert!(m > 0.6 && m <= 1.0, "{m}");
    }
    assert_eq!(e.threshold, e.f1.map(|f| f.threshold));
    assert_eq!(e.images_per_second, Some(24.0));

    let dir = tempfile::tempdir()?;
    let info = RunInfo {
        category: "synth".into(),
        variant: "daad+".into(),
        preset: "ci".into(),
        image_size: 16,
        epochs: 1,
        memory: None,
    };
    let paths = e.write_reports(dir.path(), &info, ev.records())?;
    let m = Metrics::read(&paths.metrics)?;
    assert_eq!(m.n_test, 12);
    assert_eq!(m.image_auroc, e.image_auroc);
    let csv = std::fs::read_to_string(&paths.scores)?;
    assert_eq!(csv.lines().count(), 13);
    assert!(csv.lines().nth(1).unwrap().starts_with("test/good/000.png,normal,good,"));
    assert!(image::open(paths.roc.unwrap())?.width() > 0);

    ev.clear();
    assert!(ev.is_empty());
    assert!(ev.compute().is_err());
    Ok(())
}

#[test]
fn stored_scaling_and_threshold_override() -> Result<()> {
    let recs = records(2, false);
    // Calibrate on the normal images only, as training does with its held-out slice.
    let normal_r: Vec<f64> = recs.iter().filter(|r| !r.anomalous).map(|r| r.r).collect();
    let cal = Calibration::fit(&normal_r, None, 0.9, 0.99, CalibrationSource::Holdout)?;
    // Four normal images are fewer than MIN_HOLDOUT_IMAGES: no stored threshold (small-data rule).
    assert_eq!(normal_r.len(), 4);
    assert_eq!(cal.threshold, None);
    let cfg = EvalConfig {
        scaling: ScalingMode::Stored(cal.scaling.clone()),
        threshold: Some(0.5),
        ..Default::default()
    };
    let mut ev = Evaluator::new(cfg);
    ev.extend(recs.clone())?;
    let e = ev.compute()?;
    assert_eq!(e.threshold, Some(0.5), "an explicit threshold overrides the F1-max one");
    for (rec, &s) in recs.iter().zip(&e.scores) {
        assert_eq!(s, cal.score(rec.r, None)?);
    }
    // The ranking, hence AUROC, does not depend on the scaling.
    let mut test_set = Evaluator::new(EvalConfig::default());
    test_set.extend(recs)?;
    assert_eq!(test_set.compute()?.image_auroc, e.image_auroc);
    // A stored scaling with L but records without it is an error, not a silent R-only score.
    let with_l = ScoreScaling::fit(&[0.0, 1.0], Some(&[0.0, 1.0]), 0.9)?;
    let mut bad =
        Evaluator::new(EvalConfig { scaling: ScalingMode::Stored(with_l), ..Default::default() });
    bad.extend(records(3, false))?;
    assert!(bad.compute().is_err());
    Ok(())
}

#[test]
fn one_class_and_no_masks_give_nulls() -> Result<()> {
    let mut ev = Evaluator::new(EvalConfig::default());
    let recs: Vec<ImageRecord> = records(4, false)
        .into_iter()
        .filter(|r| !r.anomalous)
        .map(|r| ImageRecord { mask: None, ..r })
        .collect();
    ev.extend(recs)?;
    let e = ev.compute()?;
    assert_eq!(
        (e.image_auroc, e.f1, e.pixel_auroc, e.aupro, e.threshold),
        (None, None, None, None, None)
    );
    let info = RunInfo {
        category: "digits".into(),
        variant: "ae".into(),
        preset: "ci".into(),
        image_size: 16,
        epochs: 1,
        memory: None,
    };
    let v = serde_json::to_value(e.metrics(&info))?;
    assert!(v["image_auroc"].is_null() && v["aupro"].is_null());
    Ok(())
}

#[test]
fn bad_records_name_the_image() {
    let mut ev = Evaluator::new(EvalConfig::default());
    let mut r = records(5, false).remove(1);
    r.mask = Some(Mask::empty(8, 8));
    let err = ev.update(r).unwrap_err().to_string();
    assert!(err.contains("test/crack/001.png"), "{err}");
    let mut r = records(5, false).remove(0);
    r.r = f64::NAN;
    assert!(ev.update(r).unwrap_err().to_string().contains("test/good/000.png"));
}
