//! Alignment: the similarity transform (Umeyama) that takes a face's five landmarks onto a
//! canonical template at the model's resolution, the warp into that square, and the inverse
//! warp that puts a face back.

use crate::vision::image::Planar;

/// The five landmarks of the canonical face, as fractions of the aligned square: ArcFace's
/// 112x112 template (eyes, nose tip, mouth corners), shrunk to 90% about the centre and raised
/// by 3% so that the square holds the whole face from brow to chin, and little else.
pub const TEMPLATE: [[f32; 2]; 5] = {
    const ARC: [[f32; 2]; 5] = [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ];
    let mut out = [[0f32; 2]; 5];
    let mut i = 0;
    while i < 5 {
        out[i][0] = (ARC[i][0] / 112.0 - 0.5) * 0.9 + 0.5;
        out[i][1] = (ARC[i][1] / 112.0 - 0.5) * 0.9 + 0.47;
        i += 1;
    }
    out
};

/// The template at `size` pixels (pixel-centre coordinates).
pub fn template(size: usize) -> [[f32; 2]; 5] {
    TEMPLATE.map(|[x, y]| [x * size as f32 - 0.5, y * size as f32 - 0.5])
}

/// The face's region in the aligned square: an ellipse about the template's landmarks, from
/// the brows to below the mouth and across the cheeks (1 inside, 0 outside, a pixel of soft edge).
pub fn face_region(size: usize) -> Planar {
    let t = template(size);
    let cx = (t[0][0] + t[1][0]) / 2.0;
    let eye_y = (t[0][1] + t[1][1]) / 2.0;
    let mouth_y = (t[3][1] + t[4][1]) / 2.0;
    let cy = (eye_y + mouth_y) / 2.0;
    let rx = (t[1][0] - t[0][0]) * 1.05;
    let ry = (mouth_y - eye_y) * 1.45;
    let mut m = Planar::new(size, size, 1);
    for y in 0..size {
        for x in 0..size {
            let d = (((x as f32 - cx) / rx).powi(2) + ((y as f32 - cy) / ry).powi(2)).sqrt();
            m.data[y * size + x] = ((1.0 - d) * rx.min(ry) + 0.5).clamp(0.0, 1.0);
        }
    }
    m
}

/// A 2-D affine map: (x, y) -> (m[0] x + m[1] y + m[2], m[3] x + m[4] y + m[5]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine(pub [f32; 6]);

impl Affine {
    pub fn apply(&self, p: [f32; 2]) -> [f32; 2] {
        let m = &self.0;
        [
            m[0] * p[0] + m[1] * p[1] + m[2],
            m[3] * p[0] + m[4] * p[1] + m[5],
        ]
    }

    pub fn inverse(&self) -> Affine {
        let m = &self.0;
        let det = m[0] * m[4] - m[1] * m[3];
        let (a, b, c, d) = (m[4] / det, -m[1] / det, -m[3] / det, m[0] / det);
        Affine([a, b, -(a * m[2] + b * m[5]), c, d, -(c * m[2] + d * m[5])])
    }

    /// `self` after `other`: p -> self(other(p)).
    pub fn compose(&self, other: &Affine) -> Affine {
        let (a, b) = (&self.0, &other.0);
        Affine([
            a[0] * b[0] + a[1] * b[3],
            a[0] * b[1] + a[1] * b[4],
            a[0] * b[2] + a[1] * b[5] + a[2],
            a[3] * b[0] + a[4] * b[3],
            a[3] * b[1] + a[4] * b[4],
            a[3] * b[2] + a[4] * b[5] + a[5],
        ])
    }

    /// A similarity: scale, rotation (radians) and translation.
    pub fn similarity(scale: f32, angle: f32, tx: f32, ty: f32) -> Affine {
        let (s, c) = angle.sin_cos();
        Affine([scale * c, -scale * s, tx, scale * s, scale * c, ty])
    }

    /// The scale of a similarity.
    pub fn scale(&self) -> f32 {
        (self.0[0] * self.0[4] - self.0[1] * self.0[3]).abs().sqrt()
    }
}

/// Umeyama's least-squares similarity taking `src` onto `dst` (rotation, uniform scale and
/// translation; no reflection). In two dimensions his SVD solution has this closed form: with
/// both point sets centred, the rotation-and-scale is the complex number
/// sum(conj(s) d) / sum(|s|^2).
pub fn umeyama(src: &[[f32; 2]], dst: &[[f32; 2]]) -> Affine {
    let n = src.len().min(dst.len()) as f64;
    let mean = |p: &[[f32; 2]]| {
        let (mut x, mut y) = (0f64, 0f64);
        for q in p.iter().take(n as usize) {
            x += q[0] as f64;
            y += q[1] as f64;
        }
        (x / n, y / n)
    };
    let (sx, sy) = mean(src);
    let (dx, dy) = mean(dst);
    let (mut num_a, mut num_b, mut den) = (0f64, 0f64, 0f64);
    for (s, d) in src.iter().zip(dst) {
        let (ux, uy) = (s[0] as f64 - sx, s[1] as f64 - sy);
        let (vx, vy) = (d[0] as f64 - dx, d[1] as f64 - dy);
        num_a += ux * vx + uy * vy;
        num_b += ux * vy - uy * vx;
        den += ux * ux + uy * uy;
    }
    let (a, b) = if den > 0.0 {
        (num_a / den, num_b / den)
    } else {
        (1.0, 0.0)
    };
    let tx = dx - (a * sx - b * sy);
    let ty = dy - (b * sx + a * sy);
    Affine([
        a as f32, -b as f32, tx as f32, b as f32, a as f32, ty as f32,
    ])
}

/// The map from the picture to the aligned square of `size` for a face's landmarks.
pub fn alignment(landmarks: &[[f32; 2]; 5], size: usize) -> Affine {
    umeyama(landmarks, &template(size))
}

/// The aligned square: each of its pixels sampled (bilinear, edges held) from `img` through
/// the inverse of `to_square`.
pub fn warp(img: &Planar, to_square: &Affine, size: usize) -> Planar {
    let inv = to_square.inverse();
    let mut out = Planar::new(size, size, img.channels);
    let mut px = vec![0f32; img.channels];
    let (mw, mh) = ((img.width - 1) as f32, (img.height - 1) as f32);
    for y in 0..size {
        for x in 0..size {
            let [sx, sy] = inv.apply([x as f32, y as f32]);
            img.sample(sx.clamp(0.0, mw), sy.clamp(0.0, mh), &mut px);
            let at = (y * size + x) * img.channels;
            out.data[at..at + img.channels].copy_from_slice(&px);
        }
    }
    out
}

/// The pixels of `img` that the square of `size` covers through `to_square`: (x0, y0, x1, y1), exclusive ends.
pub fn footprint(
    to_square: &Affine,
    size: usize,
    width: usize,
    height: usize,
) -> Option<[usize; 4]> {
    let inv = to_square.inverse();
    let s = size as f32;
    let corners = [[-0.5, -0.5], [s, -0.5], [-0.5, s], [s, s]].map(|p| inv.apply(p));
    let x0 = corners
        .iter()
        .map(|p| p[0])
        .fold(f32::MAX, f32::min)
        .floor()
        .max(0.0) as usize;
    let y0 = corners
        .iter()
        .map(|p| p[1])
        .fold(f32::MAX, f32::min)
        .floor()
        .max(0.0) as usize;
    let x1 = (corners.iter().map(|p| p[0]).fold(f32::MIN, f32::max).ceil() + 1.0)
        .clamp(0.0, width as f32) as usize;
    let y1 = (corners.iter().map(|p| p[1]).fold(f32::MIN, f32::max).ceil() + 1.0)
        .clamp(0.0, height as f32) as usize;
    (x0 < x1 && y0 < y1).then_some([x0, y0, x1, y1])
}

/// Puts an aligned face back: each pixel of `frame` (RGB 0-255) that the square covers becomes
/// `mask * face + (1 - mask) * frame`, sampling `face` (RGB 0-255) and `mask` (one channel,
/// 0-1) through `to_square`. Pixels where the mask is zero are left exactly as they were.
pub fn paste(frame: &mut Planar, face: &Planar, mask: &Planar, to_square: &Affine) {
    let size = face.width;
    let Some([x0, y0, x1, y1]) = footprint(to_square, size, frame.width, frame.height) else {
        return;
    };
    let (mut f, mut m) = ([0f32; 3], [0f32; 1]);
    for y in y0..y1 {
        for x in x0..x1 {
            let [u, v] = to_square.apply([x as f32, y as f32]);
            if !(u >= 0.0 && v >= 0.0 && u <= (size - 1) as f32 && v <= (size - 1) as f32) {
                continue;
            }
            mask.sample(u, v, &mut m);
            let a = m[0].clamp(0.0, 1.0);
            if a <= 0.0 {
                continue;
            }
            face.sample(u, v, &mut f);
            let at = (y * frame.width + x) * 3;
            for (px, fc) in frame.data[at..at + 3].iter_mut().zip(f) {
                *px = a * fc + (1.0 - a) * *px;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_and_compose_undo_each_other() {
        let m = Affine::similarity(1.7, 0.3, 12.0, -4.0);
        let id = m.compose(&m.inverse());
        for (a, b) in id.0.iter().zip([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]) {
            assert!((a - b).abs() < 1e-5, "{id:?}");
        }
    }

    #[test]
    fn template_is_inside_the_square_and_upright() {
        let t = template(64);
        assert!(t.iter().flatten().all(|v| (0.0..64.0).contains(v)));
        assert!(t[0][0] < t[1][0] && t[3][0] < t[4][0]);
        assert!(t[0][1] < t[2][1] && t[2][1] < t[3][1]);
    }
}
