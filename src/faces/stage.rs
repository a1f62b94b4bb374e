//! The faces stage: finds and tracks the faces in the chosen shots, casts the screenplay's
//! characters onto the registered actors (consent checked), trains the swap model within the
//! stage's budget (resuming earlier training), and writes new clips for the shots with faces.
//!
//! Artifacts in `faces/`: `edl.json` (the shots, swapped ones pointing at `clips/`), `cast.json`
//! (character -> actor; editable), `tracks.json` (what was found where), `clips/NNN.mp4` and
//! the model checkpoint in `model/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use candle_core::Device;
use serde::{Deserialize, Serialize};

use super::actors::{self, Actor};
use super::align::{alignment, warp};
use super::convert::{swap_frame, Replacement};
use super::model::ModelConfig;
use super::track::{track, Track, TrackOptions};
use super::train::{FaceSet, TrainOptions, Trainer};
use crate::edl::{EdlFragment, Shot};
use crate::film::Film;
use crate::fsutil::{self, AtomicFile};
use crate::manifest::StageInputs;
use crate::media::mp4::{Mp4Options, Mp4Writer};
use crate::media::source;
use crate::progress::Progress;
use crate::stage::{hash_inputs, Blocked, Stage, StageContext, StageId, StageOutcome};
use crate::vision::detect::for_each_frame;
use crate::vision::image::{Planar, RgbConverter};
use crate::vision::mtcnn::{Detection, Mtcnn};

pub const CAST_FILE: &str = "cast.json";
pub const TRACKS_FILE: &str = "tracks.json";
pub const MODEL_DIR: &str = "model";
/// The identity of the faces found in the shots (the others are actors' ids).
pub const SHOTS_IDENTITY: &str = "shots";
const EDITABLE: [&str; 1] = ["faces/cast.json"];
/// Detection runs on frames scaled down to at most this many pixels on their long side.
const DETECT_SIDE: u32 = 640;
/// At most this many aligned faces per identity are kept for training.
const MAX_TRAINING_FACES: usize = 400;

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

pub struct FacesStage;

fn shots_fragment_path(film: &Film) -> PathBuf {
    EdlFragment::path(&film.stage_dir(StageId::Shots.name()))
}

/// The shots the shots stage chose, their sources resolved (as the cut resolves them).
pub fn load_shots(film: &Film) -> Result<Vec<Shot>> {
    Ok(EdlFragment::load(&film.stage_dir(StageId::Shots.name()))?.shots)
}

fn actors_of(film: &Film) -> Result<Vec<Actor>> {
    match &film.settings.actors {
        Some(dir) => actors::list(dir),
        None => Ok(Vec::new()),
    }
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

/// Model size from the time training may take and the device (a GPU gets a larger model).
pub fn choose_config(train_seconds: f64, device: &Device, identities: Vec<String>) -> ModelConfig {
    let (resolution, width, latent) = if device.is_cuda() {
        (128, 32, 512)
    } else if train_seconds < 15.0 * 60.0 {
        (32, 16, 128)
    } else if train_seconds < 2.0 * 3600.0 {
        (64, 32, 256)
    } else {
        (64, 48, 512)
    };
    ModelConfig {
        resolution,
        width,
        latent,
        identities,
    }
}

struct ShotScan {
    tracks: Vec<Track>,
    frames: usize,
    fps: f64,
    still: bool,
}

/// Detects and tracks the faces of one shot, and keeps aligned crops of them for training.
fn scan_shot(
    det: &Mtcnn,
    shot: &Shot,
    source: &Path,
    resolution: usize,
    crops: &mut Vec<Planar>,
    bar: &indicatif::ProgressBar,
) -> Result<ShotScan> {
    let info = source::probe(source)?;
    let fps = if info.still {
        1.0
    } else if info.frame_rate > 0.0 {
        info.frame_rate.round().max(1.0)
    } else {
        25.0
    };
    let frames = if info.still {
        1
    } else {
        (((shot.out_point - shot.in_point) * fps).round() as usize).max(1)
    };
    let mut detections: Vec<Vec<Detection>> = Vec::with_capacity(frames);
    let side = info.width.max(info.height);
    let k = (DETECT_SIDE as f32 / side as f32).min(1.0);
    let crop_every = (frames / 60).max(1);
    for_each_frame(source, shot.in_point, frames, fps, |i, img| {
        crate::progress::check_interrupted()?;
        let small = if k < 1.0 {
            image::imageops::resize(
                img,
                (img.width() as f32 * k).round() as u32,
                (img.height() as f32 * k).round() as u32,
                image::imageops::FilterType::Triangle,
            )
        } else {
            img.clone()
        };
        let mut found = det.detect(&Planar::from_rgb(&small))?;
        for d in &mut found {
            d.bbox = d.bbox.map(|v| v / k);
            d.landmarks = d.landmarks.map(|p| p.map(|v| v / k));
        }
        if i % crop_every == 0 {
            let full = Planar::from_rgb(img);
            for d in found.iter().filter(|d| d.score >= 0.95) {
                crops.push(warp(
                    &full,
                    &alignment(&d.landmarks, resolution),
                    resolution,
                ));
            }
        }
        detections.push(found);
        bar.inc(1);
        Ok(())
    })?;
    let opts = TrackOptions {
        min_frames: 3.min(frames),
        ..Default::default()
    };
    Ok(ShotScan {
        tracks: track(&detections, &opts),
        frames,
        fps,
        still: info.still,
    })
}

/// The actor's aligned faces: the largest confident face of each photo.
fn actor_faces(det: &Mtcnn, actor: &Actor, resolution: usize) -> Result<Vec<Planar>> {
    let mut out = Vec::new();
    for photo in actor.photos()? {
        let img = crate::fsutil::read_rgb_image(&photo)?;
        let planar = Planar::from_rgb(&img);
        let best = det
            .detect(&planar)?
            .into_iter()
            .filter(|d| d.score >= 0.9)
            .max_by(|a, b| a.height().total_cmp(&b.height()));
        if let Some(d) = best {
            out.push(warp(
                &planar,
                &alignment(&d.landmarks, resolution),
                resolution,
            ));
        }
    }
    if out.is_empty() {
        bail!(
            "actor {:?}: no face found in the photos in {} (add clear, front-facing photos with `benjamin actors add`)",
            actor.info.name,
            actor.dir.join(actors::PHOTOS_DIR).display()
        );
    }
    Ok(out)
}

fn thin(mut faces: Vec<Planar>, max: usize) -> Vec<Planar> {
    if faces.len() > max {
        let step = faces.len() as f64 / max as f64;
        faces = (0..max)
            .map(|i| faces[(i as f64 * step) as usize].clone())
            .collect();
    }
    faces
}

/// A shot's source as the faces fragment writes it: relative to the faces folder when it lies
/// inside the film, so that the film folder can move.
fn passthrough_source(film: &Film, source: &Path) -> PathBuf {
    match source.strip_prefix(&film.dir) {
        Ok(inside) => Path::new("..").join(inside),
        Err(_) => source.to_path_buf(),
    }
}

/// Writes one shot again with its faces replaced: an MP4 at the source's size (even) and
/// rounded frame rate, or a PNG for a still. Returns the clip's file name and length in seconds.
#[allow(clippy::too_many_arguments)]
fn convert_shot(
    trainer: &Trainer,
    shot: &Shot,
    source: &Path,
    scan: &ShotScan,
    casting: &[(usize, usize)],
    out: &Path,
    bar: &indicatif::ProgressBar,
) -> Result<f64> {
    let replacements = |k: usize| -> Vec<Replacement> {
        casting
            .iter()
            .filter_map(|&(t, id)| {
                scan.tracks[t].frames[k].as_ref().map(|d| Replacement {
                    landmarks: d.landmarks,
                    identity: id,
                })
            })
            .collect()
    };
    if scan.still {
        let img = crate::fsutil::read_rgb_image(source)?;
        let mut frame = Planar::from_rgb(&img);
        swap_frame(&mut frame, &replacements(0), &trainer.model)?;
        let file = AtomicFile::new(out)?;
        frame
            .to_rgb()
            .save_with_format(file.path(), image::ImageFormat::Png)?;
        file.commit()?;
        bar.inc(1);
        return Ok(shot.out_point - shot.in_point);
    }
    let info = source::probe(source)?;
    let (w, h) = (info.width & !1, info.height & !1);
    let file = AtomicFile::new(out)?;
    let opts = Mp4Options {
        width: w,
        height: h,
        fps: scan.fps as u32,
        preset: "veryfast".into(),
        crf: 18,
    };
    let mut writer = Mp4Writer::create(file.path(), &opts, None, Vec::new())?;
    let mut conv = RgbConverter::default();
    for_each_frame(source, shot.in_point, scan.frames, scan.fps, |k, img| {
        crate::progress::check_interrupted()?;
        let faces = replacements(k);
        let img = if faces.is_empty() {
            img.clone()
        } else {
            let mut frame = Planar::from_rgb(img);
            swap_frame(&mut frame, &faces, &trainer.model)?;
            frame.to_rgb()
        };
        let img = if (w, h) != img.dimensions() {
            image::imageops::crop_imm(&img, 0, 0, w, h).to_image()
        } else {
            img
        };
        writer.write_frame(&mut conv.to_yuv(&img)?)?;
        bar.inc(1);
        Ok(())
    })?;
    writer.finish()?;
    file.commit()?;
    Ok(scan.frames as f64 / scan.fps)
}

impl Stage for FacesStage {
    fn id(&self) -> StageId {
        StageId::Faces
    }

    fn inputs(&self, film: &Film) -> Result<StageInputs> {
        let shots = shots_fragment_path(film);
        if !shots.is_file() {
            return Err(Blocked("it needs shots/edl.json from the shots stage".into()).into());
        }
        let mut paths = vec![shots];
        let script = crate::screenplay::stage::json_path(film);
        if script.is_file() {
            paths.push(script);
        }
        let mut files = hash_inputs(film, &paths)?;
        for actor in actors_of(film)? {
            let mut own = vec![actor.consent_path(), actor.dir.join(actors::ACTOR_FILE)];
            own.extend(actor.photos().unwrap_or_default());
            for p in own.into_iter().filter(|p| p.is_file()) {
                files.insert(
                    format!(
                        "actors/{}/{}",
                        actor.id,
                        p.file_name().unwrap().to_string_lossy()
                    ),
                    fsutil::hash_file(&p)?,
                );
            }
        }
        Ok(StageInputs {
            params: serde_json::json!({"actors": film.settings.actors, "hours": film.settings.hours, "detect_side": DETECT_SIDE}),
            files,
            ..Default::default()
        })
    }

    fn editable(&self) -> &[&str] {
        &EDITABLE
    }

    fn run(&self, ctx: &StageContext) -> Result<StageOutcome> {
        run_stage(ctx.film, &ctx.dir, ctx.deadline, ctx.progress)
    }
}

/// The stage's work, callable without the pipeline (the tests and benchmarks use it).
pub fn run_stage(
    film: &Film,
    dir: &Path,
    deadline: Instant,
    progress: &Progress,
) -> Result<StageOutcome> {
    let started = Instant::now();
    let shots: Vec<(Shot, PathBuf)> = load_shots(film)?
        .into_iter()
        .map(|s| {
            let src = s.source.clone();
            (s, src)
        })
        .collect();
    let actors = actors_of(film)?;
    // No face is swapped in without consent: every registered actor's record is checked first.
    for a in &actors {
        a.consent()?;
    }
    let characters = match crate::screenplay::stage::load(film) {
        Ok(s) => s.characters,
        Err(_) => Vec::new(),
    };
    let scene_characters: BTreeMap<u32, Vec<String>> = match crate::screenplay::stage::load(film) {
        Ok(s) => s
            .scenes
            .iter()
            .map(|sc| {
                let mut names: Vec<String> = Vec::new();
                for e in &sc.elements {
                    if let crate::screenplay::fountain::Element::Dialogue(d) = e {
                        if !names.contains(&d.character) {
                            names.push(d.character.clone());
                        }
                    }
                }
                (sc.number as u32, names)
            })
            .collect(),
        Err(_) => BTreeMap::new(),
    };
    let cast_path = dir.join(CAST_FILE);
    let existing: FaceCast = match std::fs::read_to_string(&cast_path) {
        Ok(t) => serde_json::from_str(&t).with_context(|| {
            format!(
                "{} is not a valid cast: {{\"characters\": {{\"NAME\": \"actor-id\"}}}}",
                cast_path.display()
            )
        })?,
        Err(_) => FaceCast::default(),
    };
    // Without a screenplay, the actors play the faces in order of size.
    let characters = if characters.is_empty() {
        actors.iter().map(|a| a.id.to_uppercase()).collect()
    } else {
        characters
    };
    let cast = cast(&characters, &actors, &existing);
    for (c, a) in &cast.characters {
        if !a.is_empty() && !actors.iter().any(|x| &x.id == a) {
            bail!(
                "{}: {c} is cast as {a:?}, who is not a registered actor",
                cast_path.display()
            );
        }
    }
    let used: Vec<&Actor> = actors
        .iter()
        .filter(|a| cast.characters.values().any(|v| v == &a.id))
        .collect();

    let device = crate::nn::device();
    let mut identities: Vec<String> = used.iter().map(|a| a.id.clone()).collect();
    identities.push(SHOTS_IDENTITY.into());
    let model_dir = dir.join(MODEL_DIR);
    let budget = deadline
        .saturating_duration_since(Instant::now())
        .as_secs_f64();
    let config = match super::train::read_config(&model_dir)? {
        Some(c) if c.identities == identities => c,
        _ => choose_config(budget * 0.6, &device, identities.clone()),
    };
    let r = config.resolution;

    let det = Mtcnn::embedded(&device)?;
    let total_frames: usize = shots
        .iter()
        .map(|(s, _)| ((s.out_point - s.in_point) * 30.0).round().max(1.0) as usize)
        .sum();
    let bar = progress.bar(
        if used.is_empty() {
            0
        } else {
            total_frames as u64
        },
        "detecting",
        "frames",
    );
    let mut shot_crops = Vec::new();
    let mut scans = Vec::new();
    for (shot, src) in &shots {
        // Nobody to swap in: no need to look for faces (minutes of work on a long film).
        let scan = if used.is_empty() {
            ShotScan {
                tracks: Vec::new(),
                frames: 0,
                fps: 0.0,
                still: false,
            }
        } else {
            scan_shot(&det, shot, src, r, &mut shot_crops, &bar)
                .with_context(|| format!("finding faces in {}", src.display()))?
        };
        scans.push(scan);
    }
    bar.finish_and_clear();

    // Who plays which face: the shot's scene's speaking characters, biggest face first.
    let mut plans: Vec<Vec<(usize, usize)>> = Vec::new();
    let mut reports = Vec::new();
    for (i, ((shot, src), scan)) in shots.iter().zip(&scans).enumerate() {
        let in_scene = scene_characters
            .get(&shot.scene)
            .cloned()
            .unwrap_or_else(|| characters.clone());
        let mut order = in_scene
            .iter()
            .filter(|c| cast.characters.get(*c).is_some_and(|a| !a.is_empty()));
        let mut plan = Vec::new();
        let mut faces = Vec::new();
        for (t, tr) in scan.tracks.iter().enumerate() {
            let character = order.next().cloned();
            let actor = character
                .as_ref()
                .and_then(|c| cast.characters.get(c))
                .cloned();
            if let Some(a) = &actor {
                let id = identities
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
        reports.push(ShotReport {
            shot: i,
            source: src.clone(),
            frames: scan.frames,
            faces,
            clip: None,
        });
        plans.push(plan);
    }
    let swapping = plans.iter().any(|p| !p.is_empty());

    let mut notes = serde_json::json!({"shots": shots.len(), "faces_found": reports.iter().map(|r| r.faces.len()).sum::<usize>(), "actors": used.iter().map(|a| &a.id).collect::<Vec<_>>()});
    let mut outputs = Vec::new();
    let mut new_shots: Vec<Shot> = shots
        .iter()
        .map(|(s, _)| Shot {
            source: passthrough_source(film, &s.source),
            ..s.clone()
        })
        .collect();
    let clips = dir.join("clips");
    if clips.exists() {
        std::fs::remove_dir_all(&clips)
            .with_context(|| format!("cannot clear {}", clips.display()))?;
    }
    if !swapping {
        let why = if actors.is_empty() {
            "no actors registered (make --actors DIR; benjamin actors add)"
        } else if used.is_empty() {
            "no character is cast (faces/cast.json)"
        } else if scans.iter().all(|s| s.tracks.is_empty()) {
            "no faces in the shots"
        } else {
            "no character with a face on screen is cast (faces/cast.json)"
        };
        progress.info(format!("faces: shots pass through unchanged: {why}"));
        notes["swapped"] = serde_json::json!(0);
        notes["why_none"] = serde_json::json!(why);
    } else {
        // Training data: each cast actor's photos, and the faces of the shots.
        let mut sets = Vec::new();
        for a in &used {
            sets.push(FaceSet {
                name: a.id.clone(),
                faces: thin(actor_faces(&det, a, r)?, MAX_TRAINING_FACES),
            });
        }
        sets.push(FaceSet {
            name: SHOTS_IDENTITY.into(),
            faces: thin(shot_crops, MAX_TRAINING_FACES),
        });
        let mut trainer = Trainer::open(&config, Some(&model_dir), &device)?;
        // Conversion's share of what is left: timed on one frame, for every frame with a face.
        let face_frames: usize = scans
            .iter()
            .zip(&plans)
            .filter(|(_, p)| !p.is_empty())
            .map(|(s, _)| s.frames)
            .sum();
        let probe_frame = Instant::now();
        let mut f = sets[0].faces[0].clone();
        let t = super::align::template(r);
        swap_frame(
            &mut f,
            &[Replacement {
                landmarks: t,
                identity: 0,
            }],
            &trainer.model,
        )?;
        let per_frame = probe_frame.elapsed().as_secs_f64() * 3.0 + 0.02;
        let left = deadline
            .saturating_duration_since(Instant::now())
            .as_secs_f64();
        let train_for = ((left - per_frame * face_frames as f64) * 0.9).max(0.0);
        let opts = TrainOptions {
            seed: film.settings.seed,
            max_steps: Some(trainer.report.steps + 200_000),
            ..Default::default()
        };
        // A few steps even when the budget is spent: an untrained decoder paints noise.
        let min_steps = trainer.report.steps + 30;
        let report = trainer.train(
            &sets,
            &TrainOptions {
                max_steps: Some(min_steps),
                ..opts.clone()
            },
            Instant::now() + Duration::from_secs(3600),
            progress,
        )?;
        let report = if train_for > report.seconds {
            trainer.train(
                &sets,
                &opts,
                Instant::now() + Duration::from_secs_f64(train_for - report.seconds),
                progress,
            )?
        } else {
            report
        };
        progress.info(format!(
            "faces: trained {} steps ({:.1}/s, {} parameters, {}x{} faces); reconstruction {:?}",
            report.steps, report.steps_per_second, report.parameters, r, r, report.reconstruction
        ));
        let bar = progress.bar(face_frames as u64, "swapping", "frames");
        let mut swapped = 0;
        for (i, ((shot, src), scan)) in shots.iter().zip(&scans).enumerate() {
            if plans[i].is_empty() {
                continue;
            }
            let name = format!(
                "clips/{:03}.{}",
                i + 1,
                if scan.still { "png" } else { "mp4" }
            );
            let seconds =
                convert_shot(&trainer, shot, src, scan, &plans[i], &dir.join(&name), &bar)
                    .with_context(|| {
                        format!("swapping faces in shot {} ({})", i + 1, src.display())
                    })?;
            new_shots[i] = Shot {
                source: PathBuf::from(&name),
                in_point: 0.0,
                out_point: seconds,
                ..shot.clone()
            };
            reports[i].clip = Some(name.clone());
            outputs.push(dir.join(&name));
            swapped += 1;
        }
        bar.finish_and_clear();
        notes["swapped"] = serde_json::json!(swapped);
        notes["model"] = serde_json::json!({"resolution": r, "width": config.width, "latent": config.latent, "identities": config.identities, "parameters": report.parameters});
        notes["training"] = serde_json::json!({"steps": report.steps, "resumed_from": report.resumed_from, "steps_per_second": report.steps_per_second, "reconstruction": report.reconstruction, "adversarial": report.adversarial, "discriminator": report.discriminator});
        outputs.push(model_dir.join("config.json"));
        outputs.push(model_dir.join("generator.safetensors"));
    }
    let cast_bytes = serde_json::to_vec_pretty(&cast)?;
    fsutil::write_atomic(&cast_path, &cast_bytes)?;
    let tracks_path = dir.join(TRACKS_FILE);
    fsutil::write_atomic(&tracks_path, &serde_json::to_vec_pretty(&reports)?)?;
    let fragment = EdlFragment {
        shots: new_shots,
        ..Default::default()
    };
    let fragment_path = fragment.write(dir)?;
    outputs.extend([cast_path, tracks_path, fragment_path]);
    notes["seconds"] = serde_json::json!(started.elapsed().as_secs_f64());
    Ok(StageOutcome { outputs, notes })
}
