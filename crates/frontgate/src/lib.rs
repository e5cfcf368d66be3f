//! frontgate: a security gateway that stands in front of a web app's backend API and serves its
//! front-end from the same origin. See README.md and docs/ for what it does and how to run it.
//!
//! This crate is the gateway around [`frontgate_core`]'s admission engine: the listeners (TLS,
//! HTTP/1.1 and HTTP/2), forwarding to the backend, the front-end's files, the admin listener,
//! the CLI and the demo. An application that wants frontgate's checks inside its own Rust
//! service depends on `frontgate-core` alone (its [`layer`]).
//!
//! # Public API
//!
//! The same as frontgate-core's, re-exported: [`layer::FrontgateLayer`], [`plan::Plan`] and
//! [`config::Config`], [`problem`]. The other modules are public only so the `frontgate`
//! binary, the benches, the fuzz targets and the integration tests can use them; they are
//! hidden from these docs and are not an API. How the pieces fit together is in
//! docs/architecture.md.

// No unsafe code, except four reviewed expressions on the hot path (each `#[allow]`ed where it
// stands, with its SAFETY argument): HeaderValues built from bytes httparse already accepted,
// and a MaybeUninit span array httparse filled. `deny` rather than `forbid` so those four can
// be allowed one by one.
#![deny(unsafe_code)]
#![warn(missing_docs)]

// The public API, frontgate-core's.
pub use frontgate_core::{config, layer, plan, problem};

// frontgate-core's inner modules, under the paths the gateway's code uses.
#[doc(hidden)]
pub use frontgate_core::{
    admission, body, checks, exchange, headers, keys, multipart, oidc, openapi, response_fields,
    route, session, state, store, wire,
};

// The gateway's own modules. Public only for the `frontgate` binary (src/main.rs), the benches,
// the fuzz targets and the integration tests, which are separate crates; hidden from the docs,
// and not an API.
#[doc(hidden)]
pub mod admin;
#[doc(hidden)]
pub mod demo;
#[doc(hidden)]
pub mod frontend;
#[doc(hidden)]
pub mod keys_cli;
#[doc(hidden)]
pub mod observe;
#[doc(hidden)]
pub mod pipeline;
#[doc(hidden)]
pub mod proxy;
#[doc(hidden)]
pub mod server;
