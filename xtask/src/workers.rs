//! Grid cells trained side by side in worker processes (`--jobs N`).
//!
//! Why processes and not threads: candle's CPU ops share one process-wide thread pool (sized
//! once from `RAYON_NUM_THREADS` / `CANDLE_NUM_THREADS`, one caller at a time), so two cells in
//! one process would queue on it. A worker is this same binary, started with the same
//! arguments and `DAAD_XTASK_CELL=<cell name>`: it recomputes the grid, runs that one cell
//! (writing its `metrics.json`, which the parent then reads like any finished cell) and exits.
//! Small cells gain most: at 64 px, two 1-thread trainings side by side finished in 14.3 s
//! where one after the other at 2 threads took 23-25 s (2-core machine, DAAD, 8 epochs).

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use daad_cli::support::progress::CountBar;

use crate::experiment::run_dir;
use crate::grid::{self, Cell};

/// The variable that makes a process a worker for the named cell.
pub const CELL_ENV: &str = "DAAD_XTASK_CELL";

/// The log a worker writes (its stderr), in the cell's folder.
pub const WORKER_LOG: &str = "worker.log";

/// The cell this process must run alone, when it is a worker.
pub fn assigned_cell() -> Option<String> {
    std::env::var(CELL_ENV).ok().filter(|s| !s.is_empty())
}

/// The threads this machine runs at once (1 when it cannot tell).
pub fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Threads each of `jobs` workers gets on this machine (at least one).
pub fn threads_per_job(jobs: usize) -> usize {
    (cores() / jobs.max(1)).max(1)
}

/// `--jobs` when given, else `default` (0 means one job per core).
pub fn resolve_jobs(asked: Option<usize>, default: usize) -> usize {
    match asked.unwrap_or(default) {
        0 => cores(),
        n => n,
    }
}

struct Running {
    cell: Cell,
    run: PathBuf,
    child: Child,
    started: Instant,
}

/// Trains and tests every unfinished cell of `todo` in up to `jobs` worker processes at once;
/// returns when all have finished, or with an error naming the first that failed (the others
/// finish their cell first). On a stop signal no new worker starts and the running ones are
/// asked to stop too (they checkpoint, and the next run resumes them).
pub fn run_in_workers(todo: &[Cell], results: &Path, jobs: usize, stop: &AtomicBool) -> Result<()> {
    let threads = threads_per_job(jobs).to_string();
    let exe = std::env::current_exe().context("finding the xtask binary to start workers")?;
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    tracing::info!(
        "{} cells in {} worker processes at once, {} thread(s) each; each cell's log: <results>/cells/<cell>/{WORKER_LOG}",
        todo.len(),
        jobs,
        threads
    );
    let bar = CountBar::new("cells");
    bar.update(0, todo.len());
    let mut queue: VecDeque<&Cell> = todo.iter().collect();
    let mut running: Vec<Running> = Vec::new();
    let (mut finished, mut failure, mut forwarded) = (0usize, None::<String>, false);
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        if stopping && !forwarded {
            // A SIGTERM sent to this process alone must reach the workers too; a Ctrl-C
            // already reached them through the process group (they ignore a second signal).
            for r in &running {
                // SAFETY: kill(2) with a pid this process spawned and has not reaped.
                unsafe { libc::kill(r.child.id() as libc::pid_t, libc::SIGTERM) };
            }
            forwarded = true;
        }
        while running.len() < jobs && !stopping && failure.is_none() {
            // Cells that differ only in how they score share a training run (Table 5's last two
            // rows): the second waits for the first, then resumes the finished run and tests.
            let free = |c: &&Cell| running.iter().all(|r| r.run != run_dir(results, c));
            let Some(at) = queue.iter().position(free) else { break };
            let Some(cell) = queue.remove(at) else { break };
            let dir = grid::cell_dir(results, cell);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let log_path = dir.join(WORKER_LOG);
            let log = File::create(&log_path)
                .with_context(|| format!("creating {}", log_path.display()))?;
            let child = Command::new(&exe)
                .args(&args)
                .env(CELL_ENV, cell.name())
                .env("RAYON_NUM_THREADS", &threads)
                .env("CANDLE_NUM_THREADS", &threads)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .with_context(|| format!("starting a worker for cell {}", cell.name()))?;
            tracing::info!("cell {}: started (worker {})", cell.name(), child.id());
            running.push(Running {
                cell: cell.clone(),
                run: run_dir(results, cell),
                child,
                started: Instant::now(),
            });
        }
        if running.is_empty() {
            break;
        }
        let mut still = Vec::with_capacity(running.len());
        for mut r in running {
            match r.child.try_wait().context("waiting for a worker")? {
                None => still.push(r),
                Some(status) => {
                    finished += 1;
                    bar.update(finished, todo.len());
                    if let Err(e) = check_exit(&r.cell, status, results, stop) {
                        failure.get_or_insert(format!("{e:#}"));
                    } else {
                        tracing::info!(
                            "cell {}: done in {:.0} s",
                            r.cell.name(),
                            r.started.elapsed().as_secs_f64()
                        );
                    }
                }
            }
        }
        running = still;
        std::thread::sleep(Duration::from_millis(100));
    }
    bar.finish();
    if let Some(f) = failure {
        bail!("{f}");
    }
    Ok(())
}

/// An error for a worker that did not finish its cell, with the end of its log.
fn check_exit(cell: &Cell, status: ExitStatus, results: &Path, stop: &AtomicBool) -> Result<()> {
    if status.success() && grid::metrics_path(results, cell).is_file() {
        return Ok(());
    }
    if stop.load(Ordering::SeqCst) {
        bail!("interrupted during {}: run the same command again to resume", cell.name());
    }
    let log_path = grid::cell_dir(results, cell).join(WORKER_LOG);
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    let tail = &lines[lines.len().saturating_sub(15)..];
    bail!(
        "cell {} failed in its worker ({status}); the last lines of {}:\n{}",
        cell.name(),
        log_path.display(),
        tail.join("\n")
    )
}
