//! Small file-system helpers shared by every stage: atomic writes, content hashes, slugs.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Suffix of every temporary file benjamin writes; such a file is never mistaken for an artifact.
pub const PARTIAL_SUFFIX: &str = ".partial";

/// A file being written next to its final path; it becomes visible under that path only when
/// `commit` renames it, so an interrupted run never leaves a whole-looking artifact behind.
pub struct AtomicFile {
    temp: Option<PathBuf>,
    target: PathBuf,
}

impl AtomicFile {
    pub fn new(target: &Path) -> Result<Self> {
        let dir = parent_dir(target);
        fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create folder {}", dir.display()))?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = dir.join(format!(".{name}.{}{PARTIAL_SUFFIX}", std::process::id()));
        Ok(Self {
            temp: Some(temp),
            target: target.to_path_buf(),
        })
    }

    /// Where to write the content.
    pub fn path(&self) -> &Path {
        self.temp.as_deref().expect("AtomicFile used after commit")
    }

    /// Moves the finished file into place.
    pub fn commit(mut self) -> Result<()> {
        let temp = self.temp.take().expect("AtomicFile committed twice");
        fs::rename(&temp, &self.target).with_context(|| {
            format!(
                "cannot move {} into place as {}",
                temp.display(),
                self.target.display()
            )
        })
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            let _ = fs::remove_file(temp);
        }
    }
}

/// Writes `bytes` to `path` atomically (temp file + rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let file = AtomicFile::new(path)?;
    {
        let mut out = fs::File::create(file.path())
            .with_context(|| format!("cannot create {}", file.path().display()))?;
        out.write_all(bytes)
            .with_context(|| format!("cannot write {}", path.display()))?;
        out.sync_all()
            .with_context(|| format!("cannot flush {}", path.display()))?;
    }
    file.commit()
}

/// Removes temporary files a killed run left in `dir` (they never look like artifacts, but they take space).
pub fn remove_partials(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(PARTIAL_SUFFIX) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// BLAKE3 hash of a file's content, as hex.
pub fn hash_file(path: &Path) -> Result<String> {
    let mut file =
        fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().to_hex().to_string())
}

/// BLAKE3 hash of some bytes, as hex.
pub fn hash_bytes(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// A cheap fingerprint of a large external file (size and modification time), used where
/// hashing every byte on each `status` would cost more than it tells.
pub fn fingerprint_file(path: &Path) -> Result<String> {
    let meta = fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Ok(format!("size:{}:mtime:{}", meta.len(), modified))
}

/// Lower-case ASCII slug for folder names: "The Long Rain!" -> "the-long-rain".
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let trimmed = out.trim_end_matches('-');
    if trimmed.is_empty() {
        "untitled".to_string()
    } else {
        trimmed.chars().take(60).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_keeps_words_and_drops_punctuation() {
        assert_eq!(slug("The Long Rain!"), "the-long-rain");
        assert_eq!(slug("  --  "), "untitled");
        assert_eq!(slug("Zone Out (2018)"), "zone-out-2018");
    }

    #[test]
    fn atomic_file_is_invisible_until_commit() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.txt");
        let file = AtomicFile::new(&target).unwrap();
        fs::write(file.path(), b"hello").unwrap();
        assert!(!target.exists());
        file.commit().unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"hello");
    }

    #[test]
    fn dropped_atomic_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.txt");
        {
            let file = AtomicFile::new(&target).unwrap();
            fs::write(file.path(), b"half").unwrap();
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
