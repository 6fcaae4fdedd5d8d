//! Plain HTTP(S) downloads: resumable through a `.part` file, verified by sha256.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::progress::Progress;
use crate::error::{Error, Result};

pub(super) fn normalise_hex(s: &str) -> Result<String> {
    let h = s.trim().to_ascii_lowercase();
    if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::InvalidArgument(format!("`{s}` is not a sha256 (64 hex digits)")));
    }
    Ok(h)
}

/// Lower-case hex sha256 of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io("reading", path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(30))
        .timeout_read(Duration::from_secs(120))
        .try_proxy_from_env(true)
        .build()
}

/// The `.part` file a download of `dest` writes to (resumed on the next call).
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".part");
    dest.with_file_name(name)
}

/// Downloads `url` to `dest` through `dest.part`, resuming a previous partial download with an
/// HTTP range request, and checks `sha256` (hex) if given. An existing `dest` with the right
/// hash is reused without any network access.
pub fn download_file(
    url: &str,
    dest: &Path,
    sha256: Option<&str>,
    progress: &mut dyn Progress,
) -> Result<PathBuf> {
    let expected = sha256.map(normalise_hex).transpose()?;
    if dest.is_file() {
        match &expected {
            None => return Ok(dest.to_path_buf()),
            Some(e) if &sha256_file(dest)? == e => return Ok(dest.to_path_buf()),
            Some(_) => {
                tracing::warn!(file = %dest.display(), "existing download has the wrong checksum; downloading again");
                std::fs::remove_file(dest).map_err(|e| Error::io("removing", dest, e))?;
            }
        }
    }
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("creating folder", dir, e))?;
    }
    let part = part_path(dest);
    fetch_to_part(url, &part, progress)?;
    if let Some(e) = &expected {
        let actual = sha256_file(&part)?;
        if &actual != e {
            let _ = std::fs::remove_file(&part);
            return Err(Error::Checksum {
                path: dest.to_path_buf(),
                url: url.to_string(),
                expected: e.clone(),
                actual,
            });
        }
    }
    std::fs::rename(&part, dest).map_err(|e| Error::io("renaming download", dest, e))?;
    Ok(dest.to_path_buf())
}

fn http_err(url: &str, reason: impl std::fmt::Display) -> Error {
    Error::Http { url: url.to_string(), reason: reason.to_string() }
}

fn fetch_to_part(url: &str, part: &Path, progress: &mut dyn Progress) -> Result<()> {
    let start = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let mut req = agent().get(url);
    if start > 0 {
        req = req.set("Range", &format!("bytes={start}-"));
        tracing::info!(url, start, "resuming download");
    }
    let resp = match req.call() {
        Ok(r) => r,
        // The part file already holds the whole resource.
        Err(ureq::Error::Status(416, _)) if start > 0 => return Ok(()),
        Err(ureq::Error::Status(code, r)) => {
            return Err(http_err(url, format!("HTTP {code} {}", r.status_text())));
        }
        Err(e) => return Err(http_err(url, e)),
    };
    let (mut file, mut done, total) = if resp.status() == 206 && start > 0 {
        let total = resp
            .header("Content-Range")
            .and_then(|v| v.rsplit('/').next())
            .and_then(|t| t.trim().parse::<u64>().ok());
        let f = std::fs::OpenOptions::new()
            .append(true)
            .open(part)
            .map_err(|e| Error::io("opening", part, e))?;
        (f, start, total)
    } else {
        // No range support (or a fresh start): begin from zero.
        let total = resp.header("Content-Length").and_then(|v| v.trim().parse::<u64>().ok());
        let f = File::create(part).map_err(|e| Error::io("creating", part, e))?;
        (f, 0, total)
    };
    let label = part
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".part").to_string())
        .unwrap_or_default();
    progress.begin(&label, total);
    progress.set_position(done);
    let mut reader = resp.into_reader();
    let mut buf = vec![0u8; 1 << 18];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                progress.end();
                let _ = file.flush();
                return Err(http_err(url, format!("connection lost after {done} bytes ({e})")));
            }
        };
        file.write_all(&buf[..n]).map_err(|e| Error::io("writing", part, e))?;
        done += n as u64;
        progress.set_position(done);
    }
    file.flush().map_err(|e| Error::io("writing", part, e))?;
    progress.end();
    if let Some(t) = total {
        if done != t {
            return Err(http_err(url, format!("incomplete download: {done} of {t} bytes")));
        }
    }
    Ok(())
}
