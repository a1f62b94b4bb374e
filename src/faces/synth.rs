//! Drawn faces: no real person, yet enough of a face for MTCNN to find and for a swap model to
//! learn. The tests, examples and benchmarks use them; nothing here ships in a film.

use image::{Rgb, RgbImage};

/// What distinguishes one drawn person from another.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Look {
    pub skin: [f32; 3],
    pub hair: [f32; 3],
    pub iris: [f32; 3],
    pub lips: [f32; 3],
    /// Face width over height (about 0.75).
    pub aspect: f32,
    /// Mouth width relative to the face (about 0.4).
    pub mouth: f32,
}

impl Look {
    pub const A: Look = Look {
        skin: [224.0, 172.0, 140.0],
        hair: [60.0, 40.0, 25.0],
        iris: [70.0, 90.0, 140.0],
        lips: [170.0, 70.0, 70.0],
        aspect: 0.76,
        mouth: 0.42,
    };
    pub const B: Look = Look {
        skin: [150.0, 105.0, 80.0],
        hair: [20.0, 20.0, 20.0],
        iris: [50.0, 35.0, 20.0],
        lips: [120.0, 50.0, 50.0],
        aspect: 0.7,
        mouth: 0.36,
    };
}

/// Where a face is and how it is posed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pose {
    pub cx: f32,
    pub cy: f32,
    /// Height of the face (chin to hairline), in pixels.
    pub size: f32,
    /// Roll, in radians.
    pub angle: f32,
    /// 0 closed mouth .. 1 open.
    pub mouth_open: f32,
}

fn mix(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    let t = t.clamp(0.0, 1.0);
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

/// Smooth inside-ness of an ellipse: 1 well inside, 0 outside, over about a pixel `soft`.
fn ellipse(x: f32, y: f32, cx: f32, cy: f32, rx: f32, ry: f32, soft: f32) -> f32 {
    let d = (((x - cx) / rx).powi(2) + ((y - cy) / ry).powi(2)).sqrt();
    ((1.0 - d) * rx.min(ry) / soft + 0.5).clamp(0.0, 1.0)
}

/// Draws one face onto `img` (which holds the background already).
pub fn draw_face(img: &mut RgbImage, look: &Look, pose: &Pose) {
    let s = pose.size;
    let (sin, cos) = pose.angle.sin_cos();
    let rx = s * look.aspect * 0.5;
    let ry = s * 0.5;
    let (w, h) = img.dimensions();
    let x0 = (pose.cx - s).max(0.0) as u32;
    let x1 = ((pose.cx + s).ceil() as u32).min(w);
    let y0 = (pose.cy - s).max(0.0) as u32;
    let y1 = ((pose.cy + s).ceil() as u32).min(h);
    let soft = (s / 60.0).max(0.7);
    for py in y0..y1 {
        for px in x0..x1 {
            // Face coordinates: u across (right as seen is +), v down, origin at the face centre.
            let (dx, dy) = (px as f32 + 0.5 - pose.cx, py as f32 + 0.5 - pose.cy);
            let u = cos * dx + sin * dy;
            let v = -sin * dx + cos * dy;
            let mut c = {
                let p = img.get_pixel(px, py).0;
                [p[0] as f32, p[1] as f32, p[2] as f32]
            };
            // Hair behind and above the face.
            let hair = ellipse(u, v, 0.0, -0.12 * s, rx * 1.15, ry * 1.0, soft);
            c = mix(c, look.hair, hair);
            // Skin, lit from the upper left.
            let face = ellipse(u, v, 0.0, 0.02 * s, rx, ry * 0.98, soft);
            let shade = 1.0 - 0.18 * ((u / rx) * 0.6 + (v / ry) * 0.4 + 0.3).max(0.0);
            let skin = [
                look.skin[0] * shade,
                look.skin[1] * shade,
                look.skin[2] * shade,
            ];
            c = mix(c, skin, face);
            // Fringe over the forehead.
            let fringe = ellipse(u, v, 0.0, -0.52 * s, rx * 1.02, 0.2 * s, soft) * face;
            c = mix(c, look.hair, fringe);
            for side in [-1.0f32, 1.0] {
                let ex = side * 0.19 * s;
                let ey = -0.08 * s;
                // Brow, eye white, iris, pupil.
                let brow = ellipse(u, v, ex, ey - 0.085 * s, 0.09 * s, 0.018 * s, soft);
                c = mix(c, mix(look.hair, look.skin, 0.2), brow);
                let white = ellipse(u, v, ex, ey, 0.075 * s, 0.035 * s, soft);
                c = mix(c, [235.0, 232.0, 225.0], white);
                let iris = ellipse(u, v, ex, ey, 0.032 * s, 0.032 * s, soft) * white;
                c = mix(c, look.iris, iris);
                let pupil = ellipse(u, v, ex, ey, 0.014 * s, 0.014 * s, soft) * white;
                c = mix(c, [10.0, 10.0, 10.0], pupil);
                // Shadow of the eye socket.
                let socket = ellipse(u, v, ex, ey, 0.11 * s, 0.06 * s, s * 0.04) * (1.0 - white);
                c = mix(c, [c[0] * 0.8, c[1] * 0.78, c[2] * 0.78], socket);
            }
            // Nose: a shadow down the side and darker nostrils.
            let ridge = ellipse(u, v, 0.03 * s, 0.08 * s, 0.03 * s, 0.12 * s, s * 0.03);
            c = mix(c, [c[0] * 0.85, c[1] * 0.82, c[2] * 0.82], ridge * 0.7);
            for side in [-1.0f32, 1.0] {
                let nostril = ellipse(u, v, side * 0.04 * s, 0.17 * s, 0.022 * s, 0.013 * s, soft);
                c = mix(c, [c[0] * 0.45, c[1] * 0.4, c[2] * 0.4], nostril);
            }
            // Mouth: lips, and a dark opening when open.
            let mw = look.mouth * s * 0.5;
            let open = 0.012 * s + 0.05 * s * pose.mouth_open;
            let lips = ellipse(u, v, 0.0, 0.3 * s, mw, open + 0.025 * s, soft);
            c = mix(c, look.lips, lips);
            let gap = ellipse(u, v, 0.0, 0.3 * s, mw * 0.85, open * 0.6, soft);
            c = mix(c, [40.0, 15.0, 15.0], gap);
            img.put_pixel(px, py, Rgb(c.map(|v| v.round().clamp(0.0, 255.0) as u8)));
        }
    }
}

/// A picture of `w` x `h` with a soft gradient background and one drawn face.
pub fn face_picture(w: u32, h: u32, look: &Look, pose: &Pose) -> RgbImage {
    let mut img = background(w, h, [90.0, 110.0, 130.0]);
    draw_face(&mut img, look, pose);
    img
}

/// A vertical gradient of `rgb` with a little texture (no faces).
pub fn background(w: u32, h: u32, rgb: [f32; 3]) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let k = 0.7 + 0.5 * y as f32 / h as f32 + 0.04 * ((x as f32 * 0.3).sin());
        Rgb(rgb.map(|c| (c * k).round().clamp(0.0, 255.0) as u8))
    })
}

/// Where the five MTCNN landmarks of a drawn face are (eyes, nose tip, mouth corners).
pub fn landmarks(look: &Look, pose: &Pose) -> [[f32; 2]; 5] {
    let s = pose.size;
    let (sin, cos) = pose.angle.sin_cos();
    let pts = [
        [-0.19 * s, -0.08 * s],
        [0.19 * s, -0.08 * s],
        [0.0, 0.13 * s],
        [-look.mouth * s * 0.45, 0.3 * s],
        [look.mouth * s * 0.45, 0.3 * s],
    ];
    pts.map(|[u, v]| [pose.cx + cos * u - sin * v, pose.cy + sin * u + cos * v])
}

/// `n` aligned faces (`size` x `size`) of one drawn person in varied poses and expressions.
pub fn aligned_faces(
    look: &Look,
    n: usize,
    size: usize,
    seed: u64,
) -> Vec<crate::vision::image::Planar> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let pose = Pose {
                cx: 64.0 + rng.random_range(-6.0..6.0),
                cy: 64.0 + rng.random_range(-6.0..6.0),
                size: rng.random_range(60.0..80.0),
                angle: rng.random_range(-0.25..0.25),
                mouth_open: rng.random_range(0.0..1.0),
            };
            let img = crate::vision::image::Planar::from_rgb(&face_picture(128, 128, look, &pose));
            let m = super::align::alignment(&landmarks(look, &pose), size);
            super::align::warp(&img, &m, size)
        })
        .collect()
}
