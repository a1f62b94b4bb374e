//! Sampling (written next).
