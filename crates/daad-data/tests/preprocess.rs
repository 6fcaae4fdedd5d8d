//! Preprocessing: value ranges, colour types (grey, RGB, RGBA, 16-bit, JPEG), masks, and the cache.

use std::path::Path;

use daad_data::{Label, Preprocess, Sample};

fn px_at(t: &candle_core::Tensor, c: usize, y: usize, x: usize) -> f32 {
    t.get(c).unwrap().get(y).unwrap().get(x).unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn rgb8_maps_to_minus_one_one_chw() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.png");
    let mut img = image::RgbImage::from_pixel(8, 8, image::Rgb([0, 255, 51]));
    img.put_pixel(3, 1, image::Rgb([255, 0, 0]));
    img.save(&p).unwrap();
    let t = Preprocess::new(8).load_image(&p).unwrap();
    assert_eq!(t.dims(), &[3, 8, 8]);
    assert!((px_at(&t, 0, 0, 0) + 1.0).abs() < 1e-6);
    assert!((px_at(&t, 1, 0, 0) - 1.0).abs() < 1e-6);
    assert!((px_at(&t, 2, 0, 0) - (51.0 / 127.5 - 1.0)).abs() < 1e-6);
    // (x=3, y=1) lands at row 1, column 3 of channel 0.
    assert!((px_at(&t, 0, 1, 3) - 1.0).abs() < 1e-6);
    assert!((px_at(&t, 1, 1, 3) + 1.0).abs() < 1e-6);
}

#[test]
fn grey_rgba_16bit_and_jpeg_decode_to_three_channels() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    image::GrayImage::from_pixel(20, 20, image::Luma([200])).save(d.join("g.png")).unwrap();
    image::RgbaImage::from_pixel(20, 20, image::Rgba([200, 200, 200, 7]))
        .save(d.join("a.png"))
        .unwrap();
    image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_pixel(20, 20, image::Luma([200 * 257]))
        .save(d.join("g16.png"))
        .unwrap();
    image::ImageBuffer::<image::Rgb<u16>, Vec<u16>>::from_pixel(20, 20, image::Rgb([200 * 257; 3]))
        .save(d.join("c16.png"))
        .unwrap();
    image::RgbImage::from_pixel(20, 20, image::Rgb([200, 200, 200])).save(d.join("c.jpg")).unwrap();
    let want = 200.0 / 127.5 - 1.0;
    let pre = Preprocess::new(16);
    for f in ["g.png", "a.png", "g16.png", "c16.png", "c.jpg"] {
        let t = pre.load_image(&d.join(f)).unwrap();
        assert_eq!(t.dims(), &[3, 16, 16], "{f}");
        let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        let tol = if f.ends_with("jpg") { 0.03 } else { 1e-3 };
        assert!(v.iter().all(|x| (x - want).abs() < tol), "{f}: {:?}", &v[..3]);
    }
}

#[test]
fn resize_keeps_range_and_smooths() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("checker.png");
    let img = image::RgbImage::from_fn(64, 64, |x, y| {
        if (x + y) % 2 == 0 {
            image::Rgb([255; 3])
        } else {
            image::Rgb([0; 3])
        }
    });
    img.save(&p).unwrap();
    let t = Preprocess::new(16).load_image(&p).unwrap();
    let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
    assert!(v.iter().all(|x| (-1.0..=1.0).contains(x)));
    // An area-aware filter averages a 1-px checkerboard to grey, unlike nearest neighbour.
    assert!(v.iter().all(|x| x.abs() < 0.2), "max {}", v.iter().fold(0f32, |a, b| a.max(b.abs())));
}

#[test]
fn masks_nearest_binary_and_zeros_without_mask() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m_mask.png");
    let img = image::GrayImage::from_fn(32, 32, |x, _| image::Luma([if x < 16 { 0 } else { 255 }]));
    img.save(&m).unwrap();
    let samples = vec![
        Sample {
            image: m.clone(),
            label: Label::Anomalous,
            defect: "d".into(),
            mask: Some(m.clone()),
        },
        Sample { image: m.clone(), label: Label::Normal, defect: "good".into(), mask: None },
    ];
    let t = Preprocess::new(8).load_masks(&samples).unwrap();
    assert_eq!(t.dims(), &[2, 1, 8, 8]);
    let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
    assert!(v.iter().all(|x| *x == 0.0 || *x == 1.0));
    let first: f32 = v[..64].iter().sum();
    assert_eq!(first, 32.0);
    assert_eq!(v[..8], [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]);
    assert!(v[64..].iter().all(|x| *x == 0.0));
}

fn write_noise(p: &Path, seed: u8) {
    let img = image::RgbImage::from_fn(40, 40, |x, y| {
        image::Rgb([(x * 7 + y * 3) as u8 ^ seed, (y * 11) as u8, seed])
    });
    img.save(p).unwrap();
}

#[test]
fn cache_matches_uncached_and_invalidates_on_change() {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<_> = (0..5u8)
        .map(|i| {
            let p = dir.path().join(format!("{i}.png"));
            write_noise(&p, i * 40);
            p
        })
        .collect();
    let cache = dir.path().join("cache");
    let pre = Preprocess::new(24);
    let plain = pre.load_images(&paths, None).unwrap();
    let first = pre.load_images(&paths, Some(&cache)).unwrap();
    let entries = std::fs::read_dir(&cache).unwrap().count();
    assert_eq!(entries, 5);
    let second = pre.load_images(&paths, Some(&cache)).unwrap();
    let d1 =
        (&plain - &first).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    let d2 =
        (&plain - &second).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert_eq!(d1, 0.0);
    assert_eq!(d2, 0.0);

    // A different size is a different entry.
    Preprocess::new(16).load_images(&paths, Some(&cache)).unwrap();
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 10);

    // Rewriting a file (new content, new length) misses the cache and is decoded again.
    let before = pre.cache_entry(&paths[0], &cache).unwrap();
    let img = image::RgbImage::from_pixel(40, 41, image::Rgb([255, 255, 255]));
    img.save(&paths[0]).unwrap();
    let after = pre.cache_entry(&paths[0], &cache).unwrap();
    assert_ne!(before, after);
    let t = pre.load_images(&paths[..1], Some(&cache)).unwrap();
    let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
    assert!(v.iter().all(|x| (x - 1.0).abs() < 1e-6));

    // A corrupt cache entry is rebuilt, not trusted.
    std::fs::write(&after, b"garbage").unwrap();
    let t = pre.load_images(&paths[..1], Some(&cache)).unwrap();
    let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
    assert!(v.iter().all(|x| (x - 1.0).abs() < 1e-6));
}

#[test]
fn zero_size_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.png");
    write_noise(&p, 1);
    assert!(Preprocess::new(0).load_image(&p).is_err());
    assert_eq!(Preprocess::default().size, 256);
}
