//! Fuzzes `route::normalize_path`: it must never panic, and whatever it accepts must be canonical
//! (normalizing again changes nothing) and free of every ambiguous form it promises to refuse.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else { return };
    let Ok(n) = frontgate::route::normalize_path(path) else { return };
    let n: &str = &n;
    match frontgate::route::normalize_path(n) {
        Ok(again) => assert_eq!(again, n, "not idempotent: {path:?} -> {n:?} -> {again:?}"),
        Err(e) => panic!("normalized output is refused ({e:?}): {path:?} -> {n:?}"),
    }
    assert!(n.starts_with('/'), "{path:?} -> {n:?}");
    for bad in ["//", "/./", "/../"] {
        assert!(!n.contains(bad), "{path:?} -> {n:?} contains {bad:?}");
    }
    assert!(!n.ends_with("/.") && !n.ends_with("/.."), "{path:?} -> {n:?} ends in a dot-segment");
    let lower = n.to_ascii_lowercase();
    for bad in ["%2f", "%2e", "%5c"] {
        assert!(!lower.contains(bad), "{path:?} -> {n:?} contains {bad}");
    }
    for b in n.bytes() {
        assert!(b != b'\\' && b != b';', "{path:?} -> {n:?} contains {:?}", b as char);
        assert!(b >= 0x20 && b != 0x7f, "{path:?} -> {n:?} contains control byte {b:#04x}");
        assert!(b.is_ascii(), "{path:?} -> {n:?} contains raw non-ASCII");
    }
});
