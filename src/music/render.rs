//! Playing cues through a General MIDI SoundFont with rustysynth: a stereo WAV per cue, exactly
//! as long as its scene, faded in and out at the scene boundaries, never clipped.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Result};
use rustysynth::{SoundFont, Synthesizer, SynthesizerSettings};

use super::genre::Role;
use super::score::CueScore;

/// Debian's csound-soundfont (public domain), installed by scripts/setup.sh.
pub const DEFAULT_SOUNDFONT: &str = "/usr/share/sounds/sf2/sf_GMbank.sf2";
pub const SAMPLE_RATE: u32 = 44_100;
/// Fade at the start and end of each cue, seconds (at most a quarter of the cue each).
pub const FADE_IN: f64 = 0.3;
pub const FADE_OUT: f64 = 0.6;
/// Highest peak of a cue: -1 dBFS.
pub const PEAK: f32 = 0.891;

const FIX: &str = "install Debian's General MIDI SoundFont (`apt-get install csound-soundfont`, \
which scripts/setup.sh does) or point benjamin at another .sf2 file with `soundfont = \"FILE.sf2\"` \
in film.toml or `benjamin make --soundfont FILE.sf2`";

/// A loaded SoundFont and what the credits say about it.
pub struct LoadedFont {
    pub font: Arc<SoundFont>,
    pub path: PathBuf,
    /// The bank's name as the file gives it.
    pub name: String,
    /// The copyright or licence the file states (empty when it states none).
    pub copyright: String,
}

impl LoadedFont {
    /// The credit line naming the SoundFont and its licence.
    pub fn credit(&self) -> String {
        let file = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let licence = if self.path == Path::new(DEFAULT_SOUNDFONT) {
            "Debian csound-soundfont, public domain".to_string()
        } else if self.copyright.trim().is_empty() {
            "licence not stated in the file".to_string()
        } else {
            self.copyright.trim().to_string()
        };
        format!(
            "played on the SoundFont {file} ({}; {licence})",
            self.name.trim()
        )
    }
}

/// Reads and checks a SoundFont, naming the file and the fix when it is missing, truncated or
/// something else.
pub fn load_soundfont(path: &Path) -> Result<LoadedFont> {
    let bytes = std::fs::read(path).map_err(|e| {
        anyhow::anyhow!("cannot read the SoundFont {} ({e}): {FIX}", path.display())
    })?;
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"sfbk" {
        bail!(
            "{} is not a SoundFont 2 file (it lacks the RIFF sfbk header): {FIX}",
            path.display()
        );
    }
    let declared = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize + 8;
    if declared > bytes.len() {
        bail!(
            "the SoundFont {} is truncated (its header promises {declared} bytes, the file has {}): {FIX}",
            path.display(),
            bytes.len()
        );
    }
    // The reader may panic on a damaged file rather than return an error.
    let parsed = std::panic::catch_unwind(|| SoundFont::new(&mut &bytes[..]));
    let font = match parsed {
        Ok(Ok(font)) => font,
        Ok(Err(e)) => bail!("the SoundFont {} is damaged ({e}): {FIX}", path.display()),
        Err(_) => bail!(
            "the SoundFont {} is damaged (the SoundFont reader gave up on it): {FIX}",
            path.display()
        ),
    };
    if font.get_presets().is_empty() {
        bail!(
            "the SoundFont {} holds no instruments: {FIX}",
            path.display()
        );
    }
    let info = font.get_info();
    Ok(LoadedFont {
        name: info.get_bank_name().to_string(),
        copyright: info.get_copyright().to_string(),
        path: path.to_path_buf(),
        font: Arc::new(font),
    })
}

/// Pan (0 left, 127 right) and reverb send of each role: a small stage.
fn placement(role: Role) -> (i32, i32) {
    match role {
        Role::Melody => (64, 50),
        Role::Harmony => (42, 60),
        Role::Bass => (60, 25),
        Role::Drums => (82, 35),
        Role::Drone => (50, 70),
        Role::Arpeggio => (88, 55),
    }
}

/// A rendered cue: left and right channels.
pub struct Stereo {
    pub left: Vec<f32>,
    pub right: Vec<f32>,
}

/// Renders one cue: exactly `round(duration * rate)` frames, faded, peak at most -1 dBFS.
pub fn render_cue(cue: &CueScore, font: &LoadedFont, rate: u32) -> Result<Stereo> {
    let mut settings = SynthesizerSettings::new(rate as i32);
    settings.maximum_polyphony = 128;
    let mut synth = Synthesizer::new(&font.font, &settings)
        .map_err(|e| anyhow::anyhow!("cannot start the synthesizer: {e}"))?;
    let frames = (cue.duration * rate as f64).round() as usize;
    // (frame, order, channel, command, data1, data2); note-offs sort before note-ons.
    let mut events: Vec<(usize, u8, i32, i32, i32, i32)> = Vec::new();
    let spt = cue.seconds_per_tick();
    for part in &cue.parts {
        let ch = part.instrument.channel as i32;
        let (pan, reverb) = placement(part.instrument.role);
        for (cc, value) in [(7, 100), (10, pan), (91, reverb)] {
            synth.process_midi_message(ch, 0xB0, cc, value);
        }
        synth.process_midi_message(ch, 0xC0, part.instrument.program as i32, 0);
        for n in &part.notes {
            let at = |tick: u32| (tick as f64 * spt * rate as f64).round() as usize;
            events.push((at(n.start), 1, ch, 0x90, n.pitch as i32, n.velocity as i32));
            events.push((at(n.end()), 0, ch, 0x80, n.pitch as i32, 0));
        }
    }
    events.sort_by_key(|e| (e.0, e.1));
    let mut left = vec![0f32; frames];
    let mut right = vec![0f32; frames];
    let mut pos = 0;
    for (frame, _, ch, command, d1, d2) in events {
        if frame >= frames {
            break;
        }
        if frame > pos {
            crate::progress::check_interrupted()?;
            synth.render(&mut left[pos..frame], &mut right[pos..frame]);
            pos = frame;
        }
        synth.process_midi_message(ch, command, d1, d2);
    }
    if pos < frames {
        synth.render(&mut left[pos..], &mut right[pos..]);
    }
    let mut out = Stereo { left, right };
    fade(&mut out, rate);
    limit(&mut out);
    Ok(out)
}

/// Raised-cosine fades at both ends (so butting cues cross over smoothly).
fn fade(s: &mut Stereo, rate: u32) {
    let n = s.left.len();
    let fin = ((FADE_IN * rate as f64) as usize).min(n / 4);
    let fout = ((FADE_OUT * rate as f64) as usize).min(n / 4);
    let curve = |i: usize, len: usize| {
        0.5 - 0.5 * (std::f32::consts::PI * (i as f32 + 0.5) / len as f32).cos()
    };
    for i in 0..fin {
        let g = curve(i, fin);
        s.left[i] *= g;
        s.right[i] *= g;
    }
    for i in 0..fout {
        let g = curve(i, fout);
        s.left[n - 1 - i] *= g;
        s.right[n - 1 - i] *= g;
    }
}

/// Scales the cue down when its peak passes -1 dBFS; never up.
fn limit(s: &mut Stereo) {
    let peak = s
        .left
        .iter()
        .chain(&s.right)
        .fold(0f32, |m, x| m.max(x.abs()));
    if peak > PEAK {
        let g = PEAK / peak;
        for x in s.left.iter_mut().chain(s.right.iter_mut()) {
            *x *= g;
        }
    }
}

/// Writes a 16-bit stereo WAV atomically.
pub fn write_wav(path: &Path, s: &Stereo, rate: u32) -> Result<()> {
    let q = |x: f32| (x * i16::MAX as f32).round().clamp(-32767.0, 32767.0) as i16;
    let frames = s.left.iter().zip(&s.right);
    crate::media::audio::write_wav(path, 2, rate, frames.flat_map(|(l, r)| [q(*l), q(*r)]))
}
