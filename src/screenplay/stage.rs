//! The screenplay as a pipeline stage: screenplay.fountain and screenplay.json, from the
//! default model embedded in benjamin or one the user trained.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use super::fountain::{self, Screenplay};
use super::models::model_hash;
pub use super::models::{built_in, load_model, load_model_with, BuiltIn, BUILT_IN_MODELS};
use super::write::constraints;
pub use super::write::{check_constraints, repair, request, write_screenplay, WriteStats};
use super::{drafts, tune};
use crate::film::Film;
use crate::fsutil;
use crate::manifest::StageInputs;
use crate::stage::{
    Estimate, Intent, Speeds, Stage, StageContext, StageId, StageOutcome, RATES_NOTE,
};

pub const FOUNTAIN_FILE: &str = "screenplay.fountain";
pub const JSON_FILE: &str = "screenplay.json";
const EDITABLE: [&str; 1] = ["screenplay/screenplay.fountain"];

/// The cast of a film's screenplay as written (its title page's, else who speaks); `None`
/// before the screenplay exists or when it cannot be read.
pub fn cast_of(film: &Film) -> Option<Vec<String>> {
    let path = film.dir.join(StageId::Screenplay.name()).join(JSON_FILE);
    let s: Screenplay = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    Some(if s.cast.is_empty() {
        s.characters
    } else {
        s.cast
    })
}

pub struct ScreenplayStage;

impl ScreenplayStage {
    fn write_outputs(
        ctx: &StageContext,
        screenplay: &Screenplay,
        fountain_text: Option<&str>,
    ) -> Result<StageOutcome> {
        let fountain_path = ctx.dir.join(FOUNTAIN_FILE);
        let json_path = ctx.dir.join(JSON_FILE);
        if let Some(text) = fountain_text {
            fsutil::write_atomic(&fountain_path, text.as_bytes())?;
        }
        fsutil::write_atomic(&json_path, &serde_json::to_vec_pretty(screenplay)?)?;
        Ok(StageOutcome {
            outputs: vec![fountain_path, json_path],
            notes: serde_json::json!({
                "scenes": screenplay.scenes.len(),
                "characters": screenplay.characters,
                "estimated_seconds": screenplay.estimated_seconds,
            }),
        })
    }
}

impl Stage for ScreenplayStage {
    fn id(&self) -> StageId {
        StageId::Screenplay
    }

    fn inputs(&self, film: &Film) -> Result<StageInputs> {
        let s = &film.settings;
        let mut models = std::collections::BTreeMap::new();
        models.insert("screenplay".to_string(), model_hash(film)?);
        Ok(StageInputs {
            params: serde_json::json!({
                "title": s.title, "genre": s.genre, "line": s.line, "prop": s.prop,
                "minutes": s.minutes, "sampling": s.sampling,
            }),
            models,
            ..Default::default()
        })
    }

    fn run(&self, ctx: &StageContext) -> Result<StageOutcome> {
        let s = &ctx.film.settings;
        let plan = drafts::choose(ctx.film, ctx.speeds, ctx.planned_s);
        let mut seen = Speeds::default();
        let hash = model_hash(ctx.film)?;
        let tuned = match plan.tune_s > 0.0 {
            true => tune::tune(s, &hash, plan.tune_s, ctx.progress)?,
            false => None,
        };
        if let Some(t) = tuned.as_ref().filter(|t| t.seconds > 30.0) {
            seen.set(drafts::TRAINED, t.train_tokens_per_second);
        }
        let started = Instant::now();
        let weights = tune::tuned_weights(s.genre, &hash);
        let bundle = load_model_with(s.screenplay_model.as_deref(), weights.as_deref())?;
        seen.set(drafts::LOADS, 1.0 / started.elapsed().as_secs_f64());
        let req = request(&ctx.film.settings);
        let (screenplay, ranking, drafted) =
            drafts::write_drafts(&bundle, &req, &plan, ctx.deadline, &ctx.dir, ctx.progress)?;
        seen.0.extend(drafted.0);
        let ranking_path = ctx.dir.join(drafts::RANKING_FILE);
        fsutil::write_atomic(&ranking_path, &serde_json::to_vec_pretty(&ranking)?)?;
        let text = fountain::write(&screenplay);
        let mut outcome = Self::write_outputs(ctx, &screenplay, Some(&text))?;
        outcome.outputs.push(ranking_path);
        let n = &mut outcome.notes;
        n["model"] = serde_json::json!(bundle.hash);
        n["parameters"] = serde_json::json!(bundle.model.parameter_count());
        n["drafts"] = serde_json::json!(ranking.len());
        n["critic"] = serde_json::to_value(&ranking[0])?;
        n["genre"] = serde_json::to_value(tune::record(s.genre, &hash))?;
        n["tuned"] = serde_json::to_value(&tuned)?;
        n[RATES_NOTE] = serde_json::to_value(&seen)?;
        Ok(outcome)
    }

    fn estimate(&self, film: &Film, speeds: &Speeds) -> Result<Estimate> {
        Ok(drafts::estimate(film, speeds))
    }

    fn intent(&self, film: &Film, speeds: &Speeds, seconds: f64) -> Result<Intent> {
        drafts::intent(film, speeds, seconds)
    }

    fn calibrate(&self, film: &Film, _scratch: &Path) -> Result<Speeds> {
        drafts::calibrate(film)
    }

    fn editable(&self) -> &[&str] {
        &EDITABLE
    }

    /// The user's hand edit of screenplay.fountain is parsed again, not regenerated.
    fn adopt_edits(&self, ctx: &StageContext) -> Result<StageOutcome> {
        let path = ctx.dir.join(FOUNTAIN_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut screenplay = fountain::parse(&text);
        if screenplay.title.is_empty() {
            screenplay.title = ctx.film.settings.title.clone();
        }
        if screenplay.scenes.is_empty() {
            bail!("{} has no scenes after your edit; every scene needs a heading such as `INT. ROOM - NIGHT`", path.display());
        }
        check_length(&screenplay, ctx.film.settings.minutes)
            .with_context(|| format!("{} after your edit", path.display()))?;
        if let Err(e) = check_constraints(&screenplay, &constraints(&ctx.film.settings)) {
            ctx.progress
                .info(format!("warning: after your edit, {e:#}"));
        }
        Self::write_outputs(ctx, &screenplay, None)
    }
}

/// How many times longer than the film asked for a hand-edited screenplay may run: every
/// stage after it works line by line, and a screenplay of hours would fill the disk with
/// voices and outrun the budget.
const LONGEST_EDIT: f64 = 3.0;

/// Refuses a screenplay far longer than the film's `--minutes`, naming the way to ask for more.
fn check_length(screenplay: &Screenplay, minutes: f64) -> Result<()> {
    let runs = screenplay.estimated_seconds / 60.0;
    if runs <= minutes * LONGEST_EDIT {
        return Ok(());
    }
    let ask = if runs <= crate::film::MAX_MINUTES {
        format!("or ask for a film that long with --minutes {}", runs.ceil())
    } else {
        format!(
            "benjamin makes films of up to {} minutes",
            crate::film::MAX_MINUTES
        )
    };
    bail!(
        "the screenplay runs about {runs:.0} minutes, more than {LONGEST_EDIT} times the {minutes}-minute film asked for; shorten it, {ask}"
    )
}

/// Where a film's screenplay.json is.
pub fn json_path(film: &Film) -> PathBuf {
    film.stage_dir(StageId::Screenplay.name()).join(JSON_FILE)
}

/// screenplay.json for a stage that reads it; [`Blocked`](crate::stage::Blocked) until the
/// screenplay stage has written it.
pub fn require_json(film: &Film) -> Result<PathBuf> {
    let path = json_path(film);
    if !path.is_file() {
        return Err(crate::stage::Blocked(
            "it needs screenplay.json from the screenplay stage".into(),
        )
        .into());
    }
    Ok(path)
}

/// Loads a film's screenplay.json (for the stages that follow).
pub fn load(film: &Film) -> Result<Screenplay> {
    let path = json_path(film);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is damaged; `benjamin run screenplay --film {}` rewrites it",
            path.display(),
            film.dir.display()
        )
    })
}
