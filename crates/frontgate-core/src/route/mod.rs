//! Routing: path normalization first, then the route table built from `[[routes]]`.

pub mod normalize;
pub mod table;

pub use normalize::{PathError, normalize_path};
pub use table::{Lookup, RouteEntry, RouteTable};
