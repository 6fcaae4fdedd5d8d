//! ROC curve plots as PNG, drawn straight into an image buffer: axes, a 0.1 grid, the chance
//! diagonal, one or more curves and a few labels in a built-in 3x5 pixel font, so no system font
//! (and no plotting crate) is needed, in CI or anywhere else.

use std::path::Path;

use image::{Rgb, RgbImage};

use crate::heatmap::save_png;
use crate::roc::RocCurve;
use crate::Result;

/// Curve colours, in order of the curves given.
pub const PALETTE: [[u8; 3]; 6] =
    [[31, 119, 180], [214, 39, 40], [44, 160, 44], [255, 127, 14], [148, 103, 189], [140, 86, 75]];

const MARGIN: u32 = 44;
const FONT_SCALE: u32 = 3;

/// Draws the ROC `curves` on a `size` x `size` white canvas with `title` (only the characters
/// `0-9 . = - A C F O P R T U` and space are drawn; others are left blank).
pub fn roc_plot(curves: &[&RocCurve], title: &str, size: u32) -> RgbImage {
    let size = size.max(2 * MARGIN + 20);
    let mut img = RgbImage::from_pixel(size, size, Rgb([255, 255, 255]));
    let side = (size - 2 * MARGIN) as f64;
    let to_px = |x: f64, y: f64| -> (f64, f64) {
        (MARGIN as f64 + x * side, MARGIN as f64 + (1.0 - y) * side)
    };
    // Grid every 0.1.
    for k in 1..10 {
        let t = k as f64 / 10.0;
        let (a0, a1) = (to_px(t, 0.0), to_px(t, 1.0));
        line(&mut img, a0, a1, [230, 230, 230], 1);
        let (b0, b1) = (to_px(0.0, t), to_px(1.0, t));
        line(&mut img, b0, b1, [230, 230, 230], 1);
    }
    // Chance diagonal, dashed.
    for k in 0..20 {
        if k % 2 == 0 {
            let (t0, t1) = (k as f64 / 20.0, (k + 1) as f64 / 20.0);
            line(&mut img, to_px(t0, t0), to_px(t1, t1), [150, 150, 150], 1);
        }
    }
    // Frame.
    let corners = [to_px(0.0, 0.0), to_px(1.0, 0.0), to_px(1.0, 1.0), to_px(0.0, 1.0)];
    for i in 0..4 {
        line(&mut img, corners[i], corners[(i + 1) % 4], [0, 0, 0], 1);
    }
    for (i, c) in curves.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        for k in 1..c.fpr.len().min(c.tpr.len()) {
            line(&mut img, to_px(c.fpr[k - 1], c.tpr[k - 1]), to_px(c.fpr[k], c.tpr[k]), colour, 2);
        }
    }
    // Labels: axis ends, axis names, title.
    let (x0, y0) = to_px(0.0, 0.0);
    let fh = 5 * FONT_SCALE;
    text(&mut img, "0", x0 as u32 - 2 * FONT_SCALE, y0 as u32 + 6, [0, 0, 0]);
    text(&mut img, "1", (x0 + side) as u32 - 2 * FONT_SCALE, y0 as u32 + 6, [0, 0, 0]);
    text(&mut img, "1", x0 as u32 - 4 * FONT_SCALE - 4, MARGIN - fh / 2, [0, 0, 0]);
    text(&mut img, "FPR", (x0 + side / 2.0) as u32 - 6 * FONT_SCALE, y0 as u32 + 6, [0, 0, 0]);
    text(&mut img, "TPR", 4, (MARGIN as f64 + side / 2.0) as u32, [0, 0, 0]);
    text(&mut img, title, MARGIN, (MARGIN - fh) / 2, [0, 0, 0]);
    img
}

/// Writes [`roc_plot`] of one curve to `path`, titled "AUROC x.xxx".
pub fn write_roc_png(curve: &RocCurve, path: &Path) -> Result<()> {
    let title = format!("AUROC {:.3}", curve.auc());
    save_png(&roc_plot(&[curve], &title, 480), path)
}

/// A line from `a` to `b` (pixel coordinates), `width` pixels thick.
fn line(img: &mut RgbImage, a: (f64, f64), b: (f64, f64), colour: [u8; 3], width: u32) {
    let steps = ((b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil() as usize).max(1);
    for s in 0..=steps {
        let t = s as f64 / steps as f64;
        let (x, y) = (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
        for dy in 0..width {
            for dx in 0..width {
                let (px, py) = (x.round() as i64 + dx as i64, y.round() as i64 + dy as i64);
                if px >= 0 && py >= 0 && (px as u32) < img.width() && (py as u32) < img.height() {
                    img.put_pixel(px as u32, py as u32, Rgb(colour));
                }
            }
        }
    }
}

/// Rows of a 3x5 glyph, 3 bits each (bit 2 = left column).
fn glyph(c: char) -> [u8; 5] {
    match c.to_ascii_uppercase() {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 1, 1],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        '.' => [0, 0, 0, 0, 2],
        '=' => [0, 7, 0, 7, 0],
        '-' => [0, 0, 7, 0, 0],
        'A' => [2, 5, 7, 5, 5],
        'C' => [3, 4, 4, 4, 3],
        'F' => [7, 4, 6, 4, 4],
        'O' => [2, 5, 5, 5, 2],
        'P' => [6, 5, 6, 4, 4],
        'R' => [6, 5, 6, 5, 5],
        'T' => [7, 2, 2, 2, 2],
        'U' => [5, 5, 5, 5, 7],
        _ => [0; 5],
    }
}

/// Draws `s` with its top-left corner at (x, y), each glyph pixel `FONT_SCALE` pixels wide.
fn text(img: &mut RgbImage, s: &str, x: u32, y: u32, colour: [u8; 3]) {
    for (i, c) in s.chars().enumerate() {
        let gx = x + i as u32 * 4 * FONT_SCALE;
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..3u32 {
                if bits & (4 >> col) == 0 {
                    continue;
                }
                for dy in 0..FONT_SCALE {
                    for dx in 0..FONT_SCALE {
                        let (px, py) =
                            (gx + col * FONT_SCALE + dx, y + row as u32 * FONT_SCALE + dy);
                        if px < img.width() && py < img.height() {
                            img.put_pixel(px, py, Rgb(colour));
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roc::roc_curve;

    #[test]
    fn perfect_curve_hugs_the_top_left_corner() {
        let c = roc_curve(&[0.1, 0.2, 0.8, 0.9], &[false, false, true, true]).unwrap();
        let img = roc_plot(&[&c], "AUROC 1.000", 200);
        let side = (200 - 2 * MARGIN) as f64;
        // The curve passes through (0, 1): the top-left corner of the plot area, and along the top.
        let (x, y) = (MARGIN + (0.5 * side) as u32, MARGIN);
        assert_eq!(img.get_pixel(x, y).0, PALETTE[0]);
        // The plot-area middle below the curve holds no curve colour.
        let mid = img.get_pixel(MARGIN + (0.7 * side) as u32, MARGIN + (0.7 * side) as u32).0;
        assert_ne!(mid, PALETTE[0]);
    }

    #[test]
    fn writes_a_png() {
        let dir = tempfile::tempdir().unwrap();
        let c = roc_curve(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap();
        let p = dir.path().join("roc.png");
        write_roc_png(&c, &p).unwrap();
        assert_eq!(image::open(&p).unwrap().into_rgb8().dimensions(), (480, 480));
    }
}
