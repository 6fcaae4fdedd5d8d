//! Downloading and installing dataset archives: resumable HTTP, sha256 verification, streaming
//! tar.xz / tar.gz extraction into a temporary folder that is validated and renamed into place
//! only when complete, and a Hugging Face Hub source.
//!
//! [`install`] is the one entry point the `cargo xtask download` command uses; the offline tests
//! call the same function against a loopback server.

mod extract;
mod hf;
mod http;
mod install;
mod progress;
mod spec;

pub use extract::{extract_archive, extract_archive_validated};
pub use hf::fetch_hf;
pub use http::{download_file, part_path, sha256_file};
pub use install::{install, install_validated, Validate};
pub use progress::{NoProgress, Progress};
pub use spec::{ArchiveSpec, HfSpec, InstallOptions, Installed, Source};
