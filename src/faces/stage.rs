//! The faces stage: finds and tracks the faces in the chosen shots ([`scan`](super::scan)),
//! casts the screenplay's characters onto the registered actors, consent checked
//! ([`casting`](super::casting)), trains the swap model within the stage's budget, resuming
//! earlier training ([`train`](super::train)), and writes new clips for the shots with faces
//! ([`convert`](super::convert)).
//!
//! Artifacts in `faces/`: `edl.json` (the shots, swapped ones pointing at `clips/`), `cast.json`
//! (character -> actor; editable), `tracks.json` (what was found where), `clips/NNN.mp4`, the
//! kept scans in `scans/` and the model checkpoint in `model/`. Scans, the trained model and
//! clips are each kept with the hash of their inputs, so a rerun after a kill redoes only what
//! was unfinished.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use candle_core::Device;

use super::actors;
use super::budget;
use super::casting::{Casting, SHOTS_IDENTITY};
use super::convert::{convert_shots, seconds_per_frame, SwapPlan};
use super::model::{ModelConfig, SwapModel};
use super::scan::{
    actor_faces, scan_shots, thin, ShotScan, DETECT_SIDE, MAX_TRAINING_FACES, SCANS_DIR,
};
use super::train::{self, choose_config, train_for, FaceSet, TrainReport, Trainer, GENERATOR};
use crate::edl::{EdlFragment, Shot};
use crate::film::Film;
use crate::fsutil;
use crate::items::{key_of, Items};
use crate::manifest::StageInputs;
use crate::progress::Progress;
use crate::stage::{
    hash_inputs, Blocked, Estimate, Intent, Speeds, Stage, StageContext, StageId, StageOutcome,
    RATES_NOTE,
};
use crate::vision::image::Planar;
use crate::vision::mtcnn::Mtcnn;

pub const CAST_FILE: &str = "cast.json";
pub const TRACKS_FILE: &str = "tracks.json";
pub const MODEL_DIR: &str = "model";
pub const CLIPS_DIR: &str = "clips";
const EDITABLE: [&str; 1] = ["faces/cast.json"];

/// The faces stage. The default one swaps a face only when the plan buys a good one and
/// the model reaches it; [`FacesStage::ungated`] pastes whatever the model paints in the time
/// it has (tests of the plumbing, whose models train for seconds).
#[derive(Default)]
pub struct FacesStage {
    ungated: bool,
}

impl FacesStage {
    pub fn ungated() -> Self {
        FacesStage { ungated: true }
    }
}

fn shots_fragment_path(film: &Film) -> PathBuf {
    EdlFragment::path(&film.stage_dir(StageId::Shots.name()))
}

/// The shots the shots stage chose, their sources resolved (as the cut resolves them).
pub fn load_shots(film: &Film) -> Result<Vec<Shot>> {
    Ok(EdlFragment::load(&film.stage_dir(StageId::Shots.name()))?.shots)
}

/// A shot's source as the faces fragment writes it: relative to the faces folder when it lies
/// inside the film, so that the film folder can move.
fn passthrough_source(film: &Film, source: &Path) -> PathBuf {
    match source.strip_prefix(&film.dir) {
        Ok(inside) => Path::new("..").join(inside),
        Err(_) => source.to_path_buf(),
    }
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
        for actor in actors::of_film(film)? {
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
        let run = if self.ungated {
            FacesRun {
                min_ssim: -1.0,
                ..FacesRun::until(ctx.deadline)
            }
        } else {
            FacesRun {
                too_short: budget::choose(ctx.film, ctx.speeds, ctx.planned_s).too_short,
                ..FacesRun::until(ctx.deadline)
            }
        };
        run_stage(ctx.film, &ctx.dir, &run, ctx.progress)
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

/// How a run of the stage is bounded.
pub struct FacesRun {
    pub deadline: Instant,
    /// The held-out SSIM a model must reach before its faces are pasted.
    pub min_ssim: f32,
    /// Set when the plan left too little time for a good swap: the shots keep their faces,
    /// and this says why.
    pub too_short: Option<String>,
}

impl FacesRun {
    /// A run that swaps until `deadline`, pasting only faces good enough to show.
    pub fn until(deadline: Instant) -> Self {
        FacesRun {
            deadline,
            min_ssim: budget::GOOD_SSIM,
            too_short: None,
        }
    }
}

/// The stage's work, callable without the pipeline (the tests and benchmarks use it).
pub fn run_stage(
    film: &Film,
    dir: &Path,
    run: &FacesRun,
    progress: &Progress,
) -> Result<StageOutcome> {
    let deadline = run.deadline;
    let started = Instant::now();
    let shots = load_shots(film)?;
    let actors = actors::of_film(film)?;
    let registered = actors.len();
    let screenplay = crate::screenplay::stage::load(film).ok();
    let cast_path = dir.join(CAST_FILE);
    let casting = Casting::new(screenplay.as_ref(), actors, &cast_path)?;
    let mut training = Training::open(film, dir, &shots, &casting, deadline)?;
    let r = training.config.resolution;

    let det = Mtcnn::embedded(&training.device)?;
    let mut seen = Speeds::default();
    // Nobody to swap in: no need to look for faces (minutes of work on a long film).
    let (scans, shot_crops) = if casting.used.is_empty() || run.too_short.is_some() {
        (vec![ShotScan::default(); shots.len()], Vec::new())
    } else {
        let want_crops = training.earlier.is_none();
        let timer = RateTimer::start(&dir.join(SCANS_DIR));
        let scanned = scan_shots(&det, &shots, r, want_crops, dir, progress)?;
        let frames = scanned.0.iter().map(|s| s.frames).sum::<usize>();
        timer.stop(&mut seen, budget::DETECT, frames);
        scanned
    };
    let (plans, mut reports) = casting.assign_all(&shots, &scans);

    let mut notes = serde_json::json!({"shots": shots.len(), "faces_found": reports.iter().map(|r| r.faces.len()).sum::<usize>(), "actors": casting.used.iter().map(|a| &a.id).collect::<Vec<_>>()});
    let mut outputs = Vec::new();
    let mut new_shots: Vec<Shot> = shots
        .iter()
        .map(|s| Shot {
            source: passthrough_source(film, &s.source),
            ..s.clone()
        })
        .collect();
    let clips_dir = dir.join(CLIPS_DIR);
    let mut why_none = why_none_swapped(registered, &casting, &scans, &plans).map(String::from);
    if !casting.used.is_empty() {
        why_none = run.too_short.clone().or(why_none);
    }
    let mut trained = None;
    if why_none.is_none() {
        let sets = || training_sets(&det, &casting, shot_crops, r);
        let (model, report) = training.model(sets, frames_to_swap(&scans, &plans), progress)?;
        if training.earlier.is_none() && report.seconds > 5.0 {
            seen.set(budget::train_unit(r), report.steps_per_second);
        }
        // What the model is and how it trained, shown or not.
        let config = &training.config;
        notes["model"] = serde_json::json!({"resolution": r, "width": config.width, "latent": config.latent, "identities": config.identities, "parameters": report.parameters});
        notes["training"] = serde_json::json!({"steps": report.steps, "resumed_from": report.resumed_from, "steps_per_second": report.steps_per_second, "reconstruction": report.reconstruction, "adversarial": report.adversarial, "discriminator": report.discriminator});
        notes["held_out_ssim"] = serde_json::json!(report.held_out_ssim);
        notes["min_ssim"] = serde_json::json!(run.min_ssim);
        why_none = budget::too_poor(&report, run.min_ssim, &casting, film.settings.hours);
        if why_none.is_none() {
            trained = Some(model);
        }
    }
    if let Some(why) = &why_none {
        progress.info(format!("faces: shots pass through unchanged: {why}"));
        notes["swapped"] = serde_json::json!(0);
        notes["why_none"] = serde_json::json!(why);
        Items::<f64>::open(&clips_dir).prune()?;
    } else if let Some(model) = trained {
        let model_id = fsutil::hash_file(&training.dir.join(GENERATOR))?;
        let timer = RateTimer::start(&clips_dir);
        let clips = convert_shots(
            &model, &model_id, &shots, &scans, &plans, &clips_dir, progress,
        )?;
        timer.stop(&mut seen, budget::CONVERT, frames_to_swap(&scans, &plans));
        for (i, (name, seconds)) in clips
            .into_iter()
            .enumerate()
            .filter_map(|(i, c)| Some((i, c?)))
        {
            let name = format!("{CLIPS_DIR}/{name}");
            new_shots[i] = Shot {
                source: PathBuf::from(&name),
                in_point: 0.0,
                out_point: seconds,
                ..shots[i].clone()
            };
            outputs.push(dir.join(&name));
            reports[i].clip = Some(name);
        }
        notes["swapped"] = serde_json::json!(reports.iter().filter(|r| r.clip.is_some()).count());
        outputs.push(training.dir.join("config.json"));
        outputs.push(training.dir.join(GENERATOR));
    }
    fsutil::write_atomic(&cast_path, &serde_json::to_vec_pretty(&casting.cast)?)?;
    let tracks_path = dir.join(TRACKS_FILE);
    fsutil::write_atomic(&tracks_path, &serde_json::to_vec_pretty(&reports)?)?;
    let fragment = EdlFragment {
        shots: new_shots,
        ..Default::default()
    };
    let fragment_path = fragment.write(dir)?;
    outputs.extend([cast_path, tracks_path, fragment_path]);
    notes["seconds"] = serde_json::json!(started.elapsed().as_secs_f64());
    notes[RATES_NOTE] = serde_json::to_value(&seen)?;
    Ok(StageOutcome { outputs, notes })
}

/// Times a piece of work done from nothing: work resumed from kept items (a folder with a
/// record already) says nothing about this machine's speed.
struct RateTimer {
    started: Instant,
    from_nothing: bool,
}

impl RateTimer {
    fn start(items: &Path) -> Self {
        RateTimer {
            started: Instant::now(),
            from_nothing: !items.join(crate::items::RECORD_FILE).exists(),
        }
    }

    /// Records `amount / seconds` as `unit`'s rate, if the work was done from nothing and
    /// took long enough to say something.
    fn stop(self, seen: &mut Speeds, unit: &str, amount: usize) {
        let seconds = self.started.elapsed().as_secs_f64();
        if self.from_nothing && seconds > 5.0 {
            seen.set(unit, amount as f64 / seconds);
        }
    }
}

/// The swap model's training within the stage: its size, its checkpoint folder, and the
/// record that keeps a model trained from the same inputs (and budget) as it is.
struct Training {
    config: ModelConfig,
    dir: PathBuf,
    device: Device,
    seed: u64,
    deadline: Instant,
    record: Items<TrainReport>,
    key: String,
    /// The report of the model trained before from the same inputs, if any.
    earlier: Option<TrainReport>,
}

impl Training {
    fn open(
        film: &Film,
        dir: &Path,
        shots: &[Shot],
        casting: &Casting,
        deadline: Instant,
    ) -> Result<Training> {
        let device = crate::nn::device();
        let model_dir = dir.join(MODEL_DIR);
        let config = match train::read_config(&model_dir)? {
            Some(c) if c.identities == casting.identities => c,
            _ => {
                let seconds = seconds_left(deadline) * 0.6;
                choose_config(seconds, &device, casting.identities.clone())
            }
        };
        let mut record: Items<TrainReport> = Items::open(&model_dir);
        let key = training_key(film, shots, casting, &config)?;
        let earlier = record.get(GENERATOR, &key);
        Ok(Training {
            config,
            dir: model_dir,
            device,
            seed: film.settings.seed,
            deadline,
            record,
            key,
            earlier,
        })
    }

    /// The model to convert with: the one trained before from the same inputs, or one trained
    /// (on from its checkpoint) for the time converting `frames` frames leaves.
    fn model(
        &mut self,
        sets: impl FnOnce() -> Result<Vec<FaceSet>>,
        frames: usize,
        progress: &Progress,
    ) -> Result<(SwapModel, TrainReport)> {
        let (model, report) = match self.earlier.clone() {
            Some(report) => {
                progress.info("faces: the swap model trained before is kept");
                (train::load_model(&self.dir, &self.device)?, report)
            }
            None => {
                let mut sets = sets()?;
                let held = budget::hold_out(&mut sets);
                let mut trainer = Trainer::open(&self.config, Some(&self.dir), &self.device)?;
                let per_frame = seconds_per_frame(&trainer.model, &sets[0].faces[0])?;
                let left = seconds_left(self.deadline) - per_frame * frames as f64;
                let seconds = (left * 0.9).max(0.0);
                let mut report = train_for(&mut trainer, &sets, self.seed, seconds, progress)?;
                let actors: Vec<String> = (self.config.identities.iter())
                    .filter(|n| *n != SHOTS_IDENTITY)
                    .cloned()
                    .collect();
                report.held_out_ssim = budget::held_out_ssim(&trainer.model, &held, &actors)?;
                self.record
                    .put(GENERATOR, self.key.clone(), report.clone())?;
                (trainer.model, report)
            }
        };
        let r = self.config.resolution;
        progress.info(format!(
            "faces: trained {} steps ({:.1}/s, {} parameters, {r}x{r} faces); reconstruction {:?}",
            report.steps, report.steps_per_second, report.parameters, report.reconstruction
        ));
        Ok((model, report))
    }
}

fn seconds_left(deadline: Instant) -> f64 {
    deadline
        .saturating_duration_since(Instant::now())
        .as_secs_f64()
}

/// Why no face is swapped, if none is.
fn why_none_swapped(
    registered: usize,
    casting: &Casting,
    scans: &[ShotScan],
    plans: &[SwapPlan],
) -> Option<&'static str> {
    if plans.iter().any(|p| !p.is_empty()) {
        return None;
    }
    Some(if registered == 0 {
        "no actors registered (make --actors DIR; benjamin actors add)"
    } else if casting.used.is_empty() {
        "no character is cast (faces/cast.json)"
    } else if scans.iter().all(|s| s.tracks.is_empty()) {
        "no faces in the shots"
    } else {
        "no character with a face on screen is cast (faces/cast.json)"
    })
}

fn frames_to_swap(scans: &[ShotScan], plans: &[SwapPlan]) -> usize {
    scans
        .iter()
        .zip(plans)
        .filter(|(_, p)| !p.is_empty())
        .map(|(s, _)| s.frames)
        .sum()
}

/// What the swap model learns from: each cast actor's photos, and the faces of the shots.
fn training_sets(
    det: &Mtcnn,
    casting: &Casting,
    shot_crops: Vec<Planar>,
    resolution: usize,
) -> Result<Vec<FaceSet>> {
    let mut sets = Vec::new();
    for a in &casting.used {
        sets.push(FaceSet {
            name: a.id.clone(),
            faces: actor_faces(det, a, resolution)?,
        });
    }
    sets.push(FaceSet {
        name: SHOTS_IDENTITY.into(),
        faces: thin(shot_crops, MAX_TRAINING_FACES),
    });
    Ok(sets)
}

/// The key of the trained model: everything training reads (the shots, the cast actors'
/// photos, the model's size, the seed and the budget: a new budget trains on).
fn training_key(
    film: &Film,
    shots: &[Shot],
    casting: &Casting,
    config: &ModelConfig,
) -> Result<String> {
    let mut photos = Vec::new();
    for a in &casting.used {
        for p in a.photos()? {
            photos.push(fsutil::fingerprint_file(&p)?);
        }
    }
    let version = env!("CARGO_PKG_VERSION");
    let s = &film.settings;
    Ok(key_of(&(shots, photos, config, s.seed, s.hours, version)))
}
