//! MVTec AD: the 15 categories, the folder indexer with validation, and the official archive URLs.
//!
//! The indexer only walks folders and reads image headers (sizes); decoding lives in
//! [`crate::Preprocess`]. Any folder in the MVTec layout is a valid dataset:
//!
//! ```text
//! <root>/<category>/train/good/*.png
//! <root>/<category>/test/<good|any defect name>/*.png
//! <root>/<category>/ground_truth/<defect>/<stem>_mask.png     (optional as a whole)
//! ```
//! `good` is the only reserved name. Where `ground_truth/<defect>/` exists, every image of that
//! defect needs its mask, of the same size as the image.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use crate::download::ArchiveSpec;
use crate::error::{Error, Result};

/// The 15 MVTec AD categories (5 textures, then 10 objects, each alphabetical).
pub const CATEGORIES: [&str; 15] = [
    "carpet",
    "grid",
    "leather",
    "tile",
    "wood",
    "bottle",
    "cable",
    "capsule",
    "hazelnut",
    "metal_nut",
    "pill",
    "screw",
    "toothbrush",
    "transistor",
    "zipper",
];

/// The five texture categories of MVTec AD.
pub const TEXTURES: [&str; 5] = ["carpet", "grid", "leather", "tile", "wood"];

/// The name of the normal folder, the only reserved folder name.
pub const GOOD: &str = "good";

/// Official full archive (all 15 categories, 5,264,982,680 bytes).
pub const FULL_ARCHIVE_URL: &str = "https://www.mydrive.ch/shares/38536/3830184030e49fe74747669442f0f282/download/420938113-1629952094/mvtec_anomaly_detection.tar.xz";
/// sha256 of `mvtec_anomaly_detection.tar.xz`, as pinned by anomalib's `DOWNLOAD_INFO` and
/// confirmed by independent downloads of the same 5,264,982,680-byte file.
pub const FULL_ARCHIVE_SHA256: &str =
    "cf4313b13603bec67abb49ca959488f7eedce2a9f7795ec54446c649ac98cd3d";
/// File name of the full archive.
pub const FULL_ARCHIVE_NAME: &str = "mvtec_anomaly_detection.tar.xz";

/// Per-category archive URLs on MVTec's share (as linked from MVTec's download page in 2021).
/// No sha256 is pinned for these (none is published); pass one with `--sha256`.
const CATEGORY_URLS: [(&str, &str); 15] = [
    ("bottle", "38536/3830184030e49fe74747669442f0f282/download/420937370-1629951468"),
    ("cable", "38536/3830184030e49fe74747669442f0f282/download/420937413-1629951498"),
    ("capsule", "38536/3830184030e49fe74747669442f0f282/download/420937454-1629951595"),
    ("carpet", "38536/3830184030e49fe74747669442f0f282/download/420937484-1629951672"),
    ("grid", "38536/3830184030e49fe74747669442f0f282/download/420937487-1629951814"),
    ("hazelnut", "38536/3830184030e49fe74747669442f0f282/download/420937545-1629951845"),
    ("leather", "38536/3830184030e49fe74747669442f0f282/download/420937607-1629951964"),
    ("metal_nut", "38536/3830184030e49fe74747669442f0f282/download/420937637-1629952063"),
    ("pill", "43421/11a215a5749fcfb75e331ddd5f8e43ee/download/420938129-1629953099"),
    ("screw", "38536/3830184030e49fe74747669442f0f282/download/420938130-1629953152"),
    ("tile", "38536/3830184030e49fe74747669442f0f282/download/420938133-1629953189"),
    ("toothbrush", "38536/3830184030e49fe74747669442f0f282/download/420938134-1629953256"),
    ("transistor", "38536/3830184030e49fe74747669442f0f282/download/420938166-1629953277"),
    ("wood", "38536/3830184030e49fe74747669442f0f282/download/420938383-1629953354"),
    ("zipper", "38536/3830184030e49fe74747669442f0f282/download/420938385-1629953449"),
];

/// The official archive for one category (`Some`) or for all of them (`None`).
///
/// The full archive carries a pinned sha256; per-category archives do not (MVTec publishes none),
/// so their `sha256` is `None` and the caller must supply one or explicitly skip verification.
pub fn official_archive(category: Option<&str>) -> Result<ArchiveSpec> {
    match category {
        None => Ok(ArchiveSpec {
            url: FULL_ARCHIVE_URL.to_string(),
            file_name: FULL_ARCHIVE_NAME.to_string(),
            sha256: Some(FULL_ARCHIVE_SHA256.to_string()),
        }),
        Some(cat) => {
            let (_, share) = CATEGORY_URLS.iter().find(|(c, _)| *c == cat).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "`{cat}` is not an MVTec AD category (one of: {}); for your own data, point --data at its folder",
                    CATEGORIES.join(", ")
                ))
            })?;
            Ok(ArchiveSpec {
                url: format!("https://www.mydrive.ch/shares/{share}/{cat}.tar.xz"),
                file_name: format!("{cat}.tar.xz"),
                sha256: None,
            })
        }
    }
}

/// Whether an image is normal or anomalous.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Label {
    /// A defect-free image (folder `good`).
    Normal,
    /// An image with a defect (any other folder).
    Anomalous,
}

impl Label {
    /// True for [`Label::Anomalous`].
    pub fn is_anomalous(&self) -> bool {
        matches!(self, Label::Anomalous)
    }
}

/// One image of a dataset with its label, defect type and optional mask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// The image file.
    pub image: PathBuf,
    /// Normal or anomalous.
    pub label: Label,
    /// The defect folder name; `"good"` for normal images.
    pub defect: String,
    /// The ground-truth mask, if the defect has a `ground_truth/<defect>/` folder.
    pub mask: Option<PathBuf>,
}

/// The indexed samples of one category.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CategoryIndex {
    /// The category's folder name.
    pub category: String,
    /// `train/good`, sorted by file name.
    pub train: Vec<Sample>,
    /// `test/*`, sorted by defect folder then file name (`good` sorts like any other name).
    pub test: Vec<Sample>,
}

impl CategoryIndex {
    /// Paths of the training images.
    pub fn train_paths(&self) -> Vec<PathBuf> {
        self.train.iter().map(|s| s.image.clone()).collect()
    }
    /// Paths of the test images.
    pub fn test_paths(&self) -> Vec<PathBuf> {
        self.test.iter().map(|s| s.image.clone()).collect()
    }
    /// Labels of the test images, in order.
    pub fn test_labels(&self) -> Vec<Label> {
        self.test.iter().map(|s| s.label).collect()
    }
    /// True when every anomalous test image has a mask (pixel metrics are possible).
    pub fn has_masks(&self) -> bool {
        let mut anomalous = self.test.iter().filter(|s| s.label.is_anomalous()).peekable();
        anomalous.peek().is_some() && anomalous.all(|s| s.mask.is_some())
    }
    /// The distinct defect names of the test split (without `good`), sorted.
    pub fn defects(&self) -> Vec<String> {
        let mut d: Vec<String> =
            self.test.iter().filter(|s| s.defect != GOOD).map(|s| s.defect.clone()).collect();
        d.dedup();
        d
    }
}

/// True for file names the loader treats as images (png, jpg, jpeg; not hidden files).
pub fn is_image_file(path: &Path) -> bool {
    // Bytes, not `to_str`: a non-UTF-8 name is still a file name.
    let hidden = path.file_name().is_some_and(|n| n.as_encoded_bytes().starts_with(b"."));
    let ext = path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase());
    !hidden && matches!(ext.as_deref(), Some("png" | "jpg" | "jpeg"))
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io("reading folder", dir, e))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| Error::io("reading folder", dir, e))?;
        out.push(entry.path());
    }
    out.sort();
    Ok(out)
}

fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(read_dir_sorted(dir)?.into_iter().filter(|p| p.is_file() && is_image_file(p)).collect())
}

/// Reads only an image's header and returns its (width, height); errors name the file.
pub fn image_size(path: &Path) -> Result<(u32, u32)> {
    let reader = image::ImageReader::open(path)
        .map_err(|e| Error::io("opening image", path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io("reading image", path, e))?;
    reader.into_dimensions().map_err(|source| Error::Decode { path: path.to_path_buf(), source })
}

/// The mask path MVTec uses for `image` of `defect`: `ground_truth/<defect>/<stem>_mask.png`.
///
/// Works on OS strings, so non-UTF-8 file and folder names (which Linux allows) find their mask.
pub fn mask_path(category_dir: &Path, defect: impl AsRef<OsStr>, image: &Path) -> PathBuf {
    let mut name: OsString = image.file_stem().map(OsStr::to_os_string).unwrap_or_default();
    name.push("_mask.png");
    category_dir.join("ground_truth").join(defect.as_ref()).join(name)
}

/// `Ok(())` when `path` is a folder; otherwise [`Error::NotAFolder`] for a file (or another
/// non-folder) and `missing` when nothing is there.
fn expect_dir(path: &Path, hint: &str, missing: impl FnOnce() -> Error) -> Result<()> {
    if path.is_dir() {
        Ok(())
    } else if path.exists() {
        Err(Error::NotAFolder { path: path.to_path_buf(), hint: hint.to_string() })
    } else {
        Err(missing())
    }
}

/// The category folders under `root` (folders holding a `train/` folder), sorted.
pub fn list_categories(root: &Path) -> Result<Vec<String>> {
    Ok(read_dir_sorted(root)?
        .into_iter()
        .filter(|p| p.join("train").is_dir())
        .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_string))
        .collect())
}

/// Indexes `<root>/<category>` and validates it.
///
/// Checks: the category and its `train/good` and `test` folders exist; both splits hold images;
/// every image header decodes; where `ground_truth/<defect>/` exists each image of that defect has
/// `<stem>_mask.png` of the same size. Each failure is an [`Error`] naming the path.
/// Full pixel decoding is left to [`crate::Preprocess`] (whose errors name the file too).
pub fn index_category(root: &Path, category: &str) -> Result<CategoryIndex> {
    let (dir, train) = index_train(root, category)?;
    let test_dir = dir.join("test");
    expect_dir(&test_dir, "", || Error::MissingSplit { path: test_dir.clone() })?;
    let test = index_test(&dir, &test_dir)?;
    tracing::debug!(category, train = train.len(), test = test.len(), "indexed category");
    Ok(CategoryIndex { category: category.to_string(), train, test })
}

/// Indexes and validates only `<root>/<category>/train/good` (training reads nothing else), so
/// a category with good images only needs no `test/` or `ground_truth/` folder. The returned
/// index has an empty `test`.
pub fn index_train_only(root: &Path, category: &str) -> Result<CategoryIndex> {
    let (_, train) = index_train(root, category)?;
    tracing::debug!(category, train = train.len(), "indexed training split");
    Ok(CategoryIndex { category: category.to_string(), train, test: Vec::new() })
}

/// Checks the root, the category and `train/good`; returns the category folder and its samples.
fn index_train(root: &Path, category: &str) -> Result<(PathBuf, Vec<Sample>)> {
    let root_hint = "; --data takes the folder that holds the category folders";
    expect_dir(root, root_hint, || Error::MissingCategory { path: root.join(category) })?;
    let dir = root.join(category);
    expect_dir(&dir, "; a category is a folder with train/good/ inside", || {
        Error::MissingCategory { path: dir.clone() }
    })?;
    let train_dir = dir.join("train").join(GOOD);
    expect_dir(&train_dir, "", || Error::MissingSplit { path: train_dir.clone() })?;
    let train_images = list_images(&train_dir)?;
    if train_images.is_empty() {
        return Err(Error::EmptyCategory { path: train_dir });
    }
    let mut train = Vec::with_capacity(train_images.len());
    for image in train_images {
        image_size(&image)?;
        train.push(Sample { image, label: Label::Normal, defect: GOOD.to_string(), mask: None });
    }
    Ok((dir, train))
}

/// Indexes `test/*` of the category folder `dir`, with masks where `ground_truth/<defect>/` exists.
fn index_test(dir: &Path, test_dir: &Path) -> Result<Vec<Sample>> {
    let mut test = Vec::new();
    for defect_dir in read_dir_sorted(test_dir)?.into_iter().filter(|p| p.is_dir()) {
        let Some(defect_os) = defect_dir.file_name().map(OsStr::to_os_string) else {
            continue;
        };
        if defect_os.as_encoded_bytes().starts_with(b".") {
            continue;
        }
        // The label keeps a readable name; paths keep the exact OS name.
        let defect = defect_os.to_string_lossy().into_owned();
        let label = if defect_os == GOOD { Label::Normal } else { Label::Anomalous };
        let gt_dir = dir.join("ground_truth").join(&defect_os);
        let has_gt = label.is_anomalous() && gt_dir.is_dir();
        for image in list_images(&defect_dir)? {
            let (w, h) = image_size(&image)?;
            let mask = if has_gt {
                let mask = mask_path(dir, &defect_os, &image);
                if !mask.is_file() {
                    return Err(Error::MissingMask { image, mask });
                }
                let (mw, mh) = image_size(&mask)?;
                if (mw, mh) != (w, h) {
                    return Err(Error::MaskSize {
                        mask,
                        mask_w: mw,
                        mask_h: mh,
                        image,
                        image_w: w,
                        image_h: h,
                    });
                }
                Some(mask)
            } else {
                None
            };
            test.push(Sample { image, label, defect: defect.clone(), mask });
        }
    }
    if test.is_empty() {
        return Err(Error::EmptyCategory { path: test_dir.to_path_buf() });
    }
    Ok(test)
}
