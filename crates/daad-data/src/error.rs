//! The crate's one error type; every variant about user data names the offending path.

use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong while finding, checking, downloading or decoding data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file system operation failed on `path`.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was attempted ("reading", "creating", ...).
        op: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The category folder does not exist.
    #[error(
        "category folder {path} not found; download it (`cargo xtask download mvtec --category NAME`), \
         write a synthetic one (`daad synth --out ROOT`), or point --data at a folder in MVTec AD layout"
    )]
    MissingCategory {
        /// The folder that was expected.
        path: PathBuf,
    },
    /// A split folder (`train/good` or `test`) is missing.
    #[error("missing split folder {path}: an MVTec-layout category needs train/good/ and test/<good|defect>/")]
    MissingSplit {
        /// The folder that was expected.
        path: PathBuf,
    },
    /// A split folder exists but holds no images.
    #[error("no images (.png, .jpg, .jpeg) in {path}: the category is empty; add images or re-download it")]
    EmptyCategory {
        /// The empty folder.
        path: PathBuf,
    },
    /// `ground_truth/<defect>/` exists but an image of that defect has no mask.
    #[error("defect image {image} has no mask: expected {mask} (every image of a defect with a ground_truth folder needs NNN_mask.png)")]
    MissingMask {
        /// The defect image.
        image: PathBuf,
        /// The mask path that was looked for.
        mask: PathBuf,
    },
    /// A mask's size differs from its image's.
    #[error("mask {mask} is {mask_w}x{mask_h} but its image {image} is {image_w}x{image_h}; masks must match their image's size")]
    MaskSize {
        /// The mask file.
        mask: PathBuf,
        /// Its width.
        mask_w: u32,
        /// Its height.
        mask_h: u32,
        /// The image it belongs to.
        image: PathBuf,
        /// The image's width.
        image_w: u32,
        /// The image's height.
        image_h: u32,
    },
    /// An image could not be read or decoded.
    #[error("cannot decode image {path}: {source}; the file is corrupt or not a PNG/JPEG, replace or delete it")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        source: image::ImageError,
    },
    /// An image could not be written.
    #[error("cannot write image {path}: {source}")]
    Encode {
        /// The file.
        path: PathBuf,
        /// The encoder's error.
        source: image::ImageError,
    },
    /// A binary dataset file (IDX, CIFAR batch, cache entry) is malformed.
    #[error("malformed file {path}: {reason}; delete it and download again")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A downloaded file's sha256 differs from the pinned one.
    #[error(
        "checksum mismatch for {path} (from {url}): expected sha256 {expected}, got {actual}; the file was deleted. \
         Re-run the download; if it fails again the source changed: check the URL or pass the new --sha256"
    )]
    Checksum {
        /// The file that was checked (now deleted).
        path: PathBuf,
        /// Where it came from.
        url: String,
        /// The pinned hash.
        expected: String,
        /// The hash of what arrived.
        actual: String,
    },
    /// An HTTP request failed.
    #[error("download of {url} failed: {reason}; check the network (or the URL), then re-run: the download resumes")]
    Http {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// A Hugging Face Hub request failed.
    #[error("Hugging Face download of {file} from dataset repo {repo} failed: {reason}; check the repo id, file name, token (HF_TOKEN) and endpoint (HF_ENDPOINT)")]
    Hub {
        /// The repo id.
        repo: String,
        /// The file in the repo.
        file: String,
        /// What went wrong.
        reason: String,
    },
    /// An archive could not be extracted.
    #[error("cannot extract archive {path}: {reason}; nothing was installed. Delete the archive and download again")]
    Archive {
        /// The archive.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A bad argument (unknown category, zero size, ...).
    #[error("{0}")]
    InvalidArgument(String),
    /// An error from candle while building tensors.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl Error {
    /// Builds an [`Error::Io`] for `path`.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { op, path: path.into(), source }
    }
}
