//! The contract between the pipeline and its stages, on the ground floor: what a stage is
//! ([`Stage`]), what it sees while it runs ([`StageContext`]) and gives back
//! ([`StageOutcome`]), how it says it cannot run yet ([`Blocked`]), and how it hashes what it
//! reads. It imports no stage; the registry of stages lives in [`crate::pipeline`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;

use crate::film::Film;
use crate::fsutil;
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

    /// Share of the time budget; a simple fixed split until the budget planner exists.
    pub(crate) fn budget_weight(self) -> f64 {
        match self {
            StageId::Screenplay => 0.2,
            StageId::Voice => 0.05,
            StageId::Shots => 0.15,
            StageId::Faces => 0.4,
            StageId::Music => 0.1,
            StageId::Cut => 0.1,
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
    pub progress: &'a Progress,
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
}

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
