//! `benjamin cut`: a film cut from a hand-written edit list, without the other stages.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::{check_output, cut, CutOptions};
use crate::edl::EditList;
use crate::progress::{print_json, Progress};

#[derive(Args)]
pub struct CutArgs {
    /// The edit list (see examples/demo/edl.json).
    #[arg(long)]
    pub edl: PathBuf,
    /// The MP4 to write; the .srt and .otio go beside it.
    #[arg(long)]
    pub out: PathBuf,
    /// x264 preset: ultrafast, veryfast, medium, slow, ... (slower is smaller).
    #[arg(long, default_value = "veryfast")]
    pub preset: String,
}

pub fn run(args: CutArgs, json: bool, progress: &Progress) -> Result<()> {
    check_output(&args.out, [args.edl.as_path()])?;
    let list = EditList::load(&args.edl)?;
    let opts = CutOptions {
        preset: args.preset,
        ..Default::default()
    };
    let result = cut(&list, &args.out, &opts, progress)?;
    if json {
        print_json(&result);
    } else if !progress.is_quiet() {
        crate::errln!(
            "wrote {} ({:.1} s, {} frames, {:.1} LUFS, signed) with {}, {} and {}",
            result.film.display(),
            result.seconds,
            result.frames,
            result.mix.loudness_lufs,
            result.subtitles.display(),
            result.timeline.display(),
            result.provenance.display()
        );
    }
    Ok(())
}
