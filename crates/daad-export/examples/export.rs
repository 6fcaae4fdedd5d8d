//! Stand-in for `daad export` until the CLI has the subcommand (used by scripts/check-onnx.sh):
//!   cargo run -p daad-export --example export -- RUN OUT.onnx [--opset N] [--batch dynamic|N]
//!       [--outputs score,map,reconstruction]

use anyhow::{bail, Context, Result};
use daad_export::{run_cli, ExportArgs};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut a = ExportArgs { format: "onnx".into(), ..Default::default() };
    let mut positional = Vec::new();
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--opset" => a.opset = Some(value()?.parse().context("--opset")?),
            "--batch" => a.batch = Some(value()?),
            "--outputs" => a.outputs = Some(value()?.split(',').map(String::from).collect()),
            _ if arg.starts_with("--") => bail!("unknown flag {arg}"),
            _ => positional.push(arg),
        }
    }
    let [run, out] = positional.as_slice() else {
        bail!("usage: export RUN OUT.onnx [--opset N] [--batch dynamic|N] [--outputs LIST]");
    };
    a.run = run.into();
    a.out = out.into();
    let report = run_cli(&a).with_context(|| format!("exporting run {run}"))?;
    println!("{}", report.summary());
    Ok(())
}
