//! Tracking within a shot: detections linked from frame to frame by overlap, short gaps
//! bridged, and boxes and landmarks smoothed over time (a Gaussian over the neighbouring
//! frames, without lag since the whole shot is known) so that the swap does not jitter.

use serde::{Deserialize, Serialize};

use crate::vision::mtcnn::Detection;

/// One face followed through a shot: its detection (smoothed) in each frame it is in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Track {
    /// Indexed by frame of the shot; `None` where the face is not seen.
    pub frames: Vec<Option<Detection>>,
}

impl Track {
    pub fn len(&self) -> usize {
        self.frames.iter().filter(|f| f.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Mean face height over the frames it is in.
    pub fn mean_size(&self) -> f32 {
        let (s, n) = self
            .frames
            .iter()
            .flatten()
            .fold((0.0, 0), |(s, n), d| (s + d.height(), n + 1));
        if n == 0 {
            0.0
        } else {
            s / n as f32
        }
    }

    /// First frame it is in.
    pub fn first(&self) -> usize {
        self.frames.iter().position(|f| f.is_some()).unwrap_or(0)
    }
}

/// Settings of the tracker.
#[derive(Debug, Clone, Copy)]
pub struct TrackOptions {
    /// Least overlap (IoU) of boxes in consecutive frames to be the same face.
    pub min_iou: f32,
    /// Frames a face may be missed and still be the same track (filled by interpolation).
    pub max_gap: usize,
    /// Tracks seen in fewer frames are dropped (false detections flicker).
    pub min_frames: usize,
    /// Standard deviation of the temporal smoothing, in frames (0: none).
    pub sigma: f32,
    /// Faces scoring below this are ignored.
    pub min_score: f32,
}

impl Default for TrackOptions {
    fn default() -> Self {
        TrackOptions {
            min_iou: 0.3,
            max_gap: 5,
            min_frames: 3,
            sigma: 1.5,
            min_score: 0.9,
        }
    }
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    inter / (area(a) + area(b) - inter).max(1e-6)
}

fn lerp(a: &Detection, b: &Detection, t: f32) -> Detection {
    let l = |x: f32, y: f32| x + (y - x) * t;
    let mut d = a.clone();
    for i in 0..4 {
        d.bbox[i] = l(a.bbox[i], b.bbox[i]);
    }
    for k in 0..5 {
        for c in 0..2 {
            d.landmarks[k][c] = l(a.landmarks[k][c], b.landmarks[k][c]);
        }
    }
    d.score = a.score.min(b.score);
    d
}

/// Links the detections of consecutive frames into tracks, largest faces first.
pub fn track(frames: &[Vec<Detection>], opts: &TrackOptions) -> Vec<Track> {
    let n = frames.len();
    let mut tracks: Vec<Track> = Vec::new();
    // Index of the last frame each track was seen in.
    let mut last_seen: Vec<usize> = Vec::new();
    for (f, dets) in frames.iter().enumerate() {
        let mut dets: Vec<&Detection> = dets.iter().filter(|d| d.score >= opts.min_score).collect();
        dets.sort_by(|a, b| b.height().total_cmp(&a.height()));
        let mut taken = vec![false; tracks.len()];
        for d in dets {
            let best = tracks
                .iter()
                .enumerate()
                .filter(|(i, _)| !taken[*i] && f - last_seen[*i] <= opts.max_gap + 1)
                .map(|(i, t)| {
                    (
                        i,
                        iou(&t.frames[last_seen[i]].as_ref().unwrap().bbox, &d.bbox),
                    )
                })
                .filter(|(_, o)| *o >= opts.min_iou)
                .max_by(|a, b| a.1.total_cmp(&b.1));
            match best {
                Some((i, _)) => {
                    let from = last_seen[i];
                    let prev = tracks[i].frames[from].clone().unwrap();
                    for g in from + 1..f {
                        let t = (g - from) as f32 / (f - from) as f32;
                        tracks[i].frames[g] = Some(lerp(&prev, d, t));
                    }
                    tracks[i].frames[f] = Some(d.clone());
                    last_seen[i] = f;
                    taken[i] = true;
                }
                None => {
                    let mut t = Track {
                        frames: vec![None; n],
                    };
                    t.frames[f] = Some(d.clone());
                    tracks.push(t);
                    last_seen.push(f);
                    taken.push(true);
                }
            }
        }
    }
    let min = opts.min_frames.min(n.max(1));
    let mut tracks: Vec<Track> = tracks.into_iter().filter(|t| t.len() >= min).collect();
    for t in &mut tracks {
        smooth(t, opts.sigma);
    }
    tracks.sort_by(|a, b| b.mean_size().total_cmp(&a.mean_size()));
    tracks
}

/// Gaussian smoothing of boxes and landmarks over the frames of each run of the track.
pub fn smooth(track: &mut Track, sigma: f32) {
    if sigma <= 0.0 {
        return;
    }
    let radius = (sigma * 3.0).ceil() as isize;
    let weights: Vec<f32> = (-radius..=radius)
        .map(|k| (-(k * k) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let orig = track.frames.clone();
    let n = orig.len() as isize;
    for f in 0..n {
        let Some(centre) = &orig[f as usize] else {
            continue;
        };
        let mut acc = [0f32; 14];
        let mut wsum = 0.0;
        for k in -radius..=radius {
            let g = f + k;
            if g < 0 || g >= n {
                continue;
            }
            // Only the same run of frames (a gap ends the smoothing window).
            let run = if k < 0 { g..f } else { f..g + 1 };
            if run.clone().any(|i| orig[i as usize].is_none()) {
                continue;
            }
            let d = orig[g as usize].as_ref().unwrap();
            let w = weights[(k + radius) as usize];
            for (a, b) in acc.iter_mut().zip(d.bbox) {
                *a += w * b;
            }
            for j in 0..5 {
                acc[4 + 2 * j] += w * d.landmarks[j][0];
                acc[5 + 2 * j] += w * d.landmarks[j][1];
            }
            wsum += w;
        }
        let mut d = centre.clone();
        for (b, a) in d.bbox.iter_mut().zip(acc) {
            *b = a / wsum;
        }
        for j in 0..5 {
            d.landmarks[j] = [acc[4 + 2 * j] / wsum, acc[5 + 2 * j] / wsum];
        }
        track.frames[f as usize] = Some(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x: f32, jitter: f32) -> Detection {
        Detection {
            bbox: [x + jitter, 10.0, x + 40.0 + jitter, 60.0],
            score: 0.99,
            landmarks: [[x + 12.0 + jitter, 30.0]; 5],
        }
    }

    #[test]
    fn two_faces_become_two_tracks_and_gaps_are_bridged() {
        let frames: Vec<Vec<Detection>> = (0..10)
            .map(|f| {
                let mut v = vec![det(200.0, 0.0)];
                if f != 4 {
                    v.push(det(10.0 + f as f32, 0.0));
                }
                v
            })
            .collect();
        let tracks = track(&frames, &TrackOptions::default());
        assert_eq!(tracks.len(), 2);
        assert!(tracks.iter().all(|t| t.len() == 10));
        let moving = tracks
            .iter()
            .find(|t| t.frames[0].as_ref().unwrap().bbox[0] < 100.0)
            .unwrap();
        let mid = moving.frames[4].as_ref().unwrap().bbox[0];
        assert!((mid - 14.0).abs() < 0.01, "{mid}");
    }

    #[test]
    fn smoothing_removes_jitter() {
        let frames: Vec<Vec<Detection>> = (0..30)
            .map(|f| vec![det(50.0, if f % 2 == 0 { 2.0 } else { -2.0 })])
            .collect();
        let tracks = track(&frames, &TrackOptions::default());
        let xs: Vec<f32> = tracks[0].frames[5..25]
            .iter()
            .map(|d| d.as_ref().unwrap().landmarks[0][0])
            .collect();
        let spread = xs.iter().cloned().fold(f32::MIN, f32::max)
            - xs.iter().cloned().fold(f32::MAX, f32::min);
        assert!(spread < 0.5, "{xs:?}");
    }

    #[test]
    fn flickers_are_dropped() {
        let mut frames: Vec<Vec<Detection>> = vec![Vec::new(); 10];
        frames[3].push(det(50.0, 0.0));
        assert!(track(&frames, &TrackOptions::default()).is_empty());
    }
}
