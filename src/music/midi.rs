//! The score as a standard MIDI file (format 1): a conductor track with each cue's tempo,
//! meter, key and a marker naming its scene, then one track per instrument.

use midly::num::{u15, u24, u28, u4, u7};
use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};

use super::score::{Score, PPQ};

/// Where each cue starts in the file, in ticks: story time run through the tempo map (each
/// cue's tempo holds until the next cue), rounded from the exact running total.
pub fn cue_start_ticks(score: &Score) -> Vec<u64> {
    let mut out = Vec::with_capacity(score.cues.len());
    let mut exact = 0.0f64;
    let mut time = 0.0f64;
    let mut tempo = score.cues.first().map(|c| c.plan.tempo).unwrap_or(120.0);
    for cue in &score.cues {
        exact += (cue.start - time).max(0.0) * tempo / 60.0 * PPQ as f64;
        out.push(exact.round() as u64);
        time = cue.start.max(time);
        tempo = cue.plan.tempo;
    }
    out
}

struct Event<'a> {
    tick: u64,
    /// Order among events at one tick: meta first, then note-offs, then note-ons.
    order: u8,
    kind: TrackEventKind<'a>,
}

fn to_track(mut events: Vec<Event<'_>>) -> Vec<TrackEvent<'_>> {
    events.sort_by_key(|e| (e.tick, e.order));
    let mut last = 0;
    let mut track: Vec<TrackEvent> = events
        .into_iter()
        .map(|e| {
            let delta = (e.tick - last) as u32;
            last = e.tick;
            TrackEvent {
                delta: u28::new(delta),
                kind: e.kind,
            }
        })
        .collect();
    track.push(TrackEvent {
        delta: u28::new(0),
        kind: TrackEventKind::Meta(MetaMessage::EndOfTrack),
    });
    track
}

fn meta(tick: u64, m: MetaMessage<'_>) -> Event<'_> {
    Event {
        tick,
        order: 0,
        kind: TrackEventKind::Meta(m),
    }
}

fn midi(tick: u64, order: u8, channel: u8, message: MidiMessage) -> Event<'static> {
    Event {
        tick,
        order,
        kind: TrackEventKind::Midi {
            channel: u4::new(channel),
            message,
        },
    }
}

/// The bytes of the MIDI file.
pub fn write_midi(score: &Score) -> Vec<u8> {
    let starts = cue_start_ticks(score);
    let markers: Vec<String> = score
        .cues
        .iter()
        .map(|c| {
            format!(
                "Scene {}: {}, {} bpm, tension {:.2}",
                c.scene,
                c.plan.key.name(),
                c.plan.tempo,
                c.tension
            )
        })
        .collect();
    let names: Vec<String> = score.band.iter().map(|i| i.name.clone()).collect();
    let title = format!("benjamin: {} score, seed {}", score.genre, score.seed);

    let mut conductor = vec![meta(0, MetaMessage::TrackName(title.as_bytes()))];
    for ((cue, start), marker) in score.cues.iter().zip(&starts).zip(&markers) {
        let micros = (60_000_000.0 / cue.plan.tempo).round() as u32;
        let (sharps, minor) = cue.plan.key.signature();
        conductor.push(meta(*start, MetaMessage::Tempo(u24::new(micros))));
        conductor.push(meta(
            *start,
            MetaMessage::TimeSignature(cue.plan.beats, 2, 24, 8),
        ));
        conductor.push(meta(*start, MetaMessage::KeySignature(sharps, minor)));
        conductor.push(meta(*start, MetaMessage::Marker(marker.as_bytes())));
    }
    let mut tracks = vec![to_track(conductor)];
    for (i, inst) in score.band.iter().enumerate() {
        let ch = inst.channel;
        let mut events = vec![
            meta(0, MetaMessage::TrackName(names[i].as_bytes())),
            midi(
                0,
                1,
                ch,
                MidiMessage::ProgramChange {
                    program: u7::new(inst.program),
                },
            ),
        ];
        for (cue, start) in score.cues.iter().zip(&starts) {
            let Some(part) = cue.parts.get(i) else {
                continue;
            };
            for n in &part.notes {
                let on = start + n.start as u64;
                events.push(midi(
                    on,
                    3,
                    ch,
                    MidiMessage::NoteOn {
                        key: u7::new(n.pitch),
                        vel: u7::new(n.velocity.clamp(1, 127)),
                    },
                ));
                events.push(midi(
                    on + n.length as u64,
                    2,
                    ch,
                    MidiMessage::NoteOff {
                        key: u7::new(n.pitch),
                        vel: u7::new(0),
                    },
                ));
            }
        }
        tracks.push(to_track(events));
    }
    let smf = Smf {
        header: Header::new(Format::Parallel, Timing::Metrical(u15::new(PPQ as u16))),
        tracks,
    };
    let mut bytes = Vec::new();
    smf.write_std(&mut bytes)
        .expect("writing MIDI to memory cannot fail");
    bytes
}
