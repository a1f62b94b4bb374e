//! Aligned faces as the swap model's tensors and back: pictures RGB 0-255 <-> planes 0-1.

use anyhow::Result;
use candle_core::{Device, Tensor};

use crate::vision::image::Planar;

/// Faces (R x R, RGB 0-255) as a (N, 3, R, R) tensor in 0-1.
pub fn to_tensor(faces: &[&Planar], device: &Device) -> Result<Tensor> {
    let r = faces[0].width;
    let mut data = Vec::with_capacity(faces.len() * 3 * r * r);
    for f in faces {
        for c in 0..3 {
            data.extend(f.data.iter().skip(c).step_by(3).map(|v| v / 255.0));
        }
    }
    Ok(Tensor::from_vec(data, (faces.len(), 3, r, r), device)?)
}

/// One-channel pictures (0-1) as a (N, 1, R, R) tensor.
pub fn masks_tensor(masks: &[&Planar], device: &Device) -> Result<Tensor> {
    let r = masks[0].width;
    let data: Vec<f32> = masks.iter().flat_map(|m| m.data.iter().copied()).collect();
    Ok(Tensor::from_vec(data, (masks.len(), 1, r, r), device)?)
}

/// Image `i` of a (N, C, R, R) tensor in 0-1 as a picture (RGB 0-255 for 3 channels, 0-1 for 1).
pub fn from_tensor(t: &Tensor, i: usize) -> Result<Planar> {
    let (_, ch, h, w) = t.dims4()?;
    let v = t.get(i)?.flatten_all()?.to_vec1::<f32>()?;
    let mut out = Planar::new(w, h, ch);
    let k = if ch == 3 { 255.0 } else { 1.0 };
    for c in 0..ch {
        for p in 0..h * w {
            out.data[p * ch + c] = v[c * h * w + p] * k;
        }
    }
    Ok(out)
}
