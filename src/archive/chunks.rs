//! The sparse scan spread over the cores. A decoder that leaves out the B-frames works
//! through a chain of pictures, each predicted from the one before, which FFmpeg's frame
//! threads cannot share out: it keeps one core busy. So the source is cut at keyframes into
//! chunks that are scanned side by side, each by its own decoders ([`super::sparse`]), and
//! their frames are measured in order as the chunks come in.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{mpsc, Condvar, Mutex, MutexGuard};

use anyhow::{Context, Result};

use super::detect::DetectorConfig;
use super::measure::{Emitter, Shrinker, Small};
use super::scan::{self, Scan, StreamInfo, MAX_KEPT};
use super::sparse::{self, Chunk, ChunkScanner, Verdict};
use crate::media::ffmpeg::{decoder, frame};

/// Seconds of source per chunk, about: short enough that the cores finish together, long
/// enough that seeking to each chunk costs little.
const CHUNK_SECONDS: f64 = 8.0;
/// Chunks per thread that the scanning may run ahead of the feeding.
const AHEAD: usize = 2;
/// Sources shorter than this are one chunk: a chunk's start-up is not worth it.
const MIN_SPLIT_SECONDS: f64 = 4.0;
const MAX_CHUNKS: usize = 4096;

/// Frames of a chunk: times, and pictures where decoded.
type Frames = Vec<(f64, Option<Small>)>;

/// Measures every frame of `path` at [`scan::ANALYSIS_WIDTH`]. Frames are decoded where `config`'s
/// detector could find a boundary; elsewhere they may be filled in from their neighbours.
/// `on_frame` is called with the number of frames done (for progress) and may stop the scan
/// by returning an error (Ctrl-C).
pub fn scan(
    path: &Path,
    config: &DetectorConfig,
    on_frame: impl FnMut(usize) -> Result<()>,
) -> Result<Scan> {
    scan_in_chunks(path, config, None, on_frame)
}

/// [`scan()`], with the source cut into `chunks` pieces scanned side by side (`None`: as many
/// as suit its length and the machine's cores).
pub fn scan_in_chunks(
    path: &Path,
    config: &DetectorConfig,
    chunks: Option<usize>,
    mut on_frame: impl FnMut(usize) -> Result<()>,
) -> Result<Scan> {
    match scan_chunked(path, config, chunks, &mut on_frame)? {
        Some(scan) => Ok(scan),
        None => scan_exact(path, on_frame),
    }
}

/// Decodes and measures every frame of `path`.
pub fn scan_exact(path: &Path, mut on_frame: impl FnMut(usize) -> Result<()>) -> Result<Scan> {
    let (mut input, info, mut decoder) = scan::open(path, 0)?;
    let mut shrinker = Shrinker::new(info.width, info.height);
    let mut emitter = Emitter::new(info.expected, MAX_KEPT, &shrinker);
    let mut decoded = frame::Video::empty();
    let mut receive = |decoder: &mut decoder::Video, emitter: &mut Emitter| -> Result<()> {
        while decoder.receive_frame(&mut decoded).is_ok() {
            let ts = decoded.timestamp().unwrap_or(info.start);
            let time = (ts - info.start) as f64 * info.time_base;
            emitter.measured(time, shrinker.shrink(&decoded, path)?);
            on_frame(emitter.len())?;
        }
        Ok(())
    };
    for (s, packet) in input.packets() {
        if s.index() != info.index {
            continue;
        }
        // A damaged packet is skipped; the decoder recovers at the next keyframe.
        let _ = decoder.send_packet(&packet);
        receive(&mut decoder, &mut emitter)?;
    }
    let _ = decoder.send_eof();
    receive(&mut decoder, &mut emitter)?;
    let (frames, pictures) = emitter.finish(path)?;
    Ok(Scan {
        frames,
        pictures,
        frame_rate: info.frame_rate,
        width: info.width,
        height: info.height,
    })
}

/// Scans `path` sparsely in `chunks` pieces (`None`: as many as suit its length and the
/// cores); `None` when the source needs the exact scan.
fn scan_chunked(
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
        let verdict = Verdict::default();
        ChunkScanner::open(path, 0, &verdict)
            .and_then(|mut scanner| scanner.scan(config, Chunk::default(), &mut feed))
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
        None => ((seconds / CHUNK_SECONDS).ceil() as usize).clamp(cores, MAX_CHUNKS),
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

/// Scans the chunks on `cores` threads and feeds their frames in order. Each thread takes
/// the next chunk when done with one (chunks differ in cost: an even split into one chunk
/// per core left a core idle for a fifth of the scan), but stays within [`AHEAD`] chunks per
/// thread of the feeding, which bounds the frames held.
fn side_by_side(
    path: &Path,
    config: &DetectorConfig,
    chunks: &[Chunk],
    cores: usize,
    feed: &mut dyn FnMut(f64, Option<Small>) -> Result<()>,
) -> Result<()> {
    let threads = cores.clamp(1, chunks.len());
    let queue = Queue::new(chunks.len(), AHEAD * threads);
    let verdict = Verdict::default();
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::channel::<(usize, Result<Frames>)>();
        for t in 0..threads {
            let (tx, queue, verdict) = (tx.clone(), &queue, &verdict);
            std::thread::Builder::new()
                .name(format!("scan-{t}"))
                .spawn_scoped(s, move || {
                    let mut scanner = None;
                    while let Some(i) = queue.take() {
                        let done = scan_one(path, config, chunks[i], &mut scanner, verdict);
                        let failed = done.is_err();
                        // The feeding stopped (an error, Ctrl-C): so does this thread.
                        if tx.send((i, done)).is_err() || failed {
                            break;
                        }
                    }
                })
                .context("cannot start a scanning thread")?;
        }
        drop(tx);
        // However the feeding ends, threads waiting for their turn must wake and stop.
        let _stop = StopOnDrop(&queue);
        let mut done: BTreeMap<usize, Result<Frames>> = BTreeMap::new();
        for i in 0..chunks.len() {
            let frames = loop {
                if let Some(frames) = done.remove(&i) {
                    break frames?;
                }
                let (j, frames) = rx.recv().context("a scanning thread stopped")?;
                done.insert(j, frames);
            };
            for (time, picture) in frames {
                feed(time, picture)?;
            }
            queue.fed(i + 1);
        }
        Ok(())
    })
}

/// Scans one chunk with this thread's scanner, opening it for the first.
fn scan_one<'a>(
    path: &'a Path,
    config: &DetectorConfig,
    chunk: Chunk,
    scanner: &mut Option<ChunkScanner<'a>>,
    verdict: &'a Verdict,
) -> Result<Frames> {
    let scanner = match scanner {
        Some(s) => s,
        // One thread per decoder: the chunks keep the cores busy.
        None => scanner.insert(ChunkScanner::open(path, 1, verdict)?),
    };
    let mut frames = Frames::new();
    scanner.scan(config, chunk, &mut |t, p| {
        frames.push((t, p));
        Ok(())
    })?;
    Ok(frames)
}

/// Hands out chunk numbers in order, no further than `ahead` past the last chunk fed.
struct Queue {
    state: Mutex<QueueState>,
    turn: Condvar,
    len: usize,
    ahead: usize,
}

#[derive(Default)]
struct QueueState {
    next: usize,
    fed: usize,
    stopped: bool,
}

impl Queue {
    fn new(len: usize, ahead: usize) -> Queue {
        Queue {
            state: Mutex::default(),
            turn: Condvar::new(),
            len,
            ahead: ahead.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next chunk to scan, waiting while the feeding is too far behind; `None` when all
    /// are taken or the feeding stopped.
    fn take(&self) -> Option<usize> {
        let mut state = self.lock();
        loop {
            if state.stopped || state.next >= self.len {
                return None;
            }
            if state.next < state.fed + self.ahead {
                state.next += 1;
                return Some(state.next - 1);
            }
            state = self.turn.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn fed(&self, chunks: usize) {
        self.lock().fed = chunks;
        self.turn.notify_all();
    }
}

struct StopOnDrop<'a>(&'a Queue);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.lock().stopped = true;
        self.0.turn.notify_all();
    }
}
