//! TLS for the tokio peers: tokio-rustls with rustls's `ring` provider (the provider goway's
//! TLS uses), a certificate chain and key from PEM files, ALPN `http/1.1`.

use std::process::exit;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// An acceptor for `--tls-cert` and `--tls-key`, or exits with status 1 and a message.
pub fn acceptor(cert: &str, key: &str) -> TlsAcceptor {
    let fail = |what: &str, e: &dyn std::fmt::Display| -> ! {
        eprintln!("tls: {what}: {e}");
        exit(1)
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .unwrap_or_else(|e| fail(cert, &e))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| fail(cert, &e));
    let key = PrivateKeyDer::from_pem_file(key).unwrap_or_else(|e| fail(key, &e));
    // ring, the provider goway uses; rustls 0.23.48 deprecates it only because it has no
    // post-quantum key exchange (neither has Go 1.19, the other peer).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|e| fail("protocol versions", &e))
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap_or_else(|e| fail("certificate", &e));
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsAcceptor::from(Arc::new(cfg))
}
