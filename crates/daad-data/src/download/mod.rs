//! Downloading and installing dataset archives: resumable HTTP, sha256 verification, streaming
//! tar.xz / tar.gz extraction into a temporary folder that is validated and renamed into place
//! only when complete, and a Hugging Face Hub source.
//!
//! [`install`] is the one entry point the `cargo xtask download` command uses; the offline tests
//! call the same function against a loopback server. Everything that fetches or unpacks is
//! behind the `download` feature; the specs ([`ArchiveSpec`], used by the dataset readers) and
//! the [`Progress`] trait are always there.

#[cfg(feature = "download")]
mod extract;
#[cfg(feature = "download")]
mod hf;
#[cfg(feature = "download")]
mod http;
#[cfg(feature = "download")]
mod install;
mod progress;
mod spec;

#[cfg(feature = "download")]
pub use extract::{extract_archive, extract_archive_validated};
#[cfg(feature = "download")]
pub use hf::fetch_hf;
#[cfg(feature = "download")]
pub use http::{download_file, part_path, sha256_file};
#[cfg(feature = "download")]
pub use install::{install, install_validated, Validate};
pub use progress::{NoProgress, Progress};
pub use spec::{ArchiveSpec, HfSpec, InstallOptions, Installed, Source};
