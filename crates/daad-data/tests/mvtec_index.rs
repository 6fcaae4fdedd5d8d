//! The MVTec-layout indexer: labels, defects, masks, and one test per validation error that
//! checks the message names the offending path.

mod common;

use std::path::Path;

use daad_data::{mvtec, synth, Error, Label, Preprocess};

fn small(dir: &Path, cats: &[&str]) {
    let cfg = synth::SynthConfig {
        categories: cats.iter().map(|s| s.to_string()).collect(),
        size: 32,
        seed: 7,
        n_train: 4,
        n_test_good: 2,
        n_test_defect: 4,
    };
    synth::generate(dir, &cfg).unwrap();
}

fn write_png(path: &Path, w: u32, h: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::RgbImage::from_pixel(w, h, image::Rgb([10, 20, 30])).save(path).unwrap();
}

#[test]
fn indexes_synth_layout() {
    let dir = tempfile::tempdir().unwrap();
    small(dir.path(), &["cap"]);
    let idx = mvtec::index_category(dir.path(), "cap").unwrap();
    assert_eq!(idx.category, "cap");
    assert_eq!(idx.train.len(), 4);
    assert_eq!(idx.test.len(), 6);
    assert!(idx
        .train
        .iter()
        .all(|s| s.label == Label::Normal && s.defect == "good" && s.mask.is_none()));
    let good: Vec<_> = idx.test.iter().filter(|s| s.defect == "good").collect();
    assert_eq!(good.len(), 2);
    assert!(good.iter().all(|s| s.label == Label::Normal && s.mask.is_none()));
    let bad: Vec<_> = idx.test.iter().filter(|s| s.label.is_anomalous()).collect();
    assert_eq!(bad.len(), 4);
    for s in bad {
        let m = s.mask.as_ref().expect("defect with mask");
        assert!(m.ends_with(format!(
            "ground_truth/{}/{}_mask.png",
            s.defect,
            s.image.file_stem().unwrap().to_str().unwrap()
        )));
    }
    assert_eq!(idx.defects(), vec!["hole", "missing", "scratch", "stain"]);
    assert!(idx.has_masks());
    assert_eq!(mvtec::list_categories(dir.path()).unwrap(), vec!["cap"]);
}

#[test]
fn any_names_and_no_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("my_widget");
    write_png(&c.join("train/good/a.png"), 8, 8);
    write_png(&c.join("train/good/b.jpg"), 8, 8);
    std::fs::write(c.join("train/good/notes.txt"), "ignored").unwrap();
    write_png(&c.join("test/good/x.png"), 8, 8);
    write_png(&c.join("test/dent/y.png"), 8, 8);
    let idx = mvtec::index_category(dir.path(), "my_widget").unwrap();
    assert_eq!(idx.train.len(), 2);
    assert_eq!(idx.test.len(), 2);
    let dent = idx.test.iter().find(|s| s.defect == "dent").unwrap();
    assert_eq!(dent.label, Label::Anomalous);
    assert!(dent.mask.is_none());
    assert!(!idx.has_masks());
}

fn err_text(e: Error) -> String {
    e.to_string()
}

#[test]
fn missing_category_names_folder() {
    let dir = tempfile::tempdir().unwrap();
    let e = err_text(mvtec::index_category(dir.path(), "nope").unwrap_err());
    assert!(e.contains(&dir.path().join("nope").display().to_string()), "{e}");
}

#[test]
fn missing_split_names_folder() {
    let dir = tempfile::tempdir().unwrap();
    small(dir.path(), &["nut"]);
    std::fs::remove_dir_all(dir.path().join("nut/test")).unwrap();
    let e = mvtec::index_category(dir.path(), "nut").unwrap_err();
    assert!(matches!(e, Error::MissingSplit { .. }));
    assert!(e.to_string().contains(&dir.path().join("nut/test").display().to_string()), "{e}");

    std::fs::remove_dir_all(dir.path().join("nut/train/good")).unwrap();
    let e = mvtec::index_category(dir.path(), "nut").unwrap_err().to_string();
    assert!(e.contains(&dir.path().join("nut/train/good").display().to_string()), "{e}");
}

#[test]
fn empty_category_names_folder() {
    let dir = tempfile::tempdir().unwrap();
    let c = dir.path().join("empty");
    std::fs::create_dir_all(c.join("train/good")).unwrap();
    std::fs::create_dir_all(c.join("test/good")).unwrap();
    let e = mvtec::index_category(dir.path(), "empty").unwrap_err();
    assert!(matches!(e, Error::EmptyCategory { .. }));
    assert!(e.to_string().contains(&c.join("train/good").display().to_string()), "{e}");

    write_png(&c.join("train/good/000.png"), 8, 8);
    let e = mvtec::index_category(dir.path(), "empty").unwrap_err();
    assert!(e.to_string().contains(&c.join("test").display().to_string()), "{e}");
}

#[test]
fn defect_without_mask_names_image_and_mask() {
    let dir = tempfile::tempdir().unwrap();
    small(dir.path(), &["cap"]);
    let mask = dir.path().join("cap/ground_truth/hole/000_mask.png");
    std::fs::remove_file(&mask).unwrap();
    let e = mvtec::index_category(dir.path(), "cap").unwrap_err();
    assert!(matches!(e, Error::MissingMask { .. }));
    let t = e.to_string();
    assert!(t.contains(&dir.path().join("cap/test/hole/000.png").display().to_string()), "{t}");
    assert!(t.contains(&mask.display().to_string()), "{t}");
}

#[test]
fn undecodable_image_names_file() {
    let dir = tempfile::tempdir().unwrap();
    small(dir.path(), &["weave"]);
    // Garbage with a .png name: the header check fails at indexing time.
    let bad = dir.path().join("weave/train/good/001.png");
    std::fs::write(&bad, b"this is not a png at all").unwrap();
    let e = mvtec::index_category(dir.path(), "weave").unwrap_err();
    assert!(e.to_string().contains(&bad.display().to_string()), "{e}");

    // A PNG cut after its header: the header is fine, pixel decoding fails in Preprocess.
    small(dir.path(), &["weave"]);
    let good = std::fs::read(dir.path().join("weave/train/good/002.png")).unwrap();
    let cut = dir.path().join("weave/train/good/002.png");
    std::fs::write(&cut, &good[..good.len() / 2]).unwrap();
    let idx = mvtec::index_category(dir.path(), "weave").unwrap();
    let e = Preprocess::new(16).load_images(&idx.train_paths(), None).unwrap_err();
    assert!(matches!(e, Error::Decode { .. }));
    assert!(e.to_string().contains(&cut.display().to_string()), "{e}");
}

#[test]
fn mask_of_wrong_size_names_mask() {
    let dir = tempfile::tempdir().unwrap();
    small(dir.path(), &["grain"]);
    let mask = dir.path().join("grain/ground_truth/stain/000_mask.png");
    image::GrayImage::new(16, 16).save(&mask).unwrap();
    let e = mvtec::index_category(dir.path(), "grain").unwrap_err();
    assert!(matches!(e, Error::MaskSize { .. }));
    let t = e.to_string();
    assert!(t.contains(&mask.display().to_string()), "{t}");
    assert!(t.contains("16x16") && t.contains("32x32"), "{t}");
}

#[test]
fn categories_constant_and_official_archives() {
    assert_eq!(mvtec::CATEGORIES.len(), 15);
    for c in mvtec::CATEGORIES {
        let a = mvtec::official_archive(Some(c)).unwrap();
        assert!(a.url.ends_with(&format!("/{c}.tar.xz")));
        assert!(a.sha256.is_none());
    }
    let full = mvtec::official_archive(None).unwrap();
    assert_eq!(full.sha256.as_deref(), Some(mvtec::FULL_ARCHIVE_SHA256));
    let e = mvtec::official_archive(Some("nope")).unwrap_err().to_string();
    assert!(e.contains("nope"));
}
