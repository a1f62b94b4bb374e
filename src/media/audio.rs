//! Reading sound from anything FFmpeg opens, as 48 kHz stereo float samples, and the one
//! WAV writer every stage uses.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use super::ffmpeg::{codec, format, frame, media};
use super::filter::AudioGraph;

/// Writes interleaved 16-bit samples as a WAV of `channels` channels, atomically: the file
/// appears under its name only when whole.
pub fn write_wav(
    path: &Path,
    channels: u16,
    rate: u32,
    samples: impl IntoIterator<Item = i16>,
) -> Result<()> {
    let file = crate::fsutil::AtomicFile::new(path)?;
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(file.path(), spec)
        .with_context(|| format!("cannot write {}", path.display()))?;
    for s in samples {
        w.write_sample(s)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    w.finalize()
        .with_context(|| format!("cannot finish {}", path.display()))?;
    file.commit()
}

/// Sample rate of every mix benjamin makes.
pub const MIX_RATE: u32 = 48_000;

/// Interleaved stereo samples at [`MIX_RATE`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stereo {
    pub samples: Vec<f32>,
}

impl Stereo {
    pub fn frames(&self) -> usize {
        self.samples.len() / 2
    }

    pub fn seconds(&self) -> f64 {
        self.frames() as f64 / MIX_RATE as f64
    }
}

/// Decodes the first audio stream of `path`, resampled to 48 kHz stereo.
pub fn read_stereo(path: &Path) -> Result<Stereo> {
    super::init();
    if !path.exists() {
        bail!("{} does not exist", path.display());
    }
    let mut input =
        format::input(path).map_err(|e| anyhow!("FFmpeg cannot read {}: {e}", path.display()))?;
    let stream = input
        .streams()
        .best(media::Type::Audio)
        .with_context(|| format!("{} has no audio stream", path.display()))?;
    let index = stream.index();
    let mut decoder = codec::context::Context::from_parameters(stream.parameters())
        .and_then(|c| c.decoder().audio())
        .map_err(|e| {
            anyhow!(
                "FFmpeg has no decoder for the audio in {}: {e}",
                path.display()
            )
        })?;
    let mut graph: Option<AudioGraph> = None;
    let mut out = Stereo::default();
    let mut decoded = frame::Audio::empty();
    let mut drain = |decoder: &mut super::ffmpeg::decoder::Audio,
                     graph: &mut Option<AudioGraph>,
                     out: &mut Stereo|
     -> Result<()> {
        while decoder.receive_frame(&mut decoded).is_ok() {
            if graph.is_none() {
                let spec =
                    format!("aresample={MIX_RATE},aformat=sample_fmts=flt:channel_layouts=stereo");
                *graph = Some(AudioGraph::new(
                    decoded.rate(),
                    decoded.format(),
                    decoded.channel_layout().bits(),
                    decoded.channels(),
                    &spec,
                )?);
            }
            let g = graph.as_mut().unwrap();
            g.push(&decoded)?;
            collect(g, out);
        }
        Ok(())
    };
    for (stream, packet) in input.packets() {
        if stream.index() == index {
            decoder
                .send_packet(&packet)
                .map_err(|e| anyhow!("{} has damaged audio: {e}", path.display()))?;
            drain(&mut decoder, &mut graph, &mut out)?;
        }
    }
    let _ = decoder.send_eof();
    drain(&mut decoder, &mut graph, &mut out)?;
    if let Some(g) = graph.as_mut() {
        g.push_eof()?;
        collect(g, &mut out);
    }
    Ok(out)
}

fn collect(graph: &mut AudioGraph, out: &mut Stereo) {
    while let Some(f) = graph.pull() {
        let n = f.samples() * 2;
        let data: &[f32] = f.plane(0);
        out.samples.extend_from_slice(&data[..n.min(data.len())]);
    }
}
