//! How well melodies fit the harmony: benjamin's sampling under the harmony mask, the melody
//! model sampled with no mask (what it learned on its own), and uniformly random pitches with
//! the same rhythm. Run by benches/music_rtf.sh:
//!
//!     cargo run --release --example music_fit [SEEDS]

use benjamin::film::Genre;
use benjamin::music::melody::{sample_melody, MelodyRequest};
use benjamin::music::{compose_score, cue_rng, MelodyModel, SceneBrief};
use benjamin::progress::Progress;
use rand::Rng;

#[derive(Default)]
struct Tally {
    notes: usize,
    chord: usize,
    scale: usize,
    fit: usize,
}

impl Tally {
    fn line(&self, what: &str) -> String {
        let pct = |n: usize| 100.0 * n as f64 / self.notes.max(1) as f64;
        format!(
            "{what:<28} {:>6} notes  fit {:>5.1}%  chord tones {:>5.1}%  in scale {:>5.1}%",
            self.notes,
            pct(self.fit),
            pct(self.chord),
            pct(self.scale)
        )
    }
}

fn main() -> anyhow::Result<()> {
    let seeds: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5);
    let (model, _) = MelodyModel::load(None)?;
    let scenes: Vec<SceneBrief> = (0..12)
        .map(|i| SceneBrief {
            number: i + 1,
            start: i as f64 * 15.0,
            duration: 15.0,
            tension: (i as f64 * 0.29) % 1.0,
        })
        .collect();
    let (mut masked, mut alone, mut random) =
        (Tally::default(), Tally::default(), Tally::default());
    for genre in Genre::ALL {
        for seed in 1..=seeds {
            let score = compose_score(genre, seed, &scenes, &model, &Progress::hidden())?;
            let (fit, total) = benjamin::music::melody::score_harmony_fit(&score);
            masked.notes += total;
            masked.fit += fit;
            for cue in &score.cues {
                let key = cue.key();
                let chord_at = |t: u32| {
                    cue.chords
                        .iter()
                        .find(|c| t >= c.start && t < c.start + c.length)
                        .map(|c| c.chord)
                };
                let m = cue.melody().expect("a melody part");
                for n in &m.notes {
                    let c = chord_at(n.start).expect("a chord");
                    masked.chord += usize::from(c.contains(n.pitch));
                    masked.scale += usize::from(key.contains(n.pitch) || c.contains(n.pitch));
                }
                let req = MelodyRequest {
                    chords: &cue.chords,
                    key,
                    ticks: cue.ticks,
                    lo: m.instrument.lo,
                    hi: m.instrument.hi,
                    durations: &cue.plan.durations,
                    temperature: 0.9,
                    rest_bias: 0.0,
                    velocity: 80,
                    constrained: false,
                };
                let mut rng = cue_rng(seed + 1000, cue.scene);
                let notes = sample_melody(&model, &req, &mut rng)?;
                let (lo, hi) = (
                    m.instrument.lo.max(benjamin::music::model::LOWEST),
                    m.instrument.hi.min(benjamin::music::model::HIGHEST),
                );
                for n in &notes {
                    let c = chord_at(n.start).expect("a chord");
                    alone.notes += 1;
                    alone.chord += usize::from(c.contains(n.pitch));
                    alone.fit += usize::from(c.contains(n.pitch));
                    alone.scale += usize::from(key.contains(n.pitch) || c.contains(n.pitch));
                    let r = rng.random_range(lo..=hi);
                    random.notes += 1;
                    random.chord += usize::from(c.contains(r));
                    random.fit += usize::from(c.contains(r));
                    random.scale += usize::from(key.contains(r) || c.contains(r));
                }
            }
        }
    }
    println!(
        "melody notes over 3 genres x {seeds} seeds x 12 scenes of 15 s (fit = chord tone, or marked passing tone):"
    );
    println!("{}", masked.line("benjamin (harmony mask)"));
    println!("{}", alone.line("melody model, no mask"));
    println!("{}", random.line("uniform random pitches"));
    Ok(())
}
