//! TLS to PostgreSQL. A proxy in the test stands in front of the test database: it answers
//! PostgreSQL's SSLRequest with `S`, takes the TLS handshake with a certificate of a CA
//! made here, and forwards the decrypted protocol to the server; so the checks of each
//! `sslmode` meet certificates the test controls, whatever the database's own TLS. A
//! server without TLS is a listener that answers the SSLRequest with `N`, as PostgreSQL
//! built or configured without TLS does.

use crate::common;

#[cfg(chat_test_postgres)]
mod tls {
    use std::sync::Arc;

    use chat_core::Store;
    use chat_postgres::{Options, PostgresStore};
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::common;

    /// A CA: its PEM file, and the issuer that signs server certificates.
    struct TestCa {
        file: tempfile::NamedTempFile,
        issuer: Issuer<'static, KeyPair>,
    }

    fn test_ca(name: &str) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), cert.pem()).unwrap();
        TestCa {
            file,
            issuer: Issuer::new(params, key),
        }
    }

    /// Where the test database listens, and the URL's user and database.
    fn upstream() -> (String, u16, String, String) {
        let config: tokio_postgres::Config = common::url().parse().unwrap();
        let host = match &config.get_hosts()[0] {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            #[allow(unreachable_patterns)]
            _ => "127.0.0.1".into(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let user = config.get_user().unwrap_or("postgres").to_owned();
        let db = config.get_dbname().unwrap_or("postgres").to_owned();
        (host, port, user, db)
    }

    /// A TLS proxy on 127.0.0.1 in front of the test database with a certificate for
    /// `localhost` signed by `ca`; returns its port.
    async fn proxy(ca: &TestCa) -> u16 {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &ca.issuer)
            .unwrap();
        #[allow(deprecated)] // ring, as the store uses it
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (host, upstream_port, _, _) = upstream();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let host = host.clone();
                tokio::spawn(async move {
                    // SSLRequest: length 8, code 80877103.
                    let mut request = [0u8; 8];
                    client.read_exact(&mut request).await?;
                    assert_eq!(request, [0, 0, 0, 8, 4, 210, 22, 47], "an SSLRequest first");
                    client.write_all(b"S").await?;
                    let mut tls = acceptor.accept(client).await?;
                    let mut server =
                        tokio::net::TcpStream::connect((host.as_str(), upstream_port)).await?;
                    tokio::io::copy_bidirectional(&mut tls, &mut server).await?;
                    std::io::Result::Ok(())
                });
            }
        });
        port
    }

    /// The proxy's URL, by `host` (the name the certificate is checked against), always
    /// reaching 127.0.0.1.
    fn url(host: &str, port: u16, params: &str) -> String {
        let (_, _, user, db) = upstream();
        format!("postgres://{user}@{host}:{port}/{db}?hostaddr=127.0.0.1&{params}")
    }

    async fn connect(
        url: &str,
        schema: &common::Schema,
        ca: Option<&TestCa>,
    ) -> chat_core::Result<PostgresStore> {
        let mut options = Options::default().schema(&schema.name).pool_size(2);
        if let Some(ca) = ca {
            options = options.ca_file(ca.file.path());
        }
        PostgresStore::connect_with(url, options).await
    }

    /// The store answers queries over the connection (its schema was migrated through it).
    async fn works(store: &PostgresStore) {
        let tenant = chat_core::TenantId(uuid::Uuid::new_v4());
        assert_eq!(store.event_head(tenant).await.unwrap(), 0);
    }

    /// A server without TLS: it refuses the SSLRequest with `N` (and would then speak
    /// plain protocol, which the client must not go on with).
    async fn without_tls() -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut request = [0u8; 8];
                if client.read_exact(&mut request).await.is_ok() {
                    let _ = client.write_all(b"N").await;
                    // Hold the socket until the client hangs up.
                    let _ = client.read(&mut request).await;
                }
            }
        });
        port
    }

    #[tokio::test]
    async fn sslmode_require_refuses_a_server_without_tls_and_says_so() {
        let schema = common::Schema::create().await;
        let port = without_tls().await;
        for mode in ["require", "verify-ca", "verify-full"] {
            let err = connect(
                &url("localhost", port, &format!("sslmode={mode}")),
                &schema,
                None,
            )
            .await
            .unwrap_err()
            .to_string();
            assert!(err.contains("server does not support TLS"), "{mode}: {err}");
        }
    }

    #[tokio::test]
    async fn verify_full_connects_through_tls_with_the_ca_and_refuses_another_ca() {
        let schema = common::Schema::create().await;
        let ca = test_ca("chat-postgres test CA");
        let port = proxy(&ca).await;
        let store = connect(
            &url("localhost", port, "sslmode=verify-full"),
            &schema,
            Some(&ca),
        )
        .await
        .unwrap();
        works(&store).await;

        // The root file may come in the URL instead, as libpq reads it.
        let path = ca.file.path().to_str().unwrap().replace('/', "%2F");
        let in_url = format!("sslmode=verify-full&sslrootcert={path}");
        works(
            &connect(&url("localhost", port, &in_url), &schema, None)
                .await
                .unwrap(),
        )
        .await;

        // Another CA, or the system roots: the certificate is not trusted.
        let other = test_ca("another CA");
        for refused in [
            connect(
                &url("localhost", port, "sslmode=verify-full"),
                &schema,
                Some(&other),
            )
            .await,
            connect(&url("localhost", port, "sslmode=verify-ca"), &schema, None).await,
        ] {
            let err = refused.unwrap_err().to_string();
            assert!(err.contains("certificate"), "{err}");
        }
    }

    #[tokio::test]
    async fn verify_full_checks_the_name_verify_ca_and_require_do_not() {
        let schema = common::Schema::create().await;
        let ca = test_ca("chat-postgres test CA");
        let port = proxy(&ca).await;
        // The certificate names `localhost`, the URL `127.0.0.1`.
        let err = connect(
            &url("127.0.0.1", port, "sslmode=verify-full"),
            &schema,
            Some(&ca),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("certificate"), "{err}");
        works(
            &connect(
                &url("127.0.0.1", port, "sslmode=verify-ca"),
                &schema,
                Some(&ca),
            )
            .await
            .unwrap(),
        )
        .await;
        // `require` without a CA encrypts without checking, as libpq does.
        works(
            &connect(&url("127.0.0.1", port, "sslmode=require"), &schema, None)
                .await
                .unwrap(),
        )
        .await;
    }
}

#[cfg(not(chat_test_postgres))]
#[test]
fn skipped_chat_test_postgres_url_unset() {
    common::skipped();
}
