//! Shared fixtures: a fake scorer, a server on a background runtime, a small HTTP client, PNG
//! bytes, and a tiny trained run.

#![allow(dead_code)]

use std::io::{Cursor, Read as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result};
use daad_serve::{ImageScore, ModelInfo, ScoreError, Scorer, ServeOptions, Server};
use image::{DynamicImage, ImageFormat, RgbImage};
use serde_json::Value;

/// Scores an image by its mean brightness (0..1), optionally sleeping per batch; records the
/// batch sizes it saw.
pub struct FakeScorer {
    pub delay: Duration,
    pub batches: Mutex<Vec<usize>>,
}

impl FakeScorer {
    pub fn new(delay_ms: u64) -> Arc<Self> {
        Arc::new(FakeScorer {
            delay: Duration::from_millis(delay_ms),
            batches: Mutex::new(Vec::new()),
        })
    }
}

impl Scorer for FakeScorer {
    fn info(&self) -> ModelInfo {
        ModelInfo {
            run: "fake".into(),
            run_id: "0000".into(),
            variant: "fake".into(),
            image_size: 8,
            threshold: Some(0.5),
            config: serde_json::json!({"fake": true}),
            calibration: None,
            precision: "f32".into(),
        }
    }

    fn score(&self, images: &[DynamicImage], detail: bool) -> Result<Vec<ImageScore>, ScoreError> {
        self.batches.lock().unwrap().push(images.len());
        std::thread::sleep(self.delay);
        Ok(images
            .iter()
            .map(|img| {
                let g = img.to_luma8();
                let score = g.pixels().map(|p| p.0[0] as f64).sum::<f64>()
                    / (255.0 * g.len().max(1) as f64);
                ImageScore {
                    score,
                    r: score,
                    l: None,
                    verdict: daad::eval::verdict(score, Some(0.5)),
                    map: detail.then(|| {
                        daad_serve::AnomalyMap::new(8, 8, (0..64).map(|v| v as f32).collect())
                            .unwrap()
                    }),
                    reconstruction: detail.then(|| RgbImage::new(8, 8)),
                }
            })
            .collect())
    }
}

/// A server running on its own runtime thread; dropping it (or `stop`) shuts it down gracefully.
pub struct Running {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), daad_serve::Error>>>,
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Starts the graceful shutdown without waiting for it.
    pub fn trigger_stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }

    /// Shuts down and waits for the server to finish.
    pub fn stop(mut self) -> Result<()> {
        self.trigger_stop();
        self.thread
            .take()
            .unwrap()
            .join()
            .map_err(|_| anyhow::anyhow!("server thread panicked"))??;
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.trigger_stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts `scorer` on 127.0.0.1 (a free port) with `opts`.
pub fn start(scorer: Arc<dyn Scorer>, mut opts: ServeOptions) -> Result<Running> {
    opts.addr = "127.0.0.1:0".parse()?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let server = rt.block_on(Server::bind(scorer, opts))?;
    let addr = server.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        rt.block_on(server.run_until(async {
            let _ = rx.await;
        }))
    });
    Ok(Running { addr, stop: Some(tx), thread: Some(thread) })
}

/// An HTTP response: status and body.
pub struct Resp {
    pub status: u16,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Result<Value> {
        serde_json::from_str(&self.body).with_context(|| format!("not JSON: {}", self.body))
    }
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new().timeout(Duration::from_secs(60)).build()
}

fn finish(r: std::result::Result<ureq::Response, ureq::Error>) -> Result<Resp> {
    let resp = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(e.into()),
    };
    let status = resp.status();
    let mut body = String::new();
    resp.into_reader().take(64 << 20).read_to_string(&mut body)?;
    Ok(Resp { status, body })
}

/// GET `url` with optional headers.
pub fn get(url: &str, headers: &[(&str, &str)]) -> Result<Resp> {
    let mut req = agent().get(url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    finish(req.call())
}

/// POST `body` with content type `ctype` to `url`.
pub fn post(url: &str, ctype: &str, body: &[u8], headers: &[(&str, &str)]) -> Result<Resp> {
    let mut req = agent().post(url).set("Content-Type", ctype);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    finish(req.send_bytes(body))
}

/// A multipart/form-data body with one part per (file name, bytes); returns (content type, body).
pub fn multipart(parts: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "daadboundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, bytes) in parts {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{name}\"\r\nContent-Type: image/png\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// PNG bytes of a `w x h` image filled with grey level `v`.
pub fn png(w: u32, h: u32, v: u8) -> Vec<u8> {
    let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(w, h, image::Rgb([v, v, v])));
    let mut buf = Vec::new();
    img.write_to(&mut Cursor::new(&mut buf), ImageFormat::Png).unwrap();
    buf
}

/// The synthetic category of the tiny run.
pub const CATEGORY: &str = "weave";

/// A tiny trained run (synthetic `weave` at 64 px, ci preset at 32 px, 2 epochs) and its data
/// root, trained once per test binary under the target's temporary folder.
pub fn tiny_run() -> &'static (PathBuf, PathBuf) {
    static RUN: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    RUN.get_or_init(|| {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("daad-serve-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let data = base.join("data");
        let run = base.join("run");
        let cfg = daad::data::synth::SynthConfig {
            categories: vec![CATEGORY.to_string()],
            size: 64,
            seed: 11,
            n_train: 24,
            n_test_good: 6,
            n_test_defect: 10,
        };
        daad::data::synth::generate(&data, &cfg).expect("synthetic data");
        let (model, mut train) =
            daad::train::preset_configs(daad::train::Preset::Ci, daad::train::Variant::Daad);
        train.epochs = 2;
        train.val_fraction = 0.25;
        let spec = daad::train::TrainSpec::new(&data, CATEGORY, &run, model, train);
        let t = std::time::Instant::now();
        daad::train::train(
            &spec,
            &candle_core::Device::Cpu,
            &mut daad::train::NoProgress,
            &AtomicBool::new(false),
        )
        .expect("training the tiny run");
        eprintln!("tiny run trained in {:.1}s", t.elapsed().as_secs_f64());
        (run, data)
    })
}

/// Serialises tests that measure time or drive the browser (2-core CI machines).
pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static M: Mutex<()> = Mutex::new(());
    M.lock().unwrap_or_else(|e| e.into_inner())
}

/// True once; for tests that want to log something once.
pub fn once(flag: &AtomicBool) -> bool {
    !flag.swap(true, Ordering::SeqCst)
}
