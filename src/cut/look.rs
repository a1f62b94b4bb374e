//! Each genre's look, as an FFmpeg filter chain applied to every shot.

use crate::film::Genre;

/// The grade for a genre. `noise` uses FFmpeg's fixed default seed, so the grain is the same on every run.
pub fn genre_look(genre: Genre) -> &'static str {
    match genre {
        // Black and white, crushed blacks and hard contrast, moving film grain, dark corners.
        Genre::Noir => "hue=s=0,eq=contrast=1.5:brightness=-0.04:gamma=0.9,noise=alls=9:allf=t,vignette=angle=PI/4",
        // Cold teal shadows and cyan highlights, slightly desaturated, a light vignette.
        Genre::Scifi => "colorbalance=rs=-0.12:gs=0.02:bs=0.15:rh=-0.08:bh=0.1,eq=contrast=1.12:saturation=0.8,vignette=angle=PI/5",
        // Warm and soft: golden balance, lifted saturation, a gentle glow from a light blur.
        Genre::Romance => "colorbalance=rs=0.1:gs=0.03:bs=-0.08:rm=0.06:bm=-0.04,eq=saturation=1.15:brightness=0.03:contrast=0.95,gblur=sigma=0.7,vignette=angle=PI/6",
    }
}

/// Scales a picture into the frame keeping its shape, with black bars (letterbox or pillarbox).
pub fn fit_to_frame(width: u32, height: u32) -> String {
    format!(
        "scale={width}:{height}:force_original_aspect_ratio=decrease:flags=bicubic,pad={width}:{height}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1"
    )
}
