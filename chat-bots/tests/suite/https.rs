//! The LLM and webhook bots over `https://`, against a local TLS service whose certificate
//! comes from a CA made in the test: trusted through `ca_file`, refused without it.

use crate::common;

use std::sync::Arc;

use chat_bots::{LlmBot, LlmConfig, WebhookBot, WebhookConfig};
use chat_core::{BotDecision, BotErrorKind, Error};
use common::{Line, Reply, completion, fixture, serve_tls};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// A CA (its PEM written to a file) and a TLS acceptor for `127.0.0.1` signed by it.
struct TestCa {
    file: tempfile::NamedTempFile,
    acceptor: tokio_rustls::TlsAcceptor,
}

fn test_ca() -> TestCa {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "chat-bots test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();

    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), ca_cert.pem()).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    #[allow(deprecated)] // ring, as the bots use it
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![server_cert.der().clone()], key)
        .unwrap();
    TestCa {
        file,
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
    }
}

const CONVERSATION: &[Line] = &[Line::Customer("where is my order?")];

#[tokio::test]
async fn the_llm_bot_answers_over_https_with_a_custom_ca() {
    let ca = test_ca();
    let mut server = serve_tls(
        |_| Reply::Json(completion("It ships tomorrow.")),
        ca.acceptor.clone(),
    )
    .await;
    assert!(server.url.starts_with("https://"));
    let f = fixture(CONVERSATION).await;
    let bot = LlmBot::new(LlmConfig {
        stream: false,
        ca_file: Some(ca.file.path().to_owned()),
        ..LlmConfig::new(format!("{}/v1", server.url), "test-model")
    })
    .unwrap();
    let decision = f.respond(&bot).await.unwrap();
    assert!(
        matches!(&decision, BotDecision::Reply { text, .. } if text == "It ships tomorrow."),
        "{decision:?}"
    );
    assert_eq!(server.request().await.path, "/v1/chat/completions");

    // Without the CA, the same service is not trusted: a transport error, no answer.
    let untrusting = LlmBot::new(LlmConfig {
        stream: false,
        ..LlmConfig::new(format!("{}/v1", server.url), "test-model")
    })
    .unwrap();
    let refused = f.respond(&untrusting).await.unwrap_err();
    assert_eq!(
        refused.bot_kind(),
        Some(BotErrorKind::Transport),
        "{refused}"
    );
    assert!(
        refused.to_string().to_lowercase().contains("certificate"),
        "{refused}"
    );
}

#[tokio::test]
async fn the_webhook_bot_posts_over_https_with_a_custom_ca() {
    let ca = test_ca();
    let mut server = serve_tls(
        |_| Reply::Json(r#"{"action":"reply","text":"Checking now."}"#.into()),
        ca.acceptor.clone(),
    )
    .await;
    let f = fixture(CONVERSATION).await;
    let bot = WebhookBot::new(
        WebhookConfig {
            ca_file: Some(ca.file.path().to_owned()),
            ..WebhookConfig::new(format!("{}/events", server.url))
        },
        "secret",
    )
    .unwrap();
    let decision = f.respond(&bot).await.unwrap();
    assert!(
        matches!(&decision, BotDecision::Reply { text, .. } if text == "Checking now."),
        "{decision:?}"
    );
    assert_eq!(server.request().await.path, "/events");
}

#[tokio::test]
async fn a_ca_file_without_certificates_is_refused_at_construction() {
    let empty = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(empty.path(), "not a certificate\n").unwrap();
    let config = WebhookConfig {
        ca_file: Some(empty.path().to_owned()),
        ..WebhookConfig::new("https://127.0.0.1:9/events")
    };
    let refused = WebhookBot::new(config, "secret").unwrap_err();
    assert!(
        matches!(&refused, Error::Validation { field, .. } if *field == "ca_file"),
        "{refused}"
    );
    let missing = LlmBot::new(LlmConfig {
        ca_file: Some("/nonexistent/ca.pem".into()),
        ..LlmConfig::new("https://127.0.0.1:9/v1", "m")
    });
    assert!(matches!(missing, Err(Error::Validation { .. })));
}
