//! The crate's error type.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Result alias of daad-serve.
pub type Result<T> = std::result::Result<T, Error>;

/// What can stop the server from starting, or a report from being written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The address could not be bound.
    #[error(
        "cannot listen on {addr}: {source}; is another server using the port? pass another --addr"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The token file is empty or holds whitespace inside the token.
    #[error("token file {} must hold one token without spaces (e.g. `openssl rand -hex 32 > FILE`)", path.display())]
    BadToken {
        /// The token file.
        path: PathBuf,
    },
    /// The scorer failed while building a report.
    #[error("scoring: {0}")]
    Score(#[from] crate::scorer::ScoreError),
    /// An image of the report could not be read or encoded.
    #[error("image {}: {message}", path.display())]
    Image {
        /// The image file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// From daad (run folders, dataset layout).
    #[error(transparent)]
    Daad(#[from] daad::Error),
}
