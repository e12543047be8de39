//! HTTPS for the simulator: a throwaway certificate authority and a server certificate for
//! `localhost` / `127.0.0.1` / `::1`, generated at start-up with rcgen, served with rustls (ring
//! provider) through axum-server.
//!
//! The CA certificate is written as PEM to a file the caller chooses, so outside clients can
//! trust it (Python `requests.get(url, verify=path)`, reqwest `add_root_certificate`, curl
//! `--cacert`). A separate CA (rather than one self-signed leaf) keeps strict verifiers happy:
//! the trust anchor is a proper CA and the server certificate a proper end-entity certificate.
//! The private keys never leave memory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// File name of the CA certificate inside the certificate directory.
pub const CA_FILE_NAME: &str = "tidemark-sfsim-ca.pem";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("generating the certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("configuring TLS: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("writing the certificate: {0}")]
    Io(#[from] std::io::Error),
}

impl From<TlsError> for std::io::Error {
    fn from(e: TlsError) -> Self {
        match e {
            TlsError::Io(e) => e,
            other => std::io::Error::other(other),
        }
    }
}

/// A freshly generated CA and the server certificate it signed.
pub struct SimCertificate {
    ca_pem: String,
    chain: Vec<CertificateDer<'static>>,
    key: PrivatePkcs8KeyDer<'static>,
    server_pem: String,
    key_pem: String,
}

impl std::fmt::Debug for SimCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCertificate").field("chain_len", &self.chain.len()).finish_non_exhaustive()
    }
}

/// Host names and addresses the server certificate is valid for.
pub const SERVER_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

impl SimCertificate {
    /// Generates a CA and a server certificate for [`SERVER_NAMES`] (ECDSA P-256).
    pub fn generate() -> Result<SimCertificate, TlsError> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::default();
        ca_params.distinguished_name = name("Tidemark sfsim local CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let ca = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate()?;
        let mut server_params = CertificateParams::new(SERVER_NAMES.map(str::to_owned).to_vec())?;
        server_params.distinguished_name = name("localhost");
        server_params.is_ca = IsCa::ExplicitNoCa;
        server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server_params.use_authority_key_identifier_extension = true;
        let server_cert = server_params.signed_by(&server_key, &ca)?;

        Ok(SimCertificate {
            ca_pem: ca_cert.pem(),
            chain: vec![server_cert.der().clone(), ca_cert.der().clone()],
            key: PrivatePkcs8KeyDer::from(server_key.serialize_der()),
            server_pem: server_cert.pem(),
            key_pem: server_key.serialize_pem(),
        })
    }

    /// PEM of the CA certificate clients should trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// PEM of the server certificate followed by the CA certificate (a server's `cert_file`).
    pub fn server_chain_pem(&self) -> String {
        format!("{}{}", self.server_pem, self.ca_pem)
    }

    /// PEM (PKCS#8) of the server certificate's private key (a server's `key_file`).
    pub fn server_key_pem(&self) -> String {
        self.key_pem.clone()
    }

    /// Writes the CA certificate to `dir/`[`CA_FILE_NAME`] (creating `dir`) and returns its path.
    pub fn write_ca(&self, dir: &Path) -> Result<PathBuf, TlsError> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(CA_FILE_NAME);
        std::fs::write(&path, &self.ca_pem)?;
        Ok(path)
    }

    /// A rustls server configuration on the ring provider, offering HTTP/2 and HTTP/1.1.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), PrivateKeyDer::Pkcs8(self.key.clone_key()))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "Tidemark sfsim");
    dn
}

/// A default certificate directory under the system temp dir, unique per process and port.
pub fn default_cert_dir(addr: SocketAddr) -> PathBuf {
    std::env::temp_dir().join(format!("tidemark-sfsim-{}-{}", std::process::id(), addr.port()))
}

/// Serves `app` over TLS on an already bound listener until `shutdown` fires.
pub fn spawn_server(
    listener: tokio::net::TcpListener,
    app: Router,
    config: Arc<rustls::ServerConfig>,
    shutdown: tokio::sync::oneshot::Receiver<()>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = listener.into_std()?;
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp_rustls(listener, RustlsConfig::from_config(config))?.handle(handle.clone());
    tokio::spawn(async move {
        let _ = shutdown.await;
        handle.graceful_shutdown(Some(Duration::from_secs(5)));
    });
    Ok(tokio::spawn(async move {
        if let Err(e) = server.serve(app.into_make_service()).await {
            tracing::error!(error = %e, "simulator HTTPS server stopped");
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_a_ca_and_a_server_certificate_and_a_rustls_config() {
        let cert = SimCertificate::generate().expect("generate");
        assert!(cert.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(cert.chain.len(), 2);
        cert.server_config().expect("rustls accepts the key and chain");
        let dir = std::env::temp_dir().join(format!("tidemark-sfsim-tls-unit-{}", std::process::id()));
        let path = cert.write_ca(&dir).expect("write");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), cert.ca_pem());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
