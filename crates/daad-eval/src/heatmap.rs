//! Heatmap PNGs: an anomaly map through a jet-like colour map, blended over the input image,
//! with the ground-truth mask's contour drawn on top when given.

use std::path::Path;

use image::{Rgb, RgbImage};
use serde::{Deserialize, Serialize};

use crate::anomaly_map::{AnomalyMap, Mask};
use crate::error::{Error, Result};

/// Which map values span the colour map.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum HeatmapRange {
    /// From the map's own minimum to its maximum: always shows a hot spot, even on normal images.
    PerImage,
    /// A fixed range, e.g. from normal training maps, so normal images stay cold **(choice)**.
    Fixed {
        /// Value drawn as the coldest colour.
        min: f32,
        /// Value drawn as the hottest colour.
        max: f32,
    },
}

impl HeatmapRange {
    /// A fixed range from the smallest to the largest value of `maps` (e.g. the anomaly maps of
    /// held-out normal images, so that only values beyond normal ones look hot).
    pub fn fit(maps: &[&AnomalyMap]) -> Result<Self> {
        if maps.is_empty() {
            return Err(Error::Empty { what: "anomaly maps to fit a heatmap range".into() });
        }
        let (mut min, mut max) = (f32::INFINITY, f32::NEG_INFINITY);
        for m in maps {
            let (lo, hi) = m.range()?;
            min = min.min(lo);
            max = max.max(hi);
        }
        Ok(HeatmapRange::Fixed { min, max })
    }
}

/// How a heatmap overlay is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeatmapOptions {
    /// Weight of the colour map in the blend (0 = only the image, 1 = only the colours).
    pub alpha: f32,
    /// Value range of the colour map.
    pub range: HeatmapRange,
    /// Colour of the ground-truth contour.
    pub contour: [u8; 3],
}

impl Default for HeatmapOptions {
    fn default() -> Self {
        HeatmapOptions { alpha: 0.5, range: HeatmapRange::PerImage, contour: [0, 255, 0] }
    }
}

/// The jet colour of `t` in [0, 1] (dark blue -> cyan -> yellow -> dark red); clamped outside.
pub fn jet(t: f32) -> [u8; 3] {
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
    let ch = |c: f32| ((1.5 - (4.0 * t - c).abs()).clamp(0.0, 1.0) * 255.0).round() as u8;
    [ch(3.0), ch(2.0), ch(1.0)]
}

fn value_range(map: &AnomalyMap, range: HeatmapRange) -> Result<(f32, f32)> {
    match range {
        HeatmapRange::PerImage => map.range(),
        HeatmapRange::Fixed { min, max } => Ok((min, max)),
    }
}

/// The map drawn in jet colours, `range` mapped to [0, 1].
pub fn colorize(map: &AnomalyMap, range: HeatmapRange) -> Result<RgbImage> {
    let (lo, hi) = value_range(map, range)?;
    let span = if hi > lo { hi - lo } else { 1.0 };
    let mut img = RgbImage::new(map.width as u32, map.height as u32);
    for (p, &v) in img.pixels_mut().zip(&map.data) {
        *p = Rgb(jet((v - lo) / span));
    }
    Ok(img)
}

/// Blends the colourised `map` over `image` (the map is resized to the image bilinearly) and
/// draws the contour of `mask` (resized nearest) when given.
pub fn overlay(
    image: &RgbImage,
    map: &AnomalyMap,
    opts: &HeatmapOptions,
    mask: Option<&Mask>,
) -> Result<RgbImage> {
    if !(0.0..=1.0).contains(&opts.alpha) {
        return Err(Error::invalid("heatmap alpha", format!("{} is outside [0, 1]", opts.alpha)));
    }
    let (w, h) = (image.width() as usize, image.height() as usize);
    // Fix the colour range on the unresized map so resizing cannot change it.
    let range = value_range(map, opts.range)?;
    let map = map.resize_bilinear(w, h);
    let colours = colorize(&map, HeatmapRange::Fixed { min: range.0, max: range.1 })?;
    let mut out = image.clone();
    for (o, c) in out.pixels_mut().zip(colours.pixels()) {
        for k in 0..3 {
            o.0[k] =
                ((1.0 - opts.alpha) * o.0[k] as f32 + opts.alpha * c.0[k] as f32).round() as u8;
        }
    }
    if let Some(mask) = mask {
        let mask = if (mask.width, mask.height) == (w, h) {
            mask.clone()
        } else {
            mask.resize_nearest(w, h)
        };
        for (x, y) in contour(&mask) {
            out.put_pixel(x as u32, y as u32, Rgb(opts.contour));
        }
    }
    Ok(out)
}

/// The pixels of `mask` with at least one 4-neighbour outside it (or on the image border).
pub fn contour(mask: &Mask) -> Vec<(usize, usize)> {
    let (w, h) = (mask.width, mask.height);
    let inside = |x: isize, y: isize| {
        x >= 0
            && y >= 0
            && (x as usize) < w
            && (y as usize) < h
            && mask.data[y as usize * w + x as usize]
    };
    let mut pts = Vec::new();
    for y in 0..h as isize {
        for x in 0..w as isize {
            if inside(x, y)
                && !(inside(x - 1, y) && inside(x + 1, y) && inside(x, y - 1) && inside(x, y + 1))
            {
                pts.push((x as usize, y as usize));
            }
        }
    }
    pts
}

/// Saves an RGB image as PNG, creating the parent folder.
pub fn save_png(img: &RgbImage, path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
    }
    img.save_with_format(path, image::ImageFormat::Png)
        .map_err(|source| Error::Image { path: path.to_path_buf(), source })
}

/// Reads the original image at `image_path`, overlays `map` at the image's own size and writes
/// the PNG to `out`: the heatmap of `daad predict`.
pub fn write_heatmap(
    image_path: &Path,
    map: &AnomalyMap,
    opts: &HeatmapOptions,
    mask: Option<&Mask>,
    out: &Path,
) -> Result<()> {
    let img = image::open(image_path)
        .map_err(|source| Error::Image { path: image_path.to_path_buf(), source })?
        .into_rgb8();
    save_png(&overlay(&img, map, opts, mask)?, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jet_ends_and_middle() {
        assert_eq!(jet(0.0), [0, 0, 128]);
        assert_eq!(jet(1.0), [128, 0, 0]);
        assert_eq!(jet(0.5), [128, 255, 128]);
        assert_eq!(jet(-3.0), jet(0.0));
    }

    #[test]
    fn overlay_upsamples_and_marks_the_hot_spot_and_contour() {
        let mut data = vec![0f32; 16];
        data[5] = 1.0; // (1, 1) in a 4x4 map -> around (2..4, 2..4) in 8x8
        let map = AnomalyMap::new(4, 4, data).unwrap();
        let img = RgbImage::from_pixel(8, 8, Rgb([100, 100, 100]));
        let mut m = Mask::empty(8, 8);
        for y in 2..5 {
            for x in 2..5 {
                m.data[y * 8 + x] = true;
            }
        }
        let opts = HeatmapOptions { alpha: 1.0, ..Default::default() };
        let out = overlay(&img, &map, &opts, None).unwrap();
        assert_eq!(out.dimensions(), (8, 8));
        let red = |x, y| out.get_pixel(x, y).0[0] as i32 - out.get_pixel(x, y).0[2] as i32;
        assert!(red(2, 2) > red(7, 7));
        let with = overlay(&img, &map, &opts, Some(&m)).unwrap();
        assert_eq!(with.get_pixel(2, 2).0, [0, 255, 0]);
        assert_ne!(with.get_pixel(3, 3).0, [0, 255, 0]); // interior is not contour
        assert_eq!(contour(&m).len(), 8);
    }

    #[test]
    fn fitted_range_spans_all_maps() {
        let a = AnomalyMap::new(2, 1, vec![0.5, 2.0]).unwrap();
        let b = AnomalyMap::new(2, 1, vec![-1.0, 1.0]).unwrap();
        assert_eq!(
            HeatmapRange::fit(&[&a, &b]).unwrap(),
            HeatmapRange::Fixed { min: -1.0, max: 2.0 }
        );
        assert!(HeatmapRange::fit(&[]).is_err());
    }

    #[test]
    fn png_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/h.png");
        save_png(&RgbImage::from_pixel(3, 2, Rgb([1, 2, 3])), &p).unwrap();
        let back = image::open(&p).unwrap().into_rgb8();
        assert_eq!(back.dimensions(), (3, 2));
        let map = AnomalyMap::new(2, 2, vec![0.0, 1.0, 2.0, 3.0]).unwrap();
        let out = dir.path().join("o.png");
        write_heatmap(&p, &map, &HeatmapOptions::default(), None, &out).unwrap();
        assert_eq!(image::open(&out).unwrap().into_rgb8().dimensions(), (3, 2));
        assert!(write_heatmap(
            &dir.path().join("missing.png"),
            &map,
            &HeatmapOptions::default(),
            None,
            &out
        )
        .is_err());
    }
}
