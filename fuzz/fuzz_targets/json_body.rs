//! The JSON body of every `/v1` route family, decoded as its handler decodes it.
//! The first byte picks the family; the rest is the body.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((&family, body)) = data.split_first() {
        let _ = chat_server::api::decode::body(family, body);
    }
});
