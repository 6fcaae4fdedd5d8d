//! End to end on a tiny trained run: the page in a real Chromium (gallery order, slider, filters,
//! detail view, live upload scored like `daad predict`, the static report from disk), and load
//! and fault tests over loopback with latency percentiles and throughput.
//!
//! Chromium comes from the system (`apt-get install chromium`), found through the `CHROME`
//! environment variable or `PATH`; without it the browser test fails (it must run in CI).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use common::{exclusive, post, start, tiny_run, CATEGORY};
use daad_serve::{build_report, dataset_items, write_html_report, RunScorer, ServeOptions};
use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions, Tab};

/// Chromium's path: `$CHROME`, else the first of the usual names on `PATH`.
fn chrome_path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("CHROME").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        ensure!(p.is_file(), "CHROME={} is not a file", p.display());
        return Ok(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"] {
            let p = dir.join(name);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    bail!(
        "no Chromium found: install it (`apt-get update && apt-get install -y chromium`) or set \
         CHROME=/path/to/chrome; this test must run, not skip"
    )
}

fn screens_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("daad-serve-screens");
    std::fs::create_dir_all(&d).expect("screenshot folder");
    d
}

fn screenshot(tab: &Tab, name: &str) -> Result<PathBuf> {
    let png = tab.capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)?;
    let p = screens_dir().join(name);
    std::fs::write(&p, png)?;
    eprintln!("screenshot: {}", p.display());
    Ok(p)
}

/// Evaluates `js` (which returns a JSON string) in the page.
fn eval_json(tab: &Tab, js: &str) -> Result<serde_json::Value> {
    let v = tab.evaluate(js, false)?.value.context("no value from the page")?;
    let s = v.as_str().context("the page did not return a string")?;
    Ok(serde_json::from_str(s)?)
}

fn wait_ready(tab: &Tab) -> Result<()> {
    tab.wait_for_element_with_custom_timeout("body[data-ready='1']", Duration::from_secs(30))?;
    Ok(())
}

// Scores travel as the attribute strings and are parsed by Rust (exact; serde_json's default
// float parsing can be off by one ulp).
const CARDS_JS: &str =
    "JSON.stringify([...document.querySelectorAll('.card')].filter(c => !c.hidden).map(c => c.dataset.score))";

fn cards(tab: &Tab) -> Result<Vec<f64>> {
    let v: Vec<String> = serde_json::from_value(eval_json(tab, CARDS_JS)?)?;
    Ok(v.iter().map(|s| s.parse::<f64>()).collect::<Result<_, _>>()?)
}
const COUNTS_JS: &str = "JSON.stringify(['tp','fp','tn','fn'].map(id => Number(document.getElementById(id).textContent)))";

fn set_slider(tab: &Tab, to: &str) -> Result<Vec<u64>> {
    let js = format!(
        "(() => {{ const s = document.getElementById('threshold'); s.value = s.{to}; \
         s.dispatchEvent(new Event('input', {{bubbles: true}})); return {COUNTS_JS}; }})()"
    );
    let v = eval_json(tab, &js)?;
    Ok(v.as_array().context("counts")?.iter().map(|x| x.as_u64().unwrap_or(u64::MAX)).collect())
}

#[test]
fn page_in_chromium_gallery_slider_upload_and_static_report() -> Result<()> {
    let chrome = chrome_path()?;
    let _guard = exclusive();
    let (run, data) = tiny_run();
    let scorer = RunScorer::open(run, &candle_core::Device::Cpu)?;
    let items = dataset_items(data, CATEGORY)?;
    let report = build_report(&scorer, &items, 16, "daad serve e2e")?;
    let n = items.len();
    let n_anom = items.iter().filter(|i| i.anomalous == Some(true)).count();
    let n_good = n - n_anom;
    let opts = ServeOptions { report: Some(report.clone()), ..ServeOptions::default() };
    let server = start(Arc::new(scorer), opts)?;

    let browser = Browser::new(
        LaunchOptions::default_builder()
            .path(Some(chrome))
            .headless(true)
            .sandbox(false)
            .window_size(Some((1366, 900)))
            .idle_browser_timeout(Duration::from_secs(120))
            .build()?,
    )?;
    let tab = browser.new_tab()?;
    tab.navigate_to(&server.url("/"))?.wait_until_navigated()?;
    wait_ready(&tab)?;

    // The gallery lists every test image, highest score first, with the server's scores.
    let shown = cards(&tab)?;
    assert_eq!(shown.len(), n, "one card per test image");
    ensure!(shown.windows(2).all(|w| w[0] >= w[1]), "not sorted by score: {shown:?}");
    let mut want: Vec<f64> = report.images.iter().map(|i| i.score).collect();
    want.sort_by(|a, b| b.total_cmp(a));
    assert_eq!(shown, want);
    screenshot(&tab, "gallery.png")?;

    // The slider recomputes the counts: at its low end (below every score) everything is
    // flagged, at its high end nothing.
    let (pos, neg) = (n_anom as u64, n_good as u64);
    let low = set_slider(&tab, "min")?;
    assert_eq!(low, vec![pos, neg, 0, 0], "[tp, fp, tn, fn] at the lowest threshold");
    let high = set_slider(&tab, "max")?;
    assert_eq!(high, vec![0, 0, neg, pos], "[tp, fp, tn, fn] at the highest threshold");
    let flagged =
        eval_json(&tab, "JSON.stringify(document.querySelectorAll('.card.anomalous').length)")?;
    assert_eq!(flagged, 0, "verdict badges follow the slider");
    let point =
        eval_json(&tab, "JSON.stringify(document.getElementById('roc-point').getAttribute('cx'))")?;
    assert_eq!(point.as_str(), Some("0.00"), "ROC operating point at FPR 0");
    tab.find_element("#reset")?.click()?;

    // Filters hide a defect type.
    tab.find_element("#filters input[value='good']")?.click()?;
    let after = cards(&tab)?;
    assert_eq!(after.len(), n_anom, "hiding `good` leaves the defect images");
    tab.find_element("#filters input[value='good']")?.click()?;

    // The detail view shows the five panels.
    tab.find_element(".card")?.click()?;
    tab.wait_until_visible("#detail-panels img")?;
    let captions = eval_json(
        &tab,
        "JSON.stringify([...document.querySelectorAll('#detail-panels figure')].map(f => [f.querySelector('figcaption').textContent, !!f.querySelector('img')]))",
    )?;
    let captions: Vec<(String, bool)> = serde_json::from_value(captions)?;
    let names: Vec<&str> = captions.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(names, ["input", "reconstruction", "anomaly map", "overlay", "ground-truth mask"]);
    ensure!(captions[..4].iter().all(|(_, img)| *img), "{captions:?}");
    screenshot(&tab, "detail.png")?;
    tab.press_key("Escape")?;

    // Upload a test image: the page's score equals `daad predict`'s for the same file.
    let image =
        items.iter().find(|i| i.anomalous == Some(true)).context("a defect image")?.image.clone();
    let out = tempfile::tempdir()?;
    let expected = daad::pipeline::predict(
        run,
        std::slice::from_ref(&image),
        out.path(),
        None,
        &candle_core::Device::Cpu,
    )?;
    let expected = match &expected[0] {
        daad::pipeline::PredictOutcome::Scored(p) => p.score,
        daad::pipeline::PredictOutcome::Failed(f) => anyhow::bail!("daad predict failed: {f:?}"),
    };
    let path = image.to_str().context("utf-8 path")?;
    tab.find_element("#upload")?.set_input_files(&[path])?;
    let item = tab.wait_for_element_with_custom_timeout(".live-item", Duration::from_secs(30))?;
    let live: f64 = item.get_attribute_value("data-score")?.context("data-score")?.parse()?;
    eprintln!("live upload score {live} vs daad predict {expected}");
    assert_eq!(live, expected, "the page's score differs from daad predict's");
    tab.wait_until_visible(".live-item img")?;
    screenshot(&tab, "live.png")?;

    // The static report opens from disk, without the server.
    let dir = tempfile::tempdir()?;
    let index = write_html_report(dir.path(), &report)?;
    server.stop()?;
    tab.navigate_to(&format!("file://{}", index.display()))?.wait_until_navigated()?;
    wait_ready(&tab)?;
    let shown = cards(&tab)?;
    assert_eq!(shown, want, "the static report shows the same gallery");
    let live_hidden = eval_json(&tab, "JSON.stringify(document.getElementById('live').hidden)")?;
    assert_eq!(live_hidden, true, "no live scoring in the static report");
    screenshot(&tab, "static.png")?;
    Ok(())
}

/// The q-quantile (nearest rank) of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let k = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[k - 1]
}

/// `clients` threads each POST `per_client` images; returns (sorted latencies s, wall s, errors).
fn hammer(
    url: &str,
    images: &[Vec<u8>],
    clients: usize,
    per_client: usize,
) -> (Vec<f64>, f64, usize) {
    let t0 = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let url = url.to_string();
            let images = images.to_vec();
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let mut errors = 0;
                for k in 0..per_client {
                    let body = &images[(c * per_client + k) % images.len()];
                    let t = Instant::now();
                    match post(&url, "image/png", body, &[]) {
                        Ok(r) if r.status == 200 => lat.push(t.elapsed().as_secs_f64()),
                        _ => errors += 1,
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let mut lat = Vec::new();
    let mut errors = 0;
    for h in handles {
        let (l, e) = h.join().expect("client thread");
        lat.extend(l);
        errors += e;
    }
    let wall = t0.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    (lat, wall, errors)
}

#[test]
fn load_and_fault_on_loopback() -> Result<()> {
    let _guard = exclusive();
    let (run, data) = tiny_run();
    let images: Vec<Vec<u8>> = dataset_items(data, CATEGORY)?
        .iter()
        .map(|i| std::fs::read(&i.image))
        .collect::<std::io::Result<_>>()?;
    let mut rows = Vec::new();
    // (label, clients, requests per client, max batch)
    let plan = [
        ("1 client, batch 1", 1, 48, 1),
        ("8 clients, batch 1", 8, 24, 1),
        ("8 clients, batch <= 16", 8, 24, 16),
    ];
    for (label, clients, per, max_batch) in plan {
        let scorer = RunScorer::open(run, &candle_core::Device::Cpu)?;
        let opts = ServeOptions {
            max_batch,
            max_wait: Duration::from_millis(5),
            ..ServeOptions::default()
        };
        let s = start(Arc::new(scorer), opts)?;
        let url = s.url("/v1/predict");
        hammer(&url, &images, 1, 4); // warm-up
        let (lat, wall, errors) = hammer(&url, &images, clients, per);
        let metrics = common::get(&s.url("/metrics"), &[])?.body;
        s.stop()?;
        assert_eq!(errors, 0, "{label}: failed requests");
        let n = lat.len();
        let metric = |name: &str| -> f64 {
            metrics
                .lines()
                .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
                .unwrap_or(f64::NAN)
        };
        let row = serde_json::json!({
            "setting": label, "requests": n,
            "p50_ms": quantile(&lat, 0.5) * 1e3, "p99_ms": quantile(&lat, 0.99) * 1e3,
            "throughput_rps": n as f64 / wall,
            "mean_batch": metric("daad_batch_size_sum ") / metric("daad_batch_size_count "),
        });
        eprintln!("load {row}");
        rows.push(row);
    }
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("daad-serve-load.json");
    std::fs::write(&out, serde_json::to_string_pretty(&rows)?)?;
    eprintln!("wrote {}", out.display());

    // Faults interleaved with good requests: every good one succeeds, every bad one is a 4xx.
    let scorer = RunScorer::open(run, &candle_core::Device::Cpu)?;
    let opts = ServeOptions { max_body_bytes: 256 << 10, ..ServeOptions::default() };
    let s = start(Arc::new(scorer), opts)?;
    let url = s.url("/v1/predict");
    let good = images[0].clone();
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"\x89PNG but not really".to_vec()),
        ("truncated", good[..good.len() / 3].to_vec()),
        ("oversized", vec![7u8; 300 << 10]),
        ("empty", Vec::new()),
    ];
    let handles: Vec<_> = (0..6)
        .map(|c| {
            let (url, good, bad) = (url.clone(), good.clone(), bad.clone());
            std::thread::spawn(move || -> Result<(usize, usize)> {
                let (mut ok, mut rejected) = (0, 0);
                for k in 0..12 {
                    if (c + k) % 2 == 0 {
                        let r = post(&url, "image/png", &good, &[])?;
                        ensure!(r.status == 200, "good request failed: {} {}", r.status, r.body);
                        ok += 1;
                    } else {
                        let (what, body) = &bad[(c + k) % bad.len()];
                        let r = post(&url, "image/png", body, &[])?;
                        ensure!((400..500).contains(&r.status), "{what}: {} {}", r.status, r.body);
                        rejected += 1;
                    }
                }
                Ok((ok, rejected))
            })
        })
        .collect();
    let (mut ok, mut rejected) = (0, 0);
    for h in handles {
        let (o, r) = h.join().expect("client thread")?;
        ok += o;
        rejected += r;
    }
    assert_eq!((ok, rejected), (36, 36));
    assert_eq!(common::get(&s.url("/readyz"), &[])?.status, 200);
    s.stop()
}

#[test]
fn bf16_scorer_says_so_and_scores_like_f32() -> Result<()> {
    use daad_serve::Scorer;
    let (run, data) = tiny_run();
    let items = dataset_items(data, CATEGORY)?;
    let images: Vec<_> =
        items.iter().map(|it| image::open(&it.image)).collect::<Result<Vec<_>, _>>()?;
    let f32_scorer = RunScorer::open(run, &candle_core::Device::Cpu)?;
    let bf16_scorer = RunScorer::open(run, &candle_core::Device::Cpu)?
        .with_precision(daad::nn::Precision::Bf16)?;
    assert_eq!(f32_scorer.info().precision, "f32");
    assert_eq!(bf16_scorer.info().precision, "bf16");
    let a = f32_scorer.score(&images, false).map_err(|e| anyhow::anyhow!("{e}"))?;
    let b = bf16_scorer.score(&images, false).map_err(|e| anyhow::anyhow!("{e}"))?;
    let diff = a.iter().zip(&b).map(|(x, y)| (x.score - y.score).abs()).fold(0.0, f64::max);
    let spread = a.iter().map(|x| x.score).fold(f64::MIN, f64::max)
        - a.iter().map(|x| x.score).fold(f64::MAX, f64::min);
    eprintln!("bf16 vs f32 scores: max |diff| {diff:.2e}, f32 spread {spread:.3}");
    ensure!(diff > 0.0, "bf16 scores equal f32 exactly: the precision did not apply");
    ensure!(diff < 0.05 * spread, "bf16 scores differ by {diff:.3e} (spread {spread:.3})");
    Ok(())
}
