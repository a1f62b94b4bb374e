//! `benjamin speak`: a Fountain screenplay voiced into a folder, as the voice stage does.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::stage::voice_folder;
use crate::progress::{print_json, Progress};

#[derive(Args)]
pub struct SpeakArgs {
    /// The screenplay (.fountain).
    #[arg(long)]
    pub screenplay: PathBuf,
    /// Output folder; a voices.json already there is honoured.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn speak(args: SpeakArgs, json: bool, progress: &Progress) -> Result<()> {
    let path = &args.screenplay;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let script = crate::screenplay::fountain::parse(&text);
    if script.characters.is_empty() {
        bail!("{} has no dialogue to voice", path.display());
    }
    let started = Instant::now();
    let (timings, _) = voice_folder(&script, &args.out, progress)?;
    let seconds = started.elapsed().as_secs_f64();
    let speech: f64 = timings.lines.iter().map(|l| l.end - l.start).sum();
    if json {
        print_json(
            &serde_json::json!({"lines": timings.lines.len(), "speech_seconds": speech, "wall_seconds": seconds, "real_time_factor": seconds / speech.max(1e-9)}),
        );
    } else {
        progress.info(format!(
            "voiced {} lines ({speech:.1} s of speech) in {seconds:.2} s into {}",
            timings.lines.len(),
            args.out.display()
        ));
    }
    Ok(())
}
