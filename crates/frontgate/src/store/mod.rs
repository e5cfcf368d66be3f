//! State shared across requests and nodes.

pub mod replay;
