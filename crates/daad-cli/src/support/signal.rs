//! Signals, in one module: the stop flag that training polls between steps.
//!
//! First Ctrl-C: the trainer finishes its step, writes a checkpoint and returns (a grid stops
//! after the cell). Second Ctrl-C: exit at once with status 130, without a checkpoint.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::Context;

static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// The process-wide stop flag, with the Ctrl-C handler installed on first use (a process can
/// hold one handler, so later calls return the same flag).
pub fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    if let Some(flag) = STOP.get() {
        return Ok(flag.clone());
    }
    let flag = Arc::new(AtomicBool::new(false));
    let handler_flag = flag.clone();
    ctrlc::set_handler(move || {
        if handler_flag.swap(true, Ordering::SeqCst) {
            eprintln!("second Ctrl-C: exiting without a checkpoint");
            std::process::exit(130);
        }
        eprintln!("Ctrl-C: writing a checkpoint after this step, then stopping (press again to abort); the run resumes where it stopped");
    })
    .context("cannot install the Ctrl-C handler")?;
    Ok(STOP.get_or_init(|| flag).clone())
}
