//! TLS for the server (`server.tls.cert_file` / `server.tls.key_file`):
//! rustls with the ring provider, the PEM files read once at start-up.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

/// The rustls configuration for a certificate chain and its private key;
/// `Err` is one line naming the file and what is wrong with it.
pub fn server_config(cert_file: &Path, key_file: &Path) -> Result<ServerConfig, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .and_then(Iterator::collect)
        .map_err(|e| {
            format!(
                "cannot read a PEM certificate chain from {} (server.tls.cert_file): {e}",
                cert_file.display()
            )
        })?;
    if certs.is_empty() {
        return Err(format!(
            "{} (server.tls.cert_file) holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            cert_file.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| {
        format!(
            "cannot read a PEM private key from {} (server.tls.key_file): {e}",
            key_file.display()
        )
    })?;
    // ring, not rustls' default aws-lc-rs: aws-lc-rs compiles a large C
    // library (minutes on a small CI machine). rustls deprecates ring's
    // provider only because it lacks post-quantum key exchange; its
    // classical suites (TLS 1.3/1.2, X25519, P-256) are what we offer.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .with_no_client_auth()
        // Also checks that the key is the certificate's (rustls compares
        // their public keys), so a mismatched pair is refused here.
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!(
                "the TLS certificate {} and key {} (server.tls) do not make a usable pair: {e}",
                cert_file.display(),
                key_file.display()
            )
        })
}
