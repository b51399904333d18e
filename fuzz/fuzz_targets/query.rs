//! Query strings of the list, paging and report routes (`?mode=…&limit=…&from=…&tz=…`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|query: &str| {
    let _ = chat_server::api::decode::query(query);
});
