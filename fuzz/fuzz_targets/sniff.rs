//! File type sniffing of uploads: the first byte is the length of a declared type that
//! follows, the rest is the file.
#![no_main]

use chat_core::{detect_content_type, refine_content_type};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&len, rest)) = data.split_first() else {
        return;
    };
    let len = usize::from(len).min(rest.len());
    let declared = String::from_utf8_lossy(&rest[..len]);
    let file = &rest[len..];
    let detected = detect_content_type(file);
    let refined = refine_content_type(file, &declared);
    // Refining only ever names a member of the detected family, never recognises more.
    assert_eq!(detected.is_some(), refined.is_some());
    if detected == Some("text/plain") {
        assert!(
            std::str::from_utf8(file).is_ok(),
            "text/plain for bytes that are not UTF-8"
        );
    }
});
