//! Metric values checked against independent reference implementations.
//!
//! The fixtures in `tests/fixtures/*.json` are written by `tests/fixtures/make_fixtures.py`
//! (numpy, scipy, scikit-learn; versions are recorded in each file). Tolerances: 1e-12 for
//! AUROC and F1 (both sides are exact rationals computed in f64), 1e-9 for AUPRO (sums of
//! region fractions in a different order), 1e-5 for the Gaussian filter (our kernel weights are f32).

use anyhow::{Context, Result};
use daad_eval::{
    aupro, f1_max, image_auroc, label_regions, pixel_auroc, roc_curve, AnomalyMap, Connectivity,
    Mask,
};
use serde_json::Value;

fn fixture(name: &str) -> Result<Value> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    Ok(serde_json::from_str(&text)?)
}

fn f64s(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn bools(v: &Value) -> Vec<bool> {
    v.as_array().unwrap().iter().map(|x| x.as_bool().unwrap()).collect()
}

// Source: scikit-learn `roc_auc_score` (make_fixtures.py, image_cases), 4 cases incl. heavy ties.
#[test]
fn image_auroc_matches_sklearn() -> Result<()> {
    for case in fixture("image_metrics.json")?["cases"].as_array().unwrap() {
        let (s, l) = (f64s(&case["scores"]), bools(&case["labels"]));
        let got = image_auroc(&s, &l)?;
        let want = case["auroc"].as_f64().unwrap();
        assert!((got - want).abs() < 1e-12, "{}: {got} vs sklearn {want}", case["name"]);
    }
    Ok(())
}

// Source: scikit-learn `roc_curve(drop_intermediate=False)` (make_fixtures.py, image_cases).
#[test]
fn roc_curve_matches_sklearn() -> Result<()> {
    for case in fixture("image_metrics.json")?["cases"].as_array().unwrap() {
        let c = roc_curve(&f64s(&case["scores"]), &bools(&case["labels"]))?;
        let (fpr, tpr, thr) =
            (f64s(&case["roc_fpr"]), f64s(&case["roc_tpr"]), f64s(&case["roc_thresholds"]));
        assert_eq!(c.fpr.len(), fpr.len(), "{}", case["name"]);
        for i in 0..fpr.len() {
            assert!(
                (c.fpr[i] - fpr[i]).abs() < 1e-12 && (c.tpr[i] - tpr[i]).abs() < 1e-12,
                "{} point {i}",
                case["name"]
            );
        }
        assert_eq!(c.thresholds[1..], thr[..], "{}", case["name"]);
        assert!((c.auc() - case["auroc"].as_f64().unwrap()).abs() < 1e-12);
    }
    Ok(())
}

// Source: scikit-learn `precision_recall_curve`, F1 = 2PR/(P+R), argmax (make_fixtures.py).
#[test]
fn f1_max_matches_sklearn() -> Result<()> {
    for case in fixture("image_metrics.json")?["cases"].as_array().unwrap() {
        let r = f1_max(&f64s(&case["scores"]), &bools(&case["labels"]))?;
        let (f1, thr) = (case["f1_max"].as_f64().unwrap(), case["f1_threshold"].as_f64().unwrap());
        assert!((r.f1 - f1).abs() < 1e-12, "{}: {} vs {f1}", case["name"], r.f1);
        assert_eq!(r.threshold, thr, "{}", case["name"]);
    }
    Ok(())
}

fn pixel_case(case: &Value) -> (Vec<AnomalyMap>, Vec<Mask>) {
    let (w, h) =
        (case["width"].as_u64().unwrap() as usize, case["height"].as_u64().unwrap() as usize);
    let maps = case["maps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| AnomalyMap::new(w, h, f64s(m).iter().map(|&v| v as f32).collect()).unwrap())
        .collect();
    let masks = case["masks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| Mask::new(w, h, bools(m)).unwrap())
        .collect();
    (maps, masks)
}

// Source: scikit-learn `roc_auc_score` on flattened pixels (make_fixtures.py, pixel_cases).
#[test]
fn pixel_auroc_matches_sklearn() -> Result<()> {
    for case in fixture("pixel_metrics.json")?["cases"].as_array().unwrap() {
        let (maps, masks) = pixel_case(case);
        let got = pixel_auroc(&maps.iter().collect::<Vec<_>>(), &masks.iter().collect::<Vec<_>>())?;
        let want = case["pixel_auroc"].as_f64().unwrap();
        assert!((got - want).abs() < 1e-12, "{}: {got} vs {want}", case["name"]);
    }
    Ok(())
}

// Source: MVTec AD's AUPRO algorithm re-stated in numpy/scipy (make_fixtures.py, compute_pro,
// trapezoid, au_pro), regions by scipy.ndimage.label with np.ones((3, 3)) (8-connected) and
// with scipy's default cross (4-connected); FPR limits 0.3 (MVTec's), 1.0 and 0.05.
#[test]
fn aupro_matches_mvtec_algorithm() -> Result<()> {
    for case in fixture("pixel_metrics.json")?["cases"].as_array().unwrap() {
        let (maps, masks) = pixel_case(case);
        let (mr, kr): (Vec<_>, Vec<_>) = (maps.iter().collect(), masks.iter().collect());
        for (key, limit, conn) in [
            ("aupro_8", 0.3, Connectivity::Eight),
            ("aupro_4", 0.3, Connectivity::Four),
            ("aupro_8_limit_1", 1.0, Connectivity::Eight),
            ("aupro_8_limit_0_05", 0.05, Connectivity::Eight),
        ] {
            let got = aupro(&mr, &kr, limit, conn)?;
            let want = case[key].as_f64().unwrap();
            assert!((got - want).abs() < 1e-9, "{} {key}: {got} vs {want}", case["name"]);
        }
        for (key, conn) in
            [("n_regions_8", Connectivity::Eight), ("n_regions_4", Connectivity::Four)]
        {
            let n: usize = masks.iter().map(|m| label_regions(m, conn).1.len()).sum();
            assert_eq!(n as u64, case[key].as_u64().unwrap(), "{} {key}", case["name"]);
        }
    }
    Ok(())
}

// Source: scipy.ndimage.gaussian_filter(mode="reflect", truncate=4.0) (make_fixtures.py,
// gaussian_cases), including sigma 4 on a 16x16 map where the kernel is wider than the map.
#[test]
fn gaussian_blur_matches_scipy() -> Result<()> {
    for case in fixture("gaussian.json")?["cases"].as_array().unwrap() {
        let (w, h) =
            (case["width"].as_u64().unwrap() as usize, case["height"].as_u64().unwrap() as usize);
        let input: Vec<f32> = f64s(&case["input"]).iter().map(|&v| v as f32).collect();
        let got = AnomalyMap::new(w, h, input)?
            .gaussian_blur(case["sigma"].as_f64().unwrap() as f32, 4.0);
        for (g, want) in got.data.iter().zip(f64s(&case["output"])) {
            assert!((*g as f64 - want).abs() < 1e-5, "sigma {}: {g} vs {want}", case["sigma"]);
        }
    }
    Ok(())
}
