//! The crate's one error type; every variant about user data names the offending path.

use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong while finding, checking, downloading or decoding data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file system operation failed on `path` (the OS error is the source, printed once by
    /// error chains such as anyhow's `{:#}`).
    #[error("{op} {path}")]
    Io {
        /// What was attempted ("reading", "creating", ...).
        op: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A path that must be a folder is a file (or another non-folder).
    #[error("{path} is a file, expected a folder{hint}")]
    NotAFolder {
        /// The path.
        path: PathBuf,
        /// What the folder should hold, e.g. "; --data takes the folder that holds the categories".
        hint: String,
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
    /// An image could not be decoded (the codec error is the source).
    #[error(
        "cannot decode image {path}: the file is corrupt or not a PNG/JPEG; replace or delete it"
    )]
    Decode {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        source: image::ImageError,
    },
    /// An image is valid but larger than the decoder may allocate.
    #[error(
        "image {path} is {width}x{height} px: decoding it needs about {need_mib} MiB, over the {limit_mib} MiB \
         decoding limit; the file is not corrupt, downscale it (e.g. to 1024 px) first"
    )]
    ImageTooLarge {
        /// The file.
        path: PathBuf,
        /// Width from the header.
        width: u32,
        /// Height from the header.
        height: u32,
        /// Estimated decoded size in MiB.
        need_mib: u64,
        /// The limit in MiB ([`crate::MAX_DECODE_BYTES`]).
        limit_mib: u64,
    },
    /// An image could not be written (the codec error is the source).
    #[error("cannot write image {path}")]
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
    /// An extracted archive entry failed validation; nothing was installed.
    #[error("archive {archive} holds `{entry}`, which is not valid; nothing was installed")]
    Rejected {
        /// The archive.
        archive: PathBuf,
        /// The top-level entry that failed.
        entry: String,
        /// Why it failed.
        source: Box<Error>,
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
    /// The message followed by every source in the chain, joined by ": " (each cause once), for
    /// places that print one line without an error-reporting crate.
    pub fn full_message(&self) -> String {
        let mut out = self.to_string();
        let mut src = std::error::Error::source(self);
        while let Some(e) = src {
            out.push_str(": ");
            out.push_str(&e.to_string());
            src = e.source();
        }
        out
    }

    /// Builds an [`Error::Io`] for `path`.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { op, path: path.into(), source }
    }
}
