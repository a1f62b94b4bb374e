//! This machine's speeds, measured once per machine and benjamin version and kept in the
//! user's data folder (`<data>/calibration/<machine>-<version>.json`).
//!
//! Each stage measures its own units of work on small work of its own
//! ([`Stage::calibrate`]). The record is measured again when it is older than
//! [`STALE_AFTER_DAYS`], and every stage run reports the rates it saw: one that differs from
//! the record by more than [`MARGIN`] replaces it, so the next plan uses what runs do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::film::Film;
use crate::fsutil;
use crate::progress::Progress;
use crate::stage::{Speeds, Stage};

/// 2: the cut's `faster` preset, which is chosen only at a measured rate.
const FORMAT: u32 = 2;

/// A record older than this is measured again.
pub const STALE_AFTER_DAYS: u64 = 30;

/// An observed rate that differs from the record by more than this fraction replaces it.
pub const MARGIN: f64 = 0.2;

/// One measuring or keeping of the record at a time in this process: a batch makes films side
/// by side, and two probes at once would measure each other.
static RECORD: Mutex<()> = Mutex::new(());

/// The measured speeds of this machine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Calibration {
    pub format: u32,
    pub machine: String,
    pub benjamin: String,
    /// When the probes ran (RFC 3339).
    pub measured: String,
    pub speeds: Speeds,
    /// How each rate was found: "probe", or "observed" with the date of the run.
    #[serde(default)]
    pub sources: BTreeMap<String, String>,
}

/// A description of this machine: its processor, its cores, and the device benjamin uses.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let device = if crate::nn::device().is_cuda() {
        "cuda"
    } else {
        "cpu"
    };
    format!("{cpu}, {cores} cores, {device}")
}

/// Where this machine's record lives.
pub fn path() -> PathBuf {
    let id = &fsutil::hash_bytes(machine().as_bytes())[..12];
    crate::film::data_dir()
        .join("calibration")
        .join(format!("{id}-{}.json", env!("CARGO_PKG_VERSION")))
}

impl Calibration {
    /// The record at `path`, unless it is missing, damaged or stale.
    pub fn load(path: &Path) -> Option<Calibration> {
        let c: Calibration = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
        let measured = humantime::parse_rfc3339(&c.measured).ok()?;
        let age = SystemTime::now()
            .duration_since(measured)
            .unwrap_or_default();
        let fresh = age < Duration::from_secs(STALE_AFTER_DAYS * 86_400);
        (c.format == FORMAT && fresh && c.benjamin == env!("CARGO_PKG_VERSION")).then_some(c)
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        fsutil::write_atomic(path, &serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("cannot keep this machine's speeds in {}", path.display()))
    }

    /// A record of given speeds, measured by nothing (for stand-in pipelines).
    pub fn fixed(speeds: Speeds) -> Calibration {
        Calibration {
            format: FORMAT,
            machine: "given speeds".into(),
            benjamin: env!("CARGO_PKG_VERSION").to_string(),
            measured: now(),
            speeds,
            sources: BTreeMap::new(),
        }
    }

    /// Runs every stage's probes (a few seconds each).
    pub fn measure(film: &Film, stages: &[&dyn Stage], progress: &Progress) -> Result<Calibration> {
        let scratch = tempfile::tempdir().context("cannot make a scratch folder to measure in")?;
        let started = Instant::now();
        let mut speeds = Speeds::default();
        let mut sources = BTreeMap::new();
        for stage in stages {
            crate::progress::check_interrupted()?;
            let bar = progress.spinner("calibrating");
            bar.set_message(format!("measuring this machine: {}", stage.id()));
            let dir = scratch.path().join(stage.id().name());
            std::fs::create_dir_all(&dir)?;
            let measured = stage.calibrate(film, &dir);
            bar.finish_and_clear();
            // A probe that fails leaves the stage on its fallback rates (its runs correct
            // them); the stage itself will say what is wrong when it runs.
            let measured = match measured {
                Ok(m) => m,
                Err(e) => {
                    progress.info(format!(
                        "warning: cannot measure the {} stage's speed ({e:#}); planning it with the reference machine's",
                        stage.id()
                    ));
                    continue;
                }
            };
            for (unit, rate) in measured.0 {
                sources.insert(unit.clone(), "probe".to_string());
                speeds.set(unit, rate);
            }
        }
        progress.info(format!(
            "measured this machine's speeds in {:.1} s ({} rates)",
            started.elapsed().as_secs_f64(),
            speeds.0.len()
        ));
        Ok(Calibration {
            format: FORMAT,
            machine: machine(),
            benjamin: env!("CARGO_PKG_VERSION").to_string(),
            measured: now(),
            speeds,
            sources,
        })
    }

    /// This machine's record, measured first when there is none or it is stale.
    pub fn current(film: &Film, stages: &[&dyn Stage], progress: &Progress) -> Result<Calibration> {
        let _one = RECORD.lock().unwrap_or_else(|e| e.into_inner());
        let path = path();
        if let Some(c) = Calibration::load(&path) {
            return Ok(c);
        }
        progress.info(format!(
            "measuring this machine's speeds once (kept in {})",
            path.display()
        ));
        let c = Calibration::measure(film, stages, progress)?;
        c.save(&path)?;
        Ok(c)
    }

    /// Takes in rates a run saw and keeps those that changed in this machine's record at
    /// `path`, over what other makes kept there since this one read it.
    pub fn keep(&mut self, seen: &Speeds, path: &Path) -> Result<Vec<String>> {
        let _one = RECORD.lock().unwrap_or_else(|e| e.into_inner());
        let changed = self.observe(seen);
        if !changed.is_empty() {
            let mut record = Calibration::load(path).unwrap_or_else(|| self.clone());
            for unit in &changed {
                record.speeds.set(unit.clone(), self.speeds.0[unit]);
                record
                    .sources
                    .insert(unit.clone(), self.sources[unit].clone());
            }
            record.save(path)?;
        }
        Ok(changed)
    }

    /// Takes in rates a run saw; returns the units whose record changed (by more than
    /// [`MARGIN`], or not measured before).
    pub fn observe(&mut self, seen: &Speeds) -> Vec<String> {
        let mut changed = Vec::new();
        for (unit, &rate) in &seen.0 {
            if !(rate.is_finite() && rate > 0.0) {
                continue;
            }
            let off = match self.speeds.0.get(unit) {
                Some(&known) => (rate / known - 1.0).abs() > MARGIN,
                None => true,
            };
            if off {
                self.speeds.set(unit.clone(), rate);
                self.sources
                    .insert(unit.clone(), format!("observed {}", now()));
                changed.push(unit.clone());
            }
        }
        changed
    }
}

fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(rates: &[(&str, f64)]) -> Calibration {
        let mut speeds = Speeds::default();
        for (u, r) in rates {
            speeds.set(*u, *r);
        }
        Calibration {
            format: FORMAT,
            machine: machine(),
            benjamin: env!("CARGO_PKG_VERSION").into(),
            measured: now(),
            speeds,
            sources: BTreeMap::new(),
        }
    }

    #[test]
    fn a_rate_off_by_more_than_the_margin_replaces_the_record() {
        let mut c = record(&[("cut.frames.veryfast", 40.0), ("voice.lines", 10.0)]);
        let mut seen = Speeds::default();
        seen.set("cut.frames.veryfast", 44.0); // 10% off: kept
        seen.set("voice.lines", 5.0); // 50% off: replaced
        seen.set("music.seconds", 30.0); // new
        let changed = c.observe(&seen);
        assert_eq!(changed, vec!["music.seconds", "voice.lines"]);
        assert_eq!(c.speeds.rate("cut.frames.veryfast", 0.0), 40.0);
        assert_eq!(c.speeds.rate("voice.lines", 0.0), 5.0);
        assert!(c.sources["voice.lines"].starts_with("observed"));
    }

    #[test]
    fn a_stale_damaged_or_other_version_record_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.json");
        let mut c = record(&[("voice.lines", 10.0)]);
        c.save(&p).unwrap();
        assert!(Calibration::load(&p).is_some());
        c.measured = humantime::format_rfc3339_seconds(
            SystemTime::now() - Duration::from_secs((STALE_AFTER_DAYS + 1) * 86_400),
        )
        .to_string();
        c.save(&p).unwrap();
        assert!(Calibration::load(&p).is_none(), "stale");
        let mut c = record(&[]);
        c.benjamin = "0.0.1".into();
        c.save(&p).unwrap();
        assert!(Calibration::load(&p).is_none(), "another version");
        std::fs::write(&p, "{").unwrap();
        assert!(Calibration::load(&p).is_none(), "damaged");
    }
}
