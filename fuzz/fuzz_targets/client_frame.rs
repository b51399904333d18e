//! WebSocket client frames, through the decoder every socket's text frame goes through.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = chat_server::realtime::protocol::ClientFrame::decode(text);
});
