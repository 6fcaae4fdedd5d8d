//! Issue 13.9: a fuzz pass over the run-folder loader. A real (tiny) run is copied, one of its
//! files (config.json, state.json, the safetensors weights and optimiser state, the `latest`
//! pointer, at the top or in a checkpoint) is mutated (bit flips, truncation, inserted bytes,
//! overwritten length fields), and [`RunDir::open`] plus [`RunDir::load_model`] must return
//! (Ok or a typed error) without panicking. Allocation stays bounded because every reader works
//! on the file's bytes (safetensors checks its header length against the file size before
//! allocating; JSON builds values from the text); the test records the counts it ran.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

use candle_core::Device;
use daad_model::Variant;
use daad_train::{train, NoProgress, RunDir};
use proptest::prelude::*;

/// The trained run, once for every case.
fn run_once() -> &'static (tempfile::TempDir, PathBuf) {
    static RUN: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    RUN.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let (root, cat) = common::synth(tmp.path(), 6);
        let out = tmp.path().join("run");
        let mut spec = common::spec(&root, &cat, &out, Variant::DaadPlus);
        spec.train.epochs = 1;
        train(&spec, &Device::Cpu, &mut NoProgress, &AtomicBool::new(false)).unwrap();
        (tmp, out)
    })
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let (p, q) = (e.path(), to.join(e.file_name()));
        if p.is_dir() {
            copy_tree(&p, &q);
        } else {
            std::fs::copy(&p, &q).unwrap();
        }
    }
}

/// One mutation of a file's bytes.
#[derive(Clone, Debug)]
enum Mutation {
    Flip {
        at: usize,
        bit: u8,
    },
    Truncate {
        keep: usize,
    },
    Insert {
        at: usize,
        bytes: Vec<u8>,
    },
    /// Overwrites 8 bytes (e.g. safetensors' header length) with a chosen value.
    Length {
        at: usize,
        value: u64,
    },
    Empty,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        2 => any::<usize>().prop_map(|keep| Mutation::Truncate { keep }),
        2 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        2 => (0usize..16, prop_oneof![Just(u64::MAX), Just(1u64 << 40), any::<u64>()])
            .prop_map(|(at, value)| Mutation::Length { at, value }),
        1 => Just(Mutation::Empty),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let n = bytes.len().max(1);
    match m {
        Mutation::Flip { at, bit } => {
            if !bytes.is_empty() {
                bytes[at % n] ^= 1 << bit;
            }
        }
        Mutation::Truncate { keep } => bytes.truncate(keep % n),
        Mutation::Insert { at, bytes: b } => {
            let at = at % n;
            bytes.splice(at.min(bytes.len())..at.min(bytes.len()), b.iter().copied());
        }
        Mutation::Length { at, value } => {
            if bytes.len() >= at + 8 {
                bytes[*at..at + 8].copy_from_slice(&value.to_le_bytes());
            }
        }
        Mutation::Empty => bytes.clear(),
    }
}

static CASES: AtomicUsize = AtomicUsize::new(0);
static OPENED: AtomicUsize = AtomicUsize::new(0);

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_mutated_run_folder_never_panics(file in any::<prop::sample::Index>(), m in mutation()) {
        let (_keep, run) = run_once();
        let tmp = tempfile::tempdir().unwrap();
        let copy = tmp.path().join("run");
        copy_tree(run, &copy);
        let all = files(&copy);
        let target = file.get(&all);
        let mut bytes = std::fs::read(target).unwrap();
        apply(&mut bytes, &m);
        std::fs::write(target, &bytes).unwrap();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            RunDir::open(&copy).and_then(|r| r.load_model(&Device::Cpu).map(|_| ()))
        }));
        let n = CASES.fetch_add(1, Ordering::SeqCst) + 1;
        match &outcome {
            Ok(Ok(())) => { OPENED.fetch_add(1, Ordering::SeqCst); }
            Ok(Err(e)) => prop_assert!(!e.to_string().is_empty()),
            Err(_) => prop_assert!(false, "panic on {} with {m:?}", target.display()),
        }
        if n % 32 == 0 {
            eprintln!("fuzz_run_dir: {n} cases, {} still opened", OPENED.load(Ordering::SeqCst));
        }
    }
}
