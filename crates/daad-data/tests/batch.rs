//! The batcher: every image once per epoch, deterministic per (seed, epoch), seeded flips.

use candle_core::{Device, Tensor};
use daad_data::Batcher;

/// N images of shape (1, 2, 3) whose pixel values encode (image, row, col) uniquely.
fn images(n: usize) -> Tensor {
    let v: Vec<f32> = (0..n * 6).map(|i| i as f32).collect();
    Tensor::from_vec(v, (n, 1, 2, 3), &Device::Cpu).unwrap()
}

fn batches(b: &Batcher, epoch: usize) -> Vec<Vec<f32>> {
    b.epoch(epoch, &Device::Cpu)
        .map(|t| t.unwrap().flatten_all().unwrap().to_vec1().unwrap())
        .collect()
}

#[test]
fn covers_every_image_once_and_sizes() {
    let b = Batcher::new(images(10), 4, 1);
    assert_eq!(b.batches_per_epoch(), 3);
    let all = batches(&b, 0);
    assert_eq!(all.iter().map(|x| x.len() / 6).collect::<Vec<_>>(), vec![4, 4, 2]);
    let mut firsts: Vec<u32> =
        all.iter().flat_map(|x| x.chunks(6).map(|c| c[0] as u32 / 6)).collect();
    firsts.sort();
    assert_eq!(firsts, (0..10).collect::<Vec<_>>());
    let b = Batcher::new(images(10), 4, 1).drop_last(true);
    assert_eq!(b.batches_per_epoch(), 2);
    assert_eq!(batches(&b, 0).len(), 2);
}

#[test]
fn deterministic_per_seed_and_epoch() {
    let a = Batcher::new(images(16), 5, 9).flips(true, true);
    let b = Batcher::new(images(16), 5, 9).flips(true, true);
    assert_eq!(batches(&a, 3), batches(&b, 3));
    // Resume: asking for epoch 3 directly equals epoch 3 after epochs 0..2.
    for e in 0..3 {
        let _ = batches(&a, e);
    }
    assert_eq!(batches(&a, 3), batches(&b, 3));
    assert_ne!(batches(&a, 3), batches(&a, 4));
    let c = Batcher::new(images(16), 5, 10).flips(true, true);
    assert_ne!(batches(&a, 3), batches(&c, 3));
}

#[test]
fn flips_are_seeded_and_exact() {
    let b = Batcher::new(images(64), 64, 3).flips(true, true);
    let (order, flips) = b.plan(0);
    let out = &batches(&b, 0)[0];
    let (mut h, mut v) = (0, 0);
    for (k, &i) in order.iter().enumerate() {
        let img = &out[k * 6..(k + 1) * 6];
        let base = (i * 6) as f32;
        let (fh, fv) = flips[i];
        h += fh as usize;
        v += fv as usize;
        for r in 0..2 {
            for c in 0..3 {
                let sr = if fv { 1 - r } else { r };
                let sc = if fh { 2 - c } else { c };
                assert_eq!(img[r * 3 + c], base + (sr * 3 + sc) as f32);
            }
        }
    }
    // Both kinds of flip occur, roughly half the time each.
    assert!((16..=48).contains(&h) && (16..=48).contains(&v), "h {h} v {v}");
    // Without flips the order is unchanged and nothing is flipped.
    let nf = Batcher::new(images(64), 64, 3);
    let (order2, flips2) = nf.plan(0);
    assert_eq!(order, order2);
    assert!(flips2.iter().all(|f| *f == (false, false)));
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let t = Tensor::zeros((4, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
    let b = Batcher::new(t, 2, 0);
    let first = b.epoch(0, &Device::Cpu).next().unwrap();
    assert!(first.is_err());
    assert!(Batcher::try_new(images(2), 0, 0).is_err());
}
