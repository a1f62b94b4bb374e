//! The sparse scan spread over the cores. A decoder that leaves out the B-frames works
//! through a chain of pictures, each predicted from the one before, which FFmpeg's frame
//! threads cannot share out: it keeps one core busy. So the source is cut at keyframes into
//! chunks that are scanned side by side, each by its own decoders ([`super::sparse`]), and
//! their frames are measured in order as the chunks come in.

use std::path::Path;
use std::sync::mpsc;

use anyhow::{Context, Result};

use super::detect::DetectorConfig;
use super::measure::{Emitter, Shrinker, Small};
use super::scan::{self, Scan, StreamInfo, MAX_KEPT};
use super::sparse::{self, Chunk};

/// Seconds of source per chunk, about (whole multiples of the cores, so they share evenly).
const CHUNK_SECONDS: f64 = 30.0;
/// Sources shorter than this are one chunk: a chunk's start-up is not worth it.
const MIN_SPLIT_SECONDS: f64 = 4.0;
const MAX_CHUNKS: usize = 4096;

/// Frames of a chunk: times, and pictures where decoded.
type Frames = Vec<(f64, Option<Small>)>;

/// Scans `path` sparsely in `chunks` pieces (`None`: as many as suit its length and the
/// cores); `None` when the source needs the exact scan.
pub(super) fn scan(
    path: &Path,
    config: &DetectorConfig,
    chunks: Option<usize>,
    on_frame: &mut dyn FnMut(usize) -> Result<()>,
) -> Result<Option<Scan>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (pieces, info) = plan(path, chunks, cores)?;
    let shrinker = Shrinker::new(info.width, info.height);
    let mut emitter = Emitter::new(info.expected, MAX_KEPT, &shrinker);
    let mut last_time = f64::NEG_INFINITY;
    let mut feed = |time: f64, picture: Option<Small>| -> Result<()> {
        // Chunks meet at keyframes; frames out of order there mean the cut was wrong.
        if time <= last_time {
            return Err(sparse::unsuitable("frames out of order where chunks meet"));
        }
        last_time = time;
        match picture {
            Some(p) => emitter.measured(time, p),
            None => emitter.skipped(time),
        }
        on_frame(emitter.len())
    };
    let run = if pieces.len() <= 1 {
        sparse::scan_chunk(path, config, (Chunk::default(), 0), &mut feed)
    } else {
        side_by_side(path, config, &pieces, cores, &mut feed)
    };
    match run {
        Err(e) if sparse::is_unsuitable(&e) => return Ok(None),
        Err(e) => return Err(e),
        Ok(()) => {}
    }
    let (frames, pictures) = emitter.finish(path)?;
    Ok(Some(Scan {
        frames,
        pictures,
        frame_rate: info.frame_rate,
        width: info.width,
        height: info.height,
    }))
}

/// Cuts the source at keyframes near evenly spaced times: seeking to each time lands on
/// the keyframe at or before it. Keyframes found twice (a long group) are used once.
fn plan(path: &Path, chunks: Option<usize>, cores: usize) -> Result<(Vec<Chunk>, StreamInfo)> {
    let (mut input, info, _) = scan::open(path, 1)?;
    let seconds = info.expected as f64 / info.frame_rate;
    let n = match chunks {
        Some(n) => n.clamp(1, MAX_CHUNKS),
        None if cores <= 1 || seconds < MIN_SPLIT_SECONDS => 1,
        None => ((seconds / CHUNK_SECONDS).round().max(1.0) as usize)
            .div_ceil(cores)
            .saturating_mul(cores)
            .min(MAX_CHUNKS),
    };
    let first = info.start as f64 * info.time_base;
    let mut keys: Vec<(i64, i64)> = Vec::new();
    for j in 1..n {
        let at = first + seconds * j as f64 / n as f64;
        let target = (at * crate::media::ffmpeg::ffi::AV_TIME_BASE as f64) as i64;
        if input.seek(target, ..target).is_err() {
            // A source that cannot seek is scanned in one piece.
            return Ok((vec![Chunk::default()], info));
        }
        let key = input
            .packets()
            .filter(|(s, _)| s.index() == info.index)
            .take(sparse::MAX_SEEK_SLACK)
            .find(|(_, p)| p.is_key())
            .and_then(|(_, p)| p.pts());
        if let Some(k) = key {
            if k > keys.last().map_or(info.start, |&(_, prev)| prev) {
                keys.push((target, k));
            }
        }
    }
    let mut pieces = vec![Chunk {
        end: keys.first().map(|&(_, k)| k),
        ..Chunk::default()
    }];
    for (j, &(seek, start)) in keys.iter().enumerate() {
        pieces.push(Chunk {
            seek,
            start: Some(start),
            end: keys.get(j + 1).map(|&(_, k)| k),
        });
    }
    Ok((pieces, info))
}

/// Scans the chunks on `cores` threads (chunk `i` on thread `i % cores`) and feeds their
/// frames in order; each thread runs at most one chunk ahead of the feeding.
fn side_by_side(
    path: &Path,
    config: &DetectorConfig,
    chunks: &[Chunk],
    cores: usize,
    feed: &mut dyn FnMut(f64, Option<Small>) -> Result<()>,
) -> Result<()> {
    let threads = cores.clamp(1, chunks.len());
    std::thread::scope(|s| {
        let results: Vec<mpsc::Receiver<Result<Frames>>> = (0..threads)
            .map(|t| {
                let (tx, rx) = mpsc::sync_channel(1);
                std::thread::Builder::new()
                    .name(format!("scan-{t}"))
                    .spawn_scoped(s, move || {
                        for &chunk in chunks.iter().skip(t).step_by(threads) {
                            let mut frames = Frames::new();
                            // One thread per decoder: the chunks keep the cores busy.
                            let done = sparse::scan_chunk(path, config, (chunk, 1), &mut |t, p| {
                                frames.push((t, p));
                                Ok(())
                            })
                            .map(|()| frames);
                            let failed = done.is_err();
                            // The feeding stopped (an error, Ctrl-C): so does this thread.
                            if tx.send(done).is_err() || failed {
                                break;
                            }
                        }
                    })
                    .map(|_| rx)
                    .context("cannot start a scanning thread")
            })
            .collect::<Result<_>>()?;
        for i in 0..chunks.len() {
            let frames = results[i % threads]
                .recv()
                .context("a scanning thread stopped")??;
            for (time, picture) in frames {
                feed(time, picture)?;
            }
        }
        Ok(())
    })
}
