//! The contract between the pipeline and its stages, on the ground floor: what a stage is
//! ([`Stage`]), what it sees while it runs ([`StageContext`]) and gives back
//! ([`StageOutcome`]), how it says it cannot run yet ([`Blocked`]), and how it hashes what it
//! reads. It imports no stage; the registry of stages lives in [`crate::pipeline`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::film::Film;
use crate::fsutil;
pub use crate::manifest::Intent;
use crate::manifest::StageInputs;
use crate::progress::Progress;

/// The stages, in data-flow order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StageId {
    Screenplay,
    Voice,
    Shots,
    Faces,
    Music,
    Cut,
}

impl StageId {
    pub const ALL: [StageId; 6] = [
        StageId::Screenplay,
        StageId::Voice,
        StageId::Shots,
        StageId::Faces,
        StageId::Music,
        StageId::Cut,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StageId::Screenplay => "screenplay",
            StageId::Voice => "voice",
            StageId::Shots => "shots",
            StageId::Faces => "faces",
            StageId::Music => "music",
            StageId::Cut => "cut",
        }
    }

    /// Stages whose artifacts this one reads; a rerun of any of them makes this one stale.
    pub fn upstream(self) -> &'static [StageId] {
        use StageId::*;
        match self {
            Screenplay => &[],
            Voice => &[Screenplay],
            Shots => &[Screenplay, Voice],
            Faces => &[Screenplay, Shots],
            Music => &[Screenplay, Voice],
            Cut => &[Screenplay, Voice, Shots, Faces, Music],
        }
    }
}

impl fmt::Display for StageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a stage sees while it runs.
pub struct StageContext<'a> {
    pub film: &'a Film,
    /// The stage's own folder (created before `run`).
    pub dir: PathBuf,
    /// The stage must finish by then; a stage that trains stops early to keep it.
    pub deadline: Instant,
    /// The seconds the plan gives it (from when it starts to `deadline`).
    pub planned_s: f64,
    /// This machine's speeds, which the plan was made with.
    pub speeds: &'a Speeds,
    pub progress: &'a Progress,
}

/// This machine's measured rates, one per unit of work: `cut.frames.veryfast` is the frames
/// per second the cut makes at that x264 preset. The planner keeps them (`plan::calibration`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Speeds(pub BTreeMap<String, f64>);

impl Speeds {
    /// The rate of `unit` (per second), or `fallback` when this machine has not measured it.
    pub fn rate(&self, unit: &str, fallback: f64) -> f64 {
        self.0
            .get(unit)
            .copied()
            .filter(|r| r.is_finite() && *r > 0.0)
            .unwrap_or(fallback)
    }

    /// Seconds `amount` units of work take.
    pub fn seconds(&self, unit: &str, amount: f64, fallback: f64) -> f64 {
        amount / self.rate(unit, fallback)
    }

    pub fn set(&mut self, unit: impl Into<String>, rate: f64) {
        if rate.is_finite() && rate > 0.0 {
            self.0.insert(unit.into(), rate);
        }
    }
}

/// What a stage needs of the time budget and what more time buys, as the planner sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Estimate {
    /// Seconds of the least the stage does; it cannot do less.
    pub least_s: f64,
    /// Extra seconds before more time buys anything (all or nothing: a face swap needs a model
    /// good enough to paint a face); 0 when any extra helps.
    pub better_from_s: f64,
    /// Extra seconds past which more time buys nothing (infinite while training helps).
    pub better_upto_s: f64,
    /// Its claim on spare time against the other stages'.
    pub weight: f64,
    /// Where time buys in whole steps (another draft, a slower preset): the extra seconds,
    /// counted like `better_upto_s` and increasing, at which each step is paid for. Time
    /// between two steps buys nothing; past the last, any extra helps. Empty: any extra helps.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps_s: Vec<f64>,
}

impl Estimate {
    /// A stage whose work takes what it takes: time buys it nothing.
    pub fn fixed(least_s: f64) -> Self {
        Estimate {
            least_s,
            ..Default::default()
        }
    }
}

/// What a finished run produced.
pub struct StageOutcome {
    /// Absolute paths of the artifacts, inside the film folder.
    pub outputs: Vec<PathBuf>,
    /// Facts for the manifest (model size, losses, ...).
    pub notes: serde_json::Value,
}

/// A stage cannot run yet because something it needs does not exist (not an error of the film).
#[derive(Debug)]
pub struct Blocked(pub String);

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Blocked {}

/// One step of the film. Implementations live in a module per stage.
pub trait Stage {
    fn id(&self) -> StageId;
    /// The parameters, files and models this stage would use now. Fails with [`Blocked`] when
    /// an upstream artifact it needs is absent. The pipeline adds the seed, version and upstream runs.
    fn inputs(&self, film: &Film) -> Result<StageInputs>;
    fn run(&self, ctx: &StageContext) -> Result<StageOutcome>;
    /// Outputs (relative to the film folder) a user may edit by hand: when only these
    /// changed, the pipeline calls [`Stage::adopt_edits`] instead of regenerating them.
    fn editable(&self) -> &[&str] {
        &[]
    }
    /// Rebuilds what derives from hand-edited outputs, keeping the edits.
    fn adopt_edits(&self, ctx: &StageContext) -> Result<StageOutcome> {
        self.run(ctx)
    }
    /// What the stage needs and could use on a machine of these speeds. Before its upstream
    /// stages have run it estimates from the film's settings (minutes, actors).
    fn estimate(&self, film: &Film, speeds: &Speeds) -> Result<Estimate> {
        let _ = (film, speeds);
        Ok(Estimate::fixed(1.0))
    }
    /// What it will do with `seconds`; `run` follows the same choice.
    fn intent(&self, film: &Film, speeds: &Speeds, seconds: f64) -> Result<Intent> {
        let _ = (film, speeds, seconds);
        Ok(Intent::plain("runs"))
    }
    /// Measures this machine's rates for the stage's units of work, with small work of its
    /// own in `scratch` (a few seconds at most).
    fn calibrate(&self, film: &Film, scratch: &Path) -> Result<Speeds> {
        let _ = (film, scratch);
        Ok(Speeds::default())
    }
}

/// The manifest note in which a stage reports the rates it saw (unit to rate per second), so
/// the calibration follows what runs actually do.
pub const RATES_NOTE: &str = "rates";

/// Hashes of upstream artifacts for a stage's inputs, labelled by path relative to the film.
pub fn hash_inputs(film: &Film, paths: &[PathBuf]) -> Result<BTreeMap<String, String>> {
    paths
        .iter()
        .map(|p| {
            let label = p
                .strip_prefix(&film.dir)
                .unwrap_or(p)
                .to_string_lossy()
                .into_owned();
            Ok((label, fsutil::hash_file(p)?))
        })
        .collect()
}
