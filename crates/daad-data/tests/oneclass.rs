//! MNIST (IDX) and CIFAR-10 (binary) readers on tiny files the test writes, and the one-class protocol.

use std::io::Write;
use std::path::Path;

use daad_data::{cifar, mnist, Error, Label};

fn idx_images(n: usize, r: usize, c: usize, f: impl Fn(usize) -> u8) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 3];
    for d in [n, r, c] {
        b.extend_from_slice(&(d as u32).to_be_bytes());
    }
    b.extend((0..n * r * c).map(f));
    b
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 1];
    b.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    b.extend_from_slice(labels);
    b
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn write_mnist(dir: &Path) {
    // 10 training images (labels 0..9), 6 test images; pixel value = image index * 10.
    let train = idx_images(10, 4, 4, |i| (i / 16 * 10) as u8);
    let test = idx_images(6, 4, 4, |i| (i / 16 * 10) as u8);
    std::fs::write(dir.join("train-images-idx3-ubyte.gz"), gz(&train)).unwrap();
    std::fs::write(
        dir.join("train-labels-idx1-ubyte.gz"),
        gz(&idx_labels(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 3])),
    )
    .unwrap();
    // Uncompressed files are accepted too.
    std::fs::write(dir.join("t10k-images-idx3-ubyte"), test).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte.gz"), gz(&idx_labels(&[3, 1, 3, 0, 9, 2])))
        .unwrap();
}

#[test]
fn mnist_one_class_protocol() {
    let dir = tempfile::tempdir().unwrap();
    write_mnist(dir.path());
    let set = mnist::load_one_class(dir.path(), 3, 8).unwrap();
    assert_eq!(set.train.dims(), &[2, 3, 8, 8], "the two training images of class 3");
    assert_eq!(set.test.dims(), &[6, 3, 8, 8], "the whole test set");
    use Label::*;
    assert_eq!(set.test_labels, vec![Normal, Anomalous, Normal, Anomalous, Anomalous, Anomalous]);
    assert_eq!(set.test_classes, vec![3, 1, 3, 0, 9, 2]);
    // Training image 3 has pixel value 30 everywhere: grey expanded to 3 equal channels.
    let v: Vec<f32> = set.train.get(0).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    assert!(v.iter().all(|x| (x - (30.0 / 127.5 - 1.0)).abs() < 1e-5));
    let e = mnist::load_one_class(dir.path(), 9, 8).unwrap_err().to_string();
    assert!(e.contains("class 9"), "{e}");
}

#[test]
fn mnist_bad_magic_and_size_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write_mnist(dir.path());
    let p = dir.path().join("train-images-idx3-ubyte.gz");
    let mut b = idx_images(10, 4, 4, |_| 0);
    b[3] = 1;
    std::fs::write(&p, gz(&b)).unwrap();
    let e = mnist::load(dir.path()).unwrap_err();
    assert!(matches!(e, Error::Format { .. }));
    assert!(
        e.to_string().contains(&p.display().to_string()) && e.to_string().contains("magic"),
        "{e}"
    );
    let b = idx_images(10, 4, 4, |_| 0);
    std::fs::write(&p, gz(&b[..b.len() - 3])).unwrap();
    let e = mnist::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains(&p.display().to_string()) && e.contains("expected"), "{e}");
    std::fs::remove_file(&p).unwrap();
    let e = mnist::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("xtask download mnist"), "{e}");
}

fn cifar_batch(labels: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    for (i, &l) in labels.iter().enumerate() {
        b.push(l);
        // R plane = i, G plane = 100, B plane = 200.
        b.extend(std::iter::repeat_n(i as u8, 1024));
        b.extend(std::iter::repeat_n(100u8, 1024));
        b.extend(std::iter::repeat_n(200u8, 1024));
    }
    b
}

#[test]
fn cifar_one_class_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join(cifar::FOLDER);
    std::fs::create_dir_all(&d).unwrap();
    for i in 1..=5u8 {
        std::fs::write(d.join(format!("data_batch_{i}.bin")), cifar_batch(&[i % 10, 7])).unwrap();
    }
    std::fs::write(d.join("test_batch.bin"), cifar_batch(&[7, 1, 7, 2])).unwrap();
    let set = cifar::load_one_class(dir.path(), 7, 32).unwrap();
    assert_eq!(set.train.dims(), &[5, 3, 32, 32]);
    assert_eq!(set.test.dims(), &[4, 3, 32, 32]);
    use Label::*;
    assert_eq!(set.test_labels, vec![Normal, Anomalous, Normal, Anomalous]);
    // Channel order is R, G, B as stored.
    let img = set.train.get(0).unwrap();
    let g: Vec<f32> = img.get(1).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let b: Vec<f32> = img.get(2).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    assert!(g.iter().all(|x| (x - (100.0 / 127.5 - 1.0)).abs() < 1e-5));
    assert!(b.iter().all(|x| (x - (200.0 / 127.5 - 1.0)).abs() < 1e-5));
}

#[test]
fn cifar_bad_files_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("test_batch.bin");
    std::fs::write(&p, vec![0u8; 3072]).unwrap();
    let e = cifar::read_batch(&p).unwrap_err().to_string();
    assert!(e.contains(&p.display().to_string()) && e.contains("3073"), "{e}");
    let mut b = cifar_batch(&[1]);
    b[0] = 11;
    std::fs::write(&p, b).unwrap();
    let e = cifar::read_batch(&p).unwrap_err().to_string();
    assert!(e.contains("label 11"), "{e}");
    let e = cifar::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("data_batch_1.bin") && e.contains("xtask download cifar10"), "{e}");
}

#[test]
fn pinned_checksums_are_well_formed() {
    for (name, sha) in mnist::FILES {
        assert!(name.ends_with(".gz"));
        assert_eq!(sha.len(), 64);
    }
    assert_eq!(cifar::ARCHIVE_SHA256.len(), 64);
    assert!(mnist::official_files(Some("http://x/y"))
        .iter()
        .all(|s| s.url.starts_with("http://x/y/")));
}
