//! The integration suites, linked as one test binary: each module is one suite (the real
//! `frontgate` binary on free ports, real peers), sharing the harness in [`common`].

mod common;

mod admin_api;
mod api_keys;
mod architecture;
mod attacks_floods;
mod attacks_h2;
mod attacks_slow;
mod captcha;
mod cli;
mod console;
mod dev_server;
mod docs;
mod frontend;
mod jwt;
mod lifecycle;
mod logging;
mod multipart;
mod openapi;
mod pow;
mod pow_js;
mod proxy;
mod rate_limits;
mod react_node;
mod refusals;
mod request_heads;
mod route_keys;
mod routing;
mod self_service;
mod sessions;
mod soak;
mod store;
mod tls;
