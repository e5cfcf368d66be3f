//! Fuzzes the gateway's upstream HTTP/1.1 client (`proxy::h1`) reading a backend's response
//! head, against hyper's HTTP/1 client on the same bytes: whenever the gateway accepts a head
//! (interim 1xx heads skipped), hyper's client reads the same status, the same relayed fields
//! (in order; the others hop-by-hop), the same body length, and for a body of known length
//! that is all there, the same body. Every relayed field value must be a valid `HeaderValue`
//! (the relay builds them unchecked). The first byte picks GET or HEAD.
#![no_main]

use libfuzzer_sys::fuzz_target;

thread_local! {
    static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, raw)) = data.split_first() else { return };
    let head_only = first & 1 == 1;
    if let Err(e) =
        RT.with(|rt| rt.block_on(frontgate::proxy::h1::differential::check(raw, head_only)))
    {
        panic!("{e}");
    }
});
