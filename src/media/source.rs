//! Reading pictures from anything FFmpeg opens: video files and still images.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use super::ffmpeg::{self, codec, decoder, format, frame, media, Rational};

/// What a source holds, as far as the cut needs to know.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoInfo {
    pub width: u32,
    pub height: u32,
    /// Seconds; a still image reports 0.
    pub duration: f64,
    /// Frames per second of the source (0 when unknown or a still).
    pub frame_rate: f64,
    /// A single picture (png, jpeg, ...), held for as long as the edit asks.
    pub still: bool,
}

/// A source opened for decoding its pictures.
pub struct VideoSource {
    path: PathBuf,
    input: format::context::Input,
    stream: usize,
    decoder: decoder::Video,
    time_base: f64,
    /// Timestamp of the stream's first frame, in seconds; edit times are counted from it.
    start: f64,
    info: VideoInfo,
}

fn seconds(value: i64, tb: Rational) -> f64 {
    value as f64 * tb.numerator() as f64 / tb.denominator().max(1) as f64
}

impl VideoSource {
    pub fn open(path: &Path) -> Result<Self> {
        super::init();
        if !path.exists() {
            bail!("{} does not exist", path.display());
        }
        let input = format::input(path).map_err(|e| {
            anyhow!(
                "FFmpeg cannot read {}: {e} (is it a video or an image?)",
                path.display()
            )
        })?;
        let stream = input.streams().best(media::Type::Video).with_context(|| {
            format!(
                "{} has no video stream (is it an audio file?)",
                path.display()
            )
        })?;
        let index = stream.index();
        let tb = stream.time_base();
        let decoder = video_decoder(stream.parameters(), path, false, 0)?;
        let format_name = input.format().name().to_string();
        let still =
            format_name == "image2" || format_name.ends_with("_pipe") || stream.frames() == 1;
        let start = if stream.start_time() == ffmpeg::ffi::AV_NOPTS_VALUE {
            0.0
        } else {
            seconds(stream.start_time(), tb)
        };
        let duration = if still {
            0.0
        } else if stream.duration() > 0 {
            seconds(stream.duration(), tb)
        } else if input.duration() > 0 {
            input.duration() as f64 / ffmpeg::ffi::AV_TIME_BASE as f64
        } else {
            0.0
        };
        let rate = stream.avg_frame_rate();
        let frame_rate = if rate.denominator() > 0 {
            rate.numerator() as f64 / rate.denominator() as f64
        } else {
            0.0
        };
        let info = VideoInfo {
            width: decoder.width(),
            height: decoder.height(),
            duration,
            frame_rate,
            still,
        };
        if info.width == 0 || info.height == 0 {
            bail!(
                "{} has a video stream without a picture size; it may be damaged",
                path.display()
            );
        }
        Ok(VideoSource {
            path: path.to_path_buf(),
            input,
            stream: index,
            decoder,
            time_base: seconds(1, tb),
            start,
            info,
        })
    }

    pub fn info(&self) -> &VideoInfo {
        &self.info
    }

    /// Calls `emit` once for each of `count` instants `start + k / fps` with the picture on
    /// screen at that instant (the last frame whose timestamp is not after it). This is how
    /// the cut trims frame-accurately and converts frame rates. A still is held throughout;
    /// a source that ends early holds its last frame.
    pub fn sample(
        &mut self,
        start: f64,
        count: usize,
        fps: f64,
        mut emit: impl FnMut(&frame::Video) -> Result<()>,
    ) -> Result<()> {
        if count == 0 {
            return Ok(());
        }
        // Half a millisecond of slack so that float times that land on a frame pick that frame.
        const EPS: f64 = 5e-4;
        let target = |k: usize| start + k as f64 / fps;
        if start > 0.0 && !self.info.still {
            let ts = ((self.start + start) * ffmpeg::ffi::AV_TIME_BASE as f64) as i64;
            // Seeking lands on the keyframe at or before `ts`; frames before `start` are decoded and dropped.
            if self.input.seek(ts, ..ts).is_ok() {
                self.decoder.flush();
            }
        }
        let mut held: Option<frame::Video> = None;
        let mut k = 0;
        let mut decoded = frame::Video::empty();
        let mut packets = self.input.packets();
        let mut at_eof = false;
        while k < count {
            crate::progress::check_interrupted()?;
            if !at_eof {
                match packets.next() {
                    Some((stream, packet)) => {
                        if stream.index() != self.stream {
                            continue;
                        }
                        // A damaged packet is skipped; the picture before it is held.
                        let _ = self.decoder.send_packet(&packet);
                    }
                    None => {
                        at_eof = true;
                        let _ = self.decoder.send_eof();
                    }
                }
            }
            let mut got_any = false;
            while self.decoder.receive_frame(&mut decoded).is_ok() {
                got_any = true;
                let t = decoded
                    .timestamp()
                    .map(|ts| ts as f64 * self.time_base - self.start)
                    .unwrap_or(0.0);
                while k < count && t > target(k) + EPS {
                    emit(held.as_ref().unwrap_or(&decoded))?;
                    k += 1;
                }
                held = Some(std::mem::replace(&mut decoded, frame::Video::empty()));
                if k == count {
                    break;
                }
            }
            if at_eof && !got_any {
                let last = held
                    .as_ref()
                    .with_context(|| format!("{} yielded no picture", self.path.display()))?;
                while k < count {
                    emit(last)?;
                    k += 1;
                }
            }
        }
        Ok(())
    }
}

/// A frame-threaded decoder for a video stream, on `threads` threads (0: as many as suit
/// the cores; 1 where the caller runs several decoders side by side). `fast` skips the
/// deblocking filter: it only smooths block edges, which nothing that measures pictures at
/// low resolution can see, and it saves a good part of the decoding time.
pub fn video_decoder(
    params: codec::Parameters,
    path: &Path,
    fast: bool,
    threads: usize,
) -> Result<decoder::Video> {
    let mut ctx = codec::context::Context::from_parameters(params)
        .map_err(|e| anyhow!("cannot set up a decoder for {}: {e}", path.display()))?;
    ctx.set_threading(codec::threading::Config {
        kind: codec::threading::Type::Frame,
        count: threads,
        ..Default::default()
    });
    if fast {
        // SAFETY: a plain field of the context, set before the decoder is opened.
        unsafe {
            (*ctx.as_mut_ptr()).skip_loop_filter = ffmpeg::ffi::AVDiscard::AVDISCARD_ALL;
        }
    }
    ctx.decoder().video().map_err(|e| {
        anyhow!(
            "FFmpeg has no decoder for the video in {}: {e}",
            path.display()
        )
    })
}

/// Probes a source without decoding it.
pub fn probe(path: &Path) -> Result<VideoInfo> {
    Ok(VideoSource::open(path)?.info.clone())
}
