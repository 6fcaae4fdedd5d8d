//! The data-side defects of issue 13, point 9, one test each: non-UTF-8 names, a train-only
//! category, a file where a folder belongs, a large valid image, an unwritable cache, causes
//! printed once, and a download whose content fails validation.

mod common;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use common::{files_under, sha256_hex, tar_xz_dir, Server};
use daad_data::download::{self, ArchiveSpec, InstallOptions, NoProgress, Source};
use daad_data::{mvtec, Error, Label, Preprocess};

fn write_png(path: &Path, w: u32, h: u32, v: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::GrayImage::from_pixel(w, h, image::Luma([v])).save(path).unwrap();
}

/// A category with one training image and one defect image with its mask, the defect image
/// (and optionally the defect folder) named with bytes that are not UTF-8.
fn non_utf8_category(root: &Path, defect: &OsStr) -> std::path::PathBuf {
    let c = root.join("cat");
    write_png(&c.join("train/good/000.png"), 8, 8, 100);
    let stem = OsStr::from_bytes(b"caf\xe9");
    let mut img = stem.to_os_string();
    img.push(".png");
    let mut mask = stem.to_os_string();
    mask.push("_mask.png");
    write_png(&c.join("test").join(defect).join(&img), 8, 8, 50);
    write_png(&c.join("ground_truth").join(defect).join(&mask), 8, 8, 255);
    c.join("ground_truth").join(defect).join(mask)
}

#[test]
fn non_utf8_image_name_finds_its_mask() {
    let dir = tempfile::tempdir().unwrap();
    let mask = non_utf8_category(dir.path(), OsStr::new("scratch"));
    let idx = mvtec::index_category(dir.path(), "cat").unwrap();
    assert_eq!(idx.test.len(), 1);
    assert_eq!(idx.test[0].mask.as_deref(), Some(mask.as_path()));
    assert!(idx.has_masks());
}

#[test]
fn non_utf8_defect_folder_is_indexed_with_its_mask() {
    let dir = tempfile::tempdir().unwrap();
    let defect = OsStr::from_bytes(b"kratzer\xfc");
    let mask = non_utf8_category(dir.path(), defect);
    let idx = mvtec::index_category(dir.path(), "cat").unwrap();
    assert_eq!(idx.test.len(), 1, "the defect folder must not be skipped");
    assert_eq!(idx.test[0].label, Label::Anomalous);
    assert_eq!(idx.test[0].mask.as_deref(), Some(mask.as_path()));
}

#[test]
fn train_only_category_needs_no_test_folder() {
    let dir = tempfile::tempdir().unwrap();
    write_png(&dir.path().join("mine/train/good/a.png"), 8, 8, 10);
    write_png(&dir.path().join("mine/train/good/b.png"), 8, 8, 20);
    let idx = mvtec::index_train_only(dir.path(), "mine").unwrap();
    assert_eq!(idx.train.len(), 2);
    assert!(idx.test.is_empty());
    // The full indexer still asks for the test split, and the train-only one still checks train.
    assert!(matches!(
        mvtec::index_category(dir.path(), "mine").unwrap_err(),
        Error::MissingSplit { .. }
    ));
    std::fs::remove_file(dir.path().join("mine/train/good/a.png")).unwrap();
    std::fs::remove_file(dir.path().join("mine/train/good/b.png")).unwrap();
    assert!(matches!(
        mvtec::index_train_only(dir.path(), "mine").unwrap_err(),
        Error::EmptyCategory { .. }
    ));
}

#[test]
fn a_file_where_a_folder_belongs_says_so() {
    let dir = tempfile::tempdir().unwrap();
    // The data root is a file.
    let root = dir.path().join("data.txt");
    std::fs::write(&root, b"x").unwrap();
    let e = mvtec::index_category(&root, "cap").unwrap_err();
    let t = e.to_string();
    assert!(matches!(e, Error::NotAFolder { .. }), "{t}");
    assert!(t.contains("is a file, expected a folder") && t.contains("data.txt"), "{t}");
    assert!(!t.contains("not found"), "{t}");
    // The category is a file.
    std::fs::write(dir.path().join("cap"), b"x").unwrap();
    let t = mvtec::index_train_only(dir.path(), "cap").unwrap_err().to_string();
    assert!(t.contains("is a file, expected a folder"), "{t}");
    // train/good is a file.
    std::fs::create_dir_all(dir.path().join("nut/train")).unwrap();
    std::fs::write(dir.path().join("nut/train/good"), b"x").unwrap();
    let t = mvtec::index_category(dir.path(), "nut").unwrap_err().to_string();
    assert!(t.contains("is a file, expected a folder") && t.contains("good"), "{t}");
}

/// A PNG whose header says `w x h` RGB 8-bit, followed by a valid but short first IDAT: the
/// decoder must refuse it for its size before reading pixels.
fn big_png_header(w: u32, h: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &[0x78, 0x01]);
    chunk(&mut out, b"IEND", &[]);
    out
}

#[test]
fn large_valid_image_is_refused_for_its_size_not_called_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("huge.png");
    std::fs::write(&p, big_png_header(20_000, 20_000)).unwrap();
    assert_eq!(mvtec::image_size(&p).unwrap(), (20_000, 20_000), "the header is valid");
    let e = Preprocess::new(32).load_chw(&p).unwrap_err();
    let t = e.to_string();
    assert!(matches!(e, Error::ImageTooLarge { .. }), "{t}");
    assert!(!t.contains("file is corrupt"), "{t}");
    assert!(t.contains("20000x20000") && t.contains("512 MiB"), "{t}");
    assert!(t.contains("1145 MiB"), "{t}"); // 20000 * 20000 * 3 bytes
    let e = Preprocess::new(32).load_mask(&p).unwrap_err();
    assert!(matches!(e, Error::ImageTooLarge { .. }), "{e}");
}

#[test]
fn unwritable_cache_is_skipped_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("a.png");
    write_png(&img, 8, 8, 99);
    let pre = Preprocess::new(8);
    let plain = pre.load_images(std::slice::from_ref(&img), None).unwrap();
    let plain: Vec<f32> = plain.flatten_all().unwrap().to_vec1().unwrap();
    // The cache folder cannot be created: a file is in the way (as root, permissions do not stop
    // writes, so this stands in for a read-only folder).
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let got = pre.load_images(std::slice::from_ref(&img), Some(&blocker.join("cache"))).unwrap();
    assert_eq!(got.flatten_all().unwrap().to_vec1::<f32>().unwrap(), plain);
    // The cache folder exists but an entry cannot be written (its name is taken by a folder).
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let entry = pre.cache_entry(&img, &cache).unwrap();
    std::fs::create_dir_all(entry.join("occupied")).unwrap();
    let got = pre.load_images(std::slice::from_ref(&img), Some(&cache)).unwrap();
    assert_eq!(got.flatten_all().unwrap().to_vec1::<f32>().unwrap(), plain);
    let leftovers: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}

#[test]
fn cache_keys_of_distinct_non_utf8_names_differ() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join(OsStr::from_bytes(b"x\xff.png"));
    let b = dir.path().join(OsStr::from_bytes(b"x\xfe.png"));
    write_png(&a, 4, 4, 0);
    write_png(&b, 4, 4, 0);
    let pre = Preprocess::new(4);
    assert_ne!(pre.cache_entry(&a, dir.path()).unwrap(), pre.cache_entry(&b, dir.path()).unwrap());
}

/// Counts how often `needle` occurs in `hay`.
fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

#[test]
fn os_and_codec_errors_print_their_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    // OS error: a missing image.
    let e = Preprocess::new(8).load_chw(&dir.path().join("missing.png")).unwrap_err();
    let os = std::fs::read(dir.path().join("missing.png")).unwrap_err().to_string();
    assert_eq!(count(&e.to_string(), &os), 0, "the cause is the source, not the message");
    assert_eq!(count(&e.full_message(), &os), 1, "{}", e.full_message());
    // Codec error: a truncated PNG.
    let p = dir.path().join("cut.png");
    write_png(&p, 16, 16, 7);
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let e = Preprocess::new(8).load_chw(&p).unwrap_err();
    let Error::Decode { source, .. } = &e else { panic!("{e}") };
    let codec = source.to_string();
    assert_eq!(count(&e.to_string(), &codec), 0, "{e}");
    assert_eq!(count(&e.full_message(), &codec), 1, "{}", e.full_message());
    // Through anyhow's chain printing, as the binaries print errors.
    let any = anyhow::Error::from(e).context("loading");
    assert_eq!(count(&format!("{any:#}"), &codec), 1, "{any:#}");
}

/// A synthetic category packed as `<name>.tar.xz`, made invalid by removing its `test/` folder
/// when `valid` is false.
fn category_archive(name: &str, valid: bool) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join(name);
    write_png(&c.join("train/good/000.png"), 8, 8, 1);
    if valid {
        write_png(&c.join("test/good/000.png"), 8, 8, 2);
    }
    tar_xz_dir(dir.path(), name)
}

#[test]
fn download_failing_validation_installs_nothing_and_keeps_the_old_copy() {
    let validate = |staging: &Path, name: &str| mvtec::index_category(staging, name).map(|_| ());
    let bad = category_archive("bottle", false);
    let server =
        Server::start(HashMap::from([("/bottle.tar.xz".to_string(), bad.clone())]), None, vec![]);
    let src = Source::Url(ArchiveSpec {
        url: format!("{}/bottle.tar.xz", server.url),
        file_name: "bottle.tar.xz".into(),
        sha256: Some(sha256_hex(&bad)),
    });
    let dest = tempfile::tempdir().unwrap();
    let opts = InstallOptions::default();
    let e =
        download::install_validated(&src, dest.path(), "mvtec", &opts, &mut NoProgress, &validate)
            .unwrap_err();
    assert!(matches!(e, Error::Rejected { .. }), "{e}");
    assert!(e.full_message().contains("test"), "{}", e.full_message());
    assert!(!dest.path().join("mvtec/bottle").exists(), "{:?}", files_under(dest.path()));
    // A valid copy already installed is not replaced by an invalid archive.
    let good_dir = tempfile::tempdir().unwrap();
    let good = category_archive("bottle", true);
    let a = good_dir.path().join("bottle.tar.xz");
    std::fs::write(&a, &good).unwrap();
    let into = dest.path().join("mvtec");
    download::extract_archive_validated(&a, &into, None, &mut NoProgress, &validate).unwrap();
    let b = good_dir.path().join("bad.tar.xz");
    std::fs::write(&b, &bad).unwrap();
    let e = download::extract_archive_validated(&b, &into, None, &mut NoProgress, &validate)
        .unwrap_err();
    assert!(matches!(e, Error::Rejected { .. }), "{e}");
    mvtec::index_category(&into, "bottle").expect("the old valid copy is still there");
    let hidden: Vec<_> = std::fs::read_dir(&into)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "staging folder left: {hidden:?}");
}
