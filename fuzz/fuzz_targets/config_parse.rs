//! Fuzzes the config loader (`Plan::parse`: parse, then plan) with arbitrary text: it must never panic, every error must say what is
//! wrong, and any line/column it reports must point inside the text.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Err(errors) = frontgate::plan::Plan::parse(text, "fuzz.toml", Path::new("/tmp")) else {
        return;
    };
    assert!(!errors.0.is_empty(), "Err without any error");
    let lines: Vec<&str> = text.split('\n').collect();
    for e in &errors.0 {
        assert!(!e.message.trim().is_empty(), "error without a message: {e:?}");
        assert_eq!(e.file, "fuzz.toml");
        assert_eq!(
            e.line.is_some(),
            e.column.is_some(),
            "line without column or the reverse: {e:?}"
        );
        if let (Some(line), Some(column)) = (e.line, e.column) {
            assert!(
                line >= 1 && line <= lines.len(),
                "line {line} outside the text ({} lines): {e:?}",
                lines.len()
            );
            // A column may point just past the line's last character (e.g. an error at end of input).
            let width = lines[line - 1].chars().count();
            assert!(
                column >= 1 && column <= width + 1,
                "column {column} outside line {line} ({width} chars): {e:?}"
            );
        }
        // Display never panics and includes the message.
        assert!(e.to_string().contains(&e.message));
    }
});
