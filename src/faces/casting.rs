//! Casting: which registered actor plays which character (`faces/cast.json`, editable), and
//! which actor's face goes onto which face found in a shot. No actor is cast without a valid
//! consent record.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::actors::Actor;
use super::scan::ShotScan;
use crate::edl::Shot;
use crate::screenplay::fountain::Screenplay;

/// The identity of the faces found in the shots (the others are actors' ids).
pub const SHOTS_IDENTITY: &str = "shots";

/// `cast.json`: which actor (by id, as `benjamin actors list` shows) plays which character.
/// Edit it to recast; a character missing here (or mapped to "") keeps the face in the shot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaceCast {
    pub characters: BTreeMap<String, String>,
}

/// What the stage found in one shot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShotReport {
    pub shot: usize,
    pub source: PathBuf,
    pub frames: usize,
    pub faces: Vec<FaceReport>,
    /// The clip written in place of the shot, if any face was swapped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaceReport {
    pub frames: usize,
    pub mean_height: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub character: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// The default cast: the screenplay's characters in order of appearance, one actor each, in
/// the order of the actors' ids; entries of an existing cast whose actor still exists are kept.
pub fn cast(characters: &[String], actors: &[Actor], existing: &FaceCast) -> FaceCast {
    let ids: Vec<&str> = actors.iter().map(|a| a.id.as_str()).collect();
    let mut out = FaceCast::default();
    for c in characters {
        if let Some(a) = existing.characters.get(c) {
            if a.is_empty() || ids.contains(&a.as_str()) {
                out.characters.insert(c.clone(), a.clone());
            }
        }
    }
    let taken: Vec<String> = out.characters.values().cloned().collect();
    let mut free = ids.iter().filter(|id| !taken.iter().any(|a| a == *id));
    for c in characters {
        if !out.characters.contains_key(c) {
            match free.next() {
                Some(id) => out.characters.insert(c.clone(), id.to_string()),
                None => break,
            };
        }
    }
    out
}

/// The film's casting: the cast, the actors it uses and who speaks in each scene.
pub struct Casting {
    pub cast: FaceCast,
    /// The cast actors, in the order of their ids.
    pub used: Vec<Actor>,
    /// The swap model's identities: the cast actors' ids, then [`SHOTS_IDENTITY`].
    pub identities: Vec<String>,
    characters: Vec<String>,
    scene_speakers: BTreeMap<u32, Vec<String>>,
}

impl Casting {
    /// Casts `actors` (each one's consent checked first) onto the screenplay's characters,
    /// keeping what `cast_path` says where it still holds. Without a screenplay, the actors
    /// play the faces in order of size.
    pub fn new(
        screenplay: Option<&Screenplay>,
        actors: Vec<Actor>,
        cast_path: &Path,
    ) -> Result<Casting> {
        for a in &actors {
            a.consent()?;
        }
        let existing: FaceCast = match std::fs::read_to_string(cast_path) {
            Ok(t) => serde_json::from_str(&t).with_context(|| {
                format!(
                    "{} is not a valid cast: {{\"characters\": {{\"NAME\": \"actor-id\"}}}}",
                    cast_path.display()
                )
            })?,
            Err(_) => FaceCast::default(),
        };
        let characters = match screenplay {
            Some(s) if !s.characters.is_empty() => s.characters.clone(),
            _ => actors.iter().map(|a| a.id.to_uppercase()).collect(),
        };
        let scene_speakers = screenplay
            .map(|s| {
                let speakers = |sc: &crate::screenplay::fountain::Scene| {
                    sc.speakers().into_iter().map(String::from).collect()
                };
                s.scenes
                    .iter()
                    .map(|sc| (sc.number as u32, speakers(sc)))
                    .collect()
            })
            .unwrap_or_default();
        let cast = cast(&characters, &actors, &existing);
        for (c, a) in &cast.characters {
            if !a.is_empty() && !actors.iter().any(|x| &x.id == a) {
                bail!(
                    "{}: {c} is cast as {a:?}, who is not a registered actor",
                    cast_path.display()
                );
            }
        }
        let used: Vec<Actor> = actors
            .into_iter()
            .filter(|a| cast.characters.values().any(|v| v == &a.id))
            .collect();
        let mut identities: Vec<String> = used.iter().map(|a| a.id.clone()).collect();
        identities.push(SHOTS_IDENTITY.into());
        Ok(Casting {
            cast,
            used,
            identities,
            characters,
            scene_speakers,
        })
    }

    /// Who plays which face of one shot: the shot's scene's speaking characters, in order,
    /// onto its tracks, biggest face first. Returns the (track, identity) pairs to swap and
    /// the report of every face.
    pub fn assign(&self, shot: &Shot, scan: &ShotScan) -> (Vec<(usize, usize)>, Vec<FaceReport>) {
        let in_scene = self
            .scene_speakers
            .get(&shot.scene)
            .unwrap_or(&self.characters);
        let mut order = in_scene
            .iter()
            .filter(|c| self.cast.characters.get(*c).is_some_and(|a| !a.is_empty()));
        let mut plan = Vec::new();
        let mut faces = Vec::new();
        for (t, tr) in scan.tracks.iter().enumerate() {
            let character = order.next().cloned();
            let actor = character
                .as_ref()
                .and_then(|c| self.cast.characters.get(c))
                .cloned();
            if let Some(a) = &actor {
                let id = self
                    .identities
                    .iter()
                    .position(|x| x == a)
                    .expect("cast actors are identities");
                plan.push((t, id));
            }
            faces.push(FaceReport {
                frames: tr.len(),
                mean_height: tr.mean_size(),
                character,
                actor,
            });
        }
        (plan, faces)
    }

    /// [`Casting::assign`] for every shot: the swap plans and the reports of what was found.
    pub fn assign_all(
        &self,
        shots: &[Shot],
        scans: &[ShotScan],
    ) -> (Vec<Vec<(usize, usize)>>, Vec<ShotReport>) {
        shots
            .iter()
            .zip(scans)
            .enumerate()
            .map(|(i, (shot, scan))| {
                let (plan, faces) = self.assign(shot, scan);
                let report = ShotReport {
                    shot: i,
                    source: shot.source.clone(),
                    frames: scan.frames,
                    faces,
                    clip: None,
                };
                (plan, report)
            })
            .unzip()
    }
}
