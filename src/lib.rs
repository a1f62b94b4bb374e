//! benjamin makes a short film on its own: screenplay, voices, shots, faces, score and cut.
//!
//! The pipeline ([`pipeline`]) runs stages in data-flow order inside a film folder ([`film`]),
//! each recording what it consumed and produced in a manifest ([`manifest`]).

pub mod archive;
pub mod batch;
pub mod cut;
pub mod edl;
pub mod faces;
pub mod film;
pub mod fsutil;
pub mod items;
pub mod manifest;
pub mod media;
pub mod music;
pub mod nn;
pub mod pipeline;
pub mod plan;
pub mod progress;
pub mod provenance;
pub mod screenplay;
pub mod shots;
pub mod stage;
pub mod vision;
pub mod voice;
