//! Conversion: each tracked face of a frame is aligned, encoded, decoded with its actor's
//! decoder, colour-matched to the face it replaces (mean and spread in CIE Lab), and blended
//! back through the learned mask, feathered at its edge, by the inverse warp. Pixels no mask
//! reaches are left exactly as they were.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::Tensor;

use super::align::{alignment, paste, template, warp};
use super::model::SwapModel;
use super::scan::ShotScan;
use super::tensors::{from_tensor, to_tensor};
use crate::edl::Shot;
use crate::fsutil::{self, AtomicFile};
use crate::items::{key_of, Items};
use crate::media::mp4::{Mp4Options, Mp4Writer};
use crate::media::source;
use crate::progress::Progress;
use crate::vision::detect::for_each_frame;
use crate::vision::image::{Planar, RgbConverter};

/// One face to replace in a frame: its (smoothed) landmarks and the decoder to paint it with.
#[derive(Debug, Clone, Copy)]
pub struct Replacement {
    pub landmarks: [[f32; 2]; 5],
    pub identity: usize,
}

fn srgb_to_linear(c: f32) -> f32 {
    if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

fn linear_to_srgb(c: f32) -> f32 {
    if c <= 0.003_130_8 {
        c * 12.92
    } else {
        1.055 * c.powf(1.0 / 2.4) - 0.055
    }
}

const WHITE: [f32; 3] = [0.950_47, 1.0, 1.088_83];

fn lab_f(t: f32) -> f32 {
    if t > 0.008_856 {
        t.cbrt()
    } else {
        7.787 * t + 16.0 / 116.0
    }
}

fn lab_finv(t: f32) -> f32 {
    if t > 0.206_893 {
        t * t * t
    } else {
        (t - 16.0 / 116.0) / 7.787
    }
}

/// RGB 0-255 -> CIE L*a*b* (D65).
pub fn rgb_to_lab(p: [f32; 3]) -> [f32; 3] {
    let [r, g, b] = p.map(|v| srgb_to_linear((v / 255.0).clamp(0.0, 1.0)));
    let x = (0.412_456_4 * r + 0.357_576_1 * g + 0.180_437_5 * b) / WHITE[0];
    let y = (0.212_672_9 * r + 0.715_152_2 * g + 0.072_175 * b) / WHITE[1];
    let z = (0.019_333_9 * r + 0.119_192 * g + 0.950_304_1 * b) / WHITE[2];
    let (fx, fy, fz) = (lab_f(x), lab_f(y), lab_f(z));
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

/// CIE L*a*b* (D65) -> RGB 0-255.
pub fn lab_to_rgb(p: [f32; 3]) -> [f32; 3] {
    let fy = (p[0] + 16.0) / 116.0;
    let fx = fy + p[1] / 500.0;
    let fz = fy - p[2] / 200.0;
    let (x, y, z) = (
        lab_finv(fx) * WHITE[0],
        lab_finv(fy) * WHITE[1],
        lab_finv(fz) * WHITE[2],
    );
    let r = 3.240_454_2 * x - 1.537_138_5 * y - 0.498_531_4 * z;
    let g = -0.969_266 * x + 1.876_010_8 * y + 0.041_556 * z;
    let b = 0.055_643_4 * x - 0.204_025_9 * y + 1.057_225_2 * z;
    [r, g, b].map(|c| linear_to_srgb(c.clamp(0.0, 1.0)) * 255.0)
}

/// Moves `face`'s colours to have `target`'s mean and spread in Lab, both measured where the
/// mask is strong (the face itself, not the background).
pub fn colour_match(face: &mut Planar, target: &Planar, mask: &Planar) {
    let n = face.width * face.height;
    let lab_f: Vec<[f32; 3]> = (0..n)
        .map(|i| rgb_to_lab([face.data[i * 3], face.data[i * 3 + 1], face.data[i * 3 + 2]]))
        .collect();
    let lab_t: Vec<[f32; 3]> = (0..n)
        .map(|i| {
            rgb_to_lab([
                target.data[i * 3],
                target.data[i * 3 + 1],
                target.data[i * 3 + 2],
            ])
        })
        .collect();
    let stats = |lab: &[[f32; 3]]| {
        let mut w = 0f64;
        let mut m = [0f64; 3];
        let mut s = [0f64; 3];
        for (i, p) in lab.iter().enumerate() {
            let a = mask.data[i] as f64;
            w += a;
            for c in 0..3 {
                m[c] += a * p[c] as f64;
                s[c] += a * (p[c] as f64).powi(2);
            }
        }
        let w = w.max(1e-6);
        let mean = m.map(|v| v / w);
        let sd = [0, 1, 2].map(|c| (s[c] / w - mean[c].powi(2)).max(0.0).sqrt());
        (mean, sd)
    };
    let (mf, sf) = stats(&lab_f);
    let (mt, st) = stats(&lab_t);
    for (i, p) in lab_f.iter().enumerate() {
        let mut q = [0f32; 3];
        for c in 0..3 {
            // The spread is never widened much: a young decoder's noise would be blown up.
            let k = if sf[c] > 1e-3 {
                (st[c] / sf[c]).clamp(0.5, 1.2)
            } else {
                1.0
            };
            q[c] = ((p[c] as f64 - mf[c]) * k + mt[c]) as f32;
        }
        let rgb = lab_to_rgb(q);
        face.data[i * 3..i * 3 + 3].copy_from_slice(&rgb);
    }
}

/// A box blur of a one-channel picture, `radius` pixels each way, edges held.
fn box_blur(m: &Planar, radius: usize) -> Planar {
    let (w, h) = (m.width, m.height);
    let r = radius as isize;
    let pass = |src: &Planar, horizontal: bool| {
        let mut out = Planar::new(w, h, 1);
        for y in 0..h {
            for x in 0..w {
                let mut s = 0.0;
                for k in -r..=r {
                    let (xx, yy) = if horizontal {
                        ((x as isize + k).clamp(0, w as isize - 1) as usize, y)
                    } else {
                        (x, (y as isize + k).clamp(0, h as isize - 1) as usize)
                    };
                    s += src.data[yy * w + xx];
                }
                out.data[y * w + x] = s / (2 * r + 1) as f32;
            }
        }
        out
    };
    pass(&pass(m, true), false)
}

/// The blending mask: the learned mask, inside an ellipse around the template's face (so the
/// square's edge never shows), shrunk a little and feathered to zero at its edge.
pub fn blend_mask(learned: &Planar) -> Planar {
    let size = learned.width;
    let mut m = super::align::face_region(size);
    for (r, l) in m.data.iter_mut().zip(&learned.data) {
        *r = if *r > 0.5 { l.clamp(0.0, 1.0) } else { 0.0 };
    }
    let radius = (size / 16).max(1);
    let mut m = box_blur(&box_blur(&m, radius), radius);
    // Feathering spreads the mask outwards too; pull the fringe down to exactly zero.
    for v in &mut m.data {
        *v = ((*v - 0.1) / 0.9).clamp(0.0, 1.0);
    }
    m
}

/// The faces of each identity (their indices), identities in order: one forward per decoder.
fn by_identity(faces: &[Replacement]) -> Vec<(usize, Vec<usize>)> {
    let mut ids: Vec<usize> = faces.iter().map(|f| f.identity).collect();
    ids.sort();
    ids.dedup();
    ids.into_iter()
        .map(|id| {
            (
                id,
                (0..faces.len())
                    .filter(|&i| faces[i].identity == id)
                    .collect(),
            )
        })
        .collect()
}

/// Replaces the faces of one frame (RGB 0-255) in place. A frame without replacements is not
/// touched at all.
pub fn swap_frame(frame: &mut Planar, faces: &[Replacement], model: &SwapModel) -> Result<()> {
    if faces.is_empty() {
        return Ok(());
    }
    #[cfg(feature = "cuda")]
    if model.device.is_cuda() {
        return swap_frame_on_gpu(frame, faces, model);
    }
    let r = model.config.resolution;
    let maps: Vec<_> = faces.iter().map(|f| alignment(&f.landmarks, r)).collect();
    let crops: Vec<Planar> = maps.iter().map(|m| warp(frame, m, r)).collect();
    // Grouped by identity: one forward per decoder.
    let mut outputs: Vec<Option<(Planar, Planar)>> = vec![None; faces.len()];
    for (id, which) in by_identity(faces) {
        let x = to_tensor(
            &which.iter().map(|&i| &crops[i]).collect::<Vec<_>>(),
            &model.device,
        )?;
        let (face, mask): (Tensor, Tensor) = model.forward(&x, id)?;
        for (k, &i) in which.iter().enumerate() {
            outputs[i] = Some((from_tensor(&face, k)?, from_tensor(&mask, k)?));
        }
    }
    for (i, out) in outputs.into_iter().enumerate() {
        let (mut face, learned) = out.expect("every face was converted");
        let mask = blend_mask(&learned);
        colour_match(&mut face, &crops[i], &mask);
        paste(frame, &face, &mask, &maps[i]);
    }
    Ok(())
}

/// [`swap_frame`] on the GPU, the same maths in benjamin's kernels
/// (`crate::nn::cuda::convert`): the frame goes up once, is cropped, painted, colour-matched
/// and pasted into there, and comes back once.
#[cfg(feature = "cuda")]
fn swap_frame_on_gpu(frame: &mut Planar, faces: &[Replacement], model: &SwapModel) -> Result<()> {
    use crate::nn::cuda::convert as gpu;
    let (dev, r) = (&model.device, model.config.resolution);
    let maps: Vec<_> = faces.iter().map(|f| alignment(&f.landmarks, r)).collect();
    let on_gpu = Tensor::from_slice(&frame.data, (frame.height, frame.width, 3), dev)?;
    let inverses: Vec<f32> = maps.iter().flat_map(|m| m.inverse().0).collect();
    let inverses = Tensor::from_vec(inverses, (faces.len(), 6), dev)?;
    let crops = gpu::align_crops(&on_gpu, &inverses, r)?;
    let region = Tensor::from_vec(super::align::face_region(r).data, (r, r), dev)?;
    // Grouped by identity: one forward per decoder; pasted in the faces' order, as on the CPU.
    let mut painted: Vec<Option<(Tensor, Tensor)>> = vec![None; faces.len()];
    for (id, which) in by_identity(faces) {
        let rows: Vec<u32> = which.iter().map(|&i| i as u32).collect();
        let x = crops.index_select(&Tensor::new(rows.as_slice(), dev)?, 0)?;
        let (face, learned) = model.forward(&x, id)?;
        let masks = gpu::blend_masks(&learned, &region)?;
        let matched = gpu::colour_match(&face, &x, &masks)?;
        for (k, &i) in which.iter().enumerate() {
            painted[i] = Some((matched.get(k)?, masks.get(k)?));
        }
    }
    for (i, out) in painted.into_iter().enumerate() {
        let (face, mask) = out.expect("every face was painted");
        let Some(footprint) = super::align::footprint(&maps[i], r, frame.width, frame.height)
        else {
            continue;
        };
        gpu::paste(&on_gpu, &face, &mask, maps[i].0, footprint)?;
    }
    frame.data = on_gpu.flatten_all()?.to_vec1()?;
    Ok(())
}

/// The faces of one shot to replace: (track, identity) pairs.
pub type SwapPlan = Vec<(usize, usize)>;

/// About how long one frame with a face takes to convert, timed on `face` (with room for
/// decoding and encoding the frame around it).
pub fn seconds_per_frame(model: &SwapModel, face: &Planar) -> Result<f64> {
    let started = Instant::now();
    let mut frame = face.clone();
    let replacement = Replacement {
        landmarks: template(model.config.resolution),
        identity: 0,
    };
    swap_frame(&mut frame, &[replacement], model)?;
    Ok(started.elapsed().as_secs_f64() * 3.0 + 0.02)
}

/// Converts every shot with faces to swap into `clips_dir` (`NNN.mp4`, or `NNN.png` for a
/// still). Returns, for each shot, its clip's name and length in seconds (`None` for a shot
/// with nothing to swap). A clip converted before by the same model from the same shot and
/// tracks is kept (see [`Items`]); `model_id` is the hash of the model's weights.
pub fn convert_shots(
    model: &SwapModel,
    model_id: &str,
    shots: &[Shot],
    scans: &[ShotScan],
    plans: &[SwapPlan],
    clips_dir: &Path,
    progress: &Progress,
) -> Result<Vec<Option<(String, f64)>>> {
    let frames: usize = scans
        .iter()
        .zip(plans)
        .filter(|(_, p)| !p.is_empty())
        .map(|(s, _)| s.frames)
        .sum();
    let bar = progress.bar(frames as u64, "swapping", "frames");
    let mut done: Items<f64> = Items::open(clips_dir);
    let mut clips = Vec::new();
    for (i, ((shot, scan), plan)) in shots.iter().zip(scans).zip(plans).enumerate() {
        if plan.is_empty() {
            clips.push(None);
            continue;
        }
        let name = format!("{:03}.{}", i + 1, if scan.still { "png" } else { "mp4" });
        let key = key_of(&(model_id, shot, scan, plan, env!("CARGO_PKG_VERSION")));
        let seconds = match done.get(&name, &key) {
            Some(seconds) => {
                bar.inc(scan.frames as u64);
                seconds
            }
            None => {
                let seconds = convert_shot(model, shot, scan, plan, &clips_dir.join(&name), &bar)
                    .with_context(|| {
                    format!(
                        "swapping faces in shot {} ({})",
                        i + 1,
                        shot.source.display()
                    )
                })?;
                done.put(&name, key, seconds)?;
                seconds
            }
        };
        clips.push(Some((name, seconds)));
    }
    bar.finish_and_clear();
    done.prune()?;
    if done.reused() > 0 {
        progress.info(format!(
            "faces: {} clips kept from the last run",
            done.reused()
        ));
    }
    Ok(clips)
}

/// Writes one shot again with its faces replaced: an MP4 at the source's size (even) and
/// rounded frame rate, or a PNG for a still. Returns the clip's length in seconds.
fn convert_shot(
    model: &SwapModel,
    shot: &Shot,
    scan: &ShotScan,
    plan: &[(usize, usize)],
    out: &Path,
    bar: &indicatif::ProgressBar,
) -> Result<f64> {
    let replacements = |k: usize| -> Vec<Replacement> {
        plan.iter()
            .filter_map(|&(t, id)| {
                scan.tracks[t].frames[k].as_ref().map(|d| Replacement {
                    landmarks: d.landmarks,
                    identity: id,
                })
            })
            .collect()
    };
    if scan.still {
        let img = fsutil::read_rgb_image(&shot.source)?;
        let mut frame = Planar::from_rgb(&img);
        swap_frame(&mut frame, &replacements(0), model)?;
        let file = AtomicFile::new(out)?;
        frame
            .to_rgb()
            .save_with_format(file.path(), image::ImageFormat::Png)
            .with_context(|| format!("cannot write {}", out.display()))?;
        file.commit()?;
        bar.inc(1);
        return Ok(shot.out_point - shot.in_point);
    }
    let info = source::probe(&shot.source)?;
    let (w, h) = (info.width & !1, info.height & !1);
    let file = AtomicFile::new(out)?;
    let opts = Mp4Options {
        width: w,
        height: h,
        fps: scan.fps as u32,
        preset: "veryfast".into(),
        crf: 18,
    };
    let mut writer = Mp4Writer::create(file.path(), &opts, None, Vec::new())?;
    let mut conv = RgbConverter::default();
    for_each_frame(
        &shot.source,
        shot.in_point,
        scan.frames,
        scan.fps,
        |k, img| {
            crate::progress::check_interrupted()?;
            let faces = replacements(k);
            let img = if faces.is_empty() {
                img.clone()
            } else {
                let mut frame = Planar::from_rgb(img);
                swap_frame(&mut frame, &faces, model)?;
                frame.to_rgb()
            };
            let img = if (w, h) != img.dimensions() {
                image::imageops::crop_imm(&img, 0, 0, w, h).to_image()
            } else {
                img
            };
            writer.write_frame(&mut conv.to_yuv(&img)?)?;
            bar.inc(1);
            Ok(())
        },
    )?;
    writer.finish()?;
    file.commit()?;
    Ok(scan.frames as f64 / scan.fps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_round_trips() {
        for p in [
            [0.0, 0.0, 0.0],
            [255.0, 255.0, 255.0],
            [200.0, 120.0, 80.0],
            [10.0, 200.0, 30.0],
        ] {
            let q = lab_to_rgb(rgb_to_lab(p));
            for c in 0..3 {
                assert!((p[c] - q[c]).abs() < 0.5, "{p:?} -> {q:?}");
            }
        }
        let white = rgb_to_lab([255.0; 3]);
        assert!((white[0] - 100.0).abs() < 0.1 && white[1].abs() < 0.1 && white[2].abs() < 0.1);
    }

    #[test]
    fn colour_match_moves_the_mean() {
        let mut face = Planar::new(8, 8, 3);
        face.data.iter_mut().for_each(|v| *v = 100.0);
        let mut target = Planar::new(8, 8, 3);
        for i in 0..64 {
            target.data[i * 3..i * 3 + 3].copy_from_slice(&[200.0, 150.0, 120.0]);
        }
        let mut mask = Planar::new(8, 8, 1);
        mask.data.iter_mut().for_each(|v| *v = 1.0);
        colour_match(&mut face, &target, &mask);
        assert!((face.data[0] - 200.0).abs() < 1.0 && (face.data[2] - 120.0).abs() < 1.0);
    }

    #[test]
    fn the_blend_mask_is_zero_at_the_square_edge() {
        let mut learned = Planar::new(32, 32, 1);
        learned.data.iter_mut().for_each(|v| *v = 1.0);
        let m = blend_mask(&learned);
        for i in 0..32 {
            assert_eq!(m.data[i], 0.0);
            assert_eq!(m.data[i * 32], 0.0);
        }
        assert!(m.data[16 * 32 + 16] > 0.99);
    }
}
