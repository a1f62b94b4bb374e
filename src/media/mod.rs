//! Video and audio through FFmpeg's libraries (ffmpeg-next): reading any source, filter
//! graphs, and writing the MP4. Shared by the stages that touch media.

pub mod audio;
pub mod filter;
pub mod mp4;
pub mod source;
pub mod synth;

use std::sync::Once;

pub use ffmpeg_next as ffmpeg;

/// Initialises FFmpeg once and keeps its console chatter to real errors.
pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        ffmpeg::init().expect("FFmpeg libraries failed to initialise");
        ffmpeg::log::set_level(ffmpeg::log::Level::Fatal);
    });
}

/// Escapes a value for use inside a filter's option list (`key=value:key=value`).
pub fn escape_filter_value(value: &str) -> String {
    let mut level1 = String::new();
    for c in value.chars() {
        if matches!(c, '\\' | '\'' | ':') {
            level1.push('\\');
        }
        level1.push(c);
    }
    // Second level: the graph parser also treats these as separators.
    let mut out = String::new();
    for c in level1.chars() {
        if matches!(c, '\\' | '\'' | '[' | ']' | ',' | ';') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
