//! The results browser: one HTML page (HTML, CSS and JS compiled into the binary) that is both
//! the page `daad serve` shows at `/` and the static report `daad test --html` writes. The
//! static report embeds its data (images as data URIs) and opens from disk; the served page
//! loads the same data from `GET /v1/report` and can score dropped images live.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use daad::eval::{AnomalyMap, HeatmapOptions, HeatmapRange};
use image::imageops::FilterType;
use image::{DynamicImage, ImageFormat, RgbImage};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::scorer::{ModelInfo, Scorer, Verdict};

const PAGE_HTML: &str = include_str!("page/index.html");
const PAGE_CSS: &str = include_str!("page/page.css");
const PAGE_JS: &str = include_str!("page/page.js");

/// Largest side, in pixels, of the images embedded in a report **(choice)**: readable on a
/// laptop, and a 100-image report stays a few MB.
pub const REPORT_IMAGE_SIDE: u32 = 384;

/// Everything the page shows: the model and one entry per test image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportData {
    /// Page title.
    pub title: String,
    /// The model the scores come from.
    pub model: ModelInfo,
    /// The run's verdict threshold (the slider's starting point).
    pub threshold: Option<f64>,
    /// The images, in any order (the page sorts them by score).
    pub images: Vec<ReportImage>,
}

impl ReportData {
    /// A report without images (the served page before `--data` is given).
    pub fn empty(model: &ModelInfo) -> Self {
        ReportData {
            title: format!("daad: {}", model.run),
            model: model.clone(),
            threshold: model.threshold,
            images: Vec::new(),
        }
    }
}

/// One test image of the report. Image fields are `data:image/png;base64,...` URIs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportImage {
    /// File name (defect folder and file).
    pub name: String,
    /// Defect type (the test sub-folder; `good` for normal images).
    pub defect: String,
    /// Ground truth: anomalous or not (None when unknown).
    pub anomalous: Option<bool>,
    /// Fused score with the run's stored scaling.
    pub score: f64,
    /// Raw R(x).
    pub r: f64,
    /// Raw L(x).
    pub l: Option<f64>,
    /// Verdict against the run's threshold.
    pub verdict: Verdict,
    /// The input image.
    pub input: String,
    /// The model's reconstruction.
    pub reconstruction: Option<String>,
    /// The anomaly map in jet colours (one colour range for the whole report).
    pub map: Option<String>,
    /// The map blended over the input, with the ground-truth contour in green.
    pub overlay: Option<String>,
    /// The ground-truth mask.
    pub mask: Option<String>,
}

/// A test image to put in a report.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportItem {
    /// The image file.
    pub image: PathBuf,
    /// Defect type (`good` for normal images).
    pub defect: String,
    /// Ground truth (None when unknown).
    pub anomalous: Option<bool>,
    /// The ground-truth mask file, if any.
    pub mask: Option<PathBuf>,
}

/// The test split of `category` under the MVTec-layout `root` as report items.
pub fn dataset_items(root: &Path, category: &str) -> Result<Vec<ReportItem>> {
    let index = daad::data::mvtec::index_category(root, category).map_err(daad::Error::from)?;
    Ok(index
        .test
        .into_iter()
        .map(|s| ReportItem {
            anomalous: Some(s.label.is_anomalous()),
            defect: s.defect,
            mask: s.mask,
            image: s.image,
        })
        .collect())
}

fn data_uri(img: &DynamicImage) -> std::result::Result<String, String> {
    let mut buf = Vec::new();
    img.write_to(&mut Cursor::new(&mut buf), ImageFormat::Png).map_err(|e| e.to_string())?;
    Ok(format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(buf)))
}

/// `img` shrunk to at most [`REPORT_IMAGE_SIDE`] per side (never enlarged).
fn display_size(img: DynamicImage) -> DynamicImage {
    if img.width().max(img.height()) > REPORT_IMAGE_SIDE {
        img.resize(REPORT_IMAGE_SIDE, REPORT_IMAGE_SIDE, FilterType::Triangle)
    } else {
        img
    }
}

fn image_err(path: &Path) -> impl Fn(String) -> Error + '_ {
    move |message| Error::Image { path: path.to_path_buf(), message }
}

/// Scores `items` with `scorer`, `batch` images per call, and builds the report data: input,
/// reconstruction, anomaly map, overlay and mask per image. The maps share one colour range
/// (the smallest to the largest value over all images), so colours compare across images.
pub fn build_report(
    scorer: &dyn Scorer,
    items: &[ReportItem],
    batch: usize,
    title: &str,
) -> Result<ReportData> {
    let info = scorer.info();
    let mut scored = Vec::with_capacity(items.len());
    for chunk in items.chunks(batch.max(1)) {
        let images: Vec<DynamicImage> = chunk
            .iter()
            .map(|it| image::open(&it.image).map_err(|e| image_err(&it.image)(e.to_string())))
            .collect::<Result<_>>()?;
        let scores = scorer.score(&images, true)?;
        scored.extend(images.into_iter().zip(scores));
    }
    let maps: Vec<&AnomalyMap> = scored.iter().filter_map(|(_, s)| s.map.as_ref()).collect();
    let range = if maps.is_empty() {
        HeatmapRange::PerImage
    } else {
        HeatmapRange::fit(&maps)
            .map_err(|e| Error::Score(crate::scorer::ScoreError(e.to_string())))?
    };
    let opts = HeatmapOptions { range, ..HeatmapOptions::default() };
    let mut out = Vec::with_capacity(items.len());
    for (it, (img, s)) in items.iter().zip(scored) {
        let err = image_err(&it.image);
        let input = display_size(img);
        let mask = match &it.mask {
            Some(p) => Some(image::open(p).map_err(|e| image_err(p)(e.to_string()))?.into_luma8()),
            None => None,
        };
        let (map_uri, overlay_uri) = match &s.map {
            Some(map) => {
                let colours = daad::eval::colorize(map, range).map_err(|e| err(e.to_string()))?;
                let m = mask.as_ref().map(|m| {
                    let data = m.pixels().map(|p| p.0[0] >= 128).collect();
                    daad::eval::Mask::new(m.width() as usize, m.height() as usize, data)
                });
                let m = m.transpose().map_err(|e| err(e.to_string()))?;
                let o = daad::eval::overlay(&input.to_rgb8(), map, &opts, m.as_ref())
                    .map_err(|e| err(e.to_string()))?;
                (
                    Some(data_uri(&DynamicImage::ImageRgb8(colours)).map_err(&err)?),
                    Some(data_uri(&DynamicImage::ImageRgb8(o)).map_err(&err)?),
                )
            }
            None => (None, None),
        };
        let rec = s
            .reconstruction
            .as_ref()
            .map(|r: &RgbImage| data_uri(&DynamicImage::ImageRgb8(r.clone())))
            .transpose()
            .map_err(&err)?;
        let mask_uri = mask
            .map(|m| data_uri(&display_size(DynamicImage::ImageLuma8(m))))
            .transpose()
            .map_err(&err)?;
        let name = match it.image.file_name() {
            Some(f) => format!("{}/{}", it.defect, f.to_string_lossy()),
            None => it.image.display().to_string(),
        };
        out.push(ReportImage {
            name,
            defect: it.defect.clone(),
            anomalous: it.anomalous,
            score: s.score,
            r: s.r,
            l: s.l,
            verdict: s.verdict,
            input: data_uri(&input).map_err(&err)?,
            reconstruction: rec,
            map: map_uri,
            overlay: overlay_uri,
            mask: mask_uri,
        });
    }
    Ok(ReportData { title: title.to_string(), threshold: info.threshold, model: info, images: out })
}

/// JSON safe to put inside a `<script>` element (no `<`, so no `</script>`).
fn script_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into()).replace('<', "\\u003c")
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The page's HTML: with `data`, the data is embedded (static report); with `live`, the page
/// loads `/v1/report` and offers live scoring.
pub fn render_page(data: Option<&ReportData>, model: &ModelInfo, live: bool) -> String {
    let title = data.map_or_else(|| format!("daad: {}", model.run), |d| d.title.clone());
    let data_script = match data {
        Some(d) => format!(
            "<script id=\"daad-data\" type=\"application/json\">{}</script>",
            script_json(d)
        ),
        None => String::new(),
    };
    PAGE_HTML
        .replace("{{TITLE}}", &html_escape(&title))
        .replace("{{LIVE}}", if live { "1" } else { "0" })
        .replace("/*{{CSS}}*/", PAGE_CSS)
        .replace("<!--{{DATA}}-->", &data_script)
        .replace("/*{{JS}}*/", PAGE_JS)
}

/// Writes `data` as a self-contained `index.html` in `dir` (created if needed) that opens from
/// disk without a server; returns the file's path.
pub fn write_html_report(dir: &Path, data: &ReportData) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        op: "creating folder",
        path: dir.into(),
        source,
    })?;
    let path = dir.join("index.html");
    let html = render_page(Some(data), &data.model, false);
    let tmp = dir.join(".index.html.tmp");
    std::fs::write(&tmp, html).map_err(|source| Error::Io {
        op: "writing",
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, &path).map_err(|source| Error::Io {
        op: "writing",
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> ModelInfo {
        ModelInfo {
            run: "runs/<x>".into(),
            run_id: "abc".into(),
            variant: "daad".into(),
            image_size: 32,
            threshold: Some(0.5),
            config: serde_json::Value::Null,
            calibration: None,
            precision: "f32".into(),
        }
    }

    #[test]
    fn embedded_data_cannot_close_the_script() {
        let mut d = ReportData::empty(&info());
        d.title = "</script><b>".into();
        let html = render_page(Some(&d), &d.model, false);
        assert!(!html.contains("</script><b>"));
        assert!(html.contains("&lt;/script&gt;&lt;b&gt;"), "title is escaped");
        let start = html.find("type=\"application/json\">").unwrap() + 24;
        let end = start + html[start..].find("</script>").unwrap();
        let back: ReportData = serde_json::from_str(&html[start..end]).unwrap();
        assert_eq!(back, d);
        assert!(!html.contains("{{") && !html.contains("<!--{{"), "every placeholder is filled");
    }
}
