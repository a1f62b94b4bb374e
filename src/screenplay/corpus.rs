//! Genre corpora: folders of screenplays (.fountain, .txt) the language model learns from.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::film::Genre;

/// Reads a corpus text, refusing what cannot be one: empty, binary or non-UTF-8 files.
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        bail!(
            "{} is empty; a corpus file needs screenplay text",
            path.display()
        );
    }
    if bytes.contains(&0) {
        bail!("{} looks binary (it contains NUL bytes); corpus files must be plain text (.fountain or .txt)", path.display());
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{} is not UTF-8 text (bad byte at offset {}); convert it, e.g. `iconv -t UTF-8`",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })?;
    // Windows line endings would teach the model a second way to end a line.
    Ok(text.replace("\r\n", "\n"))
}

/// The .fountain and .txt files of a folder, sorted (a missing folder has none).
pub fn files(dir: &Path) -> Result<Vec<PathBuf>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("fountain" | "txt")
                )
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Copies `sources` into `corpus/<genre>/`, checking each first. Nothing is copied when any is bad.
pub fn add(corpus: &Path, genre: Genre, sources: &[PathBuf]) -> Result<Vec<PathBuf>> {
    if sources.is_empty() {
        bail!("name at least one .fountain or .txt file to add");
    }
    let mut texts = Vec::new();
    for src in sources {
        if !matches!(
            src.extension().and_then(|e| e.to_str()),
            Some("fountain" | "txt")
        ) {
            bail!(
                "{}: only .fountain and .txt files can be added to a corpus",
                src.display()
            );
        }
        texts.push((src, read_text(src)?));
    }
    let dir = corpus.join(genre.name());
    let mut added = Vec::new();
    for (src, text) in texts {
        let dest = dir.join(src.file_name().unwrap());
        crate::fsutil::write_atomic(&dest, text.as_bytes())?;
        added.push(dest);
    }
    Ok(added)
}

/// Per genre: number of files and bytes.
pub fn list(corpus: &Path) -> Result<Vec<(Genre, usize, u64)>> {
    Genre::ALL
        .iter()
        .map(|&g| {
            let files = files(&corpus.join(g.name()))?;
            let bytes = files
                .iter()
                .filter_map(|f| std::fs::metadata(f).ok())
                .map(|m| m.len())
                .sum();
            Ok((g, files.len(), bytes))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_corpus_files_are_refused_with_the_reason_and_nothing_is_added() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.fountain");
        std::fs::write(&good, "INT. ROOM - DAY\n\nA chair.\n").unwrap();
        let empty = dir.path().join("empty.txt");
        std::fs::write(&empty, "  \n").unwrap();
        let binary = dir.path().join("bin.txt");
        std::fs::write(&binary, [0u8, 1, 2, 3]).unwrap();
        let latin1 = dir.path().join("latin1.txt");
        std::fs::write(&latin1, [b'c', b'a', b'f', 0xe9]).unwrap();
        let corpus = dir.path().join("corpus");
        for (bad, why) in [
            (&empty, "empty"),
            (&binary, "binary"),
            (&latin1, "not UTF-8"),
        ] {
            let err = add(&corpus, Genre::Noir, &[good.clone(), bad.clone()])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(why) && err.contains(&bad.display().to_string()),
                "{err}"
            );
        }
        assert_eq!(
            list(&corpus).unwrap()[0].1,
            0,
            "nothing is added when one file is bad"
        );
        add(&corpus, Genre::Noir, &[good]).unwrap();
        assert_eq!(list(&corpus).unwrap()[0], (Genre::Noir, 1, 26));
    }
}
