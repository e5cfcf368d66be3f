//! frontgate: a security gateway that stands in front of a web app's backend API and serves its
//! front-end from the same origin. See README.md and docs/ for what it does and how to run it.
//!
//! The library is what the `frontgate` binary runs; its pieces follow the request path:
//! [`route`] (normalize, match), [`checks`] (one module per check), [`proxy`] (forward),
//! [`frontend`] (static files), assembled in one place by [`pipeline`]; [`server`] runs it.

// No unsafe code, except four reviewed expressions on the hot path (each `#[allow]`ed where it
// stands, with its SAFETY argument): HeaderValues built from bytes httparse already accepted,
// and a MaybeUninit span array httparse filled. `deny` rather than `forbid` so those four can
// be allowed one by one.
#![deny(unsafe_code)]

pub mod admin;
pub mod body;
pub mod checks;
pub mod config;
pub mod demo;
pub mod exchange;
pub mod frontend;
pub mod keys;
pub mod layer;
pub mod multipart;
pub mod observe;
pub mod oidc;
pub mod openapi;
pub mod pipeline;
pub mod plan;
pub mod problem;
pub mod proxy;
pub mod response_fields;
pub mod route;
pub mod server;
pub mod session;
pub mod state;
pub mod store;
pub mod wire;
