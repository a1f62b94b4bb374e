//! The shots: footage from the archive for every scene of the screenplay ([`stage`]), chosen by
//! what the scene needs ([`select`]), searched as long as the budget allows ([`budget`]).

pub mod budget;
pub mod select;
pub mod stage;

pub use stage::{Choices, ChosenShot, ShotsStage, CHOICES_FILE};
