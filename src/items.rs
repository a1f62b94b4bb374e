//! The finished items of a stage's work (a voiced line, a rendered cue, a scanned or converted
//! shot), each recorded with a key: the hash of everything that made it. A rerun after a kill
//! or an edit redoes only the items whose key changed, as av1an redoes only unfinished chunks.
//!
//! An item counts as finished only when its file was committed whole (written through
//! [`AtomicFile`](crate::fsutil::AtomicFile), so a killed write leaves no file) and still has
//! the size and modification time it was recorded with; anything else is redone. The record
//! is rewritten after every item, so a kill loses at most the item being made.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::fsutil;

/// Name of the record inside the items' folder.
pub const RECORD_FILE: &str = "items.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry<T> {
    key: String,
    /// Size and modification time of the file when it was recorded.
    file_id: String,
    info: T,
}

/// The record of one folder of items. `T` is what a stage keeps about an item besides its file
/// (the length of a voiced line, say); `()` when nothing.
pub struct Items<T> {
    dir: PathBuf,
    entries: BTreeMap<String, Entry<T>>,
    /// Items asked for or made in this run; `prune` removes the rest.
    used: BTreeSet<String>,
    reused: usize,
}

/// The key of an item: the hash of what made it, given as anything serialisable.
pub fn key_of(inputs: &impl Serialize) -> String {
    fsutil::hash_bytes(&serde_json::to_vec(inputs).expect("item inputs serialise"))
}

impl<T: Serialize + DeserializeOwned + Clone> Items<T> {
    /// Opens the record of the items in `dir`. A missing or damaged record trusts no item.
    pub fn open(dir: &Path) -> Items<T> {
        let entries = std::fs::read(dir.join(RECORD_FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Items {
            dir: dir.to_path_buf(),
            entries,
            used: BTreeSet::new(),
            reused: 0,
        }
    }

    /// The folder of the items.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What was kept about item `name` (a file name inside the folder) if it was made from
    /// `key` and its file is unchanged since.
    pub fn get(&mut self, name: &str, key: &str) -> Option<T> {
        self.used.insert(name.to_string());
        let entry = self.entries.get(name).filter(|e| e.key == key)?;
        let now = fsutil::fingerprint_file(&self.dir.join(name)).ok()?;
        let info = (now == entry.file_id).then(|| entry.info.clone())?;
        self.reused += 1;
        Some(info)
    }

    /// Records item `name`, whose file has just been committed, as made from `key`.
    pub fn put(&mut self, name: &str, key: String, info: T) -> Result<()> {
        let file_id = fsutil::fingerprint_file(&self.dir.join(name))
            .with_context(|| format!("item {name} was not written"))?;
        self.used.insert(name.to_string());
        self.entries
            .insert(name.to_string(), Entry { key, file_id, info });
        self.save()
    }

    /// Forgets the items not asked for in this run and removes their files (a line cut from
    /// the screenplay, a shot no longer swapped). Returns how many went.
    pub fn prune(&mut self) -> Result<usize> {
        let mut gone: BTreeSet<String> = self
            .entries
            .keys()
            .filter(|n| !self.used.contains(*n))
            .cloned()
            .collect();
        self.entries.retain(|name, _| !gone.contains(name));
        // Files nobody recorded too (from before records, or a kill between commit and record).
        if let Ok(listing) = std::fs::read_dir(&self.dir) {
            for entry in listing.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name != RECORD_FILE && !self.used.contains(&name) && entry.path().is_file() {
                    std::fs::remove_file(entry.path())
                        .with_context(|| format!("cannot remove {}", entry.path().display()))?;
                    gone.insert(name);
                }
            }
        }
        self.save()?;
        Ok(gone.len())
    }

    /// How many items of this run were found finished rather than made.
    pub fn reused(&self) -> usize {
        self.reused
    }

    fn save(&self) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create folder {}", self.dir.display()))?;
        fsutil::write_atomic(
            &self.dir.join(RECORD_FILE),
            &serde_json::to_vec_pretty(&self.entries)?,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make(items: &mut Items<f64>, name: &str, key: &str, body: &str) {
        fsutil::write_atomic(&items.dir().join(name), body.as_bytes()).unwrap();
        items.put(name, key.to_string(), body.len() as f64).unwrap();
    }

    #[test]
    fn only_unchanged_items_made_from_the_same_inputs_are_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let mut items: Items<f64> = Items::open(dir.path());
        make(&mut items, "a.wav", "k1", "aaaa");
        make(&mut items, "b.wav", "k2", "bb");
        make(&mut items, "c.wav", "k3", "c");

        let mut again: Items<f64> = Items::open(dir.path());
        assert_eq!(again.get("a.wav", "k1"), Some(4.0));
        // Another key: the inputs changed.
        assert_eq!(again.get("b.wav", "other"), None);
        // The file changed behind the record's back (its size differs).
        std::fs::write(dir.path().join("c.wav"), "changed").unwrap();
        assert_eq!(again.get("c.wav", "k3"), None);
        // Never recorded.
        assert_eq!(again.get("d.wav", "k4"), None);
        assert_eq!(again.reused(), 1);
    }

    #[test]
    fn prune_removes_what_this_run_did_not_use_and_a_damaged_record_trusts_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut items: Items<f64> = Items::open(dir.path());
        make(&mut items, "a.wav", "k1", "aaaa");
        make(&mut items, "b.wav", "k2", "bb");
        std::fs::write(dir.path().join("stray.wav"), "x").unwrap();

        let mut again: Items<f64> = Items::open(dir.path());
        assert!(again.get("a.wav", "k1").is_some());
        assert_eq!(again.prune().unwrap(), 2);
        assert!(dir.path().join("a.wav").is_file());
        assert!(!dir.path().join("b.wav").exists());
        assert!(!dir.path().join("stray.wav").exists());

        std::fs::write(dir.path().join(RECORD_FILE), "{ not json").unwrap();
        let mut damaged: Items<f64> = Items::open(dir.path());
        assert_eq!(damaged.get("a.wav", "k1"), None);
    }
}
