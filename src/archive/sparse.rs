//! The sparse scan. Most frames of a compressed video are B-frames that no other picture is
//! predicted from, and they are most of the decoding time. The main decoder leaves them out
//! and measures the rest; wherever two neighbouring decoded pictures differ enough to hide a
//! boundary, a second decoder goes back over that group of pictures (kept in memory from its
//! keyframe) and decodes every frame there and around it, so cuts and fade edges land on
//! their exact frames. Frames still missing are filled in from their neighbours.
//!
//! Frames are numbered by their timestamps (every packet is one frame), so a source whose
//! packets lack timestamps, repeat them, or reorder them across keyframes is left to the
//! exact scan, as is one whose keyframes are too far apart to hold a group in memory.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};

use anyhow::{Context, Result};

use super::detect::DetectorConfig;
use super::measure::{Shrinker, Small};
use super::scan::{self, StreamInfo};
use crate::media::ffmpeg::{decoder, ffi::AVDiscard, format, frame, Packet};

/// Packets from one keyframe to the next beyond this are not held: the exact scan serves.
const MAX_GROUP_BYTES: usize = 256 << 20;

/// Packets of the first group decoded in full to check the main decoder's pictures.
const VERIFY_PACKETS: usize = 48;

/// Why the sparse scan cannot serve a source.
#[derive(Debug)]
struct Unsuitable(&'static str);

impl std::fmt::Display for Unsuitable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Unsuitable {}

/// The packets from one keyframe up to the next, in decode order.
#[derive(Default)]
struct Group {
    packets: Vec<Packet>,
    pts: Vec<i64>,
    bytes: usize,
}

fn set_skip(decoder: &mut decoder::Video, skip: AVDiscard) {
    // SAFETY: a plain field of an open context; FFmpeg reads it for each packet sent (frame
    // threads copy it from the user's context with every packet).
    unsafe {
        (*decoder.as_mut_ptr()).skip_frame = skip;
    }
}

/// What decoding the first group in full showed about a source, shared by the threads
/// that scan its chunks so that only the first to get there pays for the check.
#[derive(Default)]
pub(super) struct Verdict(AtomicU8);

const UNCHECKED: u8 = 0;
/// Nothing is predicted from B-frames: the main decoder leaves them all out.
const B_UNREFERENCED: u8 = 1;
/// Some encoders predict P-frames from B-frames: leave out only what nothing refers to.
const B_REFERENCED: u8 = 2;

impl Verdict {
    fn get(&self) -> Option<AVDiscard> {
        match self.0.load(Ordering::Acquire) {
            UNCHECKED => None,
            B_UNREFERENCED => Some(AVDiscard::AVDISCARD_BIDIR),
            _ => Some(AVDiscard::AVDISCARD_NONREF),
        }
    }

    fn set(&self, skip: AVDiscard) {
        let v = if skip == AVDiscard::AVDISCARD_BIDIR {
            B_UNREFERENCED
        } else {
            B_REFERENCED
        };
        // The stricter verdict wins if two threads check at once.
        self.0.fetch_max(v, Ordering::AcqRel);
    }
}

/// A source's reader and decoders, kept by one thread for chunk after chunk: opening a
/// source and starting its refining thread cost more than a short chunk's scan.
pub(super) struct ChunkScanner<'a> {
    path: &'a Path,
    input: format::context::Input,
    info: StreamInfo,
    main: decoder::Video,
    /// Refines in this thread until the main decoder's pictures are checked...
    refiner: Option<Refiner>,
    /// ...then in its own, beside the main decoder.
    worker: Option<Worker>,
    /// All B-frames at first; only pictures no other depends on once a refinement shows the
    /// main decoder's pictures differ (some encoders predict P-frames from B-frames).
    main_skip: AVDiscard,
    shrinker: Shrinker,
    verdict: &'a Verdict,
    /// Whether a chunk has been read (the first chunk needs a fresh reader).
    used: bool,
}

impl<'a> ChunkScanner<'a> {
    /// Opens `path` with decoders of `threads` threads (0: as many as suit the cores).
    pub(super) fn open(path: &'a Path, threads: usize, verdict: &'a Verdict) -> Result<Self> {
        let (input, info, main) = scan::open(path, threads)?;
        let params = input
            .stream(info.index)
            .context("the video stream vanished")?
            .parameters();
        let refiner = crate::media::source::video_decoder(params, path, true, threads)?;
        let mut scanner = ChunkScanner {
            path,
            input,
            main,
            refiner: Some(Refiner {
                decoder: refiner,
                shrinker: Shrinker::new(info.width, info.height),
                decoded: frame::Video::empty(),
            }),
            worker: None,
            main_skip: AVDiscard::AVDISCARD_BIDIR,
            shrinker: Shrinker::new(info.width, info.height),
            info,
            verdict,
            used: false,
        };
        scanner.set_main_skip(AVDiscard::AVDISCARD_BIDIR);
        Ok(scanner)
    }

    fn set_main_skip(&mut self, skip: AVDiscard) {
        self.main_skip = skip;
        set_skip(&mut self.main, skip);
    }

    /// Takes the verdict and moves refining to its own thread.
    fn checked(&mut self, skip: AVDiscard) -> Result<()> {
        self.set_main_skip(skip);
        if let Some(refiner) = self.refiner.take() {
            let size = (self.info.width, self.info.height);
            self.worker = Some(Worker::spawn(self.path, refiner.decoder, size)?);
        }
        Ok(())
    }

    /// Scans one chunk, giving `sink` every frame in display order; fails with an
    /// [`Unsuitable`] error when the source needs the exact scan.
    pub(super) fn scan(
        &mut self,
        config: &DetectorConfig,
        chunk: Chunk,
        sink: &mut dyn FnMut(f64, Option<Small>) -> Result<()>,
    ) -> Result<()> {
        if self.refiner.is_some() {
            if let Some(skip) = self.verdict.get() {
                self.checked(skip)?;
            }
        }
        // A decoder drained by the chunk before takes no packets until flushed.
        self.main.flush();
        let mut started = chunk.start.is_none();
        if !started {
            self.input
                .seek(chunk.seek, ..chunk.seek)
                .map_err(|_| unsuitable("the source cannot seek"))?;
        } else if self.used {
            // Chunks are handed out in order: the first goes to a fresh reader.
            return Err(unsuitable("the first chunk came to a used reader"));
        }
        self.used = true;
        let index = self.info.index;
        let mut s = Sparse {
            scanner: self,
            waiting: VecDeque::new(),
            last_picture: None,
            refine_above: config.refine_above(),
            refine_ratio: config.refine_ratio(),
            recent: VecDeque::new(),
            black_luma: config.black_luma,
            pending: VecDeque::new(),
            pictures: BTreeMap::new(),
            last_out: None,
            last_measured_pts: None,
            decoded: frame::Video::empty(),
            window: config.window.max(1),
            sink,
        };
        let mut slack = 0;
        loop {
            let next = s.scanner.input.packets().next();
            let Some((stream, packet)) = next.map(|(st, p)| (st.index(), p)) else {
                break;
            };
            if stream != index {
                continue;
            }
            let key = packet.is_key();
            if !started {
                started = key && packet.pts() == chunk.start;
                slack += 1;
                if !started {
                    if slack > MAX_SEEK_SLACK {
                        return Err(unsuitable("a seek did not reach its keyframe"));
                    }
                    continue;
                }
            }
            if key && chunk.end.is_some() && packet.pts() == chunk.end {
                break;
            }
            s.read(packet)?;
        }
        if !started {
            return Err(unsuitable("a seek did not reach its keyframe"));
        }
        s.finish_input()
    }
}

/// The state of one chunk's scan.
struct Sparse<'a, 's> {
    scanner: &'s mut ChunkScanner<'a>,
    /// Groups measured, waiting for their refinement to be emitted in order.
    waiting: VecDeque<Waiting>,
    /// The previous group's last decoded picture.
    last_picture: Option<Small>,
    refine_above: f32,
    /// How far a step must stand out from the steps around it to be looked at closer.
    refine_ratio: f32,
    /// The last two steps of the group before, for the first steps' neighbourhood.
    recent: VecDeque<f32>,
    black_luma: f32,
    /// Groups sent to the main decoder and not measured yet, oldest first.
    pending: VecDeque<Group>,
    /// The main decoder's pictures by timestamp, until their group is measured.
    pictures: BTreeMap<i64, Small>,
    last_out: Option<i64>,
    last_measured_pts: Option<i64>,
    decoded: frame::Video,
    /// Neighbours either side that the adaptive detector compares a frame with.
    window: usize,
    /// Takes every frame in display order: its time, and its picture when decoded.
    sink: &'s mut dyn FnMut(f64, Option<Small>) -> Result<()>,
}

/// Why the sparse scan cannot serve a source, as an error: [`is_unsuitable`] tells it apart.
pub(super) fn is_unsuitable(e: &anyhow::Error) -> bool {
    e.is::<Unsuitable>()
}

/// An error that sends the source to the exact scan.
pub(super) fn unsuitable(why: &'static str) -> anyhow::Error {
    Unsuitable(why).into()
}

/// A stretch of a source between two keyframes (timestamps of its video stream): from
/// `start` (the beginning when `None`, else reached by seeking to `seek`, in
/// `AV_TIME_BASE` units) up to the keyframe `end` (the end when `None`).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Chunk {
    pub seek: i64,
    pub start: Option<i64>,
    pub end: Option<i64>,
}

/// Packets read past a seek before its keyframe must have come.
pub(super) const MAX_SEEK_SLACK: usize = 4096;

impl Sparse<'_, '_> {
    fn read(&mut self, packet: Packet) -> Result<()> {
        let pts = packet
            .pts()
            .ok_or(Unsuitable("a packet has no timestamp"))?;
        if packet.is_key() || self.pending.is_empty() {
            self.pending.push_back(Group::default());
        }
        let group = self.pending.back_mut().expect("pushed above");
        group.bytes += packet.size();
        if group.bytes > MAX_GROUP_BYTES {
            return Err(Unsuitable("keyframes are too far apart").into());
        }
        // A damaged packet is skipped; the decoder recovers at the next keyframe.
        let _ = self.scanner.main.send_packet(&packet);
        group.pts.push(pts);
        group.packets.push(packet);
        self.receive_main()?;
        // Pictures come out in display order: once one later than all of the oldest group's
        // is out, that group has all it will get.
        while self.pending.len() >= 2
            && self
                .last_out
                .is_some_and(|o| self.pending[0].pts.iter().all(|&p| p < o))
        {
            let group = self.pending.pop_front().expect("checked above");
            self.measure(group)?;
        }
        Ok(())
    }

    fn finish_input(&mut self) -> Result<()> {
        let _ = self.scanner.main.send_eof();
        self.receive_main()?;
        while let Some(group) = self.pending.pop_front() {
            self.measure(group)?;
        }
        self.emit(true)
    }

    fn receive_main(&mut self) -> Result<()> {
        while self.scanner.main.receive_frame(&mut self.decoded).is_ok() {
            let pts = self
                .decoded
                .pts()
                .ok_or(Unsuitable("a picture has no timestamp"))?;
            let small = self
                .scanner
                .shrinker
                .shrink(&self.decoded, self.scanner.path)?;
            self.pictures.insert(pts, small);
            self.last_out = Some(self.last_out.map_or(pts, |o| o.max(pts)));
        }
        Ok(())
    }

    /// Measures one group's frames in display order, going back for the missing frames
    /// that need a closer look.
    fn measure(&mut self, group: Group) -> Result<()> {
        let mut order = group.pts.clone();
        order.sort_unstable();
        if order.windows(2).any(|w| w[0] == w[1]) {
            return Err(Unsuitable("two pictures share a timestamp").into());
        }
        if self.last_measured_pts.is_some_and(|m| order[0] <= m) {
            return Err(Unsuitable("pictures are reordered across keyframes").into());
        }
        let last = *order.last().expect("a group has a packet");
        self.last_measured_pts = Some(last);
        let mut pics: Vec<Option<Small>> = order.iter().map(|p| self.pictures.remove(p)).collect();
        // Anything older left over came from a damaged stream: it has no frame to go to.
        self.pictures = self.pictures.split_off(&(last + 1));
        let want = self.wanted(&pics, &order, group.pts[0]);
        let path = self.scanner.path;
        let refined = if let Some(refiner) = self.scanner.refiner.as_mut() {
            // The first group no other thread has checked: refine here, checking the main
            // decoder's pictures.
            let min = VERIFY_PACKETS.min(group.pts.len());
            let unwanted = AVDiscard::AVDISCARD_NONREF;
            let skip = if refiner.run(path, &group, &order, &want, unwanted, min, &mut pics)? {
                // This source predicts from B-frames: leaving them all out corrupts later
                // pictures. From now on leave out only what nothing refers to.
                AVDiscard::AVDISCARD_NONREF
            } else {
                AVDiscard::AVDISCARD_BIDIR
            };
            self.scanner.verdict.set(skip);
            let skip = self.scanner.verdict.get().unwrap_or(skip);
            self.scanner.checked(skip)?;
            false
        } else if want.iter().any(|&w| w) {
            let worker = self
                .scanner
                .worker
                .as_ref()
                .expect("started after the first group");
            let job = Job {
                group,
                order: order.clone(),
                want,
                unwanted: self.scanner.main_skip,
            };
            worker
                .jobs
                .send(job)
                .map_err(|_| anyhow::anyhow!("the refining thread stopped"))?;
            true
        } else {
            false
        };
        if let Some(p) = pics.iter().rev().flatten().next() {
            self.last_picture = Some(p.clone());
        }
        self.waiting.push_back(Waiting {
            order,
            pics,
            refined,
        });
        self.emit(false)
    }

    /// Emits the waiting groups whose refinement is done, in order; with `block`, all.
    fn emit(&mut self, block: bool) -> Result<()> {
        while let Some(front) = self.waiting.front_mut() {
            if front.refined {
                let worker = self.scanner.worker.as_ref().expect("a job was sent");
                let result = if block {
                    worker.results.recv().ok()
                } else {
                    match worker.results.try_recv() {
                        Ok(r) => Some(r),
                        Err(std::sync::mpsc::TryRecvError::Empty) => break,
                        Err(_) => None,
                    }
                };
                let exact = result.context("the refining thread stopped")??;
                for (pic, new) in front.pics.iter_mut().zip(exact) {
                    if new.is_some() {
                        *pic = new;
                    }
                }
            }
            let w = self.waiting.pop_front().expect("looked at above");
            for (pts, pic) in w.order.iter().zip(w.pics) {
                let time = (pts - self.scanner.info.start) as f64 * self.scanner.info.time_base;
                (self.sink)(time, pic)?;
            }
        }
        Ok(())
    }

    /// Which missing frames (by display rank in the group) to decode: those between two
    /// decoded pictures that differ enough to hide a boundary, and the runs of missing
    /// frames near them, which the adaptive detector compares a cut with.
    fn wanted(&mut self, pics: &[Option<Small>], order: &[i64], key: i64) -> Vec<bool> {
        let n = pics.len();
        // Steps between consecutive decoded pictures: the missing frames lo..hi before the
        // picture at hi, their difference, and whether one side is black and the other not.
        let mut steps: Vec<(usize, usize, f32, bool)> = Vec::new();
        let mut prev = self.last_picture.as_ref();
        let mut lo = 0;
        for (r, pic) in pics.iter().enumerate() {
            let Some(p) = pic else { continue };
            if let Some(q) = prev {
                let fade = (p.luma < self.black_luma) != (q.luma < self.black_luma);
                steps.push((lo, r, p.content_delta(q), fade));
            }
            prev = Some(p);
            lo = r + 1;
        }
        // A step over missing frames needs a closer look when it is big enough to hold a
        // cut and (for the adaptive detector) stands out from the steps around it.
        let d: Vec<f32> = self
            .recent
            .iter()
            .copied()
            .chain(steps.iter().map(|s| s.2))
            .collect();
        let before = self.recent.len();
        let runs: Vec<(usize, usize, bool)> = steps
            .iter()
            .enumerate()
            .filter(|(_, s)| s.1 > s.0)
            .map(|(i, &(lo, hi, v, fade))| {
                let j = before + i;
                let around: Vec<f32> = [j.wrapping_sub(2), j.wrapping_sub(1), j + 1, j + 2]
                    .iter()
                    .filter_map(|&k| d.get(k).copied())
                    .collect();
                let avg = around.iter().sum::<f32>() / around.len().max(1) as f32;
                let differ = v >= self.refine_above && v >= self.refine_ratio * avg;
                (lo, hi, differ || fade)
            })
            .collect();
        self.recent = d.iter().rev().take(2).rev().copied().collect();
        // Widen each differing run, with its decoded end, by the detector's window.
        let reach = self.window + 1;
        let near: Vec<(usize, usize)> = runs
            .iter()
            .filter(|r| r.2)
            .map(|&(lo, hi, _)| (lo.saturating_sub(reach), hi + 1 + reach))
            .collect();
        let mut want = vec![false; n];
        for &(lo, hi, _) in &runs {
            if near.iter().any(|&(a, b)| lo < b && a < hi) {
                want[lo..hi].iter_mut().for_each(|w| *w = true);
            }
        }
        // Pictures shown before the keyframe are predicted from the group before: a
        // decoder starting at the keyframe cannot make them.
        for (w, &pts) in want.iter_mut().zip(order) {
            *w &= pts >= key;
        }
        want
    }
}

/// Decodes groups again from their keyframes.
struct Refiner {
    decoder: decoder::Video,
    shrinker: Shrinker,
    decoded: frame::Video,
}

impl Refiner {
    /// Decodes `group` from its keyframe up to its last wanted frame (and at least `min`
    /// packets), leaving out `unwanted` pictures elsewhere, and puts the wanted frames into
    /// `pics`. Pictures `pics` already holds are compared and replaced by the exact ones;
    /// returns whether any differed.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        path: &Path,
        group: &Group,
        order: &[i64],
        want: &[bool],
        unwanted: AVDiscard,
        min: usize,
        pics: &mut [Option<Small>],
    ) -> Result<bool> {
        let rank = |pts: i64| order.binary_search(&pts).ok();
        let wanted = |pts: i64| rank(pts).is_some_and(|r| want[r]);
        let last = group.pts.iter().rposition(|&p| wanted(p));
        let Some(last) = last.max(min.checked_sub(1)) else {
            return Ok(false);
        };
        let key = group.pts[0];
        let mut differ = false;
        self.decoder.flush();
        for (packet, &pts) in group.packets.iter().zip(&group.pts).take(last + 1) {
            let skip = if wanted(pts) {
                AVDiscard::AVDISCARD_DEFAULT
            } else {
                unwanted
            };
            set_skip(&mut self.decoder, skip);
            let _ = self.decoder.send_packet(packet);
            differ |= self.receive(path, key, order, want, pics)?;
        }
        let _ = self.decoder.send_eof();
        differ |= self.receive(path, key, order, want, pics)?;
        // Ready for the next group (a drained decoder takes no more packets until flushed).
        self.decoder.flush();
        Ok(differ)
    }

    fn receive(
        &mut self,
        path: &Path,
        key: i64,
        order: &[i64],
        want: &[bool],
        pics: &mut [Option<Small>],
    ) -> Result<bool> {
        let mut differ = false;
        while self.decoder.receive_frame(&mut self.decoded).is_ok() {
            // Pictures shown before the keyframe are predicted from the group before.
            let Some(r) = self
                .decoded
                .pts()
                .filter(|&p| p >= key)
                .and_then(|p| order.binary_search(&p).ok())
            else {
                continue;
            };
            if !want[r] && pics[r].is_none() {
                continue;
            }
            let exact = self.shrinker.shrink(&self.decoded, path)?;
            differ |= pics[r].as_ref().is_some_and(|main| !main.same(&exact));
            pics[r] = Some(exact);
        }
        Ok(differ)
    }
}

/// A group to refine in the worker thread.
struct Job {
    group: Group,
    order: Vec<i64>,
    want: Vec<bool>,
    unwanted: AVDiscard,
}

/// A measured group waiting to be emitted.
struct Waiting {
    order: Vec<i64>,
    pics: Vec<Option<Small>>,
    /// Whether the worker owes it the wanted frames.
    refined: bool,
}

/// The refiner in a thread of its own, so that it works beside the main decoder (which,
/// with B-frames left out, decodes a chain of P-frames that keeps about one core busy).
struct Worker {
    jobs: std::sync::mpsc::Sender<Job>,
    results: std::sync::mpsc::Receiver<Result<Vec<Option<Small>>>>,
}

impl Worker {
    fn spawn(path: &Path, decoder: decoder::Video, (w, h): (u32, u32)) -> Result<Worker> {
        let (jobs, job_rx) = std::sync::mpsc::channel::<Job>();
        let (result_tx, results) = std::sync::mpsc::channel();
        let path = path.to_path_buf();
        std::thread::Builder::new()
            .name("refine".into())
            .spawn(move || {
                let mut refiner = Refiner {
                    decoder,
                    shrinker: Shrinker::new(w, h),
                    decoded: frame::Video::empty(),
                };
                for job in job_rx {
                    let mut pics: Vec<Option<Small>> = job.order.iter().map(|_| None).collect();
                    let done = refiner
                        .run(
                            &path,
                            &job.group,
                            &job.order,
                            &job.want,
                            job.unwanted,
                            0,
                            &mut pics,
                        )
                        .map(|_| pics);
                    if result_tx.send(done).is_err() {
                        break;
                    }
                }
            })
            .context("cannot start the refining thread")?;
        Ok(Worker { jobs, results })
    }
}
