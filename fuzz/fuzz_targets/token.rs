//! Credentials a caller presents: the `Authorization` header (and the `access_token`
//! query parameter browsers' sockets use), the staff JWT, and a signed identity from an
//! embedding site. The input is split at its first newline into header and token.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use chat_server::JwtConfig;
use chat_server::auth;
use libfuzzer_sys::fuzz_target;

fn jwt() -> &'static JwtConfig {
    static JWT: OnceLock<JwtConfig> = OnceLock::new();
    JWT.get_or_init(|| JwtConfig::hs256(b"fuzzing secret of thirty-two bytes!"))
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (header, rest) = text.split_once('\n').unwrap_or((&text, ""));
    let mut headers = hyper::HeaderMap::new();
    if let Ok(value) = hyper::header::HeaderValue::from_str(header) {
        headers.insert(hyper::header::AUTHORIZATION, value);
    }
    if let Ok(Some(token)) = auth::bearer(&headers, None) {
        let _ = auth::verify_token(jwt(), &token);
    }
    if let Ok(Some(token)) = auth::bearer(&hyper::HeaderMap::new(), Some(rest)) {
        let _ = auth::verify_token(jwt(), &token);
    }
    let _ = auth::verify_token(jwt(), rest);
    // An identity: "identifier:timestamp:signature".
    let mut parts = rest.splitn(3, ':');
    if let (Some(id), Some(ts), Some(sig)) = (parts.next(), parts.next(), parts.next()) {
        if let Ok(ts) = ts.parse::<u64>() {
            let _ = auth::verify_identity(b"site secret", id, ts, sig, Duration::from_secs(600));
        }
    }
});
