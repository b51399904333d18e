//! Webhook signatures: HMAC-SHA256 over `"{timestamp}.{body}"`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Header carrying the Unix time (seconds) the event was signed at.
pub const TIMESTAMP_HEADER: &str = "X-Chat-Timestamp";
/// Header carrying `sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">`.
pub const SIGNATURE_HEADER: &str = "X-Chat-Signature";

/// How far a timestamp may lie in the future (clock skew between the two machines).
const MAX_SKEW_SECS: u64 = 60;

/// Why a webhook signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The timestamp is not Unix seconds, or the signature is not `sha256=<hex>`.
    #[error("malformed signature or timestamp header")]
    Malformed,
    /// The timestamp is older than the replay window (or too far in the future).
    #[error("timestamp outside the replay window")]
    Expired,
    /// The signature does not match the body, the timestamp and the secret.
    #[error("signature does not match")]
    Mismatch,
}

/// The `X-Chat-Signature` value for this body signed at `timestamp` (Unix seconds).
///
/// ```
/// let header = chat_bots::sign(b"secret", 1_700_000_000, br#"{"event":"message_created"}"#);
/// assert!(header.starts_with("sha256="));
/// assert_eq!(header.len(), "sha256=".len() + 64);
/// ```
pub fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let mac = mac(secret, timestamp, body);
    let digest = mac.finalize().into_bytes();
    format!("sha256={}", hex::encode(digest))
}

/// Checks a received webhook: `timestamp` and `header` are the raw values of
/// `X-Chat-Timestamp` and `X-Chat-Signature`, `body` the raw request body (verify before
/// parsing it). The timestamp must be at most `max_age` old (and at most a minute ahead),
/// so a captured request cannot be replayed later; the comparison takes constant time.
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use chat_bots::{SignatureError, sign, verify_signature};
///
/// let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
/// let body = br#"{"event":"message_created"}"#;
/// let header = sign(b"secret", now, body);
/// let window = Duration::from_secs(300);
/// assert_eq!(verify_signature(b"secret", &now.to_string(), body, &header, window), Ok(()));
/// assert_eq!(
///     verify_signature(b"secret", &now.to_string(), b"{}", &header, window),
///     Err(SignatureError::Mismatch)
/// );
/// ```
pub fn verify_signature(
    secret: &[u8],
    timestamp: &str,
    body: &[u8],
    header: &str,
    max_age: Duration,
) -> Result<(), SignatureError> {
    let timestamp: u64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::Malformed)?;
    let expected = header
        .trim()
        .strip_prefix("sha256=")
        .and_then(decode_hex)
        .ok_or(SignatureError::Malformed)?;
    let now = unix_now();
    if timestamp.saturating_add(max_age.as_secs()) < now
        || timestamp > now.saturating_add(MAX_SKEW_SECS)
    {
        return Err(SignatureError::Expired);
    }
    mac(secret, timestamp, body)
        .verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// The wall clock, not an engine clock: the receiving service checks the signature's age
/// against its own wall clock (replay protection), so a manual clock would only fail it.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn mac(secret: &[u8], timestamp: u64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The 32 bytes of a `sha256=` header's hex; anything else is malformed.
fn decode_hex(text: &str) -> Option<[u8; 32]> {
    let mut digest = [0; 32];
    hex::decode_to_slice(text, &mut digest).ok()?;
    Some(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_an_independent_hmac_sha256() {
        // The signed text of timestamp 0 and an empty body is "0.".
        let header = sign(b"Jefe", 0, b"");
        assert_eq!(header.len(), 71);
        let mut reference = <Hmac<Sha256> as KeyInit>::new_from_slice(b"Jefe").unwrap();
        reference.update(b"0.");
        let bytes = reference.finalize().into_bytes();
        assert_eq!(header, format!("sha256={}", hex::encode(bytes)));
    }

    #[test]
    fn malformed_headers_are_refused() {
        let window = Duration::from_secs(300);
        let now = unix_now().to_string();
        for header in ["", "sha256=", "sha1=00", "sha256=zz", &"sha256=0".repeat(3)] {
            assert_eq!(
                verify_signature(b"k", &now, b"", header, window),
                Err(SignatureError::Malformed),
                "{header}"
            );
        }
        let header = sign(b"k", 1, b"");
        assert_eq!(
            verify_signature(b"k", "soon", b"", &header, window),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn future_timestamps_beyond_the_skew_are_refused() {
        let later = unix_now() + 3600;
        let header = sign(b"k", later, b"x");
        assert_eq!(
            verify_signature(
                b"k",
                &later.to_string(),
                b"x",
                &header,
                Duration::from_secs(300)
            ),
            Err(SignatureError::Expired)
        );
    }
}
