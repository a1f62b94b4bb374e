//! Actors: the people whose faces may be swapped into the shots, each with their photos and a
//! consent record. No face is swapped in without a valid record for that actor.
//!
//! An actors folder holds one folder per actor:
//!
//! ```text
//! actors/ana-lima/
//!   actor.toml      name, when it was added, where the photos came from
//!   consent.toml    the consent record (see [`Consent`])
//!   photos/         the face pictures (copied photos, or frames taken from a video)
//! ```

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::fsutil;
use crate::progress::Progress;

/// The use an actor must agree to for benjamin to swap their face into its films.
pub const FACE_SWAP: &str = "face-swap";
pub const CONSENT_FILE: &str = "consent.toml";
pub const ACTOR_FILE: &str = "actor.toml";
pub const PHOTOS_DIR: &str = "photos";
/// Frames taken from a video of the actor: one every `VIDEO_STEP` seconds, at most `VIDEO_FRAMES`.
pub const VIDEO_STEP: f64 = 0.5;
pub const VIDEO_FRAMES: usize = 300;

/// A consent record, `consent.toml`:
///
/// ```toml
/// name = "Ana Lima"          # the person in the photos; must match the actor's name
/// signed_by = "Ana Lima"     # who agreed: the person, or their legal guardian
/// date = "2025-03-01"        # when they agreed (YYYY-MM-DD), not in the future
/// uses = ["face-swap"]       # what they agreed to; must include "face-swap"
/// expires = "2026-03-01"     # optional: the agreement ends on that day
/// revoked = false            # optional: true withdraws the consent
/// note = "festival entries"  # optional: scope, conditions, a contact
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    pub name: String,
    pub signed_by: String,
    pub date: String,
    pub uses: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    #[serde(default)]
    pub revoked: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Today as YYYY-MM-DD (UTC).
pub fn today() -> String {
    humantime::format_rfc3339(std::time::SystemTime::now()).to_string()[..10].to_string()
}

fn valid_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().ok();
    match (num(0..4), num(5..7), num(8..10)) {
        (Some(y), Some(m), Some(d)) => {
            let days = match m {
                1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
                4 | 6 | 9 | 11 => 30,
                2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
                2 => 28,
                _ => return false,
            };
            y >= 1900 && (1..=days).contains(&d)
        }
        _ => false,
    }
}

impl Consent {
    pub fn parse(text: &str, origin: &Path) -> Result<Consent> {
        toml::from_str(text).with_context(|| {
            format!(
                "{} is not a valid consent record: it needs name, signed_by, date (YYYY-MM-DD) and uses = [\"face-swap\"] (optional: expires, revoked, note); see the README",
                origin.display()
            )
        })
    }

    pub fn load(path: &Path) -> Result<Consent> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the consent record {} (write one as the README's \"Actors and consent\" shows)", path.display()))?;
        Self::parse(&text, path)
    }

    /// Checks that this record lets benjamin swap `actor`'s face into a film on `today`.
    pub fn check(&self, actor: &str, today: &str) -> Result<()> {
        let norm = |s: &str| {
            s.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase()
        };
        if norm(&self.name).is_empty() || norm(&self.name) != norm(actor) {
            bail!(
                "it is for {:?}, not for {actor:?} (its `name` must be the actor's name)",
                self.name
            );
        }
        if self.signed_by.trim().is_empty() {
            bail!("it does not say who agreed (`signed_by` is empty)");
        }
        if !valid_date(&self.date) {
            bail!("its date {:?} is not a date like 2025-03-01", self.date);
        }
        if self.date.as_str() > today {
            bail!("it is dated {} (in the future)", self.date);
        }
        if !self.uses.iter().any(|u| u.trim() == FACE_SWAP) {
            bail!(
                "it does not grant the use {FACE_SWAP:?} (uses = {:?})",
                self.uses
            );
        }
        if let Some(end) = &self.expires {
            if !valid_date(end) {
                bail!("its expiry {end:?} is not a date like 2026-03-01");
            }
            if end.as_str() <= today {
                bail!("it expired on {end}");
            }
        }
        if self.revoked {
            bail!("it was revoked");
        }
        Ok(())
    }
}

/// `actor.toml`: who the actor is and where their photos came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActorInfo {
    pub name: String,
    pub added: String,
    pub source: String,
}

/// A registered actor, as found in an actors folder.
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: String,
    pub dir: PathBuf,
    pub info: ActorInfo,
}

impl Actor {
    pub fn consent_path(&self) -> PathBuf {
        self.dir.join(CONSENT_FILE)
    }

    pub fn photos(&self) -> Result<Vec<PathBuf>> {
        list_images(&self.dir.join(PHOTOS_DIR))
    }

    /// The actor's consent, checked for today; the error says what is wrong and how to fix it.
    pub fn consent(&self) -> Result<Consent> {
        let path = self.consent_path();
        let fix = format!(
            "add a signed record with `benjamin actors add {:?} --photos ... --consent FILE`, or remove the actor with `benjamin actors remove {:?}`",
            self.info.name, self.info.name
        );
        if !path.is_file() {
            bail!(
                "actor {:?} has no consent record ({} is missing); benjamin swaps no face without one: {fix}",
                self.info.name,
                path.display()
            );
        }
        let consent = Consent::load(&path).with_context(|| {
            format!(
                "actor {:?}: the consent record is unreadable",
                self.info.name
            )
        })?;
        consent.check(&self.info.name, &today()).with_context(|| {
            format!(
                "actor {:?}: the consent record {} is not valid; {fix}",
                self.info.name,
                path.display()
            )
        })?;
        Ok(consent)
    }
}

fn is_image(p: &Path) -> bool {
    matches!(
        p.extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .as_deref(),
        Some("png" | "jpg" | "jpeg")
    )
}

/// The PNG and JPEG files of a folder, sorted by name.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_image(p))
        .collect();
    out.sort();
    Ok(out)
}

/// The actors of a folder, sorted by id; an absent folder has none.
pub fn list(actors_dir: &Path) -> Result<Vec<Actor>> {
    if !actors_dir.exists() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let entries = std::fs::read_dir(actors_dir)
        .with_context(|| format!("cannot read the actors folder {}", actors_dir.display()))?;
    for entry in entries {
        let dir = entry?.path();
        let info_path = dir.join(ACTOR_FILE);
        if !dir.is_dir() {
            continue;
        }
        let id = dir.file_name().unwrap().to_string_lossy().into_owned();
        let info = if info_path.is_file() {
            let text = std::fs::read_to_string(&info_path)?;
            toml::from_str(&text)
                .with_context(|| format!("{} is not a valid actor file", info_path.display()))?
        } else if dir.join(PHOTOS_DIR).is_dir() || dir.join(CONSENT_FILE).is_file() {
            // A folder made by hand: the folder's name is the actor's name.
            ActorInfo {
                name: id.clone(),
                added: String::new(),
                source: "by hand".into(),
            }
        } else {
            continue;
        };
        out.push(Actor { id, dir, info });
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// Finds an actor by name or id.
pub fn find(actors_dir: &Path, name: &str) -> Result<Actor> {
    let id = fsutil::slug(name);
    list(actors_dir)?
        .into_iter()
        .find(|a| a.id == id || a.info.name.eq_ignore_ascii_case(name.trim()))
        .with_context(|| {
            format!(
                "no actor {name:?} in {} (`benjamin actors list --actors {}`)",
                actors_dir.display(),
                actors_dir.display()
            )
        })
}

/// Registers an actor: checks the consent record first (nothing is copied without a valid
/// one), then copies the photos, or takes frames from a video, into the actor's folder.
/// An actor's folder is taken only with `replace` (the same name again, or another whose
/// folder name is the same): it holds their photos and consent record.
pub fn add(
    actors_dir: &Path,
    name: &str,
    photos: &Path,
    consent_file: &Path,
    replace: bool,
    progress: &Progress,
) -> Result<Actor> {
    let name = name.trim();
    let id = fsutil::slug(name);
    if !name.chars().any(char::is_alphanumeric) {
        bail!("an actor needs a name with letters or digits, not {name:?}");
    }
    let _lock = fsutil::FolderLock::acquire(actors_dir, "the actors folder")?;
    let dir = actors_dir.join(&id);
    if dir.exists() && !replace {
        let held = list(actors_dir)?
            .into_iter()
            .find(|a| a.id == id)
            .map_or_else(|| id.clone(), |a| a.info.name);
        bail!(
            "{} already holds the actor {held:?}; pass --replace to replace their photos and consent record{}",
            dir.display(),
            if held == name { "" } else { ", or give this actor a distinct name" }
        );
    }
    let consent = Consent::load(consent_file)?;
    consent.check(name, &today()).with_context(|| {
        format!(
            "refusing to add {name:?}: the consent record {} is not valid",
            consent_file.display()
        )
    })?;
    // Built beside the final folder and renamed into place, so a failed add leaves nothing.
    let staging = actors_dir.join(format!(".{id}.adding"));
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    std::fs::create_dir_all(staging.join(PHOTOS_DIR))
        .with_context(|| format!("cannot create {}", staging.display()))?;
    let result = (|| -> Result<usize> {
        let n = if photos.is_dir() {
            let images = list_images(photos)?;
            if images.is_empty() {
                bail!("{} holds no .png or .jpg photos", photos.display());
            }
            for (i, src) in images.iter().enumerate() {
                // Decoded and re-encoded: the copy is a clean PNG whatever the source.
                let img = fsutil::read_rgb_image(src)?;
                img.save(staging.join(PHOTOS_DIR).join(format!("{:04}.png", i + 1)))?;
            }
            images.len()
        } else if photos.is_file() {
            frames_from_video(photos, &staging.join(PHOTOS_DIR), progress)?
        } else {
            bail!(
                "{} is neither a folder of photos nor a video",
                photos.display()
            );
        };
        let text = std::fs::read_to_string(consent_file)?;
        fsutil::write_atomic(&staging.join(CONSENT_FILE), text.as_bytes())?;
        let info = ActorInfo {
            name: name.to_string(),
            added: today(),
            source: photos.display().to_string(),
        };
        fsutil::write_atomic(
            &staging.join(ACTOR_FILE),
            toml::to_string(&info)?.as_bytes(),
        )?;
        Ok(n)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("cannot replace {}", dir.display()))?;
    }
    std::fs::rename(&staging, &dir)
        .with_context(|| format!("cannot move the actor into {}", dir.display()))?;
    find(actors_dir, name)
}

/// Takes frames from a video of the actor as PNG photos; returns how many.
fn frames_from_video(video: &Path, out: &Path, progress: &Progress) -> Result<usize> {
    use crate::media::source::VideoSource;
    let mut src = VideoSource::open(video)?;
    let info = src.info().clone();
    let count = if info.still {
        1
    } else {
        ((info.duration / VIDEO_STEP).floor() as usize).clamp(1, VIDEO_FRAMES)
    };
    let bar = progress.bar(count as u64, "frames", "frames");
    let mut conv = crate::vision::image::RgbConverter::default();
    let mut n = 0;
    src.sample(0.0, count, 1.0 / VIDEO_STEP, |frame| {
        let img = conv.to_rgb(frame)?;
        n += 1;
        img.save(out.join(format!("{n:04}.png")))?;
        bar.inc(1);
        Ok(())
    })?;
    bar.finish_and_clear();
    Ok(n)
}

/// Removes an actor and everything stored for them (photos and consent record).
pub fn remove(actors_dir: &Path, name: &str) -> Result<Actor> {
    let _lock = fsutil::FolderLock::acquire(actors_dir, "the actors folder")?;
    let actor = find(actors_dir, name)?;
    std::fs::remove_dir_all(&actor.dir)
        .with_context(|| format!("cannot remove {}", actor.dir.display()))?;
    Ok(actor)
}

/// The actors registered for a film (none when it names no actors folder).
pub fn of_film(film: &crate::film::Film) -> Result<Vec<Actor>> {
    match &film.settings.actors {
        Some(dir) => list(dir),
        None => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Consent {
        Consent {
            name: "Ana  Lima".into(),
            signed_by: "Ana Lima".into(),
            date: "2024-02-29".into(),
            uses: vec!["face-swap".into()],
            expires: None,
            revoked: false,
            note: None,
        }
    }

    #[test]
    fn a_complete_record_is_valid() {
        record().check("ana lima", "2025-01-01").unwrap();
    }

    #[test]
    fn each_defect_is_named() {
        type Change = Box<dyn Fn(&mut Consent)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|c| c.name = "Bo".into()), "not for"),
            (Box::new(|c| c.signed_by = " ".into()), "signed_by"),
            (Box::new(|c| c.date = "2024-02-30".into()), "not a date"),
            (Box::new(|c| c.date = "2026-01-01".into()), "future"),
            (Box::new(|c| c.uses = vec!["voice".into()]), "face-swap"),
            (
                Box::new(|c| c.expires = Some("2024-12-31".into())),
                "expired",
            ),
            (Box::new(|c| c.revoked = true), "revoked"),
        ];
        for (change, want) in cases {
            let mut c = record();
            change(&mut c);
            let err = c.check("Ana Lima", "2025-01-01").unwrap_err().to_string();
            assert!(err.contains(want), "{err} lacks {want}");
        }
    }

    #[test]
    fn today_is_a_date() {
        assert!(valid_date(&today()), "{}", today());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = Consent::parse(
            "name='A'\nsigned_by='A'\ndate='2024-01-01'\nuses=['face-swap']\nsigned='yes'",
            Path::new("c.toml"),
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("consent record"));
    }
}
