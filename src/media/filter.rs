//! FFmpeg filter graphs with one buffer source (or none) and one sink.
//!
//! libavfilter is loaded when the first graph is built, not linked: with the thirty
//! libraries it pulls in (speech synthesis, Vulkan, BLAS, ...) it took a third of the
//! start-up of every command, most of which never filter.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context, Result};

use super::ffmpeg::{ffi, format, frame, Rational};

/// `AV_BUFFERSRC_FLAG_KEEP_REF`: the source takes its own reference to a pushed frame.
const KEEP_REF: c_int = 8;

/// A video filter graph: frames in at `in`, frames out at `out`.
pub struct VideoGraph {
    graph: Graph,
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
        let pix: i32 = super::ffmpeg::ffi::AVPixelFormat::from(pixel) as i32;
        let args = format!(
            "video_size={width}x{height}:pix_fmt={pix}:time_base={}/{}:pixel_aspect=1/1",
            time_base.numerator(),
            time_base.denominator().max(1)
        );
        Ok(VideoGraph {
            graph: Graph::build(Some(("buffer", &args)), "buffersink", spec)?,
        })
    }

    /// A graph that makes its own frames, e.g. `color=black:s=1280x720:d=3,drawtext=...`.
    pub fn generator(spec: &str) -> Result<Self> {
        Ok(VideoGraph {
            graph: Graph::build(None, "buffersink", spec)?,
        })
    }

    /// Feeds a picture stamped with `pts` (in the graph's time base). The caller keeps its
    /// frame: the graph takes a new reference, so a held picture can be pushed again.
    pub fn push(&mut self, frame: &frame::Video, pts: i64) -> Result<()> {
        // SAFETY: the clone is a new frame of our own, freed here whatever the graph did.
        let ret = unsafe {
            let mut copy = ffi::av_frame_clone(frame.as_ptr());
            if copy.is_null() {
                bail!("out of memory while filtering video");
            }
            (*copy).pts = pts;
            let ret = self.graph.add_frame(copy, 0);
            ffi::av_frame_free(&mut copy);
            ret
        };
        ret.context("filter graph refused a frame")
    }

    pub fn push_eof(&mut self) -> Result<()> {
        if self.graph.has_source() {
            self.graph
                .add_frame(std::ptr::null_mut(), 0)
                .context("filter graph refused end of stream")?;
        }
        Ok(())
    }

    /// The next filtered frame, if one is ready.
    pub fn pull(&mut self) -> Option<frame::Video> {
        let mut out = frame::Video::empty();
        // SAFETY: `out` is a valid, empty frame for the sink to fill.
        self.graph
            .get_frame(unsafe { out.as_mut_ptr() })
            .then_some(out)
    }
}

/// An audio filter graph with one input and one output.
pub struct AudioGraph {
    graph: Graph,
}

impl AudioGraph {
    pub fn new(
        rate: u32,
        sample: format::Sample,
        layout_bits: u64,
        channels: u16,
        spec: &str,
    ) -> Result<Self> {
        let fmt: i32 = super::ffmpeg::ffi::AVSampleFormat::from(sample) as i32;
        let layout = if layout_bits != 0 {
            format!("channel_layout=0x{layout_bits:x}")
        } else {
            format!("channels={channels}")
        };
        let args = format!("time_base=1/{rate}:sample_rate={rate}:sample_fmt={fmt}:{layout}");
        Ok(AudioGraph {
            graph: Graph::build(Some(("abuffer", &args)), "abuffersink", spec)?,
        })
    }

    pub fn push(&mut self, frame: &frame::Audio) -> Result<()> {
        // SAFETY: with KEEP_REF the graph takes its own reference and leaves the caller's
        // frame as it was.
        let frame = unsafe { frame.as_ptr() as *mut _ };
        self.graph
            .add_frame(frame, KEEP_REF)
            .context("audio graph refused a frame")
    }

    pub fn push_eof(&mut self) -> Result<()> {
        self.graph
            .add_frame(std::ptr::null_mut(), 0)
            .context("audio graph refused end of stream")
    }

    pub fn pull(&mut self) -> Option<frame::Audio> {
        let mut out = frame::Audio::empty();
        // SAFETY: `out` is a valid, empty frame for the sink to fill.
        self.graph
            .get_frame(unsafe { out.as_mut_ptr() })
            .then_some(out)
    }
}

/// `AVFilterInOut`: a pad left open by the parser, linked to one of our filters.
#[repr(C)]
struct InOut {
    name: *mut c_char,
    filter_ctx: *mut c_void,
    pad_idx: c_int,
    next: *mut InOut,
}

/// The libavfilter functions the graphs use, looked up in the library once.
struct Api {
    graph_alloc: unsafe extern "C" fn() -> *mut c_void,
    graph_free: unsafe extern "C" fn(*mut *mut c_void),
    get_by_name: unsafe extern "C" fn(*const c_char) -> *const c_void,
    create_filter: unsafe extern "C" fn(
        *mut *mut c_void,
        *const c_void,
        *const c_char,
        *const c_char,
        *mut c_void,
        *mut c_void,
    ) -> c_int,
    inout_alloc: unsafe extern "C" fn() -> *mut InOut,
    inout_free: unsafe extern "C" fn(*mut *mut InOut),
    parse: unsafe extern "C" fn(
        *mut c_void,
        *const c_char,
        *mut *mut InOut,
        *mut *mut InOut,
        *mut c_void,
    ) -> c_int,
    config: unsafe extern "C" fn(*mut c_void, *mut c_void) -> c_int,
    add_frame: unsafe extern "C" fn(*mut c_void, *mut ffi::AVFrame, c_int) -> c_int,
    get_frame: unsafe extern "C" fn(*mut c_void, *mut ffi::AVFrame) -> c_int,
}

/// The file name of the libavfilter that pkg-config reported at build time (see build.rs).
const LIBRARY: &str = env!("BENJAMIN_AVFILTER_LIBRARY");

impl Api {
    fn get() -> Result<&'static Api> {
        static API: OnceLock<std::result::Result<Api, String>> = OnceLock::new();
        API.get_or_init(Api::load).as_ref().map_err(|e| {
            anyhow!("{e}; install FFmpeg's filter library (Debian: libavfilter-dev, see README)")
        })
    }

    fn load() -> std::result::Result<Api, String> {
        super::init();
        let name = CString::new(LIBRARY).expect("a file name without NUL");
        // SAFETY: dlopen with a valid C string; the handle is kept for the process's life, so
        // the functions looked up below stay valid.
        let lib = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if lib.is_null() {
            return Err(format!("cannot load {LIBRARY}: {}", dl_error()));
        }
        // SAFETY: each symbol is the libavfilter function of that name, whose C signature
        // (stable across FFmpeg 4 to 7) the field's type spells out.
        unsafe {
            Ok(Api {
                graph_alloc: symbol(lib, c"avfilter_graph_alloc")?,
                graph_free: symbol(lib, c"avfilter_graph_free")?,
                get_by_name: symbol(lib, c"avfilter_get_by_name")?,
                create_filter: symbol(lib, c"avfilter_graph_create_filter")?,
                inout_alloc: symbol(lib, c"avfilter_inout_alloc")?,
                inout_free: symbol(lib, c"avfilter_inout_free")?,
                parse: symbol(lib, c"avfilter_graph_parse_ptr")?,
                config: symbol(lib, c"avfilter_graph_config")?,
                add_frame: symbol(lib, c"av_buffersrc_add_frame_flags")?,
                get_frame: symbol(lib, c"av_buffersink_get_frame")?,
            })
        }
    }
}

/// Looks `name` up in the library `lib` as a function of type `F`.
///
/// # Safety
/// `F` must be an `extern "C" fn` type matching the symbol's C signature.
unsafe fn symbol<F: Copy>(lib: *mut c_void, name: &CStr) -> std::result::Result<F, String> {
    assert_eq!(size_of::<F>(), size_of::<*mut c_void>());
    let p = libc::dlsym(lib, name.as_ptr());
    if p.is_null() {
        return Err(format!("{LIBRARY} has no {}", name.to_string_lossy()));
    }
    Ok(std::mem::transmute_copy(&p))
}

fn dl_error() -> String {
    // SAFETY: dlerror returns null or a C string valid until the next dl call.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        "unknown error".to_owned()
    } else {
        unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
    }
}

/// A configured graph: `spec` between an optional source filter and a sink.
struct Graph {
    api: &'static Api,
    graph: *mut c_void,
    source: *mut c_void,
    sink: *mut c_void,
}

// SAFETY: a graph is used by one thread at a time (it is not Sync); FFmpeg keeps no
// thread-local state for it.
unsafe impl Send for Graph {}

impl Drop for Graph {
    fn drop(&mut self) {
        // SAFETY: frees the graph and every filter in it, once.
        unsafe { (self.api.graph_free)(&mut self.graph) }
    }
}

impl Graph {
    fn build(source: Option<(&str, &str)>, sink: &str, spec: &str) -> Result<Graph> {
        let api = Api::get()?;
        // SAFETY: allocates an empty graph, freed by Drop.
        let graph = unsafe { (api.graph_alloc)() };
        anyhow::ensure!(!graph.is_null(), "out of memory for a filter graph");
        let mut g = Graph {
            api,
            graph,
            source: std::ptr::null_mut(),
            sink: std::ptr::null_mut(),
        };
        if let Some((kind, args)) = source {
            g.source = g
                .create(kind, "in", args)
                .with_context(|| format!("cannot create the filter graph's input ({args})"))?;
        }
        g.sink = g
            .create(sink, "out", "")
            .context("cannot create the filter graph's output")?;
        let spec_c = CString::new(spec).context("a filter graph with a NUL in it")?;
        // The parsed chain's open input is fed by "in"; its open output feeds "out".
        let mut outputs = g.open_pad("in", g.source)?;
        let mut inputs = g.open_pad("out", g.sink)?;
        // SAFETY: a valid graph and pad lists; the parser takes what it links and the rest is
        // freed here.
        let ret = unsafe {
            let ret = (api.parse)(
                g.graph,
                spec_c.as_ptr(),
                &mut inputs,
                &mut outputs,
                std::ptr::null_mut(),
            );
            (api.inout_free)(&mut inputs);
            (api.inout_free)(&mut outputs);
            ret
        };
        check(ret).with_context(|| format!("FFmpeg rejected the filter graph {spec:?}"))?;
        // SAFETY: a valid graph, all of its pads linked.
        check(unsafe { (api.config)(g.graph, std::ptr::null_mut()) })
            .with_context(|| format!("FFmpeg cannot configure the filter graph {spec:?}"))?;
        Ok(g)
    }

    /// Adds a filter of kind `kind`, named `name`, to the graph.
    fn create(&mut self, kind: &str, name: &str, args: &str) -> Result<*mut c_void> {
        let kind_c = CString::new(kind)?;
        // SAFETY: looks a filter up by a valid C string.
        let filter = unsafe { (self.api.get_by_name)(kind_c.as_ptr()) };
        if filter.is_null() {
            bail!("this FFmpeg has no {kind:?} filter; install Debian's libavfilter (see README)");
        }
        let (name_c, args_c) = (CString::new(name)?, CString::new(args)?);
        let mut ctx = std::ptr::null_mut();
        // SAFETY: a valid filter and graph; the new context belongs to the graph.
        check(unsafe {
            (self.api.create_filter)(
                &mut ctx,
                filter,
                name_c.as_ptr(),
                args_c.as_ptr(),
                std::ptr::null_mut(),
                self.graph,
            )
        })?;
        Ok(ctx)
    }

    /// A one-pad list naming `filter` (none when `filter` is null, for a graph with no source).
    fn open_pad(&self, name: &str, filter: *mut c_void) -> Result<*mut InOut> {
        if filter.is_null() {
            return Ok(std::ptr::null_mut());
        }
        let name_c = CString::new(name)?;
        // SAFETY: a fresh list entry, its name allocated by FFmpeg so that FFmpeg can free it.
        unsafe {
            let pad = (self.api.inout_alloc)();
            anyhow::ensure!(!pad.is_null(), "out of memory for a filter graph");
            (*pad).name = ffi::av_strdup(name_c.as_ptr());
            (*pad).filter_ctx = filter;
            (*pad).pad_idx = 0;
            (*pad).next = std::ptr::null_mut();
            Ok(pad)
        }
    }

    fn has_source(&self) -> bool {
        !self.source.is_null()
    }

    /// Pushes `frame` into the source (null: the end of the stream).
    fn add_frame(&mut self, frame: *mut ffi::AVFrame, flags: c_int) -> Result<()> {
        anyhow::ensure!(self.has_source(), "the filter graph has no input");
        // SAFETY: a configured source and a valid frame or null.
        check(unsafe { (self.api.add_frame)(self.source, frame, flags) })
    }

    /// Fills `frame` with the next filtered frame; false when none is ready.
    fn get_frame(&mut self, frame: *mut ffi::AVFrame) -> bool {
        // SAFETY: a configured sink and a valid frame.
        unsafe { (self.api.get_frame)(self.sink, frame) >= 0 }
    }
}

fn check(ret: c_int) -> Result<()> {
    if ret < 0 {
        bail!("{}", super::ffmpeg::Error::from(ret));
    }
    Ok(())
}
