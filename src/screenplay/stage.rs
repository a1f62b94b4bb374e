//! The screenplay as a pipeline stage: screenplay.fountain and screenplay.json, from the
//! default model embedded in benjamin or one the user trained.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use super::fountain::{self, Element, Scene, Screenplay};
use super::lm::draft::write_draft;
use super::lm::sample::{Constraints, DraftRequest};
use super::lm::{ModelBundle, CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE};
use super::{drafts, tune};
use crate::film::{Film, FilmSettings};
use crate::fsutil;
use crate::manifest::StageInputs;
use crate::stage::{
    Estimate, Intent, Speeds, Stage, StageContext, StageId, StageOutcome, RATES_NOTE,
};

pub const FOUNTAIN_FILE: &str = "screenplay.fountain";
pub const JSON_FILE: &str = "screenplay.json";
const EDITABLE: [&str; 1] = ["screenplay/screenplay.fountain"];

/// The built-in models, trained by `benjamin train screenplay` (see models/README.md): the
/// adapters on SmolLM2 (the default) and the small GPT trained from scratch.
mod embedded {
    pub mod adapters {
        pub const CONFIG: &str = include_str!("../../models/screenplay-smollm2/config.json");
        pub const WEIGHTS: &[u8] =
            include_bytes!("../../models/screenplay-smollm2/model.safetensors");
    }
    pub mod gpt {
        pub const CONFIG: &str = include_str!("../../models/screenplay/config.json");
        pub const WEIGHTS: &[u8] = include_bytes!("../../models/screenplay/model.safetensors");
        pub const TOKENIZER: &str = include_str!("../../models/screenplay/tokenizer.json");
    }
}

/// The names `--screenplay-model` takes for the built-in models (any other value is a folder).
pub const BUILT_IN_MODELS: [&str; 2] = ["smollm2", "gpt"];

/// Which model a film's setting names: `None` or "smollm2" the built-in adapters (they score
/// best: see models/README.md), "gpt" the built-in GPT, anything else a folder made by
/// `benjamin train screenplay`.
enum ModelChoice<'a> {
    Adapters,
    Gpt,
    Folder(&'a Path),
}

fn choice(setting: Option<&Path>) -> ModelChoice<'_> {
    match setting {
        None => ModelChoice::Adapters,
        Some(p) if p.exists() => ModelChoice::Folder(p),
        Some(p) if p == Path::new("smollm2") => ModelChoice::Adapters,
        Some(p) if p == Path::new("gpt") => ModelChoice::Gpt,
        Some(p) => ModelChoice::Folder(p),
    }
}

/// Hash of the model a film uses, without loading it.
fn model_hash(film: &Film) -> Result<String> {
    let read = |dir: &Path, n: &str| {
        std::fs::read(dir.join(n)).with_context(|| format!("cannot read {}", dir.join(n).display()))
    };
    match choice(film.settings.screenplay_model.as_deref()) {
        ModelChoice::Adapters => super::lm::bundle_hash(
            embedded::adapters::CONFIG,
            embedded::adapters::WEIGHTS,
            None,
        ),
        ModelChoice::Gpt => Ok(super::lm::model_hash(
            embedded::gpt::WEIGHTS,
            embedded::gpt::TOKENIZER.as_bytes(),
        )),
        ModelChoice::Folder(dir) => {
            let config = String::from_utf8_lossy(&read(dir, CONFIG_FILE)?).into_owned();
            super::lm::bundle_hash(
                &config,
                &read(dir, WEIGHTS_FILE)?,
                read(dir, TOKENIZER_FILE).ok().as_deref(),
            )
            .with_context(|| format!("{} is not a screenplay model", dir.display()))
        }
    }
}

/// The files of a built-in model: config, weights, tokenizer (the adapters take their
/// base's), and what to call it in errors.
pub struct BuiltIn {
    pub config: &'static str,
    pub weights: &'static [u8],
    pub tokenizer: Option<&'static str>,
    pub name: &'static str,
}

/// The built-in model a film's setting names, or the model folder it names instead.
pub fn built_in(setting: Option<&Path>) -> std::result::Result<BuiltIn, &Path> {
    match choice(setting) {
        ModelChoice::Adapters => Ok(BuiltIn {
            config: embedded::adapters::CONFIG,
            weights: embedded::adapters::WEIGHTS,
            tokenizer: None,
            name: "the built-in screenplay adapters",
        }),
        ModelChoice::Gpt => Ok(BuiltIn {
            config: embedded::gpt::CONFIG,
            weights: embedded::gpt::WEIGHTS,
            tokenizer: Some(embedded::gpt::TOKENIZER),
            name: "the built-in screenplay GPT",
        }),
        ModelChoice::Folder(dir) => Err(dir),
    }
}

/// The model a film uses (see [`choice`]).
pub fn load_model(setting: Option<&Path>) -> Result<ModelBundle> {
    load_model_with(setting, None)
}

/// The model a film uses, with `weights` in place of a built-in model's own (its genre's
/// fine-tuned ones).
pub fn load_model_with(setting: Option<&Path>, weights: Option<&[u8]>) -> Result<ModelBundle> {
    let device = crate::nn::device();
    match built_in(setting) {
        Ok(b) => ModelBundle::from_parts(
            b.config,
            weights.unwrap_or(b.weights),
            b.tokenizer,
            None,
            b.name,
            &device,
        ),
        Err(dir) => ModelBundle::load_dir(dir, &device),
    }
}

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

fn constraints(s: &FilmSettings) -> Constraints {
    Constraints {
        title: s.title.clone(),
        line: s.line.clone(),
        prop: s.prop.clone(),
        cast: super::cast::choose(s.genre, super::cast::size_for(s.minutes), s.seed),
    }
}

/// Turns a raw draft into a screenplay every later stage can rely on: every scene has a
/// heading and something in it, no dialogue is empty, nothing runs on repeating itself, and
/// the constraints are there.
pub fn repair(draft: &str, c: &Constraints) -> Result<Screenplay> {
    // A draft cut off mid-element loses that element.
    let complete = match draft.rfind("\n\n") {
        Some(i) if !draft.ends_with("\n\n") => &draft[..i + 2],
        _ => draft,
    };
    let parsed = fountain::parse(complete);
    let mut seen: Vec<String> = Vec::new();
    let mut scenes: Vec<Scene> = Vec::new();
    let mut waiting: Vec<Element> = Vec::new();
    for mut scene in parsed.scenes {
        // A heading with no place ("INT." and a line break) goes; what follows it stays with
        // the scene before.
        let placeless = scene.heading.place.trim().is_empty();
        let mut kept: Vec<Element> = Vec::new();
        for mut e in rejoin_dialogue(scene.elements) {
            match &mut e {
                Element::Action { text } => *text = collapse_repeats(text),
                Element::Dialogue(d) => d.text = collapse_repeats(&d.text),
                _ => {}
            }
            let key = match &e {
                Element::Action { text } => text.trim().to_string(),
                Element::Dialogue(d) => d.text.trim().to_string(),
                Element::Transition { .. } | Element::Centered { .. } => String::new(),
            };
            let prop = c.prop.as_deref().map(|p| p.trim().to_lowercase());
            let required = c.line.as_deref().is_some_and(|l| key.contains(l.trim()))
                || prop.is_some_and(|p| !p.is_empty() && key.to_lowercase().contains(&p));
            if let Element::Dialogue(d) = &e {
                if d.text.trim().is_empty() {
                    continue;
                }
            }
            // Runaway repetition: a line of four words or more said or seen before.
            if !required && key.split_whitespace().count() >= 4 && seen.contains(&key) {
                continue;
            }
            if kept.last() == Some(&e) {
                continue;
            }
            seen.push(key);
            kept.push(e);
        }
        if placeless {
            // Before any scene with a place, it waits for the first one (it may hold the
            // required line or prop).
            match scenes.last_mut() {
                Some(previous) => previous.elements.extend(kept),
                None => waiting.extend(kept),
            }
        } else if kept
            .iter()
            .any(|e| matches!(e, Element::Action { .. } | Element::Dialogue(_)))
        {
            scene.elements = std::mem::take(&mut waiting);
            scene.elements.extend(kept);
            scenes.push(scene);
        }
    }
    if scenes.is_empty() {
        bail!("the model wrote no usable scene; try another --seed (or retrain the model)");
    }
    if !c.cast.is_empty() {
        keep_cues_in_cast(&mut scenes, &c.cast);
    }
    let mut screenplay = fountain::finish(c.title.clone(), scenes);
    screenplay.cast = c.cast.clone();
    check_constraints(&screenplay, c)?;
    Ok(screenplay)
}

/// Gives each line of a speaker outside the cast to a cast member ([`cast::remap`]) rather
/// than dropping it.
fn keep_cues_in_cast(scenes: &mut [Scene], cast: &[String]) {
    let mut speakers: Vec<String> = Vec::new();
    for e in scenes.iter_mut().flat_map(|s| s.elements.iter_mut()) {
        if let Element::Dialogue(d) = e {
            if !cast.contains(&d.character) {
                d.character = super::cast::remap(&d.character, cast, &speakers);
            }
            speakers.push(d.character.clone());
        }
    }
}

/// Runaway repetition inside a paragraph: a sentence said again right after itself goes.
fn collapse_repeats(text: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for sentence in text.split_inclusive(['.', '!', '?']) {
        if out
            .last()
            .is_some_and(|prev| prev.trim() == sentence.trim())
        {
            continue;
        }
        out.push(sentence);
    }
    out.concat()
}

/// A cue the model left stranded by a blank line ("SAM" / "" / "(softly)" / "Go.") reads as two
/// action paragraphs; joined again, it is the dialogue it was meant to be. A cue with nothing
/// after it is dropped.
fn rejoin_dialogue(elements: Vec<Element>) -> Vec<Element> {
    use super::fountain::{parse_cue, Dialogue};
    let mut out: Vec<Element> = Vec::new();
    let mut pending: Option<(String, Option<String>)> = None;
    for e in elements {
        if let Element::Action { text } = &e {
            let lone_cue = !text.contains('\n') && !text.trim_end().ends_with(['.', '!', '?']);
            if let Some((name, ext, _)) = parse_cue(text).filter(|_| lone_cue) {
                pending = Some((name, ext));
                continue;
            }
            if let Some((character, extension)) = pending.take() {
                let mut lines = text.lines();
                let first = lines.next().unwrap_or("").trim();
                let (parenthetical, rest): (Option<String>, Vec<&str>) =
                    if first.starts_with('(') && first.ends_with(')') {
                        (Some(first.to_string()), lines.collect())
                    } else {
                        (None, text.lines().collect())
                    };
                let spoken = rest.join(" ").trim().to_string();
                if !spoken.is_empty() {
                    out.push(Element::Dialogue(Dialogue {
                        character,
                        extension,
                        parenthetical,
                        text: spoken,
                        dual: false,
                    }));
                    continue;
                }
            }
        } else {
            pending = None;
        }
        out.push(e);
    }
    out
}

/// Fails unless the line is spoken verbatim by a character and the prop is in the action.
pub fn check_constraints(s: &Screenplay, c: &Constraints) -> Result<()> {
    let all = || s.scenes.iter().flat_map(|sc| sc.elements.iter());
    if let Some(line) = c.line.as_deref().filter(|l| !l.trim().is_empty()) {
        if !all().any(|e| matches!(e, Element::Dialogue(d) if d.text.contains(line.trim()))) {
            bail!(
                "the screenplay does not have a character say {:?}",
                line.trim()
            );
        }
    }
    if let Some(prop) = c.prop.as_deref().filter(|p| !p.trim().is_empty()) {
        let prop = prop.trim().to_lowercase();
        if !all()
            .any(|e| matches!(e, Element::Action { text } if text.to_lowercase().contains(&prop)))
        {
            bail!("the screenplay has no action line with the prop {prop:?}");
        }
    }
    Ok(())
}

/// What to ask the model for, for a film of these settings.
pub fn request(s: &FilmSettings) -> DraftRequest {
    DraftRequest {
        genre: s.genre,
        seed: s.seed,
        target_seconds: s.minutes * 60.0,
        constraints: constraints(s),
        sampling: s.sampling.clone(),
        // A page is roughly 1500 characters; leave room for the repairs.
        max_tokens: ((s.minutes * 1500.0 * 3.0) as usize).max(2000),
    }
}

/// How fast the model wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WriteStats {
    pub tokens: usize,
    pub seconds: f64,
    pub tokens_per_second: f64,
}

/// Samples a draft with progress and repairs it into a screenplay.
pub fn write_screenplay(
    bundle: &ModelBundle,
    req: &DraftRequest,
    deadline: Option<Instant>,
    progress: &crate::progress::Progress,
) -> Result<(Screenplay, WriteStats)> {
    let bar = progress.spinner("writing");
    let started = Instant::now();
    let mut tokens = 0;
    let draft = write_draft(bundle, req, deadline, |n| {
        tokens = n;
        if n % 25 == 0 {
            bar.set_message(format!(
                "writing the screenplay: {n} tokens, {:.0} tokens/s",
                n as f64 / started.elapsed().as_secs_f64()
            ));
        }
    })?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let stats = WriteStats {
        tokens,
        seconds,
        tokens_per_second: tokens as f64 / seconds.max(1e-9),
    };
    Ok((repair(&draft, &req.constraints)?, stats))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sentence_repeated_back_to_back_is_said_once() {
        assert_eq!(
            collapse_repeats(
                "Anger. A patch. A between them. A between them. A between them. At last."
            ),
            "Anger. A patch. A between them. At last."
        );
        assert_eq!(collapse_repeats("No. No! No."), "No. No! No.");
    }

    /// A first scene whose heading the model left without a place must not take the
    /// required prop and line with it when it goes.
    #[test]
    fn a_placeless_first_scene_keeps_the_prop_and_line_for_the_next() {
        let draft = "Title: T\n\nINT.\n\nA brass key on the bar.\n\nVERA\nWhere were you at midnight?\n\nINT. PIER - NIGHT\n\nGulls.\n\n";
        let c = Constraints {
            title: "T".into(),
            line: Some("Where were you at midnight?".into()),
            prop: Some("brass key".into()),
            ..Default::default()
        };
        let s = repair(draft, &c).unwrap();
        assert_eq!(s.scenes.len(), 1);
        assert_eq!(s.scenes[0].heading.place, "PIER");
        assert_eq!(s.scenes[0].elements.len(), 3, "{:?}", s.scenes[0].elements);
    }

    #[test]
    fn stranded_cues_are_rejoined_to_their_lines_and_lone_ones_dropped() {
        let draft = "Title: T\n\nINT. BAR - NIGHT\n\nRain.\n\nCASH (V.O.)\n\n(filtered)\nIt's the one.\n\nMORT\n\nEXT. PIER - DAY\n\nGulls.\n\n";
        let s = repair(
            draft,
            &Constraints {
                title: "T".into(),
                ..Default::default()
            },
        )
        .unwrap();
        let bar = &s.scenes[0].elements;
        assert_eq!(bar.len(), 2, "{bar:?}");
        assert!(
            matches!(&bar[1], Element::Dialogue(d) if d.character == "CASH" && d.parenthetical.as_deref() == Some("(filtered)") && d.text == "It's the one.")
        );
        assert_eq!(s.characters, vec!["CASH"]);
    }
}
