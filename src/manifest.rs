//! Stage manifests: what went into a stage, what came out, and when. A stage is fresh when
//! the inputs it would use now equal the recorded ones and its outputs are still the bytes it wrote.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::fsutil;
use crate::progress::name_a_few;

/// Version of the manifest layout; a newer one is refused rather than misread.
pub const MANIFEST_FORMAT: u32 = 1;

/// Everything that decides a stage's result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageInputs {
    /// benjamin's version: a new version reruns everything.
    pub benjamin: String,
    pub seed: u64,
    /// The stage's parameters (settings it reads from film.toml and the command line).
    pub params: serde_json::Value,
    /// Input files by label, with their content hash (or size+mtime fingerprint for big external media).
    pub files: BTreeMap<String, String>,
    /// Models the stage uses, with their hashes.
    pub models: BTreeMap<String, String>,
    /// Upstream stages with the run id of the run whose artifacts this stage consumed.
    pub upstream: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputRecord {
    /// Path relative to the film folder.
    pub path: String,
    pub hash: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageManifest {
    pub format: u32,
    pub stage: String,
    /// Changes at every run, so downstream stages know the upstream was redone.
    pub run_id: String,
    pub inputs: StageInputs,
    pub outputs: Vec<OutputRecord>,
    pub started: String,
    pub finished: String,
    pub duration_s: f64,
    /// What the budget planner gave the run (`duration_s` is what it used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned: Option<Planned>,
    /// Stage-specific facts worth keeping (model size, steps, losses, ...).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub notes: serde_json::Value,
}

/// What a stage will do with the seconds the plan gives it: the plan prints the summary,
/// the stage follows the details (its own typed choices, as JSON) and its manifest keeps them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    pub summary: String,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
}

impl Intent {
    pub fn plain(summary: impl Into<String>) -> Self {
        Intent {
            summary: summary.into(),
            details: serde_json::Value::Null,
        }
    }
}

/// A run's share of the budget and what it was to do with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Planned {
    pub planned_s: f64,
    pub intent: Intent,
}

/// Why a stage has to run (or not).
#[derive(Debug, Clone, PartialEq)]
pub enum Freshness {
    Fresh,
    NeverRun,
    Stale(String),
    /// Only outputs the user may edit by hand changed: the stage takes the edit.
    Edited(Vec<String>),
}

impl StageManifest {
    pub fn path(stage_dir: &Path) -> PathBuf {
        stage_dir.join("manifest.json")
    }

    /// Reads the manifest of a stage; `Ok(None)` when the stage never finished a run.
    pub fn load(stage_dir: &Path) -> Result<Option<StageManifest>> {
        let path = Self::path(stage_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let raw: serde_json::Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            // A damaged manifest only means the stage must run again.
            Err(_) => return Ok(None),
        };
        let format = raw.get("format").and_then(|v| v.as_u64()).unwrap_or(0);
        if format > MANIFEST_FORMAT as u64 {
            bail!(
                "{} was written by a newer benjamin (manifest format {format}, this one reads up to {MANIFEST_FORMAT}); upgrade benjamin to work on this film",
                path.display()
            );
        }
        Ok(serde_json::from_value(raw).ok())
    }

    pub fn save(&self, stage_dir: &Path) -> Result<()> {
        let text = serde_json::to_vec_pretty(self).context("cannot encode manifest")?;
        fsutil::write_atomic(&Self::path(stage_dir), &text)
    }

    /// Records `paths` (absolute, inside `film_dir`) with their hashes.
    pub fn record_outputs(film_dir: &Path, paths: &[PathBuf]) -> Result<Vec<OutputRecord>> {
        paths
            .iter()
            .map(|p| {
                let rel = p
                    .strip_prefix(film_dir)
                    .unwrap_or(p)
                    .to_string_lossy()
                    .into_owned();
                let bytes = std::fs::metadata(p)
                    .with_context(|| format!("stage output {} is missing", p.display()))?
                    .len();
                Ok(OutputRecord {
                    path: rel,
                    hash: fsutil::hash_file(p)?,
                    bytes,
                })
            })
            .collect()
    }

    /// Compares the recorded run with the inputs the stage would use now, and checks that every
    /// output is still what the stage wrote.
    pub fn freshness(
        manifest: Option<&StageManifest>,
        current: &StageInputs,
        film_dir: &Path,
        editable: &[&str],
    ) -> Freshness {
        let Some(m) = manifest else {
            return Freshness::NeverRun;
        };
        if let Some(why) = explain_difference(&m.inputs, current) {
            return Freshness::Stale(why);
        }
        let mut edited = Vec::new();
        let mut changed = None;
        for out in &m.outputs {
            let path = film_dir.join(&out.path);
            match fsutil::hash_file(&path) {
                Ok(h) if h == out.hash => {}
                Ok(_) if editable.contains(&out.path.as_str()) => edited.push(out.path.clone()),
                Ok(_) => {
                    changed.get_or_insert_with(|| {
                        format!(
                            "{} was changed since the stage wrote it (hash mismatch)",
                            out.path
                        )
                    });
                }
                Err(_) => {
                    changed.get_or_insert_with(|| format!("{} is missing", out.path));
                }
            }
        }
        // A hand edit wins over the outputs derived from it: taking the edit rebuilds those
        // (an earlier try may have failed or been killed halfway), and regenerating would
        // throw the edit away.
        match (edited.is_empty(), changed) {
            (false, _) => Freshness::Edited(edited),
            (true, Some(why)) => Freshness::Stale(why),
            (true, None) => Freshness::Fresh,
        }
    }
}

/// A short human reason why `now` differs from `then`, or `None` when they are equal.
fn explain_difference(then: &StageInputs, now: &StageInputs) -> Option<String> {
    if then == now {
        return None;
    }
    let mut why = Vec::new();
    if then.benjamin != now.benjamin {
        why.push(format!(
            "benjamin changed ({} -> {})",
            then.benjamin, now.benjamin
        ));
    }
    if then.seed != now.seed {
        why.push(format!("seed changed ({} -> {})", then.seed, now.seed));
    }
    if then.params != now.params {
        why.push(format!(
            "settings changed ({})",
            changed_keys(&then.params, &now.params)
        ));
    }
    for (kind, a, b) in [
        ("input", &then.files, &now.files),
        ("model", &then.models, &now.models),
    ] {
        let changed = changed_entries(a, b);
        if !changed.is_empty() {
            why.push(format!("{kind} changed: {}", name_a_few(&changed)));
        }
    }
    let reruns = changed_entries(&then.upstream, &now.upstream);
    if !reruns.is_empty() {
        why.push(format!("upstream stage rerun: {}", name_a_few(&reruns)));
    }
    Some(if why.is_empty() {
        "inputs changed".to_string()
    } else {
        why.join("; ")
    })
}

fn changed_entries(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

fn changed_keys(a: &serde_json::Value, b: &serde_json::Value) -> String {
    match (a.as_object(), b.as_object()) {
        (Some(a), Some(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            let keys = keys
                .into_iter()
                .filter(|k| a.get(*k) != b.get(*k))
                .cloned()
                .collect::<Vec<_>>();
            name_a_few(&keys)
        }
        _ => "parameters".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(seed: u64) -> StageInputs {
        StageInputs {
            benjamin: "0.1.0".into(),
            seed,
            params: serde_json::json!({"title": "Rain", "fps": 24}),
            ..Default::default()
        }
    }

    fn manifest_with_output(dir: &Path, seed: u64) -> StageManifest {
        let out = dir.join("out.txt");
        std::fs::write(&out, b"artifact").unwrap();
        StageManifest {
            format: MANIFEST_FORMAT,
            stage: "cut".into(),
            run_id: "r1".into(),
            inputs: inputs(seed),
            outputs: StageManifest::record_outputs(dir, &[out]).unwrap(),
            started: String::new(),
            finished: String::new(),
            duration_s: 1.0,
            planned: None,
            notes: serde_json::Value::Null,
        }
    }

    #[test]
    fn same_inputs_and_untouched_outputs_are_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let m = manifest_with_output(dir.path(), 1);
        assert_eq!(
            StageManifest::freshness(Some(&m), &inputs(1), dir.path(), &[]),
            Freshness::Fresh
        );
        assert_eq!(
            StageManifest::freshness(None, &inputs(1), dir.path(), &[]),
            Freshness::NeverRun
        );
    }

    #[test]
    fn changed_seed_and_params_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let m = manifest_with_output(dir.path(), 1);
        let mut now = inputs(2);
        now.params["title"] = "Snow".into();
        let Freshness::Stale(why) = StageManifest::freshness(Some(&m), &now, dir.path(), &[])
        else {
            panic!("should be stale")
        };
        assert!(why.contains("seed changed (1 -> 2)"), "{why}");
        assert!(why.contains("settings changed (title)"), "{why}");
    }

    #[test]
    fn edited_or_deleted_output_is_caught_by_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let m = manifest_with_output(dir.path(), 1);
        std::fs::write(dir.path().join("out.txt"), b"edited by hand").unwrap();
        let Freshness::Stale(why) = StageManifest::freshness(Some(&m), &inputs(1), dir.path(), &[])
        else {
            panic!()
        };
        assert!(
            why.contains("out.txt") && why.contains("hash mismatch"),
            "{why}"
        );
        std::fs::remove_file(dir.path().join("out.txt")).unwrap();
        let Freshness::Stale(why) = StageManifest::freshness(Some(&m), &inputs(1), dir.path(), &[])
        else {
            panic!()
        };
        assert!(why.contains("missing"), "{why}");
    }

    #[test]
    fn an_edited_editable_output_is_taken_not_regenerated() {
        let dir = tempfile::tempdir().unwrap();
        let m = manifest_with_output(dir.path(), 1);
        std::fs::write(dir.path().join("out.txt"), b"edited by hand").unwrap();
        let f = StageManifest::freshness(Some(&m), &inputs(1), dir.path(), &["out.txt"]);
        assert_eq!(f, Freshness::Edited(vec!["out.txt".into()]));
    }

    #[test]
    fn manifest_from_a_newer_version_is_refused_and_a_damaged_one_means_rerun() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = manifest_with_output(dir.path(), 1);
        m.format = MANIFEST_FORMAT + 1;
        m.save(dir.path()).unwrap();
        let err = format!("{:#}", StageManifest::load(dir.path()).unwrap_err());
        assert!(err.contains("newer benjamin"), "{err}");
        std::fs::write(StageManifest::path(dir.path()), b"{ truncated").unwrap();
        assert!(StageManifest::load(dir.path()).unwrap().is_none());
    }
}
