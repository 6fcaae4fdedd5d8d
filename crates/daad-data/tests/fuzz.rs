//! The fuzz pass of issue 13 (point 9) for the data readers, as bounded property tests: 256
//! generated inputs per target (mutated valid files and random bytes) for the PNG/JPEG image
//! and mask loader, the IDX and CIFAR-10 readers, the preprocessing cache, and archive
//! extraction (tar, tar.gz, tar.xz with path traversal, links, special files, truncation).
//! Each must return `Ok` or a typed `Err`: no panic, and no allocation beyond what the input's
//! header declares and its length confirms (the readers check sizes before allocating; image
//! decoding is capped by `MAX_DECODE_BYTES`, gzip by `mnist::MAX_IDX_BYTES`).

mod common;

use std::io::Write;
use std::path::Path;

use daad_data::download::{self, NoProgress};
use daad_data::{cifar, mnist, mvtec, Preprocess};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    // Fixed case count and no failure files: bounded time, nothing written to the source tree.
    ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() }
}

/// Valid seeds to mutate: a small RGB PNG, a grey PNG, a 16-bit PNG and a JPEG.
fn seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let rgb = image::RgbImage::from_fn(9, 7, |x, y| image::Rgb([x as u8 * 20, y as u8 * 30, 7]));
    let grey = image::GrayImage::from_fn(5, 6, |x, y| image::Luma([(x * y) as u8]));
    let deep = image::ImageBuffer::<image::Luma<u16>, _>::from_fn(4, 4, |x, _| {
        image::Luma([x as u16 * 9000])
    });
    for (img, fmt) in [
        (image::DynamicImage::ImageRgb8(rgb.clone()), image::ImageFormat::Png),
        (image::DynamicImage::ImageLuma8(grey), image::ImageFormat::Png),
        (image::DynamicImage::ImageLuma16(deep), image::ImageFormat::Png),
        (image::DynamicImage::ImageRgb8(rgb), image::ImageFormat::Jpeg),
    ] {
        let mut buf = std::io::Cursor::new(Vec::new());
        img.write_to(&mut buf, fmt).unwrap();
        out.push(buf.into_inner());
    }
    out
}

/// A seed (or random bytes) with up to 8 byte overwrites and an optional truncation.
fn mutated(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let n = seeds.len();
    (
        0..=n,
        proptest::collection::vec(any::<u8>(), 0..200),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        proptest::option::of(any::<prop::sample::Index>()),
    )
        .prop_map(move |(which, random, edits, cut)| {
            let mut b = if which == n { random } else { seeds[which].clone() };
            if !b.is_empty() {
                for (at, v) in edits {
                    let i = at.index(b.len());
                    b[i] = v;
                }
                if let Some(c) = cut {
                    b.truncate(c.index(b.len() + 1));
                }
            }
            b
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn image_and_mask_loader_never_panic(bytes in mutated(seeds()), ext in 0usize..3) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(["x.png", "x.jpg", "x.jpeg"][ext]);
        std::fs::write(&p, &bytes).unwrap();
        let pre = Preprocess::new(16);
        let _ = mvtec::image_size(&p);
        if let Ok(v) = pre.load_chw(&p) {
            prop_assert_eq!(v.len(), 3 * 16 * 16);
            prop_assert!(v.iter().all(|x| (-1.0..=1.0).contains(x)));
        }
        if let Ok(m) = pre.load_mask(&p) {
            prop_assert!(m.iter().all(|&x| x == 0.0 || x == 1.0));
        }
    }

    #[test]
    fn preprocess_cache_survives_garbage_entries(garbage in proptest::collection::vec(any::<u8>(), 0..300)) {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("a.png");
        std::fs::write(&img, &seeds()[0]).unwrap();
        let pre = Preprocess::new(8);
        let cache = dir.path().join("cache");
        std::fs::create_dir_all(&cache).unwrap();
        std::fs::write(pre.cache_entry(&img, &cache).unwrap(), &garbage).unwrap();
        let got = pre.load_images(std::slice::from_ref(&img), Some(&cache)).unwrap();
        let want = pre.load_images(std::slice::from_ref(&img), None).unwrap();
        prop_assert_eq!(
            got.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            want.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
    }

    #[test]
    fn idx_readers_never_panic(
        magic in prop_oneof![Just(0x0803u32), Just(0x0801u32), any::<u32>()],
        dims in proptest::collection::vec(
            prop_oneof![0u32..6, any::<u32>(), Just(u32::MAX)], 3),
        body in proptest::collection::vec(any::<u8>(), 0..160),
        short in 0usize..20,
        gz in any::<bool>(),
    ) {
        let mut b = magic.to_be_bytes().to_vec();
        for d in &dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend_from_slice(&body);
        b.truncate(b.len().saturating_sub(short % 4 * (short / 4)));
        if gz {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&b).unwrap();
            b = e.finish().unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f-idx-ubyte");
        std::fs::write(&p, &b).unwrap();
        if let Ok((n, r, c, px)) = mnist::read_idx_images(&p) {
            prop_assert_eq!(px.len(), n * r * c);
        }
        if let Ok(labels) = mnist::read_idx_labels(&p) {
            prop_assert!(labels.len() <= b.len().max(body.len()));
        }
    }

    #[test]
    fn cifar_reader_never_panics(
        len in prop_oneof![0usize..10, Just(cifar::RECORD), Just(2 * cifar::RECORD),
                           Just(cifar::RECORD + 1), 0usize..(3 * cifar::RECORD)],
        label in any::<u8>(),
        fill in any::<u8>(),
    ) {
        let mut b = vec![fill; len];
        if let Some(x) = b.first_mut() {
            *x = label;
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("data_batch_1.bin");
        std::fs::write(&p, &b).unwrap();
        if let Ok(raw) = cifar::read_batch(&p) {
            prop_assert_eq!(raw.labels.len() * (cifar::RECORD - 1), raw.pixels.len());
            prop_assert!(raw.labels.iter().all(|&l| l <= 9));
        }
    }

    #[test]
    fn archive_extraction_stays_inside_and_never_panics(
        entries in proptest::collection::vec((0usize..9, 0usize..6, 0usize..4, 0usize..70), 1..6),
        cut in proptest::option::of(any::<prop::sample::Index>()),
        codec in 0usize..3,
    ) {
        let names: [&[u8]; 9] = [
            b"cat/train/good/a.png", b"../escape.txt", b"/abs.txt", b"cat/../../up.txt",
            b"./cat/ok.txt", b"cat/", b"cat/link", b"..", b"cat/sub/deep/f",
        ];
        let targets: [&[u8]; 4] = [b"../../outside", b"/etc/passwd", b"cat/train/good/a.png", b""];
        let mut tarball = Vec::new();
        for (ni, kind, ti, size) in entries {
            let mut h = tar::Header::new_gnu();
            let kind = [
                tar::EntryType::Regular, tar::EntryType::Directory, tar::EntryType::Symlink,
                tar::EntryType::Link, tar::EntryType::Fifo, tar::EntryType::Char,
            ][kind];
            let size = if kind == tar::EntryType::Regular { size } else { 0 };
            h.set_entry_type(kind);
            h.set_size(size as u64);
            h.set_mode(0o644);
            {
                let raw = h.as_old_mut();
                raw.name[..names[ni].len()].copy_from_slice(names[ni]);
                raw.linkname[..targets[ti].len()].copy_from_slice(targets[ti]);
            }
            h.set_cksum();
            tarball.extend_from_slice(h.as_bytes());
            tarball.extend(std::iter::repeat_n(b'z', size));
            tarball.resize(tarball.len().div_ceil(512) * 512, 0);
        }
        tarball.resize(tarball.len() + 1024, 0);
        if let Some(c) = cut {
            tarball.truncate(c.index(tarball.len() + 1));
        }
        let (name, bytes) = match codec {
            0 => ("a.tar", tarball),
            1 => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(&tarball).unwrap();
                ("a.tar.gz", e.finish().unwrap())
            }
            _ => ("a.tar.xz", common::xz(&tarball)),
        };
        let root = tempfile::tempdir().unwrap();
        let work = root.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        let archive = root.path().join(name);
        std::fs::write(&archive, &bytes).unwrap();
        let into = work.join("into");
        let _ = download::extract_archive(&archive, &into, None, &mut NoProgress);
        // Nothing lands outside `into`, and nothing inside it is a link.
        let outside: Vec<_> = std::fs::read_dir(root.path()).unwrap().flatten()
            .map(|e| e.file_name()).filter(|n| n != "work" && n != name).collect();
        prop_assert!(outside.is_empty(), "{:?}", outside);
        let beside: Vec<_> = std::fs::read_dir(&work).unwrap().flatten()
            .map(|e| e.file_name()).filter(|n| n != "into").collect();
        prop_assert!(beside.is_empty(), "{:?}", beside);
        prop_assert!(no_links(&into));
    }
}

/// True when no entry under `dir` (recursively) is a symbolic link or a special file.
fn no_links(dir: &Path) -> bool {
    let Ok(rd) = std::fs::read_dir(dir) else { return true };
    rd.flatten().all(|e| {
        let t = e.file_type().unwrap();
        if t.is_dir() {
            no_links(&e.path())
        } else {
            t.is_file()
        }
    })
}
