//! Shot detection over the measurements of a scan: hard cuts (a content detector, or an
//! adaptive one that compares each difference with its neighbours so camera motion does not
//! cut), fades through black, and dissolves.

use serde::{Deserialize, Serialize};

use super::scan::{FrameStats, DISSOLVE_LAG};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// A cut where the frame-to-frame difference passes a fixed threshold.
    Content,
    /// A cut where the difference stands out from its neighbours' (the default).
    Adaptive,
}

/// How a shot begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transition {
    /// The first shot of the source.
    Start,
    Cut,
    /// Out of black.
    Fade,
    Dissolve,
}

/// The detector's settings; the defaults are PySceneDetect's where it has the same knob.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DetectorConfig {
    pub method: Method,
    /// Content method: the difference (0-255) that makes a cut.
    pub threshold: f32,
    /// Adaptive method: how many times its neighbours' average a difference must be.
    pub adaptive_ratio: f32,
    /// Adaptive method: the smallest difference that can be a cut at all.
    pub min_content: f32,
    /// Adaptive method: neighbours on each side.
    pub window: usize,
    /// No shot shorter than this many frames.
    pub min_shot_frames: usize,
    /// Mean luma (0-255) under which a frame is black.
    pub black_luma: f32,
    /// The difference across [`DISSOLVE_LAG`] frames that can be a dissolve.
    pub dissolve_threshold: f32,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            method: Method::Adaptive,
            threshold: 27.0,
            adaptive_ratio: 3.0,
            min_content: 15.0,
            window: 2,
            min_shot_frames: 15,
            black_luma: 12.0,
            dissolve_threshold: 30.0,
        }
    }
}

impl DetectorConfig {
    /// Half the smallest frame-to-frame difference that can make a cut: where two decoded
    /// pictures a few frames apart differ by this much (or one is black and the other not),
    /// a sparse scan decodes the frames between them.
    pub fn refine_above(&self) -> f32 {
        0.5 * match self.method {
            Method::Content => self.threshold,
            Method::Adaptive => self.min_content.min(self.threshold),
        }
    }

    /// For the adaptive detector, three quarters of the ratio to its neighbours a cut must reach: a
    /// sparse scan looks closer only at steps that stand out this much from the steps
    /// around them. The content detector has no ratio (0).
    pub fn refine_ratio(&self) -> f32 {
        match self.method {
            Method::Content => 0.0,
            Method::Adaptive => 0.75 * self.adaptive_ratio,
        }
    }
}

/// A shot: frames `start..end` of the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShotSpan {
    pub start: usize,
    pub end: usize,
    pub transition: Transition,
}

/// A boundary between shots: the new shot starts at `frame`; frames in `gap` (a black run
/// or the body of a dissolve) belong to neither shot.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Boundary {
    frame: usize,
    gap: (usize, usize),
    kind: Transition,
}

/// Finds the shots of a scanned source.
pub struct ShotDetector {
    pub config: DetectorConfig,
}

impl ShotDetector {
    pub fn new(config: DetectorConfig) -> Self {
        ShotDetector { config }
    }

    /// The frames where a new shot begins (a hard cut's first frame, the first frame out of
    /// black, the middle of a dissolve): what benchmarks compare with the truth.
    pub fn cut_frames(&self, frames: &[FrameStats]) -> Vec<usize> {
        self.boundaries(frames).iter().map(|b| b.frame).collect()
    }

    /// The shots, without black frames or the frames of a dissolve.
    pub fn shots(&self, frames: &[FrameStats]) -> Vec<ShotSpan> {
        let n = frames.len();
        let black = self.black(frames);
        let mut shots = Vec::new();
        let mut start = 0;
        let mut kind = Transition::Start;
        let mut push = |a: usize, b: usize, kind: Transition| {
            // Trim black at the ends (a source that opens or closes on black).
            let (mut a, mut b) = (a, b);
            while a < b && black[a] {
                a += 1;
            }
            while b > a && black[b - 1] {
                b -= 1;
            }
            if b > a {
                shots.push(ShotSpan {
                    start: a,
                    end: b,
                    transition: kind,
                });
            }
        };
        for bd in self.boundaries(frames) {
            push(start, bd.gap.0, kind);
            start = bd.gap.1;
            kind = bd.kind;
        }
        push(start, n, kind);
        shots
    }

    fn black(&self, frames: &[FrameStats]) -> Vec<bool> {
        frames
            .iter()
            .map(|f| f.luma < self.config.black_luma)
            .collect()
    }

    fn boundaries(&self, frames: &[FrameStats]) -> Vec<Boundary> {
        let c = &self.config;
        let n = frames.len();
        let black = self.black(frames);
        let mut found: Vec<Boundary> = Vec::new();

        // Fades: a run of black frames between pictures.
        let mut t = 0;
        while t < n {
            if black[t] {
                let a = t;
                while t < n && black[t] {
                    t += 1;
                }
                if a > 0 && t < n {
                    found.push(Boundary {
                        frame: t,
                        gap: (a, t),
                        kind: Transition::Fade,
                    });
                }
            } else {
                t += 1;
            }
        }

        // Hard cuts, away from black (a fade's edges are not cuts).
        let is_cut = |t: usize| -> bool {
            let v = frames[t].content;
            match c.method {
                Method::Content => v >= c.threshold,
                Method::Adaptive => {
                    if v < c.min_content {
                        return false;
                    }
                    let lo = t.saturating_sub(c.window).max(1);
                    let hi = (t + c.window).min(n - 1);
                    let neighbours: Vec<f32> = (lo..=hi)
                        .filter(|&s| s != t)
                        .map(|s| frames[s].content)
                        .collect();
                    if neighbours.is_empty() {
                        return v >= c.threshold;
                    }
                    let avg = neighbours.iter().sum::<f32>() / neighbours.len() as f32;
                    v >= c.adaptive_ratio * avg.max(1e-3)
                }
            }
        };
        for t in 1..n {
            if !black[t] && !black[t - 1] && is_cut(t) {
                found.push(Boundary {
                    frame: t,
                    gap: (t, t),
                    kind: Transition::Cut,
                });
            }
        }

        // Dissolves: the difference across DISSOLVE_LAG frames peaks, well above what it is
        // a lag and a half before and after (the shots either side are each steady), and no
        // single step carries it (that would be a hard cut). Camera motion keeps the lagged
        // difference high for as long as it lasts, so it makes no peak.
        let lag = DISSOLVE_LAG;
        let reach = lag + lag / 2;
        let lagged = |t: usize| frames.get(t).map_or(0.0, |f| f.lagged);
        let is_dissolve = |t: usize| -> bool {
            let v = lagged(t);
            if t < lag || v < c.dissolve_threshold {
                return false;
            }
            let lo = t.saturating_sub(lag);
            let hi = (t + lag).min(n - 1);
            // The highest point of its neighbourhood (the first, on a plateau).
            if (lo..=hi).any(|s| lagged(s) > v || (s < t && lagged(s) == v)) {
                return false;
            }
            let either_side = lagged(t.saturating_sub(reach)).max(lagged(t + reach));
            let step = frames[t + 1 - lag..=t]
                .iter()
                .map(|f| f.content)
                .fold(0f32, f32::max);
            v >= 2.0 * either_side && step < 0.5 * v
        };
        // A cut or fade near the lagged window explains the change already.
        let hard = found.clone();
        let near_other = |t: usize| {
            hard.iter()
                .any(|b| b.gap.0 <= t + reach && t < b.gap.1 + reach)
        };
        for t in lag..n {
            // A fade's ramps look like a dissolve: nothing near black is one.
            let near_black = (t.saturating_sub(2 * lag)..(t + lag).min(n)).any(|s| black[s]);
            if is_dissolve(t) && !near_black && !near_other(t) {
                // The lagged window ends at the peak: the dissolve's middle is half a lag back.
                let centre = t - lag / 2;
                let half = lag / 2;
                found.push(Boundary {
                    frame: centre,
                    gap: (centre.saturating_sub(half), (centre + half).min(n)),
                    kind: Transition::Dissolve,
                });
            }
        }

        // Order, then keep every shot at least min_shot_frames long (earlier boundaries win).
        found.sort_by_key(|b| b.frame);
        let mut kept: Vec<Boundary> = Vec::new();
        let mut last = 0usize;
        for b in found {
            if b.frame >= last + c.min_shot_frames {
                last = b.frame;
                kept.push(b);
            }
        }
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(contents: &[f32]) -> Vec<FrameStats> {
        contents
            .iter()
            .map(|&c| FrameStats {
                content: c,
                luma: 120.0,
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn content_and_adaptive_find_a_clean_cut() {
        let mut v = vec![1.0; 60];
        v[30] = 80.0;
        for method in [Method::Content, Method::Adaptive] {
            let d = ShotDetector::new(DetectorConfig {
                method,
                ..Default::default()
            });
            assert_eq!(d.cut_frames(&frames(&v)), vec![30]);
            let shots = d.shots(&frames(&v));
            assert_eq!(shots.len(), 2);
            assert_eq!((shots[1].start, shots[1].end), (30, 60));
        }
    }

    #[test]
    fn adaptive_ignores_steady_fast_motion_that_content_cuts() {
        // A fast pan: every step is large, none stands out.
        let mut v = vec![35.0; 60];
        v[0] = 0.0;
        let content = ShotDetector::new(DetectorConfig {
            method: Method::Content,
            ..Default::default()
        });
        let adaptive = ShotDetector::new(DetectorConfig::default());
        assert!(!content.cut_frames(&frames(&v)).is_empty());
        assert!(adaptive.cut_frames(&frames(&v)).is_empty());
    }

    #[test]
    fn cuts_closer_than_the_minimum_shot_are_dropped() {
        let mut v = vec![1.0; 60];
        v[20] = 80.0;
        v[25] = 80.0;
        let d = ShotDetector::new(DetectorConfig::default());
        assert_eq!(d.cut_frames(&frames(&v)), vec![20]);
    }

    #[test]
    fn a_black_run_is_a_fade_and_belongs_to_no_shot() {
        let mut f = frames(&[1.0; 60]);
        for x in &mut f[28..32] {
            x.luma = 2.0;
        }
        let d = ShotDetector::new(DetectorConfig::default());
        assert_eq!(d.cut_frames(&f), vec![32]);
        let shots = d.shots(&f);
        assert_eq!((shots[0].end, shots[1].start), (28, 32));
        assert_eq!(shots[1].transition, Transition::Fade);
    }
}
