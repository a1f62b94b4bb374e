//! What time buys the screenplay: several drafts, ranked by a critic, the best one kept.
//!
//! The critic scores a draft by how likely the model finds it (its mean loss per token: word
//! salad scores badly), how near its cast is to the size asked for, whether it says the line
//! and shows the prop, and how near its length is to the film's. The ranking is written
//! beside the screenplay (`drafts.json`), and each finished draft is kept as an item, so a
//! killed stage does not write it again.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::fountain::{self, Screenplay};
use super::lm::sample::DraftRequest;
use super::lm::tokenizer::genre_token;
use super::lm::ModelBundle;
use super::tune;
use super::write::{check_constraints, write_screenplay, WriteStats};
use crate::film::Film;
use crate::fsutil;
use crate::items::{key_of, Items};
use crate::progress::Progress;
use crate::stage::{Estimate, Intent, Speeds};

/// The ranking beside the screenplay.
pub const RANKING_FILE: &str = "drafts.json";
/// The folder of finished drafts.
pub const DRAFTS_DIR: &str = "drafts";
/// More drafts than this add little: the critic's top pick rarely changes.
pub const MOST_DRAFTS: usize = 4;

/// Sampling speed (tokens per second) of the built-in adapters on the 2-core reference
/// machine, until this machine's is measured.
const FALLBACK_TOKENS_PER_S: f64 = 28.0;
/// Scoring speed (tokens per second through the model, no sampling) likewise.
const FALLBACK_SCORED_PER_S: f64 = 100.0;
/// Loading the model, likewise (seconds).
const FALLBACK_LOAD_S: f64 = 15.0;
/// Tokens a minute of screenplay takes (a page is about 1500 characters, 5 per token).
const TOKENS_PER_MINUTE: f64 = 330.0;

/// The units of the stage's speeds: tokens sampled, tokens scored, models loaded (per second).
pub const SAMPLED: &str = "screenplay.tokens";
pub const SCORED: &str = "screenplay.scored_tokens";
pub const LOADS: &str = "screenplay.loads";
/// Whole drafts: minutes of film drafted per second (sampling, retries and scoring), as
/// drafts saw it; until one has, the token rates estimate it.
pub const DRAFTED: &str = "screenplay.draft_minutes";
/// Fine-tuning: tokens trained on per second (evaluation and saving included).
pub const TRAINED: &str = "screenplay.train_tokens";
const FALLBACK_TRAINED_PER_S: f64 = 55.0;

/// What the screenplay stage does with its seconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DraftPlan {
    pub drafts: usize,
    pub tokens_per_draft: usize,
    pub seconds_per_draft: f64,
    /// Seconds of fine-tuning on the genre before drafting (0: none).
    pub tune_s: f64,
}

fn load_s(speeds: &Speeds) -> f64 {
    1.0 / speeds.rate(LOADS, 1.0 / FALLBACK_LOAD_S)
}

fn seconds_per_draft(film: &Film, speeds: &Speeds) -> (usize, f64) {
    let minutes = film.settings.minutes;
    let tokens = (minutes * TOKENS_PER_MINUTE).ceil() as usize;
    let from_tokens = speeds.seconds(SAMPLED, tokens as f64, FALLBACK_TOKENS_PER_S)
        + speeds.seconds(SCORED, tokens as f64, FALLBACK_SCORED_PER_S);
    (
        tokens,
        speeds.seconds(DRAFTED, minutes, minutes / from_tokens),
    )
}

pub fn estimate(film: &Film, speeds: &Speeds) -> Estimate {
    let (_, per_draft) = seconds_per_draft(film, speeds);
    let more_drafts = (MOST_DRAFTS - 1) as f64 * per_draft;
    // Each further draft is a step, and so is a fine-tuning session long enough to count;
    // past that, fine-tuning takes any extra.
    let mut steps_s: Vec<f64> = (1..MOST_DRAFTS).map(|k| k as f64 * per_draft).collect();
    if tune::can_tune(&film.settings) {
        steps_s.push(more_drafts + tune::LEAST_SESSION_S);
    }
    Estimate {
        least_s: load_s(speeds) + per_draft,
        better_from_s: 0.0,
        better_upto_s: if tune::can_tune(&film.settings) {
            f64::INFINITY
        } else {
            more_drafts
        },
        weight: 0.3,
        steps_s,
    }
}

pub fn choose(film: &Film, speeds: &Speeds, seconds: f64) -> DraftPlan {
    let (tokens, per_draft) = seconds_per_draft(film, speeds);
    let extra = (seconds - load_s(speeds) - per_draft).max(0.0);
    let drafts_in = |s: f64| ((s / per_draft).floor() as usize).min(MOST_DRAFTS - 1);
    // Half the extra buys drafts and half fine-tuning, when a session fits in its half.
    let (mut more, mut tune_s) = (drafts_in(extra), 0.0);
    if tune::can_tune(&film.settings) {
        let half = drafts_in(extra * 0.5);
        let rest = extra - half as f64 * per_draft;
        if rest >= tune::LEAST_SESSION_S {
            (more, tune_s) = (half, rest);
        }
    }
    DraftPlan {
        drafts: 1 + more,
        tokens_per_draft: tokens,
        seconds_per_draft: per_draft,
        tune_s,
    }
}

pub fn intent(film: &Film, speeds: &Speeds, seconds: f64) -> Result<Intent> {
    let p = choose(film, speeds, seconds);
    let mut summary = String::new();
    if p.tune_s > 0.0 {
        let steps = (p.tune_s - tune::EVAL_ALLOWANCE_S).max(0.0)
            * speeds.rate(TRAINED, FALLBACK_TRAINED_PER_S)
            / tune::TOKENS_PER_STEP as f64;
        summary += &format!(
            "fine-tune on {} for ~{:.0} s (~{steps:.0} steps), then ",
            film.settings.genre, p.tune_s
        );
    }
    summary += &if p.drafts == 1 {
        format!(
            "write 1 draft of ~{} tokens (~{:.0} s)",
            p.tokens_per_draft, p.seconds_per_draft
        )
    } else {
        format!(
            "write {} drafts of ~{} tokens (~{:.0} s each) and keep the one the critic ranks first",
            p.drafts, p.tokens_per_draft, p.seconds_per_draft
        )
    };
    Ok(Intent {
        summary,
        details: serde_json::to_value(&p)?,
    })
}

/// The model's loading, sampling and scoring speeds, on a short draft.
pub fn calibrate(film: &Film) -> Result<Speeds> {
    let started = Instant::now();
    let bundle = super::models::load_model(film.settings.screenplay_model.as_deref())?;
    let mut speeds = Speeds::default();
    speeds.set(LOADS, 1.0 / started.elapsed().as_secs_f64());
    // Raw tokens, greedily: the probe measures the model's speed, whatever it writes.
    let genre = bundle.tokenizer.id(&genre_token(film.settings.genre));
    let mut stepper = super::lm::Stepper::new(&bundle.model);
    stepper.push(&[genre]);
    let started = Instant::now();
    for _ in 0..48 {
        let logits = stepper.next_logits()?;
        let best = (0..logits.len())
            .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
            .unwrap_or(0);
        stepper.push(&[best as u32]);
    }
    speeds.set(SAMPLED, 48.0 / started.elapsed().as_secs_f64());
    let started = Instant::now();
    let scored = mean_loss_of(&bundle, stepper.tokens())?.1;
    speeds.set(SCORED, scored as f64 / started.elapsed().as_secs_f64());
    Ok(speeds)
}

/// A draft's marks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Critique {
    pub draft: usize,
    pub seed: u64,
    /// Mean loss per token under the model (lower reads more like a screenplay).
    pub loss: f32,
    pub cast: usize,
    pub cast_asked: usize,
    pub constraints_met: bool,
    pub estimated_seconds: f64,
    pub target_seconds: f64,
    /// Higher is better.
    pub score: f64,
    pub tokens: usize,
    pub tokens_per_second: f64,
}

impl Critique {
    fn new(
        bundle: &ModelBundle,
        req: &DraftRequest,
        draft: usize,
        s: &Screenplay,
        stats: &WriteStats,
    ) -> Result<(Critique, usize)> {
        let (loss, scored) = mean_loss(bundle, req, &fountain::write(s))?;
        let cast_asked = req.constraints.cast.len().max(1);
        let constraints_met = check_constraints(s, &req.constraints).is_ok();
        let length_off = (s.estimated_seconds / req.target_seconds.max(1.0) - 1.0).abs();
        let cast_off = (s.characters.len() as f64 - cast_asked as f64).abs() / cast_asked as f64;
        // Weighed so that a tenth of a nat per token is worth a length 20% off.
        let score = -(loss as f64)
            - 0.5 * length_off
            - 0.25 * cast_off
            - if constraints_met { 0.0 } else { 1.0 };
        let critique = Critique {
            draft,
            seed: req.seed,
            loss,
            cast: s.characters.len(),
            cast_asked,
            constraints_met,
            estimated_seconds: s.estimated_seconds,
            target_seconds: req.target_seconds,
            score,
            tokens: stats.tokens,
            tokens_per_second: stats.tokens_per_second,
        };
        Ok((critique, scored))
    }
}

/// The draft's mean loss per token under the model, over windows of its context, and the
/// tokens it scored.
fn mean_loss(bundle: &ModelBundle, req: &DraftRequest, text: &str) -> Result<(f32, usize)> {
    let tok = &bundle.tokenizer;
    let mut ids = vec![tok.id(&genre_token(req.genre))];
    ids.extend(tok.encode(text)?);
    mean_loss_of(bundle, &ids)
}

/// Mean loss per token of `ids` under the model, window by window; and how many it scored.
fn mean_loss_of(bundle: &ModelBundle, ids: &[u32]) -> Result<(f32, usize)> {
    let window = bundle.config.context;
    let device = &bundle.model.device;
    let (mut total, mut count) = (0f64, 0usize);
    for chunk in ids.windows(window + 1).step_by(window) {
        let n = chunk.len() - 1;
        let x = Tensor::new(&chunk[..n], device)?.unsqueeze(0)?;
        let y = Tensor::new(&chunk[1..], device)?.unsqueeze(0)?;
        total += bundle.model.loss(&x, &y)?.to_scalar::<f32>()? as f64 * n as f64;
        count += n;
    }
    Ok(((total / count.max(1) as f64) as f32, count))
}

/// The stage's drafts, ranked best first; returns the best and the rates seen. The first is
/// always written; another only while it can finish before `deadline`, judged by the drafts
/// written so far (drafts that come in under the plan's estimate buy more of them, up to
/// [`MOST_DRAFTS`]). A draft that fails is reported and passed over, unless none succeeds.
pub fn write_drafts(
    bundle: &ModelBundle,
    req: &DraftRequest,
    plan: &DraftPlan,
    deadline: Instant,
    dir: &Path,
    progress: &Progress,
) -> Result<(Screenplay, Vec<Critique>, Speeds)> {
    let mut kept: Items<Critique> = Items::open(&dir.join(DRAFTS_DIR));
    let mut best: Option<Screenplay> = None;
    let mut ranking: Vec<Critique> = Vec::new();
    let mut tally = Tally::default();
    let mut first_error = None;
    for draft in 1..=MOST_DRAFTS {
        // The plan's drafts are judged by the mean so far (a draft that reaches the deadline
        // is finished short, not late); one more than planned, by the longest.
        let next_s = match tally.drafted {
            0 => plan.seconds_per_draft,
            n if draft <= plan.drafts => tally.drafting_s / n as f64,
            _ => tally.longest_s,
        };
        if draft > 1 && Instant::now() + Duration::from_secs_f64(next_s) > deadline {
            if draft <= plan.drafts {
                progress.info(format!(
                    "screenplay: no time left for draft {draft} of {}",
                    plan.drafts
                ));
            }
            break;
        }
        let (screenplay, critique) = match draft_one(
            bundle, req, draft, deadline, &mut kept, &mut tally, progress,
        ) {
            Ok(written) => written,
            Err(e) if crate::progress::check_interrupted().is_ok() => {
                progress.info(format!("screenplay: draft {draft} failed: {e:#}"));
                first_error.get_or_insert(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        if plan.drafts > 1 || draft > 1 {
            progress.info(format!(
                "screenplay: draft {draft}: score {:.3} (loss {:.3}, {} characters, {:.0} s)",
                critique.score, critique.loss, critique.cast, critique.estimated_seconds
            ));
        }
        if ranking.iter().all(|r| critique.score > r.score) {
            best = Some(screenplay);
        }
        ranking.push(critique);
    }
    let Some(screenplay) = best else {
        return Err(first_error.expect("a draft was tried"));
    };
    kept.prune()?;
    ranking.sort_by(|a, b| b.score.total_cmp(&a.score));
    Ok((screenplay, ranking, tally.rates(req.target_seconds / 60.0)))
}

/// The work the drafts written (not reused) took, for the rates a run reports.
#[derive(Default)]
struct Tally {
    sampled: usize,
    sampling_s: f64,
    scored: usize,
    scoring_s: f64,
    drafted: usize,
    drafting_s: f64,
    longest_s: f64,
}

impl Tally {
    /// The rates seen; those from a few seconds of work are noise and left out.
    fn rates(&self, minutes_per_draft: f64) -> Speeds {
        let mut seen = Speeds::default();
        if self.sampling_s > 5.0 {
            seen.set(SAMPLED, self.sampled as f64 / self.sampling_s);
        }
        if self.scoring_s > 1.0 {
            seen.set(SCORED, self.scored as f64 / self.scoring_s);
        }
        if self.drafting_s > 5.0 {
            let minutes = self.drafted as f64 * minutes_per_draft;
            seen.set(DRAFTED, minutes / self.drafting_s);
        }
        seen
    }
}

/// Draft number `draft` (its own seed): the one kept from an earlier run, or written,
/// critiqued and kept now.
fn draft_one(
    bundle: &ModelBundle,
    req: &DraftRequest,
    draft: usize,
    deadline: Instant,
    kept: &mut Items<Critique>,
    tally: &mut Tally,
    progress: &Progress,
) -> Result<(Screenplay, Critique)> {
    let mut req = req.clone();
    req.seed = req.seed.wrapping_add((draft as u64 - 1) * 7919);
    let name = format!("draft-{draft}.json");
    let key = key_of(&(&bundle.hash, format!("{req:?}")));
    let path = kept.dir().join(&name);
    if let Some(c) = kept.get(&name, &key) {
        return Ok((serde_json::from_slice(&std::fs::read(&path)?)?, c));
    }
    let started = Instant::now();
    let (s, stats) = write_screenplay(bundle, &req, Some(deadline), progress)?;
    let scoring = Instant::now();
    let (c, n) = Critique::new(bundle, &req, draft, &s, &stats)?;
    fsutil::write_atomic(&path, &serde_json::to_vec(&s)?)?;
    kept.put(&name, key, c.clone())?;
    let took = started.elapsed().as_secs_f64();
    tally.sampled += stats.tokens;
    tally.sampling_s += stats.seconds;
    tally.scored += n;
    tally.scoring_s += scoring.elapsed().as_secs_f64();
    tally.drafted += 1;
    tally.drafting_s += took;
    tally.longest_s = tally.longest_s.max(took);
    Ok((s, c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::film::{FilmSettings, Genre};

    #[test]
    fn time_buys_drafts_first_then_fine_tuning_sessions_long_enough_to_count() {
        let dir = tempfile::tempdir().unwrap();
        let film = Film::save(
            dir.path(),
            &FilmSettings::new("P".into(), Genre::Noir, 1, 1.0),
        )
        .unwrap();
        let speeds = Speeds::default();
        let least = estimate(&film, &speeds).least_s;
        let at = |s: f64| choose(&film, &speeds, s);
        let one = at(least);
        assert_eq!((one.drafts, one.tune_s), (1, 0.0));
        let per = one.seconds_per_draft;
        assert_eq!(at(least + 2.0 * per + 1.0).drafts, 3);
        let four = at(least + 3.0 * per + 1.0);
        assert_eq!(
            (four.drafts, four.tune_s),
            (MOST_DRAFTS, 0.0),
            "too short a session"
        );
        let long = at(least + 2.0 * tune::LEAST_SESSION_S + 10.0 * per);
        assert!(long.tune_s >= tune::LEAST_SESSION_S, "{long:?}");
        let spent = load_s(&speeds) + long.drafts as f64 * per + long.tune_s;
        assert!(spent <= least + 2.0 * tune::LEAST_SESSION_S + 10.0 * per + 1e-6);
    }
}
