//! Every xtask subcommand on tiny data the test generates: `--help`, a run, and the files it writes.

use std::path::Path;
use std::process::{Command, Output};

use daad_data::synth::{self, SynthConfig};

fn xtask(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("xtask runs")
}

fn ok(out: &Output) -> String {
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "xtask failed:\n{text}");
    text
}

fn tiny_synth(root: &Path, categories: &[&str]) {
    let cfg = SynthConfig {
        categories: categories.iter().map(|c| c.to_string()).collect(),
        size: 32,
        seed: 3,
        n_train: 16,
        n_test_good: 4,
        n_test_defect: 8,
    };
    synth::generate(root, &cfg).unwrap();
}

/// The flags every grid test shares: the ci preset at 32 px, one epoch, a small memory.
const TINY: [&str; 8] =
    ["--preset", "ci", "--epochs", "1", "--image-size", "32", "--memory-size", "10"];

#[test]
fn every_subcommand_has_help() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in ["download", "demo", "reproduce", "ablate", "adversarial", "table2", "bench"] {
        let text = ok(&xtask(&[cmd, "--help"], dir.path()));
        assert!(text.contains("Usage"), "{cmd} --help:\n{text}");
    }
}

#[test]
fn reproduce_runs_resumes_shards_and_collects() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    tiny_synth(&data, &["weave", "cap"]);
    let data_s = data.to_str().unwrap();
    let base = [
        "reproduce",
        "--data",
        data_s,
        "--categories",
        "weave,cap",
        "--variants",
        "ae,daad",
        "--name",
        "t",
    ];
    // Two shards split the four cells; collect builds the table from both.
    for shard in ["1/2", "2/2"] {
        let args: Vec<&str> =
            base.iter().chain(TINY.iter()).chain(["--shard", shard].iter()).copied().collect();
        ok(&xtask(&args, dir.path()));
    }
    let results = dir.path().join("results/t");
    let cells: Vec<_> = std::fs::read_dir(results.join("cells")).unwrap().collect();
    assert_eq!(cells.len(), 4);
    for cell in ["weave__ae", "weave__daad", "cap__ae", "cap__daad"] {
        assert!(
            results.join("cells").join(cell).join("metrics.json").is_file(),
            "{cell} has no metrics.json"
        );
    }
    let table = std::fs::read_to_string(results.join("table3.md")).unwrap();
    assert!(
        table.contains("| weave |") && table.contains("| cap |") && table.contains("| mean |"),
        "{table}"
    );
    // A second full run finds every cell finished and trains nothing.
    let args: Vec<&str> = base.iter().chain(TINY.iter()).copied().collect();
    let before = std::fs::metadata(results.join("cells/weave__ae/metrics.json"))
        .unwrap()
        .modified()
        .unwrap();
    ok(&xtask(&args, dir.path()));
    let after = std::fs::metadata(results.join("cells/weave__ae/metrics.json"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after);
    let collected = ok(&xtask(&["reproduce", "--collect", "--name", "t"], dir.path()));
    assert!(collected.contains("| weave |"));
    assert!(results.join("summary.csv").is_file() && results.join("table1.md").is_file());
}

#[test]
fn reproduce_without_data_offers_the_download_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = xtask(&["reproduce", "--data", "nowhere/mvtec"], dir.path());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nowhere/mvtec") && err.contains("cargo xtask download mvtec"), "{err}");
}

#[test]
fn ablate_writes_table4() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    tiny_synth(&data, &["grain"]);
    let mut args = vec![
        "ablate",
        "--divisions",
        "1,4",
        "--data",
        data.to_str().unwrap(),
        "--categories",
        "grain",
    ];
    args.extend(TINY);
    ok(&xtask(&args, dir.path()));
    let table = std::fs::read_to_string(dir.path().join("results/ablate-ci/table4.md")).unwrap();
    assert!(
        table.contains("| 1 | 1 | - | - | 1 |") && table.contains("| 4 | 1 | - | - | 1 |"),
        "{table}"
    );
    let bad = xtask(&["ablate", "--divisions", "3"], dir.path());
    assert!(!bad.status.success());
}

#[test]
fn adversarial_writes_table5() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    tiny_synth(&data, &["nut"]);
    let mut args = vec![
        "adversarial",
        "--generators",
        "daad",
        "--data",
        data.to_str().unwrap(),
        "--categories",
        "nut",
        // In two worker processes: the rows that share a run must not train it at once.
        "--jobs",
        "2",
    ];
    args.extend(TINY);
    ok(&xtask(&args, dir.path()));
    let results = dir.path().join("results/adversarial-ci");
    let logs = std::fs::read_dir(results.join("cells"))
        .unwrap()
        .filter(|c| c.as_ref().unwrap().path().join("worker.log").is_file())
        .count();
    assert_eq!(logs, 5);
    let table = std::fs::read_to_string(results.join("table5.md")).unwrap();
    assert_eq!(table.lines().filter(|l| l.starts_with("| daad |")).count(), 5, "{table}");
    // Rows 4 and 5 (L only; L and R) share one trained run.
    assert_eq!(std::fs::read_dir(results.join("runs")).unwrap().count(), 3);
}

fn write_idx(path: &Path, magic: u32, dims: &[u32], data: &[u8]) {
    let mut bytes = magic.to_be_bytes().to_vec();
    for d in dims {
        bytes.extend(d.to_be_bytes());
    }
    bytes.extend(data);
    std::fs::write(path, bytes).unwrap();
}

/// Tiny MNIST-format files: digit k is a bright square at a class-dependent place.
fn tiny_mnist(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for (prefix, count) in [("train", n), ("t10k", n / 2)] {
        let mut pixels = vec![0u8; count * 28 * 28];
        let labels: Vec<u8> = (0..count).map(|i| (i % 10) as u8).collect();
        for (i, &k) in labels.iter().enumerate() {
            let (y0, x0) = (2 + (k as usize % 5) * 4, 2 + (k as usize / 5) * 12);
            for y in y0..y0 + 8 {
                for x in x0..x0 + 8 {
                    pixels[i * 784 + y * 28 + x] = 200 + (i % 50) as u8;
                }
            }
        }
        write_idx(
            &dir.join(format!("{prefix}-images-idx3-ubyte")),
            0x803,
            &[count as u32, 28, 28],
            &pixels,
        );
        write_idx(
            &dir.join(format!("{prefix}-labels-idx1-ubyte")),
            0x801,
            &[count as u32],
            &labels,
        );
    }
}

#[test]
fn table2_runs_the_one_class_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let mnist = dir.path().join("mnist");
    tiny_mnist(&mnist, 200);
    let args = [
        "table2",
        "--dataset",
        "mnist",
        "--data",
        mnist.to_str().unwrap(),
        "--classes",
        "0,3",
        "--preset",
        "ci",
        "--epochs",
        "1",
        "--memory-size",
        "10",
    ];
    ok(&xtask(&args, dir.path()));
    let results = dir.path().join("results/table2-mnist-ci");
    let table = std::fs::read_to_string(results.join("table2.md")).unwrap();
    assert!(table.contains("| 0 |") && table.contains("| 3 |"), "{table}");
    // Class 3: 20 training images; the test set (100 images) has 10 of class 3 and 90 others.
    let class3 = results.join("oneclass/3");
    assert_eq!(std::fs::read_dir(class3.join("train/good")).unwrap().count(), 20);
    assert_eq!(std::fs::read_dir(class3.join("test/good")).unwrap().count(), 10);
    assert_eq!(std::fs::read_dir(class3.join("test/other")).unwrap().count(), 90);
}

#[test]
fn bench_writes_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "bench",
        "--sizes",
        "32",
        "--batch",
        "2",
        "--reps",
        "1",
        "--memory-size",
        "10",
        "--out",
        "b",
    ];
    let text = ok(&xtask(&args, dir.path()));
    assert!(text.contains("train step"), "{text}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("b/bench.json")).unwrap()).unwrap();
    let step = json[0]["train_step_ms"].as_f64().unwrap();
    assert!(step > 0.0 && step.is_finite());
}

#[test]
fn demo_runs_at_a_tiny_size() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "demo",
        "--out",
        "d",
        "--categories",
        "weave",
        "--variants",
        "ae,daad",
        "--image-size",
        "32",
        "--epochs",
        "1",
        "--memory-size",
        "10",
        "--seeds",
        "0,1",
    ];
    let text = ok(&xtask(&args, dir.path()));
    assert!(text.contains("| weave |") && text.contains("(n=2)"), "{text}");
    // One of the three plain-words readings closes the demo.
    assert!(
        ["DAAD beats AE", "AE beats DAAD", "tie: the difference is inside the noise"]
            .iter()
            .any(|s| text.contains(s)),
        "{text}"
    );
    let table = std::fs::read_to_string(dir.path().join("d/table.md")).unwrap();
    assert!(table.contains("ae image AUROC") && table.contains("daad image AUROC"));
    assert!(table.contains("Paired difference"), "{table}");
    let summary = std::fs::read_to_string(dir.path().join("d/summary.csv")).unwrap();
    assert_eq!(summary.lines().count(), 1 + 4, "one row per cell and seed: {summary}");
    let heatmaps = dir.path().join("d/cells/weave__daad__s1/test/heatmaps");
    assert!(
        std::fs::read_dir(&heatmaps).unwrap().count() > 0,
        "no heatmaps in {}",
        heatmaps.display()
    );
}

/// A cell's image AUROC from its metrics.json.
fn image_auroc(results: &Path, cell: &str) -> f64 {
    let path = results.join("cells").join(cell).join("metrics.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["image_auroc"].as_f64().unwrap()
}

#[test]
fn jobs_train_cells_in_workers_with_the_same_results() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    tiny_synth(&data, &["weave", "cap"]);
    let data_s = data.to_str().unwrap();
    let run = |name: &str, jobs: &str, categories: &str| {
        let args: Vec<&str> = [
            "reproduce",
            "--data",
            data_s,
            "--categories",
            categories,
            "--variants",
            "ae",
            "--name",
            name,
            "--jobs",
            jobs,
        ]
        .iter()
        .chain(TINY.iter())
        .copied()
        .collect();
        xtask(&args, dir.path())
    };
    ok(&run("one", "1", "weave,cap"));
    ok(&run("two", "2", "weave,cap"));
    let (one, two) = (dir.path().join("results/one"), dir.path().join("results/two"));
    for cell in ["weave__ae", "cap__ae"] {
        // Workers log to the cell's folder; the sequential run has no workers.
        assert!(two.join("cells").join(cell).join("worker.log").is_file(), "{cell}");
        assert!(!one.join("cells").join(cell).join("worker.log").exists(), "{cell}");
        let (a, b) = (image_auroc(&one, cell), image_auroc(&two, cell));
        assert!((a - b).abs() < 1e-6, "{cell}: {a} in order, {b} in a worker");
    }
    // A cell that fails in its worker fails the grid, naming the cell and quoting its log.
    std::fs::create_dir_all(data.join("empty/train/good")).unwrap();
    std::fs::create_dir_all(data.join("empty/test/good")).unwrap();
    let out = run("broken", "2", "weave,empty");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cell empty__ae failed in its worker") && err.contains("worker.log"),
        "{err}"
    );
    // The other cell still finished, and is reused by the next run.
    assert!(dir.path().join("results/broken/cells/weave__ae/metrics.json").is_file());
}
