//! The faces: consenting actors' faces swapped into the chosen shots.
//!
//! Detection with landmarks ([`crate::vision::mtcnn`]), tracking within a shot ([`track`]), alignment to a
//! canonical template ([`align`]), a swap model with a shared encoder, one decoder per identity,
//! a PatchGAN discriminator and a learned mask ([`model`], [`train`]), conversion frame by frame
//! with colour matching and blending ([`convert`]), and the pipeline stage ([`stage`]). No face
//! is swapped in without a valid consent record ([`actors`]).

pub mod actors;
pub mod align;
pub mod budget;
pub mod casting;
pub mod cli;
pub mod convert;
pub mod model;
pub mod scan;
pub mod stage;
pub mod synth;
pub mod tensors;
pub mod track;
pub mod train;
pub mod warp;
pub mod weights;
