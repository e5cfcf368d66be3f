//! frontgate: a security gateway that stands in front of a web app's backend API and serves its
//! front-end from the same origin. See README.md and docs/ for what it does and how to run it.
//!
//! # Public API
//!
//! The library's API is what an application embedding frontgate needs:
//!
//! - [`layer::FrontgateLayer`]: frontgate's checks as a tower layer, for a Rust (axum/hyper)
//!   backend that runs them in-process instead of behind the gateway.
//! - [`plan::Plan`] and [`config::Config`]: parse a config file and check it, with what it points
//!   at (the OpenAPI document, the route table); `Plan` is what the gateway and the layer run.
//! - [`problem`]: the refusal codes ([`problem::Code`]) and the problem documents they become.
//!
//! The other modules are public only so the `frontgate` binary, the benches, the fuzz targets and
//! the integration tests can use them; they are hidden from these docs and are not an API. How
//! the pieces fit together is in docs/architecture.md.

// No unsafe code, except four reviewed expressions on the hot path (each `#[allow]`ed where it
// stands, with its SAFETY argument): HeaderValues built from bytes httparse already accepted,
// and a MaybeUninit span array httparse filled. `deny` rather than `forbid` so those four can
// be allowed one by one.
#![deny(unsafe_code)]
#![warn(missing_docs)]

// The public API.
pub mod config;
pub mod layer;
pub mod plan;
pub mod problem;

// Public only for the `frontgate` binary (src/main.rs), the benches, the fuzz targets and the
// integration tests, which are separate crates; hidden from the docs, and not an API.
#[doc(hidden)]
pub mod admin;
#[doc(hidden)]
pub mod body;
#[doc(hidden)]
pub mod checks;
#[doc(hidden)]
pub mod demo;
#[doc(hidden)]
pub mod exchange;
#[doc(hidden)]
pub mod frontend;
#[doc(hidden)]
pub mod keys;
#[doc(hidden)]
pub mod multipart;
#[doc(hidden)]
pub mod observe;
#[doc(hidden)]
pub mod oidc;
#[doc(hidden)]
pub mod openapi;
#[doc(hidden)]
pub mod pipeline;
#[doc(hidden)]
pub mod proxy;
#[doc(hidden)]
pub mod response_fields;
#[doc(hidden)]
pub mod route;
#[doc(hidden)]
pub mod server;
#[doc(hidden)]
pub mod session;
#[doc(hidden)]
pub mod state;
#[doc(hidden)]
pub mod store;
#[doc(hidden)]
pub mod wire;
