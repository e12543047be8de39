//! TLS for the endpoint: the certificate chain and key from PEM files, rustls with the ring
//! provider (the workspace's; aws-lc-rs is in the tree too, so the provider is named rather
//! than left to rustls's process default).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion_postgres::pgwire::tokio::TlsAcceptor;
use datafusion_postgres::pgwire::tokio::tokio_rustls::rustls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::PgServerError;

/// Where the endpoint's certificate chain (leaf first) and private key are, both PEM.
#[derive(Debug, Clone)]
pub struct PgTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// Refuse clients that do not use TLS. Always so beyond loopback.
    pub required: bool,
}

/// The acceptor, and the certificate chain's PEM text (SCRAM channel binding hashes the leaf).
pub(super) fn acceptor(tls: &PgTls) -> Result<(TlsAcceptor, Vec<u8>), PgServerError> {
    let failed = |file: &Path, reason: String| PgServerError::Tls { file: file.to_owned(), reason };
    let pem = std::fs::read(&tls.cert_file).map_err(|e| failed(&tls.cert_file, e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| failed(&tls.cert_file, format!("not a PEM certificate chain: {e}")))?;
    if certs.is_empty() {
        return Err(failed(&tls.cert_file, "holds no certificate (expected -----BEGIN CERTIFICATE-----)".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key_file)
        .map_err(|e| failed(&tls.key_file, format!("no private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| failed(&tls.cert_file, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| failed(&tls.key_file, format!("does not match the certificate: {e}")))?;
    // libpq 17's direct TLS negotiation requires the ALPN protocol to be named.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), pem))
}
