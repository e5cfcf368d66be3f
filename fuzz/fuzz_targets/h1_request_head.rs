//! Fuzzes the gateway's own HTTP/1.1 request reader (`server::h1::read_head`) against hyper's
//! server on the same bytes: whatever request the reader keeps, hyper must read as the same
//! request (method, target, version, every field in order, the body, and whether the
//! connection closes after it). Heads the reader leaves to hyper are hyper's alone. The reader
//! must also read each head the same with the field names of an earlier head remembered.
#![no_main]

use libfuzzer_sys::fuzz_target;

thread_local! {
    static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
}

fuzz_target!(|data: &[u8]| {
    if let Err(e) = RT.with(|rt| rt.block_on(frontgate::server::h1::differential::check(data))) {
        panic!("{e}");
    }
});
