//! State that must be shared or remembered beyond one request: traits and their implementations.

pub mod replay;
