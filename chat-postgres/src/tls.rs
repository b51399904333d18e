//! TLS to PostgreSQL with rustls, by the URL's `sslmode` as libpq reads it.
//!
//! - `disable`, `prefer` or none: no TLS (`prefer` does not try it; ask for `require`).
//! - `require`: TLS or no connection. The certificate is not checked (libpq's meaning),
//!   unless a CA is given, which makes it `verify-ca` (libpq does the same when a root
//!   certificate file is present).
//! - `verify-ca`: the server's chain must lead to a trusted root; its name is not checked.
//! - `verify-full`: the chain and the name (the URL's host) are checked.
//!
//! Trusted roots are the CA file given (`sslrootcert=` in the URL, or
//! [`Options::ca_file`](crate::Options::ca_file)), and only it; without one, the system's
//! roots and the Mozilla roots of `webpki-roots`. tokio-postgres itself parses only
//! `disable`, `prefer` and `require`, so the stricter modes and `sslrootcert` are taken
//! out of the URL here before it parses the rest.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use chat_core::{Error, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

/// How much of the server's certificate is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verify {
    /// No TLS.
    Off,
    /// TLS, the certificate unchecked.
    Encrypt,
    /// TLS, the chain checked.
    Ca,
    /// TLS, the chain and the host name checked.
    Full,
}

/// The URL without the parameters tokio-postgres does not read, what its `sslmode` asks
/// for, and its `sslrootcert`.
pub(crate) fn split_url(url: &str) -> (String, Verify, Option<PathBuf>) {
    let mut verify = Verify::Off;
    let mut root = None;
    // Both forms: `postgres://…?a=b&sslmode=x` and `host=… sslmode=x`.
    let url_form = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let separator = if url_form { '&' } else { ' ' };
    let (head, params) = if url_form {
        match url.split_once('?') {
            Some((head, query)) => (format!("{head}?"), query.to_owned()),
            None => (url.to_owned(), String::new()),
        }
    } else {
        (String::new(), url.to_owned())
    };
    let mut kept = Vec::new();
    for param in params.split(separator) {
        match param.split_once('=') {
            Some(("sslmode", mode)) => {
                verify = match mode {
                    "require" => Verify::Encrypt,
                    "verify-ca" => Verify::Ca,
                    "verify-full" => Verify::Full,
                    _ => Verify::Off,
                };
                // tokio-postgres needs `require` to insist on TLS at all.
                if verify != Verify::Off {
                    kept.push("sslmode=require".to_owned());
                } else {
                    kept.push(param.to_owned());
                }
            }
            Some(("sslrootcert", path)) => root = Some(PathBuf::from(percent_decode(path))),
            _ => kept.push(param.to_owned()),
        }
    }
    let rest = kept.join(&separator.to_string());
    let url = if url_form && rest.is_empty() {
        head.trim_end_matches('?').to_owned()
    } else {
        format!("{head}{rest}")
    };
    (url, verify, root)
}

/// `%2F` and the like in a URL's query value (a CA path with slashes).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(hex) = std::str::from_utf8(&bytes[i + 1..i + 3])
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The connector for `verify` with the roots of `ca_file`, or `None` for no TLS.
pub(crate) fn connector(verify: Verify, ca_file: Option<&Path>) -> Result<Option<RustlsConnect>> {
    // A CA file turns `require` into `verify-ca`, as libpq does with a root certificate.
    let verify = match (verify, ca_file) {
        (Verify::Encrypt, Some(_)) => Verify::Ca,
        (v, _) => v,
    };
    if verify == Verify::Off {
        return Ok(None);
    }
    // ring rather than aws-lc-rs, as the bots use it: no cmake and C toolchain to build.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::validation("store", format!("TLS setup: {e}")))?;
    let config = if verify == Verify::Encrypt {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unchecked(provider)))
            .with_no_client_auth()
    } else {
        let roots = Arc::new(roots(ca_file)?);
        let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| Error::validation("store", format!("TLS roots: {e}")))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Checked {
                webpki,
                names: verify == Verify::Full,
            }))
            .with_no_client_auth()
    };
    Ok(Some(RustlsConnect(tokio_rustls::TlsConnector::from(
        Arc::new(config),
    ))))
}

fn roots(ca_file: Option<&Path>) -> Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    let Some(path) = ca_file else {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        // An entry the system store cannot parse is skipped: one odd certificate must
        // not take the database away.
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        return Ok(roots);
    };
    let invalid =
        |why: String| Error::validation("store", format!("CA file {}: {why}", path.display()));
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| invalid(e.to_string()))? {
        roots
            .add(cert.map_err(|e| invalid(e.to_string()))?)
            .map_err(|e| invalid(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(invalid("no PEM certificate in it".into()));
    }
    Ok(roots)
}

/// `verify-ca` and `verify-full`: the web PKI's checks, the name's only for `verify-full`.
#[derive(Debug)]
struct Checked {
    webpki: Arc<rustls::client::WebPkiServerVerifier>,
    names: bool,
}

impl ServerCertVerifier for Checked {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            // The chain was good and only the name differs: what `verify-ca` allows.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.names => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// `require` without a CA: any certificate (libpq's meaning: encrypted, not
/// authenticated), but the handshake's signatures are still checked against it.
#[derive(Debug)]
struct Unchecked(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// tokio-postgres' TLS seam over tokio-rustls.
#[derive(Clone)]
pub(crate) struct RustlsConnect(tokio_rustls::TlsConnector);

/// One connection's handshake, for the host it connects to.
pub(crate) struct RustlsHandshake {
    connector: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
}

impl<S> MakeTlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsHandshake;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> io::Result<RustlsHandshake> {
        let name = ServerName::try_from(domain.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(RustlsHandshake {
            connector: self.0.clone(),
            name,
        })
    }
}

impl<S> TlsConnect<S> for RustlsHandshake
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let tls = self.connector.connect(self.name, stream).await?;
            Ok(RustlsStream(Box::new(tls)))
        })
    }
}

/// A TLS session to the server.
pub(crate) struct RustlsStream<S>(Box<tokio_rustls::client::TlsStream<S>>);

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        // No SCRAM channel binding: SCRAM still authenticates, and the certificate checks
        // above are what bind the session to the server.
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_strict_modes_and_the_root_file_leave_the_url_for_tokio_postgres() {
        assert_eq!(
            split_url(
                "postgres://u@db.example/chat?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x"
            ),
            (
                "postgres://u@db.example/chat?sslmode=require&application_name=x".to_owned(),
                Verify::Full,
                Some(PathBuf::from("/etc/ca.pem"))
            )
        );
        assert_eq!(
            split_url("host=db.example sslmode=verify-ca user=u"),
            (
                "host=db.example sslmode=require user=u".to_owned(),
                Verify::Ca,
                None
            )
        );
        assert_eq!(
            split_url("postgres://u@h/d?sslrootcert=ca.pem"),
            (
                "postgres://u@h/d".to_owned(),
                Verify::Off,
                Some(PathBuf::from("ca.pem"))
            )
        );
        assert_eq!(
            split_url("postgres://u@h/d"),
            ("postgres://u@h/d".to_owned(), Verify::Off, None)
        );
        assert_eq!(split_url("postgres://u@h/d?sslmode=disable").1, Verify::Off);
    }
}
