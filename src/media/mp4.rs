//! Writing the film: H.264 video, AAC audio and a soft mov_text subtitle track in one MP4.

use std::ffi::CString;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use super::audio::{Stereo, MIX_RATE};
use super::ffmpeg::{
    self, codec, encoder, ffi, format, frame, ChannelLayout, Dictionary, Packet, Rational,
};

/// One subtitle: shown from `start` to `end` seconds of the film.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedText {
    pub start: f64,
    pub end: f64,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct Mp4Options {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    /// x264 preset: ultrafast ... veryslow.
    pub preset: String,
    /// x264 constant rate factor (lower is better, 18-23 is visually good).
    pub crf: u32,
}

impl Default for Mp4Options {
    fn default() -> Self {
        Mp4Options {
            width: 1280,
            height: 720,
            fps: 24,
            preset: "veryfast".into(),
            crf: 20,
        }
    }
}

struct AudioTrack {
    encoder: encoder::Audio,
    index: usize,
    samples: Vec<f32>,
    /// Next stereo frame of `samples` to encode.
    cursor: usize,
    frame_size: usize,
}

struct SubtitleTrack {
    ctx: *mut ffi::AVCodecContext,
    index: usize,
    cues: Vec<TimedText>,
    next: usize,
}

impl Drop for SubtitleTrack {
    fn drop(&mut self) {
        unsafe { ffi::avcodec_free_context(&mut self.ctx) };
    }
}

/// Writes frames as they come, interleaving the audio and subtitles that belong to the same time.
pub struct Mp4Writer {
    octx: format::context::Output,
    video: encoder::Video,
    video_index: usize,
    video_tb: Rational,
    audio: Option<AudioTrack>,
    subtitles: Option<SubtitleTrack>,
    frames: i64,
    fps: u32,
}

impl Mp4Writer {
    /// Opens `path` (any name: the container is always MP4) for a film with the given sound and subtitles.
    pub fn create(
        path: &Path,
        opts: &Mp4Options,
        sound: Option<Stereo>,
        cues: Vec<TimedText>,
    ) -> Result<Self> {
        Self::create_tagged(path, opts, sound, cues, &[])
    }

    /// [`Mp4Writer::create`] with container tags (title, comment, creation_time, ...).
    pub fn create_tagged(
        path: &Path,
        opts: &Mp4Options,
        sound: Option<Stereo>,
        cues: Vec<TimedText>,
        tags: &[(&str, String)],
    ) -> Result<Self> {
        super::init();
        let mut octx = format::output_as(path, "mp4")
            .map_err(|e| anyhow!("cannot create {}: {e}", path.display()))?;
        let global_header = octx.format().flags().contains(format::Flags::GLOBAL_HEADER);

        let x264 = encoder::find_by_name("libx264")
            .context("this FFmpeg has no libx264 encoder; install Debian's libavcodec with x264 (see README)")?;
        let video_tb = Rational(1, opts.fps as i32);
        let mut venc = codec::context::Context::new_with_codec(x264)
            .encoder()
            .video()?;
        venc.set_width(opts.width);
        venc.set_height(opts.height);
        venc.set_format(format::Pixel::YUV420P);
        venc.set_time_base(video_tb);
        venc.set_frame_rate(Some(Rational(opts.fps as i32, 1)));
        if global_header {
            venc.set_flags(codec::Flags::GLOBAL_HEADER);
        }
        let mut x264_opts = Dictionary::new();
        x264_opts.set("preset", &opts.preset);
        x264_opts.set("crf", &opts.crf.to_string());
        let video = venc
            .open_with(x264_opts)
            .map_err(|e| anyhow!("cannot open the H.264 encoder: {e}"))?;
        let video_index = {
            let mut st = octx.add_stream(x264)?;
            st.set_parameters(&video);
            st.set_time_base(video_tb);
            st.index()
        };

        let audio = match sound {
            Some(sound) => Some(Self::add_audio(&mut octx, global_header, sound)?),
            None => None,
        };
        let subtitles = if cues.is_empty() {
            None
        } else {
            Some(Self::add_subtitles(&mut octx, global_header, cues)?)
        };

        let mut metadata = Dictionary::new();
        for (key, value) in tags {
            metadata.set(key, value);
        }
        octx.set_metadata(metadata);
        let mut mux_opts = Dictionary::new();
        // Moves the index to the front so the film starts playing before it is fully downloaded.
        mux_opts.set("movflags", "+faststart");
        octx.write_header_with(mux_opts)
            .map_err(|e| anyhow!("cannot write the MP4 header of {}: {e}", path.display()))?;
        Ok(Mp4Writer {
            octx,
            video,
            video_index,
            video_tb,
            audio,
            subtitles,
            frames: 0,
            fps: opts.fps,
        })
    }

    fn add_audio(
        octx: &mut format::context::Output,
        global_header: bool,
        sound: Stereo,
    ) -> Result<AudioTrack> {
        let aac = encoder::find(codec::Id::AAC).context("this FFmpeg has no AAC encoder")?;
        let mut aenc = codec::context::Context::new_with_codec(aac)
            .encoder()
            .audio()?;
        aenc.set_rate(MIX_RATE as i32);
        aenc.set_channel_layout(ChannelLayout::STEREO);
        aenc.set_format(format::Sample::F32(format::sample::Type::Planar));
        aenc.set_bit_rate(192_000);
        aenc.set_time_base(Rational(1, MIX_RATE as i32));
        if global_header {
            aenc.set_flags(codec::Flags::GLOBAL_HEADER);
        }
        let encoder = aenc
            .open_as(aac)
            .map_err(|e| anyhow!("cannot open the AAC encoder: {e}"))?;
        let frame_size = (encoder.frame_size() as usize).max(1);
        let index = {
            let mut st = octx.add_stream(aac)?;
            st.set_parameters(&encoder);
            st.set_time_base(Rational(1, MIX_RATE as i32));
            st.index()
        };
        Ok(AudioTrack {
            encoder,
            index,
            samples: sound.samples,
            cursor: 0,
            frame_size,
        })
    }

    fn add_subtitles(
        octx: &mut format::context::Output,
        global_header: bool,
        cues: Vec<TimedText>,
    ) -> Result<SubtitleTrack> {
        // ffmpeg-next wraps subtitle encoding only partly (the encoded size is lost), so this goes through the C API.
        unsafe {
            let codec = ffi::avcodec_find_encoder(ffi::AVCodecID::AV_CODEC_ID_MOV_TEXT);
            if codec.is_null() {
                bail!("this FFmpeg has no mov_text subtitle encoder");
            }
            let ctx = ffi::avcodec_alloc_context3(codec);
            let mut track = SubtitleTrack {
                ctx,
                index: 0,
                cues,
                next: 0,
            };
            (*ctx).time_base = ffi::AVRational { num: 1, den: 1000 };
            if global_header {
                (*ctx).flags |= ffi::AV_CODEC_FLAG_GLOBAL_HEADER as i32;
            }
            let header = CString::new(ASS_HEADER).unwrap();
            let bytes = header.as_bytes_with_nul();
            let buf = ffi::av_malloc(bytes.len()) as *mut u8;
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf, bytes.len());
            (*ctx).subtitle_header = buf;
            (*ctx).subtitle_header_size = (bytes.len() - 1) as i32;
            let ret = ffi::avcodec_open2(ctx, codec, std::ptr::null_mut());
            if ret < 0 {
                bail!(
                    "cannot open the mov_text subtitle encoder: {}",
                    ffmpeg::Error::from(ret)
                );
            }
            let mut st = octx.add_stream(encoder::find(codec::Id::MOV_TEXT))?;
            let ret = ffi::avcodec_parameters_from_context((*st.as_mut_ptr()).codecpar, ctx);
            if ret < 0 {
                bail!(
                    "cannot describe the subtitle track: {}",
                    ffmpeg::Error::from(ret)
                );
            }
            st.set_time_base(Rational(1, 1000));
            track.index = st.index();
            let lang = CString::new("language").unwrap();
            let eng = CString::new("eng").unwrap();
            ffi::av_dict_set(
                &mut (*st.as_mut_ptr()).metadata,
                lang.as_ptr(),
                eng.as_ptr(),
                0,
            );
            Ok(track)
        }
    }

    /// Frames written so far.
    pub fn frames(&self) -> i64 {
        self.frames
    }

    /// Encodes the next picture (it must be 4:2:0 at the film's size) and whatever sound and
    /// subtitles fall before its end.
    pub fn write_frame(&mut self, picture: &mut frame::Video) -> Result<()> {
        picture.set_pts(Some(self.frames));
        picture.set_kind(ffmpeg::picture::Type::None);
        self.video
            .send_frame(picture)
            .map_err(|e| anyhow!("the H.264 encoder refused frame {}: {e}", self.frames))?;
        self.frames += 1;
        self.drain_video()?;
        let until = self.frames as f64 / self.fps as f64;
        self.write_audio_until(until)?;
        self.write_subtitles_until(until)
    }

    fn drain_video(&mut self) -> Result<()> {
        let mut packet = Packet::empty();
        let ost_tb = self.octx.stream(self.video_index).unwrap().time_base();
        while self.video.receive_packet(&mut packet).is_ok() {
            // Every packet is one frame long; without this the muxer drops the last frame's duration.
            packet.set_duration(1);
            packet.set_stream(self.video_index);
            packet.rescale_ts(self.video_tb, ost_tb);
            packet
                .write_interleaved(&mut self.octx)
                .map_err(|e| anyhow!("cannot write video: {e}"))?;
        }
        Ok(())
    }

    fn write_audio_until(&mut self, seconds: f64) -> Result<()> {
        let Some(track) = self.audio.as_mut() else {
            return Ok(());
        };
        let want = ((seconds * MIX_RATE as f64).round() as usize).min(track.samples.len() / 2);
        let ost_tb = self.octx.stream(track.index).unwrap().time_base();
        while track.cursor + track.frame_size <= want
            || (want == track.samples.len() / 2 && track.cursor < want)
        {
            let n = track.frame_size.min(want - track.cursor);
            let mut f = frame::Audio::new(
                format::Sample::F32(format::sample::Type::Planar),
                track.frame_size,
                ChannelLayout::STEREO,
            );
            f.set_rate(MIX_RATE);
            {
                let src = &track.samples[track.cursor * 2..(track.cursor + n) * 2];
                for ch in 0..2 {
                    let plane: &mut [f32] = f.plane_mut(ch);
                    for (i, s) in plane.iter_mut().enumerate() {
                        *s = if i < n { src[i * 2 + ch] } else { 0.0 };
                    }
                }
            }
            f.set_samples(n);
            f.set_pts(Some(track.cursor as i64));
            track
                .encoder
                .send_frame(&f)
                .map_err(|e| anyhow!("the AAC encoder refused audio: {e}"))?;
            track.cursor += n;
            drain_audio(track, &mut self.octx, ost_tb)?;
        }
        Ok(())
    }

    fn write_subtitles_until(&mut self, seconds: f64) -> Result<()> {
        let Some(track) = self.subtitles.as_mut() else {
            return Ok(());
        };
        let ost_tb = self.octx.stream(track.index).unwrap().time_base();
        while track.next < track.cues.len() && track.cues[track.next].start < seconds {
            let cue = track.cues[track.next].clone();
            track.next += 1;
            let start_ms = (cue.start * 1000.0).round() as i64;
            let dur_ms = ((cue.end - cue.start) * 1000.0).round().max(1.0) as i64;
            let mut packet = encode_cue(track.ctx, &cue.text, dur_ms)?;
            packet.set_pts(Some(start_ms));
            packet.set_dts(Some(start_ms));
            packet.set_duration(dur_ms);
            packet.set_stream(track.index);
            packet.rescale_ts(Rational(1, 1000), ost_tb);
            packet
                .write_interleaved(&mut self.octx)
                .map_err(|e| anyhow!("cannot write a subtitle: {e}"))?;
        }
        Ok(())
    }

    /// Flushes the encoders and closes the file.
    pub fn finish(mut self) -> Result<()> {
        self.video
            .send_eof()
            .map_err(|e| anyhow!("cannot flush the H.264 encoder: {e}"))?;
        self.drain_video()?;
        self.write_audio_until(f64::MAX)?;
        self.write_subtitles_until(f64::MAX)?;
        if let Some(track) = self.audio.as_mut() {
            let ost_tb = self.octx.stream(track.index).unwrap().time_base();
            track
                .encoder
                .send_eof()
                .map_err(|e| anyhow!("cannot flush the AAC encoder: {e}"))?;
            drain_audio(track, &mut self.octx, ost_tb)?;
        }
        self.octx
            .write_trailer()
            .map_err(|e| anyhow!("cannot finish the MP4: {e}"))?;
        Ok(())
    }
}

fn drain_audio(
    track: &mut AudioTrack,
    octx: &mut format::context::Output,
    ost_tb: Rational,
) -> Result<()> {
    let mut packet = Packet::empty();
    while track.encoder.receive_packet(&mut packet).is_ok() {
        packet.set_stream(track.index);
        packet.rescale_ts(Rational(1, MIX_RATE as i32), ost_tb);
        packet
            .write_interleaved(octx)
            .map_err(|e| anyhow!("cannot write audio: {e}"))?;
    }
    Ok(())
}

fn encode_cue(ctx: *mut ffi::AVCodecContext, text: &str, dur_ms: i64) -> Result<Packet> {
    // Dialogue event in FFmpeg's internal ASS form: ReadOrder,Layer,Style,Name,MarginL,MarginR,MarginV,Effect,Text
    let escaped = text.replace('\n', "\\N").replace(['{', '}'], "");
    let ass = CString::new(format!("0,0,Default,,0,0,0,,{escaped}"))
        .context("a subtitle contains a NUL character")?;
    unsafe {
        let mut rect: ffi::AVSubtitleRect = std::mem::zeroed();
        rect.type_ = ffi::AVSubtitleType::SUBTITLE_ASS;
        rect.ass = ass.as_ptr() as *mut _;
        let mut rects = [&mut rect as *mut ffi::AVSubtitleRect];
        let mut sub: ffi::AVSubtitle = std::mem::zeroed();
        sub.num_rects = 1;
        sub.rects = rects.as_mut_ptr();
        sub.end_display_time = dur_ms as u32;
        let mut buf = vec![0u8; 4096 + text.len() * 4];
        let n = ffi::avcodec_encode_subtitle(ctx, buf.as_mut_ptr(), buf.len() as i32, &sub);
        if n < 0 {
            bail!(
                "cannot encode the subtitle {text:?}: {}",
                ffmpeg::Error::from(n)
            );
        }
        Ok(Packet::copy(&buf[..n as usize]))
    }
}

const ASS_HEADER: &str = "[Script Info]\r\n; Script generated by benjamin\r\nScriptType: v4.00+\r\nPlayResX: 384\r\nPlayResY: 288\r\nScaledBorderAndShadow: yes\r\n\r\n[V4+ Styles]\r\nFormat: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\r\nStyle: Default,Arial,16,&Hffffff,&Hffffff,&H0,&H0,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,1\r\n\r\n[Events]\r\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\r\n";
