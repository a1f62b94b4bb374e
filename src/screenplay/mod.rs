//! The screenplay: corpora, a language model trained with candle, seeded sampling under the
//! festival's constraints, and Fountain out.

pub mod cast;
pub mod cli;
pub mod corpus;
pub mod drafts;
pub mod fountain;
pub mod lm;
pub mod models;
pub mod stage;
pub mod tune;
pub mod write;

pub use stage::ScreenplayStage;
