//! The small HTTP client both bots share: http and https (rustls), bounded bodies, errors
//! as [`Error::Bot`] of the matching [`BotErrorKind`].

use std::path::Path;
use std::sync::Arc;

use chat_core::{BotError, BotErrorKind, Error, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Pooled keep-alive client for `http://` and `https://`; cloning shares the pool.
pub(crate) type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Identifies us to bot services.
pub(crate) const USER_AGENT: &str = concat!("chat-bots/", env!("CARGO_PKG_VERSION"));

/// A client that trusts the bundled Mozilla roots, the system's roots, and the PEM
/// certificates of `ca_file` (a private CA in front of a self-hosted model, say).
///
/// Both root sets, because each misses cases the other covers: a slim container has no
/// system store, while a company's own CA is only in the system's. An unreadable or empty
/// `ca_file` is a configuration error at start rather than a failure at the first reply.
pub(crate) fn client(field: &'static str, ca_file: Option<&Path>) -> Result<HttpClient> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // Certificates the system store cannot parse are skipped: one odd entry must not
    // take https away.
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let invalid = |why: String| Error::validation(field, format!("{}: {why}", path.display()));
        let mut added = 0;
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| invalid(e.to_string()))? {
            let cert = cert.map_err(|e| invalid(e.to_string()))?;
            roots.add(cert).map_err(|e| invalid(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(invalid("no PEM certificate in it".into()));
        }
    }
    // ring rather than aws-lc-rs: no cmake and C toolchain to build it. rustls marks ring's
    // provider deprecated only because it lacks post-quantum key exchange.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| config_error("TLS setup", e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut connector = HttpConnector::new();
    // Token streams are many small writes from the server; Nagle would only add latency.
    connector.set_nodelay(true);
    // The TLS layer above decides the scheme.
    connector.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector);
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

/// `base` joined with `path`, checked to be an absolute `http://` or `https://` URL.
///
/// `field` names the configuration field in the validation error.
pub(crate) fn endpoint(field: &'static str, base: &str, path: &str) -> Result<Uri> {
    let url = if path.is_empty() {
        base.trim().to_owned()
    } else {
        format!("{}{path}", base.trim().trim_end_matches('/'))
    };
    let uri: Uri = url
        .parse()
        .map_err(|e| Error::validation(field, format!("`{url}`: {e}")))?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.authority().is_some() => Ok(uri),
        _ => Err(Error::validation(
            field,
            format!("`{url}` is not an absolute http:// or https:// URL"),
        )),
    }
}

/// Sends the request; a connection failure is a bot error.
pub(crate) async fn send(
    client: &HttpClient,
    request: Request<Full<Bytes>>,
) -> Result<Response<Incoming>> {
    client.request(request).await.map_err(|e| {
        let message = format!("request failed: {}", error_chain(&e));
        Error::Bot(BotError::new(BotErrorKind::Transport, message).with_source(e))
    })
}

/// Refuses non-2xx answers. Only the status goes into the error: a service's error body
/// may echo credentials (OpenAI echoes a masked key), and the engine records the error
/// text in the conversation.
pub(crate) fn check_status(response: &Response<Incoming>) -> Result<()> {
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(Error::bot(
            BotErrorKind::Status(status.as_u16()),
            format!("service answered HTTP {status}"),
        ))
    }
}

/// The whole body, refused once it passes `max` bytes so a broken or hostile service
/// cannot grow memory without bound.
pub(crate) async fn read_bounded(body: &mut Incoming, max: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = next_chunk(body).await? {
        if out.len() + chunk.len() > max {
            return Err(too_large(max));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The next data chunk of the body, skipping trailers; `None` at the end.
pub(crate) async fn next_chunk(body: &mut Incoming) -> Result<Option<Bytes>> {
    loop {
        match body.frame().await {
            None => return Ok(None),
            Some(Err(e)) => {
                let message = format!("reading the answer failed: {}", error_chain(&e));
                return Err(Error::Bot(
                    BotError::new(BotErrorKind::Transport, message).with_source(e),
                ));
            }
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(data));
                }
            }
        }
    }
}

pub(crate) fn too_large(max: usize) -> Error {
    Error::bot(
        BotErrorKind::Format,
        format!("answer larger than {max} bytes"),
    )
}

/// A request that cannot be encoded or built: the bot's configuration is at fault, not the
/// service.
pub(crate) fn config_error(what: &str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Bot(BotError::new(BotErrorKind::Config, format!("{what}: {e}")).with_source(e))
}

/// The service gave no (complete) answer within `timeout`.
pub(crate) fn timed_out(timeout: std::time::Duration) -> Error {
    Error::bot(
        BotErrorKind::Timeout,
        format!("no answer within {} ms", timeout.as_millis()),
    )
}

/// The error and its causes on one line (hyper's top-level errors say little alone).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Text fit for a stored message: control characters (other than line breaks and tabs)
/// removed, surrounding whitespace trimmed, at most `max_chars` characters.
pub(crate) fn clean_text(text: &str, max_chars: usize) -> String {
    let cleaned: String = text
        .trim()
        .chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
        .take(max_chars)
        .collect();
    cleaned.trim_end().to_owned()
}

/// At most `max_chars` characters of an optional short text (department, reason);
/// blank becomes `None`.
pub(crate) fn short_text(text: Option<String>, max_chars: usize) -> Option<String> {
    text.map(|t| clean_text(&t, max_chars).replace(['\n', '\r', '\t'], " "))
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_must_be_absolute_http_or_https() {
        let uri = endpoint(
            "base_url",
            "http://127.0.0.1:11434/v1/",
            "/chat/completions",
        )
        .unwrap();
        assert_eq!(
            uri.to_string(),
            "http://127.0.0.1:11434/v1/chat/completions"
        );
        assert_eq!(
            endpoint("base_url", "https://api.openai.com/v1", "/x")
                .unwrap()
                .to_string(),
            "https://api.openai.com/v1/x"
        );
        assert!(endpoint("base_url", "/v1", "/x").is_err());
        assert!(endpoint("base_url", "ftp://host/v1", "/x").is_err());
    }

    #[test]
    fn cleaned_text_drops_control_characters_and_respects_the_limit() {
        assert_eq!(clean_text("  hi\u{0}\u{7} there\n ", 100), "hi there");
        assert_eq!(clean_text("a\nb", 100), "a\nb");
        assert_eq!(clean_text("héllo", 2), "hé");
        assert_eq!(short_text(Some(" \n ".into()), 10), None);
        assert_eq!(
            short_text(Some("bill\ning".into()), 10).as_deref(),
            Some("bill ing")
        );
    }
}
