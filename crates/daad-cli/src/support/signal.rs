//! Signals, in one module: the stop flag that training polls between steps, and the exit status
//! after a stop.
//!
//! SIGINT (Ctrl-C), SIGTERM (`kill`, `docker stop`, systemd, a Slurm time limit) and SIGHUP (a
//! closed terminal or SSH session) all mean "stop cleanly": the trainer finishes its step,
//! writes a checkpoint and returns (a grid stops after the cell), and the process then exits
//! with 128 + the signal's number (130, 143, 129) so that `daad train ... && daad test ...`
//! does not carry on after an interrupt.
//!
//! **Every later signal is ignored (choice)**: the process is already finishing its step and
//! writing the checkpoint, and tearing that write would lose the work the first signal asked to
//! keep. This also makes one process-group signal one signal (`timeout -s INT` delivers it
//! twice, to the child and to its group). To abort without a checkpoint, send SIGKILL: the
//! checkpoints are transactional, so the run resumes from the last complete one.
//!
//! Why `signal-hook` rather than `ctrlc`: one handler for the three signals (ctrlc handles
//! SIGINT and, with a feature, SIGTERM, never SIGHUP), the number of the signal that arrived
//! (for the exit status), and handling on an ordinary thread through its self-pipe, so the
//! message printing is not restricted to async-signal-safe calls.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();
/// The first stop signal received (0: none).
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// The name of a signal for messages.
fn name(sig: i32) -> &'static str {
    match sig {
        SIGINT => "SIGINT (Ctrl-C)",
        SIGTERM => "SIGTERM",
        SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// Records `sig`; returns whether it is the first stop signal of the process.
fn record(sig: i32, flag: &AtomicBool) -> bool {
    let first = RECEIVED.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst).is_ok();
    flag.store(true, Ordering::SeqCst);
    first
}

/// The process-wide stop flag, with the SIGINT/SIGTERM/SIGHUP handler installed on first use
/// (later calls return the same flag).
pub fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let mut err = None;
    let flag = STOP.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        match Signals::new([SIGINT, SIGTERM, SIGHUP]) {
            Ok(mut signals) => {
                let f = flag.clone();
                std::thread::spawn(move || {
                    for sig in signals.forever() {
                        if record(sig, &f) {
                            eprintln!(
                                "{}: finishing this step, writing a checkpoint, then stopping; the run resumes with --resume (further signals are ignored; SIGKILL aborts without a checkpoint)",
                                name(sig)
                            );
                        } else {
                            eprintln!(
                                "{}: already stopping; waiting for the checkpoint to be written",
                                name(sig)
                            );
                        }
                    }
                });
            }
            Err(e) => err = Some(e),
        }
        flag
    });
    if let Some(e) = err {
        return Err(e).context("cannot install the SIGINT/SIGTERM/SIGHUP handler");
    }
    Ok(flag.clone())
}

/// The first stop signal received, if any (e.g. `SIGTERM`).
pub fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// The exit status after a stop by a signal: 128 + its number (130 SIGINT, 143 SIGTERM, 129
/// SIGHUP), the shell's convention; None when no signal arrived.
pub fn exit_status() -> Option<u8> {
    received().and_then(|s| u8::try_from(128 + s).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_shell_convention() {
        assert_eq!(128 + SIGINT, 130);
        assert_eq!(128 + SIGTERM, 143);
        assert_eq!(128 + SIGHUP, 129);
    }
}
