//! `daad serve`: a trained run behind HTTP (daad-serve): scoring, the results page, metrics.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use daad_train::preflight::{self, Workload};

use crate::PrecisionArgs;

/// Arguments of `daad serve`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run folder written by `daad train --out RUN`.
    #[arg(long)]
    pub run: PathBuf,
    /// Address to listen on (loopback by default; use --token-file when binding wider).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Most images scored in one model call (requests arriving together share a batch).
    #[arg(long, default_value_t = 16)]
    pub max_batch: usize,
    /// How long a batch waits for more requests, in milliseconds.
    #[arg(long, default_value_t = 5)]
    pub max_wait_ms: u64,
    /// File holding a bearer token that /v1/* and /metrics require.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Dataset root whose test split the page shows (with --category).
    #[arg(long, requires = "category")]
    pub data: Option<PathBuf>,
    /// Category of --data shown by the page.
    #[arg(long, requires = "data")]
    pub category: Option<String>,
    /// The precision of the matrix products.
    #[command(flatten)]
    pub precision: PrecisionArgs,
}

/// Runs `daad serve` until SIGINT or SIGTERM (in-flight requests finish first).
pub fn run(a: Args) -> anyhow::Result<()> {
    let precision = a.precision.precision()?;
    let device = daad::pipeline::default_device();
    let scorer = daad_serve::RunScorer::open(&a.run, &device)
        .and_then(|s| s.with_precision(precision))
        .with_context(|| format!("opening run {}", a.run.display()))?;
    check_memory(&a, &device)?;
    let mut opts = daad_serve::ServeOptions {
        addr: a.addr,
        max_batch: a.max_batch,
        max_wait: Duration::from_millis(a.max_wait_ms),
        ..Default::default()
    };
    if let Some(f) = &a.token_file {
        opts.token = Some(daad_serve::read_token_file(f)?);
    } else if !a.addr.ip().is_loopback() {
        tracing::warn!(
            "listening on {} without --token-file: anyone who can reach it can use it",
            a.addr
        );
    }
    if let (Some(d), Some(c)) = (&a.data, &a.category) {
        let items = daad_serve::dataset_items(d, c)?;
        let title = format!("daad: {} on {c}", a.run.display());
        opts.report = Some(daad_serve::build_report(&scorer, &items, a.max_batch, &title)?);
    }
    tokio::runtime::Runtime::new()
        .context("starting the async runtime")?
        .block_on(daad_serve::serve(Arc::new(scorer), opts))
        .context("serving")
}

/// Refuses, before listening, a run whose batch of --max-batch images cannot fit in memory.
fn check_memory(a: &Args, device: &candle_core::Device) -> anyhow::Result<()> {
    let model = daad_train::read_config(&a.run)?.model;
    let memory = preflight::estimate_scoring(&model, a.max_batch)?;
    let available = preflight::available_memory();
    preflight::check_scoring_memory(
        &memory,
        &model,
        a.max_batch,
        device,
        Workload::Serve,
        available,
    )?;
    Ok(())
}
