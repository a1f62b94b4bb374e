//! FFmpeg filter graphs with one buffer source (or none) and one sink.

use anyhow::{anyhow, bail, Context, Result};

use super::ffmpeg::{ffi, filter, format, frame, Rational};

/// A video filter graph: frames in at `in`, frames out at `out`.
pub struct VideoGraph {
    graph: filter::Graph,
    has_source: bool,
}

impl VideoGraph {
    /// A graph fed with frames of the given shape, e.g. `spec = "scale=640:360,format=yuv420p"`.
    pub fn new(
        width: u32,
        height: u32,
        pixel: format::Pixel,
        time_base: Rational,
        spec: &str,
    ) -> Result<Self> {
        super::init();
        let mut graph = filter::Graph::new();
        let pix: i32 = super::ffmpeg::ffi::AVPixelFormat::from(pixel) as i32;
        let args = format!(
            "video_size={width}x{height}:pix_fmt={pix}:time_base={}/{}:pixel_aspect=1/1",
            time_base.numerator(),
            time_base.denominator().max(1)
        );
        build(&mut graph, Some(("buffer", &args)), "buffersink", spec)?;
        Ok(VideoGraph {
            graph,
            has_source: true,
        })
    }

    /// A graph that makes its own frames, e.g. `color=black:s=1280x720:d=3,drawtext=...`.
    pub fn generator(spec: &str) -> Result<Self> {
        super::init();
        let mut graph = filter::Graph::new();
        build(&mut graph, None, "buffersink", spec)?;
        Ok(VideoGraph {
            graph,
            has_source: false,
        })
    }

    /// Feeds a picture stamped with `pts` (in the graph's time base). The caller keeps its
    /// frame: the graph takes a new reference, so a held picture can be pushed again.
    pub fn push(&mut self, frame: &frame::Video, pts: i64) -> Result<()> {
        debug_assert!(self.has_source);
        let mut src = self.graph.get("in").context("filter graph has no input")?;
        let ret = unsafe {
            let mut copy = ffi::av_frame_clone(frame.as_ptr());
            if copy.is_null() {
                bail!("out of memory while filtering video");
            }
            (*copy).pts = pts;
            let ret = ffi::av_buffersrc_add_frame_flags(src.as_mut_ptr(), copy, 0);
            ffi::av_frame_free(&mut copy);
            ret
        };
        if ret < 0 {
            bail!(
                "filter graph refused a frame: {}",
                super::ffmpeg::Error::from(ret)
            );
        }
        Ok(())
    }

    pub fn push_eof(&mut self) -> Result<()> {
        if self.has_source {
            let mut src = self.graph.get("in").context("filter graph has no input")?;
            src.source()
                .flush()
                .map_err(|e| anyhow!("filter graph refused end of stream: {e}"))?;
        }
        Ok(())
    }

    /// The next filtered frame, if one is ready.
    pub fn pull(&mut self) -> Option<frame::Video> {
        let mut sink = self.graph.get("out")?;
        let mut out = frame::Video::empty();
        sink.sink().frame(&mut out).ok().map(|_| out)
    }
}

/// An audio filter graph with one input and one output.
pub struct AudioGraph {
    graph: filter::Graph,
}

impl AudioGraph {
    pub fn new(
        rate: u32,
        sample: format::Sample,
        layout_bits: u64,
        channels: u16,
        spec: &str,
    ) -> Result<Self> {
        super::init();
        let mut graph = filter::Graph::new();
        let fmt: i32 = super::ffmpeg::ffi::AVSampleFormat::from(sample) as i32;
        let layout = if layout_bits != 0 {
            format!("channel_layout=0x{layout_bits:x}")
        } else {
            format!("channels={channels}")
        };
        let args = format!("time_base=1/{rate}:sample_rate={rate}:sample_fmt={fmt}:{layout}");
        build(&mut graph, Some(("abuffer", &args)), "abuffersink", spec)?;
        Ok(AudioGraph { graph })
    }

    pub fn push(&mut self, frame: &frame::Audio) -> Result<()> {
        let mut src = self.graph.get("in").context("audio graph has no input")?;
        let ret = unsafe {
            ffi::av_buffersrc_add_frame_flags(
                src.as_mut_ptr(),
                frame.as_ptr() as *mut _,
                ffi::AV_BUFFERSRC_FLAG_KEEP_REF as i32,
            )
        };
        if ret < 0 {
            bail!(
                "audio graph refused a frame: {}",
                super::ffmpeg::Error::from(ret)
            );
        }
        Ok(())
    }

    pub fn push_eof(&mut self) -> Result<()> {
        let mut src = self.graph.get("in").context("audio graph has no input")?;
        src.source()
            .flush()
            .map_err(|e| anyhow!("audio graph refused end of stream: {e}"))
    }

    pub fn pull(&mut self) -> Option<frame::Audio> {
        let mut sink = self.graph.get("out")?;
        let mut out = frame::Audio::empty();
        sink.sink().frame(&mut out).ok().map(|_| out)
    }
}

/// Wires `spec` between an optional source filter named "in" and a sink named "out".
fn build(
    graph: &mut filter::Graph,
    source: Option<(&str, &str)>,
    sink: &str,
    spec: &str,
) -> Result<()> {
    if let Some((kind, args)) = source {
        graph
            .add(&find(kind)?, "in", args)
            .with_context(|| format!("cannot create the filter graph's input ({args})"))?;
    }
    graph
        .add(&find(sink)?, "out", "")
        .context("cannot create the filter graph's output")?;
    let parser = graph.input("out", 0);
    let parser = match source {
        Some(_) => parser.and_then(|p| p.output("in", 0)),
        None => parser,
    };
    parser
        .and_then(|p| p.parse(spec))
        .map_err(|e| anyhow!("FFmpeg rejected the filter graph {spec:?}: {e}"))?;
    graph
        .validate()
        .map_err(|e| anyhow!("FFmpeg cannot configure the filter graph {spec:?}: {e}"))?;
    Ok(())
}

fn find(name: &str) -> Result<filter::Filter> {
    filter::find(name).with_context(|| {
        format!("this FFmpeg has no {name:?} filter; install Debian's libavfilter (see README)")
    })
}
