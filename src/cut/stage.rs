//! The cut as a pipeline stage: it gathers the edit-list fragments the upstream stages wrote
//! (`<stage>/edl.json`) into one edit list and cuts it into the film folder.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;

pub use super::assemble::assemble;
use super::assemble::fragment_dirs;
use super::{budget, cut, output_paths, CutOptions};
use crate::edl::{EditList, EdlFragment};
use crate::film::Film;
use crate::fsutil;
use crate::manifest::StageInputs;
use crate::manifest::StageManifest;
use crate::provenance::{ActorConsent, ModelCredit, Provenance};
use crate::stage::{
    hash_inputs, Estimate, Intent, Speeds, Stage, StageContext, StageId, StageOutcome, RATES_NOTE,
};

pub struct CutStage;

impl Stage for CutStage {
    fn id(&self) -> StageId {
        StageId::Cut
    }

    fn inputs(&self, film: &Film) -> Result<StageInputs> {
        let edl = assemble(film)?;
        let fragments: Vec<PathBuf> = fragment_dirs(film)
            .iter()
            .map(|d| EdlFragment::path(d))
            .collect();
        let mut files = hash_inputs(film, &fragments)?;
        let media = edl
            .shots
            .iter()
            .map(|s| &s.source)
            .chain(edl.audio.iter().map(|a| &a.file));
        for path in media {
            let label = path
                .strip_prefix(&film.dir)
                .unwrap_or(path)
                .to_string_lossy()
                .into_owned();
            // Artifacts inside the film are hashed; archive footage is large, so it is fingerprinted.
            let id = if path.starts_with(&film.dir) {
                fsutil::hash_file(path)
            } else {
                fsutil::fingerprint_file(path)
            };
            files.insert(label, id.unwrap_or_else(|_| "missing".into()));
        }
        let s = &film.settings;
        let opts = CutOptions::default();
        Ok(StageInputs {
            params: serde_json::json!({
                "title": s.title, "genre": s.genre, "frame": s.frame,
                "title_seconds": opts.title_seconds, "crf": opts.crf,
                // The budget chooses the x264 preset: a new one may buy a finer encode.
                "budget_hours": s.hours,
                // Films cut before Content Credentials are cut (and signed) again.
                "credentials": "c2pa",
            }),
            files,
            ..Default::default()
        })
    }

    fn run(&self, ctx: &StageContext) -> Result<StageOutcome> {
        let edl = assemble(ctx.film)?;
        let edl_path = ctx.dir.join("edl.json");
        fsutil::write_atomic(&edl_path, serde_json::to_string_pretty(&edl)?.as_bytes())?;
        let film_path = ctx.film.dir.join("film.mp4");
        let choice = budget::choose(ctx.film, ctx.speeds, ctx.planned_s);
        let opts = CutOptions {
            provenance: Some(provenance(ctx.film, &edl)?),
            preset: choice.preset.clone(),
            ..Default::default()
        };
        let started = Instant::now();
        let result = cut(&edl, &film_path, &opts, ctx.progress)?;
        let seen = budget::rates_seen(
            ctx.film,
            &opts.preset,
            result.frames,
            started.elapsed().as_secs_f64(),
        );
        let (srt, otio) = output_paths(&film_path);
        Ok(StageOutcome {
            outputs: vec![film_path, srt, otio, result.provenance, edl_path],
            notes: serde_json::json!({"frames": result.frames, "seconds": result.seconds, "preset": opts.preset, "mix": result.mix, "signed": result.signed, RATES_NOTE: seen}),
        })
    }

    fn estimate(&self, film: &Film, speeds: &Speeds) -> Result<Estimate> {
        Ok(budget::estimate(film, speeds))
    }

    fn intent(&self, film: &Film, speeds: &Speeds, seconds: f64) -> Result<Intent> {
        budget::intent(film, speeds, seconds)
    }

    fn calibrate(&self, film: &Film, scratch: &Path) -> Result<Speeds> {
        budget::calibrate(film, scratch)
    }
}

/// What made the film: its settings, sources, the models the stages recorded in their
/// manifests, and each swapped-in actor with the consent record the faces stage checked.
pub fn provenance(film: &Film, edl: &EditList) -> Result<Provenance> {
    let mut record = Provenance::for_edit_list(edl, Some(&film.dir))?;
    record.seed = Some(film.settings.seed);
    record.budget_hours = Some(film.settings.hours);
    let manifest = |id: StageId| {
        StageManifest::load(&film.stage_dir(id.name()))
            .ok()
            .flatten()
    };
    for (id, name) in [
        (StageId::Screenplay, "screenplay"),
        (StageId::Music, "melody"),
    ] {
        if let Some(hash) = manifest(id).and_then(|m| m.inputs.models.get(name).cloned()) {
            record.models.push(ModelCredit {
                name: name.into(),
                hash,
            });
        }
    }
    let faces = manifest(StageId::Faces).filter(|m| m.notes["swapped"].as_u64() > Some(0));
    if let Some(faces) = faces {
        record.models.push(ModelCredit {
            name: "mtcnn".into(),
            hash: fsutil::hash_bytes(crate::vision::mtcnn::WEIGHTS),
        });
        let generator = faces
            .outputs
            .iter()
            .find(|o| o.path.ends_with(".safetensors"));
        if let Some(g) = generator {
            record.models.push(ModelCredit {
                name: "faces".into(),
                hash: g.hash.clone(),
            });
        }
        for actor in faces.notes["actors"].as_array().into_iter().flatten() {
            let Some(id) = actor.as_str() else { continue };
            let consent = format!("actors/{id}/{}", crate::faces::actors::CONSENT_FILE);
            if let Some(hash) = faces.inputs.files.get(&consent) {
                record.actors.push(ActorConsent {
                    actor: id.to_string(),
                    consent_hash: hash.clone(),
                });
            }
        }
    }
    Ok(record)
}
