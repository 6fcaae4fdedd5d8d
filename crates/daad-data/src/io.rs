//! Durable atomic file writes, the workspace's one home for them (issue 12): a temporary
//! sibling `.NAME.tmp-PID`, fsync of the file, rename over the target, fsync of the folder. A
//! crash or kill leaves the old file or the new one, never half of one; after a power loss the
//! rename is on disk too. Errors are plain [`std::io::Error`]s so every crate wraps them in its
//! own typed error with the path.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The temporary sibling `path` is written to before the rename; the process id keeps two
/// processes writing the same file (e.g. shards sharing a results folder) off each other's copy.
pub fn tmp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Whether a file name is a temporary of [`tmp_path`] (`.NAME.tmp-PID`), e.g. left by a kill.
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp-")
}

/// Writes `bytes` to a new file `path` and fsyncs it.
pub fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// fsyncs a folder so that renames inside it survive a power loss (a no-op where folders cannot
/// be opened, e.g. Windows).
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Replaces `path` by `bytes` atomically and durably: temp file, fsync, rename, fsync of the
/// parent folder. On an error the temporary file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = tmp_path(path);
    let result = write_synced(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    sync_dir(parent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap()).collect();
        assert_eq!(names.len(), 1);
        assert!(is_temp_name(&tmp_path(&p).file_name().unwrap().to_string_lossy()));
        // A failed rename (target is a non-empty folder) removes the temporary file.
        let d = dir.path().join("d");
        std::fs::create_dir_all(d.join("x")).unwrap();
        assert!(write_atomic(&d, b"x").is_err());
        assert!(!tmp_path(&d).exists());
    }
}
