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
        // Unique per write, not only per process: a batch makes films side by side in threads
        // that may write the same file (this machine's calibration) at once.
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let temp = dir.join(format!(
            ".{name}.{}-{n}{PARTIAL_SUFFIX}",
            std::process::id()
        ));
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

/// The lock file benjamin keeps in a folder it works in (hidden; harmless when left).
pub const LOCK_FILE: &str = ".benjamin.lock";

/// An exclusive hold on a folder (a film, the archive, the actors) while one benjamin works
/// in it: a second one is refused with a message naming the first, instead of the two
/// deleting each other's temporary files. The kernel drops the lock when the process ends,
/// however it ends.
#[derive(Debug)]
pub struct FolderLock {
    _file: fs::File,
}

impl FolderLock {
    /// Takes the lock on `dir` (created when missing); `what` names the folder in errors.
    pub fn acquire(dir: &Path, what: &str) -> Result<FolderLock> {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(LOCK_FILE);
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: flock only takes an open descriptor, which `file` owns.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                let err = std::io::Error::last_os_error();
                if err.kind() == std::io::ErrorKind::WouldBlock {
                    let holder = fs::read_to_string(&path).unwrap_or_default();
                    anyhow::bail!(
                        "{what} {} is in use by another benjamin ({}); wait for it to finish, or stop it first",
                        dir.display(),
                        holder.trim()
                    );
                }
                return Err(err).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        // Who holds it, for the message a second benjamin gives.
        let holder = format!(
            "process {}, since {}",
            std::process::id(),
            humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        );
        let _ = file
            .set_len(0)
            .and_then(|()| file.write_all(holder.as_bytes()));
        Ok(FolderLock { _file: file })
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

/// Decodes an image to RGB, its format read from its content (a PNG named .mp4 is still a
/// PNG), with an error naming the file.
pub fn read_rgb_image(path: &Path) -> Result<image::RgbImage> {
    let img = image::ImageReader::open(path)
        .with_context(|| format!("cannot open {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("cannot read {}", path.display()))?
        .decode()
        .with_context(|| format!("{} is not an image benjamin can read", path.display()))?;
    Ok(img.to_rgb8())
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

/// Lower-case slug for folder names: "The Long Rain!" -> "the-long-rain", "ОЛЕГ" -> "олег".
/// Letters and digits of every script are kept; anything else (a slash, a dot) becomes one
/// dash, so a slug never leaves the folder it names a child of.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
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
        assert_eq!(slug("李小龙"), "李小龙");
        assert_eq!(slug("ОЛЕГ"), "олег");
        assert_eq!(slug("../../etc"), "etc");
    }

    #[test]
    fn a_locked_folder_is_refused_with_the_holder_named() {
        let dir = tempfile::tempdir().unwrap();
        let held = FolderLock::acquire(dir.path(), "the film folder").unwrap();
        let err = FolderLock::acquire(dir.path(), "the film folder")
            .err()
            .unwrap();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("in use") && msg.contains(&std::process::id().to_string()),
            "{msg}"
        );
        drop(held);
        FolderLock::acquire(dir.path(), "the film folder").unwrap();
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

    #[test]
    fn threads_writing_one_file_at_once_all_succeed_and_leave_a_whole_one() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("record.json");
        std::thread::scope(|s| {
            for t in 0..4u8 {
                let target = &target;
                s.spawn(move || {
                    for _ in 0..50 {
                        write_atomic(target, &[t; 4096]).unwrap();
                    }
                });
            }
        });
        let bytes = fs::read(&target).unwrap();
        assert!(bytes.len() == 4096 && bytes.iter().all(|&b| b == bytes[0]));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
