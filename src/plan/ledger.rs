//! The time a make has spent on a film, kept across interruptions: a make that was killed
//! (or failed) and is run again with the same budget gets what is left of it, not a new one.
//!
//! A running make keeps `spent.json` in the film folder up to date every few seconds (a
//! kill loses at most that much), and removes it when it finishes: the next make after a
//! finished one starts a new budget. A make with other `--hours` starts a new budget too.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::fsutil;

pub const LEDGER_FILE: &str = "spent.json";

/// How often a running make writes down its time.
const HEARTBEAT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    /// The budget the time was spent against.
    hours: f64,
    /// Seconds spent by the makes before this one (all unfinished).
    spent_s: f64,
    /// When the last make wrote this, seconds since 1970 (for people reading the file).
    written_unix: f64,
}

/// The seconds unfinished makes of this budget spent on the film (0 when the last make
/// finished, none ran, or it ran with another budget).
pub fn carried_s(film_dir: &Path, hours: f64) -> f64 {
    let Ok(bytes) = std::fs::read(film_dir.join(LEDGER_FILE)) else {
        return 0.0;
    };
    match serde_json::from_slice::<Entry>(&bytes) {
        Ok(e) if e.hours == hours && e.spent_s.is_finite() => e.spent_s.max(0.0),
        _ => 0.0,
    }
}

/// A make's running account: written every [`HEARTBEAT`], and once more when dropped (a
/// failed or interrupted make); [`Running::finish`] removes it.
pub struct Running {
    path: PathBuf,
    started: Instant,
    carried_s: f64,
    hours: f64,
    stop: Arc<AtomicBool>,
    heartbeat: Option<JoinHandle<()>>,
}

impl Running {
    /// Starts the account of a make that began at `started`, after `carried_s` spent by
    /// unfinished makes before it.
    pub fn start(film_dir: &Path, hours: f64, started: Instant, carried_s: f64) -> Self {
        let path = film_dir.join(LEDGER_FILE);
        let stop = Arc::new(AtomicBool::new(false));
        let heartbeat = {
            let (path, stop) = (path.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    // Best effort: a make that cannot write its account still makes the film.
                    let _ = write(&path, hours, carried_s + started.elapsed().as_secs_f64());
                    std::thread::park_timeout(HEARTBEAT);
                }
            })
        };
        Running {
            path,
            started,
            carried_s,
            hours,
            stop,
            heartbeat: Some(heartbeat),
        }
    }

    /// Seconds spent on this budget so far, this make's included.
    pub fn spent_s(&self) -> f64 {
        self.carried_s + self.started.elapsed().as_secs_f64()
    }

    /// The make finished: the next one starts a new budget.
    pub fn finish(mut self) -> Result<()> {
        self.halt();
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(anyhow::Error::new(e).context(format!("cannot remove {}", self.path.display())))
            }
            _ => Ok(()),
        }
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.heartbeat.take() {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.heartbeat.is_some() {
            self.halt();
            let _ = write(&self.path, self.hours, self.spent_s());
        }
    }
}

fn write(path: &Path, hours: f64, spent_s: f64) -> Result<()> {
    let written_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let entry = Entry {
        hours,
        spent_s,
        written_unix,
    };
    fsutil::write_atomic(path, &serde_json::to_vec_pretty(&entry)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unfinished_make_leaves_its_time_to_the_next_of_the_same_budget() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(carried_s(dir.path(), 0.5), 0.0);
        let started = Instant::now() - Duration::from_secs(40);
        drop(Running::start(dir.path(), 0.5, started, 100.0));
        let carried = carried_s(dir.path(), 0.5);
        assert!((140.0..150.0).contains(&carried), "{carried}");
        // Another budget is a new one.
        assert_eq!(carried_s(dir.path(), 1.0), 0.0);
        // A finished make leaves nothing.
        Running::start(dir.path(), 0.5, Instant::now(), carried)
            .finish()
            .unwrap();
        assert_eq!(carried_s(dir.path(), 0.5), 0.0);
        assert!(!dir.path().join(LEDGER_FILE).exists());
    }
}
