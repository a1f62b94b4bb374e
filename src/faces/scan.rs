//! Scanning: the faces of each chosen shot found (MTCNN on frames scaled down to
//! [`DETECT_SIDE`]) and followed from frame to frame, and the aligned faces the swap model
//! trains on, from the shots and from the actors' photos.
//!
//! A shot's tracks are kept in `faces/scans/` (see [`Items`]), so a rerun after a kill does not
//! look for them again; the training crops are not kept, so a rerun that must train scans anew.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::actors::{self, Actor};
use super::align::{alignment, warp};
use super::track::{track, Track, TrackOptions};
use crate::edl::Shot;
use crate::fsutil;
use crate::items::{key_of, Items};
use crate::media::source;
use crate::progress::Progress;
use crate::vision::detect::for_each_frame;
use crate::vision::image::Planar;
use crate::vision::mtcnn::{Detection, Mtcnn};

/// Detection runs on frames scaled down to at most this many pixels on their long side.
pub const DETECT_SIDE: u32 = 640;
/// At most this many aligned faces per identity are kept for training.
pub const MAX_TRAINING_FACES: usize = 400;
/// The folder of the kept scans inside the stage's folder.
pub const SCANS_DIR: &str = "scans";

/// What was found in one shot: its tracked faces, biggest first, and how it was read.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ShotScan {
    pub tracks: Vec<Track>,
    pub frames: usize,
    pub fps: f64,
    pub still: bool,
}

/// The scans of `shots`, with aligned `resolution`-sized crops of their faces when
/// `want_crops` (a scan kept from an earlier run is used only when crops are not wanted).
pub fn scan_shots(
    det: &Mtcnn,
    shots: &[Shot],
    resolution: usize,
    want_crops: bool,
    dir: &Path,
    progress: &Progress,
) -> Result<(Vec<ShotScan>, Vec<Planar>)> {
    let total_frames: usize = shots
        .iter()
        .map(|s| ((s.out_point - s.in_point) * 30.0).round().max(1.0) as usize)
        .sum();
    let bar = progress.bar(total_frames as u64, "detecting", "frames");
    let mut kept: Items<()> = Items::open(&dir.join(SCANS_DIR));
    let mut crops = Vec::new();
    let mut scans = Vec::new();
    for (i, shot) in shots.iter().enumerate() {
        let name = format!("{:03}.json", i + 1);
        let source_id = fsutil::fingerprint_file(&shot.source).unwrap_or_default();
        let key = key_of(&(
            &source_id,
            shot.in_point,
            shot.out_point,
            DETECT_SIDE,
            env!("CARGO_PKG_VERSION"),
        ));
        let path = kept.dir().join(&name);
        let earlier = match kept.get(&name, &key) {
            Some(()) if !want_crops => std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<ShotScan>(&b).ok()),
            _ => None,
        };
        let scan = match earlier {
            Some(scan) => {
                bar.inc(((shot.out_point - shot.in_point) * 30.0).round() as u64);
                scan
            }
            None => {
                let scan = scan_shot(det, shot, resolution, &mut crops, &bar)
                    .with_context(|| format!("finding faces in {}", shot.source.display()))?;
                fsutil::write_atomic(&path, &serde_json::to_vec(&scan)?)?;
                kept.put(&name, key, ())?;
                scan
            }
        };
        scans.push(scan);
    }
    bar.finish_and_clear();
    kept.prune()?;
    Ok((scans, crops))
}

/// Detects and tracks the faces of one shot, and keeps aligned crops of them for training.
fn scan_shot(
    det: &Mtcnn,
    shot: &Shot,
    resolution: usize,
    crops: &mut Vec<Planar>,
    bar: &indicatif::ProgressBar,
) -> Result<ShotScan> {
    let info = source::probe(&shot.source)?;
    let fps = if info.still {
        1.0
    } else if info.frame_rate > 0.0 {
        info.frame_rate.round().max(1.0)
    } else {
        25.0
    };
    let frames = if info.still {
        1
    } else {
        (((shot.out_point - shot.in_point) * fps).round() as usize).max(1)
    };
    let mut detections: Vec<Vec<Detection>> = Vec::with_capacity(frames);
    let side = info.width.max(info.height);
    let k = (DETECT_SIDE as f32 / side as f32).min(1.0);
    let crop_every = (frames / 60).max(1);
    for_each_frame(&shot.source, shot.in_point, frames, fps, |i, img| {
        crate::progress::check_interrupted()?;
        let small = if k < 1.0 {
            image::imageops::resize(
                img,
                (img.width() as f32 * k).round() as u32,
                (img.height() as f32 * k).round() as u32,
                image::imageops::FilterType::Triangle,
            )
        } else {
            img.clone()
        };
        let mut found = det.detect(&Planar::from_rgb(&small))?;
        for d in &mut found {
            d.bbox = d.bbox.map(|v| v / k);
            d.landmarks = d.landmarks.map(|p| p.map(|v| v / k));
        }
        if i % crop_every == 0 {
            let full = Planar::from_rgb(img);
            for d in found.iter().filter(|d| d.score >= 0.95) {
                crops.push(warp(
                    &full,
                    &alignment(&d.landmarks, resolution),
                    resolution,
                ));
            }
        }
        detections.push(found);
        bar.inc(1);
        Ok(())
    })?;
    let opts = TrackOptions {
        min_frames: 3.min(frames),
        ..Default::default()
    };
    Ok(ShotScan {
        tracks: track(&detections, &opts),
        frames,
        fps,
        still: info.still,
    })
}

/// The actor's aligned faces: the largest confident face of each photo, at most
/// [`MAX_TRAINING_FACES`].
pub fn actor_faces(det: &Mtcnn, actor: &Actor, resolution: usize) -> Result<Vec<Planar>> {
    let mut out = Vec::new();
    for photo in actor.photos()? {
        let img = fsutil::read_rgb_image(&photo)?;
        let planar = Planar::from_rgb(&img);
        let best = det
            .detect(&planar)?
            .into_iter()
            .filter(|d| d.score >= 0.9)
            .max_by(|a, b| a.height().total_cmp(&b.height()));
        if let Some(d) = best {
            out.push(warp(
                &planar,
                &alignment(&d.landmarks, resolution),
                resolution,
            ));
        }
    }
    if out.is_empty() {
        bail!(
            "actor {:?}: no face found in the photos in {} (add clear, front-facing photos with `benjamin actors add`)",
            actor.info.name,
            actor.dir.join(actors::PHOTOS_DIR).display()
        );
    }
    Ok(thin(out, MAX_TRAINING_FACES))
}

/// At most `max` faces, evenly spread over the ones given.
pub fn thin(mut faces: Vec<Planar>, max: usize) -> Vec<Planar> {
    if faces.len() > max {
        let step = faces.len() as f64 / max as f64;
        faces = (0..max)
            .map(|i| faces[(i as f64 * step) as usize].clone())
            .collect();
    }
    faces
}
