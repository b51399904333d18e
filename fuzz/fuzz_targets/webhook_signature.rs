//! Webhook signature verification (`X-Chat-Timestamp`, `X-Chat-Signature`, body), as a
//! receiving service runs it: the input is split into the three at its first two newlines.
//! A signature made by `sign` always verifies; a changed body never does.
#![no_main]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chat_bots::{SignatureError, sign, verify_signature};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let timestamp = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let header = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let body = parts.next().unwrap_or_default();
    let window = Duration::from_secs(300);
    let _ = verify_signature(b"secret", &timestamp, body, &header, window);

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let good = sign(b"secret", now, body);
    assert_eq!(
        verify_signature(b"secret", &now.to_string(), body, &good, window),
        Ok(())
    );
    let mut other = body.to_vec();
    other.push(b'!');
    assert_eq!(
        verify_signature(b"secret", &now.to_string(), &other, &good, window),
        Err(SignatureError::Mismatch)
    );
});
