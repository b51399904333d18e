//! The event-webhook delivery worker: claims due deliveries from the engine's outbox,
//! posts each signed, and reports every attempt back (the engine decides retries,
//! giving up and pausing).
//!
//! What a receiver gets (see the README's "Event webhooks"):
//! - `POST <url>` with `Content-Type: application/json` and the body
//!   `{"id": "<tenant>.<seq>", "type": "<kind>", "event": <the event as an admin sees it>}`;
//! - `X-Chat-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, made
//!   anew for each attempt; receivers compare in constant time and refuse a `t` more than
//!   five minutes from their clock (the replay window);
//! - `X-Chat-Event-Id` and `Idempotency-Key`: the event id, the same on every attempt, so a
//!   receiver that has seen it answers 2xx and does nothing (delivery is at least once);
//! - `X-Chat-Event` (the kind) and `X-Chat-Delivery-Attempt` (1, 2, ...).
//!
//! Addresses: unless [`WebhookConfig::allow_private`], a URL whose host resolves to a
//! loopback, private, link-local, shared or unspecified address is refused, at
//! registration and again at every connection (the resolver below drops such addresses,
//! so a name that later resolves elsewhere cannot reach the server's own network).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use chat_core::{Attempt, DueDelivery, Engine, Outbound, WebhookRetry};
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;
use sha2::Sha256;
use tokio::sync::watch;

use crate::views::event_view;

/// How the server delivers event webhooks.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// Run the delivery worker (on by default; a server that shares its database with
    /// others may leave delivery to them, though several workers are safe).
    pub enabled: bool,
    /// Allow URLs that resolve to loopback, private or link-local addresses. Off by
    /// default: an admin's URL must not reach the server's own network (cloud metadata,
    /// the database). Tests and single-machine setups turn it on.
    pub allow_private: bool,
    /// Longest wait for an endpoint's answer.
    pub timeout: Duration,
    /// Retries and pausing.
    pub retry: WebhookRetry,
    /// How often the outbox is checked for due deliveries.
    pub poll: Duration,
    /// Deliveries attempted at once.
    pub concurrency: usize,
    /// How long a Telegram inbox in polling mode lets `getUpdates` wait for an update
    /// (its `timeout`): long polling, so an update arrives at once and an idle bot costs
    /// one request per this long.
    pub telegram_long_poll: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            allow_private: false,
            timeout: Duration::from_secs(10),
            retry: WebhookRetry::default(),
            poll: Duration::from_millis(500),
            concurrency: 16,
            telegram_long_poll: Duration::from_secs(25),
        }
    }
}

impl WebhookConfig {
    /// The retry settings with a lease of the attempt timeout + 5 s: it outlasts one
    /// attempt, so only a dead worker's claims lapse, and no longer than that, so a crash
    /// delays a delivery by seconds.
    fn retry(&self) -> WebhookRetry {
        WebhookRetry {
            lease: self.timeout + Duration::from_secs(5),
            ..self.retry
        }
    }
}

/// The replay window receivers should apply to `t`, documented with the header.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(300);

/// The signature header's value for `body` at Unix time `t`:
/// `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
///
/// ```
/// let header = chat_server::webhooks::signature(b"whsec_test", 1_700_000_000, br#"{"id":"x"}"#);
/// assert!(header.starts_with("t=1700000000,v1="));
/// assert_eq!(header.len(), "t=1700000000,v1=".len() + 64);
/// ```
pub fn signature(secret: &[u8], t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether an address is one an admin's URL must not reach unless allowed: loopback,
/// private, link-local (cloud metadata lives there), shared (CGNAT), unspecified,
/// broadcast, multicast, and IPv6's unique-local and link-local ranges (IPv4-mapped ones
/// judged as IPv4).
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// Resolves a URL's host and checks its addresses: `Err` with a reason an admin can read
/// if any is private (and that is not allowed) or the name does not resolve.
pub async fn check_url(url: &str, allow_private: bool) -> Result<(), String> {
    let uri: Uri = url.parse().map_err(|_| "not a valid URL".to_owned())?;
    let host = uri.host().ok_or("no host")?.trim_matches(['[', ']']);
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("{host} does not resolve: {e}"))?
        .collect();
    if !allow_private && addrs.iter().any(|a| is_private(a.ip())) {
        return Err(format!(
            "{host} resolves to a private or loopback address, which this server refuses \
             (see --webhooks-allow-private)"
        ));
    }
    Ok(())
}

/// The connector's resolver: the system's, minus private addresses unless allowed.
#[derive(Clone)]
pub(crate) struct Resolver {
    allow_private: bool,
}

impl tower_service::Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow = self.allow_private;
        Box::pin(async move {
            // The connector puts the port back; 0 is only a placeholder for the lookup.
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| allow || !is_private(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    "the host resolves to no public address",
                ));
            }
            Ok(addrs.into_iter())
        })
    }
}

pub(crate) type HttpClient = Client<HttpsConnector<HttpConnector<Resolver>>, Full<Bytes>>;

/// http and https (rustls with the bundled Mozilla roots and the system's).
pub(crate) fn client(allow_private: bool) -> HttpClient {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    // ring rather than aws-lc-rs, as in chat-bots: no cmake to build it.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut connector = HttpConnector::new_with_resolver(Resolver { allow_private });
    connector.enforce_http(false);
    connector.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector);
    Client::builder(TokioExecutor::new()).build(https)
}

/// The JSON body of a delivery.
fn body(due: &DueDelivery) -> Option<Vec<u8>> {
    let event = due.event.as_ref()?;
    let body = serde_json::json!({
        "id": event_id(due),
        "type": event.payload.kind(),
        "event": event_view(event, true),
    });
    Some(serde_json::to_vec(&body).expect("JSON values serialize"))
}

/// The event's id: unique across tenants, the same on every attempt.
fn event_id(due: &DueDelivery) -> String {
    format!("{}.{}", due.delivery.tenant_id, due.delivery.seq)
}

/// Runs the delivery worker until `stopped` flips. `mail_domain` is the domain of our
/// `Message-ID`s when the server sends e-mail: email inboxes' replies are handed to the mail
/// outbox with it (without it they wait, failing with the reason, until a relay is set).
pub(crate) async fn run(
    engine: Engine,
    config: WebhookConfig,
    mail_domain: Option<String>,
    stopped: watch::Receiver<bool>,
) {
    if !config.enabled {
        return;
    }
    let mail_domain: Option<Arc<str>> = mail_domain.map(Into::into);
    let client = client(config.allow_private);
    let retry = config.retry();
    let concurrency = config.concurrency.max(1);
    let timeout = config.timeout;
    let claiming = engine.clone();
    // A batch holds at most one delivery per webhook and conversation, so attempting them
    // at once keeps each conversation's order.
    crate::outbox::drain(
        "webhook deliveries",
        config.poll,
        stopped,
        move || {
            let engine = claiming.clone();
            async move { engine.claim_deliveries(&retry, concurrency).await }
        },
        move |d: DueDelivery| {
            let (engine, client) = (engine.clone(), client.clone());
            let domain = mail_domain.clone();
            async move { deliver(&engine, &client, &retry, timeout, domain.as_deref(), d).await }
        },
    )
    .await;
}

async fn deliver(
    engine: &Engine,
    client: &HttpClient,
    retry: &WebhookRetry,
    timeout: Duration,
    mail_domain: Option<&str>,
    due: DueDelivery,
) {
    // An inbox's webhook carries replies to its customers, not events.
    let outbound = match engine.outbound(&due).await {
        Ok(o) => o,
        Err(e) => {
            // Not claimed for long: the lease lapses and the delivery is tried again.
            tracing::warn!(error = %e, "reading a webhook delivery's inbox failed");
            return;
        }
    };
    let body = match &outbound {
        Outbound::Event => body(&due),
        Outbound::Skip => {
            if let Err(e) = engine.skip_delivery(&due).await {
                tracing::warn!(error = %e, "recording a webhook delivery failed");
            }
            return;
        }
        Outbound::Reply(reply) if reply.inbox.kind == chat_core::InboxKind::Email => {
            // Handed to the mail outbox, whose worker sends it through the SMTP relay.
            let Some(domain) = mail_domain else {
                let attempt = Attempt {
                    status: None,
                    error: Some(
                        "this server sends no e-mail: no SMTP relay (--smtp-url, --mail-from)"
                            .to_owned(),
                    ),
                    elapsed_ms: 0,
                };
                record(engine, retry, &due, attempt).await;
                return;
            };
            if let Err(e) = engine.mail_reply(&due, reply, domain).await {
                // Not recorded: the lease lapses and the hand-over is tried again.
                tracing::warn!(error = %e, "queueing an e-mail reply failed");
            }
            return;
        }
        Outbound::Reply(reply) if reply.inbox.kind != chat_core::InboxKind::Api => {
            // A provider's own API, in its own form (not signed by us).
            let attempt = crate::channels::send(engine, client, timeout, reply).await;
            record(engine, retry, &due, attempt).await;
            return;
        }
        Outbound::Reply(reply) => Some(crate::channels::api_reply_body(&event_id(&due), reply)),
    };
    let Some(body) = body else {
        if let Err(e) = engine.drop_delivery(&due).await {
            tracing::warn!(error = %e, "recording a webhook delivery failed");
        }
        return;
    };
    let kind = match outbound {
        Outbound::Reply(_) => "reply",
        _ => due.delivery.kind.as_str(),
    };
    let started = Instant::now();
    let t = time::OffsetDateTime::now_utc().unix_timestamp();
    let id = event_id(&due);
    let request = Request::post(due.webhook.url.as_str())
        .header("content-type", "application/json")
        .header(
            "user-agent",
            concat!("chat-server/", env!("CARGO_PKG_VERSION")),
        )
        .header(
            "x-chat-signature",
            signature(due.webhook.secret.0.as_bytes(), t, &body),
        )
        .header("x-chat-event-id", &id)
        .header("idempotency-key", &id)
        .header("x-chat-event", kind)
        .header(
            "x-chat-delivery-attempt",
            (due.delivery.attempts + 1).to_string(),
        )
        .body(Full::new(Bytes::from(body)));
    let attempt = match request {
        Err(e) => Attempt {
            status: None,
            error: Some(format!("bad request: {e}")),
            elapsed_ms: 0,
        },
        Ok(request) => {
            let answer = tokio::time::timeout(timeout, async {
                let response = client.request(request).await?;
                let status = response.status().as_u16();
                // Read (and drop) the answer so the connection can be reused; a receiver
                // that never ends its body is cut by the timeout.
                let _ = response.into_body().collect().await;
                Ok::<u16, hyper_util::client::legacy::Error>(status)
            })
            .await;
            let elapsed_ms = started.elapsed().as_millis() as u64;
            match answer {
                Ok(Ok(status)) => Attempt {
                    status: Some(status),
                    error: None,
                    elapsed_ms,
                },
                Ok(Err(e)) => Attempt {
                    status: None,
                    error: Some(describe(&e)),
                    elapsed_ms,
                },
                Err(_) => Attempt {
                    status: None,
                    error: Some(format!("no answer within {} s", timeout.as_secs_f32())),
                    elapsed_ms,
                },
            }
        }
    };
    record(engine, retry, &due, attempt).await;
}

async fn record(engine: &Engine, retry: &WebhookRetry, due: &DueDelivery, attempt: Attempt) {
    match engine.record_attempt(retry, due, attempt).await {
        Ok(outcome) if !outcome.succeeded() => tracing::info!(
            webhook = %due.webhook.id,
            seq = due.delivery.seq,
            attempts = outcome.attempts,
            error = outcome.last_error.as_deref().unwrap_or(""),
            state = %outcome.state,
            "webhook delivery failed"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "recording a webhook delivery failed"),
    }
}

/// A client error with its causes ("client error (Connect): tcp connect error: Connection
/// refused"), which is what an admin reading the log needs. URLs and secrets are not in it.
pub(crate) fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_recognized() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111", "100.128.0.1"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_dot_body() {
        // From openssl: printf '1700000000.{}' | openssl dgst -sha256 -hmac key
        assert_eq!(
            signature(b"key", 1_700_000_000, b"{}"),
            "t=1700000000,v1=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
    }
}
