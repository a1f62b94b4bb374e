//! Seeing into pictures, shared by the archive (which tags footage with faces) and the faces
//! stage (which swaps them): frames walked out of a video, the planar float images the models
//! read, and the MTCNN face detector.

pub mod detect;
pub mod image;
pub mod mtcnn;
