//! frontgate-core: frontgate's admission engine, for the `frontgate` gateway and for Rust
//! services that embed its checks as a tower layer. It parses and plans a config, builds each
//! feature's checks (CORS, API keys, JWT/DPoP, OIDC sessions and CSRF, rate limits, proof of
//! work, CAPTCHA, OpenAPI validation) and runs them on a request: admit, answer, or refuse with
//! a problem document. Where an admitted request goes (a backend, files, an inner service) is
//! not its business. See README.md and docs/ for what frontgate does and how to run it.
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
//! The other modules are public only so the `frontgate` crate (the gateway), the benches, the
//! fuzz targets and the integration tests can use them; they are hidden from these docs and are
//! not an API. How the pieces fit together is in docs/architecture.md.
//!
//! # Cargo features
//!
//! FEATURES_DOC

// No unsafe code at all: the few reviewed unsafe expressions of the hot path (HeaderValues built
// from bytes httparse already accepted) are in the `frontgate` crate's HTTP/1.1 codecs.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

// The public API.
pub mod config;
pub mod layer;
pub mod plan;
pub mod problem;

// Public only for the `frontgate` crate, the benches, the fuzz targets and the integration
// tests; hidden from the docs, and not an API.
#[doc(hidden)]
pub mod admission;
#[doc(hidden)]
pub mod body;
#[doc(hidden)]
pub mod checks;
#[doc(hidden)]
pub mod exchange;
#[doc(hidden)]
pub mod headers;
#[cfg(feature = "sql")]
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
pub mod response_fields;
#[doc(hidden)]
pub mod route;
#[doc(hidden)]
pub mod session;
#[doc(hidden)]
pub mod state;
#[doc(hidden)]
pub mod store;
#[doc(hidden)]
pub mod wire;
