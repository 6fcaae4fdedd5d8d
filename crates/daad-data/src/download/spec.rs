//! What to download (URL or Hugging Face file), how to install it, and what was installed.

use std::path::PathBuf;

/// An archive reachable by URL, with its expected sha256 if one is pinned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveSpec {
    /// Where to fetch it (http or https).
    pub url: String,
    /// File name under `<dest>/downloads/`; its suffix selects the decompressor.
    pub file_name: String,
    /// Lower-case hex sha256 of the archive, if known.
    pub sha256: Option<String>,
}

/// A file in a Hugging Face dataset repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HfSpec {
    /// Dataset repo id, e.g. `owner/mvtec-ad`.
    pub repo: String,
    /// Path of the archive inside the repo, e.g. `bottle.tar.xz`.
    pub file: String,
    /// Branch, tag or commit (default `main`).
    pub revision: Option<String>,
    /// Hub endpoint (default: the `HF_ENDPOINT` variable, else `https://huggingface.co`).
    pub endpoint: Option<String>,
    /// Expected sha256; if `None`, the Hub's LFS etag (the file's sha256) is used when it has one.
    pub sha256: Option<String>,
}

/// Where an archive comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A plain HTTP(S) URL (the official archives).
    Url(ArchiveSpec),
    /// A Hugging Face dataset repository.
    HuggingFace(HfSpec),
}

/// How [`install`] behaves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstallOptions {
    /// Allow installing an archive without any known sha256 (its hash is logged so it can be pinned).
    pub allow_unverified: bool,
    /// Extract only this top-level folder of the archive (e.g. one category of the full MVTec archive).
    pub only: Option<String>,
    /// Keep the archive under `<dest>/downloads/` after extraction.
    pub keep_archive: bool,
}

/// What [`install`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installed {
    /// The folders/files placed under `<dest>/<subdir>/`.
    pub paths: Vec<PathBuf>,
    /// sha256 of the archive.
    pub sha256: String,
    /// The archive, if kept.
    pub archive: Option<PathBuf>,
}
