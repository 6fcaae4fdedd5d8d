//! Serves a run (what `daad serve` will do), or writes its static report with `--html DIR`.
//!
//! ```sh
//! cargo run -p daad-serve --example serve -- --run RUN [--addr 127.0.0.1:8080] \
//!     [--data ROOT --category NAME] [--max-batch 16] [--max-wait-ms 5] [--token-file F] [--html DIR]
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use daad_serve::{build_report, dataset_items, serve, write_html_report, RunScorer, ServeOptions};

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut run, mut data, mut category, mut html) = (None, None, None, None);
    let mut opts = ServeOptions::default();
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--run" => run = Some(PathBuf::from(value()?)),
            "--addr" => opts.addr = value()?.parse().context("--addr")?,
            "--data" => data = Some(PathBuf::from(value()?)),
            "--category" => category = Some(value()?),
            "--max-batch" => opts.max_batch = value()?.parse().context("--max-batch")?,
            "--max-wait-ms" => {
                opts.max_wait = Duration::from_millis(value()?.parse().context("--max-wait-ms")?)
            }
            "--token-file" => opts.token = Some(daad_serve::read_token_file(value()?.as_ref())?),
            "--html" => html = Some(PathBuf::from(value()?)),
            other => bail!("unknown flag {other}"),
        }
    }
    let run = run.context("--run RUN is required")?;
    let scorer = RunScorer::open(&run, &daad::pipeline::default_device())?;
    if let (Some(data), Some(category)) = (&data, &category) {
        let items = dataset_items(data, category)?;
        let title = format!("daad: {} on {category}", run.display());
        opts.report = Some(build_report(&scorer, &items, 16, &title)?);
    }
    if let Some(dir) = html {
        let report = opts.report.context("--html needs --data and --category")?;
        println!("{}", write_html_report(&dir, &report)?.display());
        return Ok(());
    }
    serve(Arc::new(scorer), opts).await?;
    Ok(())
}
