//! Server and client configurations (Go's `tls.Config`, split by side), and pools of trusted
//! certificates (Go's `x509.CertPool`).

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

use parking_lot::RwLock;
use rustls::RootCertStore;
use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::error::TlsError;

/// The crypto provider of every goway config: rustls's `ring` provider.
// Deprecated in rustls 0.23.48 only because ring has no post-quantum key exchange; its
// classical suites are the ones Go 1.19 offers.
#[allow(deprecated)]
pub(crate) fn provider() -> Arc<CryptoProvider> {
    static P: std::sync::OnceLock<Arc<CryptoProvider>> = std::sync::OnceLock::new();
    P.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

fn read_file(path: &Path, what: &str) -> io::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("tls: reading {what} {}: {e}", path.display()),
        )
    })
}

/// The certificates of a PEM text (all `CERTIFICATE` blocks, in order).
fn certs_from_pem(pem: &[u8]) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::config(format!("tls: bad certificate PEM: {e}")).into_io())?;
    if certs.is_empty() {
        return Err(
            TlsError::config("tls: failed to find any PEM data in certificate input").into_io(),
        );
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) of a PEM text.
fn key_from_pem(pem: &[u8]) -> io::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| {
        TlsError::config(format!(
            "tls: failed to find a private key in key input: {e}"
        ))
        .into_io()
    })
}

/// A certificate chain with its key, checked against each other.
fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> io::Result<Arc<CertifiedKey>> {
    let chain = certs_from_pem(cert_pem)?;
    let key = key_from_pem(key_pem)?;
    CertifiedKey::from_der(chain, key, &provider())
        .map(Arc::new)
        .map_err(|e| TlsError::from_rustls(e).into_io())
}

// ----- trusted certificates -----------------------------------------------------------------

/// A set of trusted root certificates (Go's `x509.CertPool`): the roots a client checks
/// servers against, or a server checks client certificates against (mTLS).
///
/// ```
/// let pool = goway::tls::CertPool::webpki();
/// assert!(!pool.is_empty());
/// assert!(goway::tls::CertPool::from_pem(b"garbage").is_err());
/// ```
#[derive(Clone)]
pub struct CertPool {
    store: Arc<RootCertStore>,
}

impl fmt::Debug for CertPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertPool")
            .field("roots", &self.store.len())
            .finish()
    }
}

impl CertPool {
    /// An empty pool.
    pub fn new() -> CertPool {
        CertPool {
            store: Arc::new(RootCertStore::empty()),
        }
    }

    /// Mozilla's root program, compiled in (the `webpki-roots` crate): what
    /// [`ClientConfig::new`] trusts.
    pub fn webpki() -> CertPool {
        CertPool {
            store: Arc::new(RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            }),
        }
    }

    /// The certificates of a PEM text (Go's `AppendCertsFromPEM` on a new pool).
    ///
    /// # Errors
    /// A [`TlsErrorKind::Config`](super::TlsErrorKind::Config) error when the text holds no
    /// certificate or one that is not a usable trust anchor.
    pub fn from_pem(pem: &[u8]) -> io::Result<CertPool> {
        let mut p = CertPool::new();
        p.add_pem(pem)?;
        Ok(p)
    }

    /// The certificates of a PEM file.
    ///
    /// # Errors
    /// As [`from_pem`](Self::from_pem), or the file's read error.
    pub fn from_pem_file(path: impl AsRef<Path>) -> io::Result<CertPool> {
        Self::from_pem(&read_file(path.as_ref(), "CA file")?)
    }

    /// Adds the certificates of a PEM text.
    ///
    /// # Errors
    /// As [`from_pem`](Self::from_pem); the pool is unchanged then.
    pub fn add_pem(&mut self, pem: &[u8]) -> io::Result<()> {
        let certs = certs_from_pem(pem)?;
        let mut store = (*self.store).clone();
        for c in certs {
            store
                .add(c)
                .map_err(|e| TlsError::from_rustls(e).into_io())?;
        }
        self.store = Arc::new(store);
        Ok(())
    }

    /// The number of certificates.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// `true` when the pool trusts nothing.
    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    /// rustls's root store.
    pub fn root_store(&self) -> Arc<RootCertStore> {
        self.store.clone()
    }
}

impl Default for CertPool {
    fn default() -> Self {
        CertPool::new()
    }
}

// ----- server ---------------------------------------------------------------------------------

/// Whether a server asks clients for certificates (Go's `tls.ClientAuthType`).
#[derive(Debug, Clone, Default)]
pub enum ClientAuth {
    /// No client certificates (Go's `NoClientCert`): the default.
    #[default]
    None,
    /// A client may present a certificate, which must then verify against the pool (Go's
    /// `VerifyClientCertIfGiven`).
    Optional(CertPool),
    /// A client must present a certificate that verifies against the pool (Go's
    /// `RequireAndVerifyClientCert`).
    Require(CertPool),
}

/// The server's certificate, swappable while the server runs.
#[derive(Debug)]
struct CertSlot {
    key: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for CertSlot {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.key.read().clone())
    }
}

/// A TLS server's configuration (the server side of Go's `tls.Config`): its certificate
/// chain and key, whether it asks for client certificates, its ALPN protocols.
///
/// Resumption: a server made here keeps sessions in memory (rustls's cache of 256) and
/// sends one TLS 1.3 session ticket after each full handshake, as Go's `crypto/tls` does;
/// rustls's own default is two. Set `send_tls13_tickets` on a rustls configuration and use
/// [`from_rustls`](Self::from_rustls) for another number.
///
/// Cloning is cheap and clones share the certificate: [`reload_pem`](Self::reload_pem) on
/// any clone makes every server and listener using this configuration present the new
/// certificate from their next handshake on (connections already made keep theirs), which is
/// how short-lived certificates are renewed without a restart.
///
/// ```
/// let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
/// let (cert, key) = (ck.cert.pem(), ck.signing_key.serialize_pem());
/// let cfg = goway::tls::ServerConfig::from_pem(cert.as_bytes(), key.as_bytes())
///     .unwrap()
///     .with_alpn(&["h2", "http/1.1"]);
/// assert_eq!(cfg.rustls().alpn_protocols, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
/// assert_eq!(cfg.rustls().send_tls13_tickets, 1);
/// ```
#[derive(Clone)]
pub struct ServerConfig {
    inner: Arc<rustls::ServerConfig>,
    slot: Option<Arc<CertSlot>>,
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("alpn", &self.inner.alpn_protocols)
            .field("reloadable", &self.slot.is_some())
            .finish()
    }
}

impl ServerConfig {
    /// A configuration from a PEM certificate chain (leaf first) and a PEM private key
    /// (PKCS#8, PKCS#1 or SEC1), as Go's `tls.X509KeyPair`.
    ///
    /// # Errors
    /// A [`TlsErrorKind::Config`](super::TlsErrorKind::Config) error when either holds
    /// nothing usable or the key does not match the certificate.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> io::Result<ServerConfig> {
        let slot = Arc::new(CertSlot {
            key: RwLock::new(certified_key(cert_pem, key_pem)?),
        });
        let inner = build_server(ClientAuth::None, slot.clone())?;
        Ok(ServerConfig {
            inner: Arc::new(inner),
            slot: Some(slot),
        })
    }

    /// A configuration from PEM files, as Go's `tls.LoadX509KeyPair`.
    ///
    /// # Errors
    /// As [`from_pem`](Self::from_pem), or a file's read error.
    pub fn from_pem_files(
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> io::Result<ServerConfig> {
        let c = read_file(cert.as_ref(), "certificate")?;
        let k = read_file(key.as_ref(), "key")?;
        Self::from_pem(&c, &k)
    }

    /// A configuration made with rustls directly (any provider, resolver or verifier).
    /// [`reload_pem`](Self::reload_pem) is not available on it.
    pub fn from_rustls(cfg: Arc<rustls::ServerConfig>) -> ServerConfig {
        ServerConfig {
            inner: cfg,
            slot: None,
        }
    }

    /// Sets the ALPN protocols the server accepts, most preferred first (Go's `NextProtos`).
    /// A client offering ALPN but none of these is refused.
    pub fn with_alpn(mut self, protocols: &[&str]) -> ServerConfig {
        Arc::make_mut(&mut self.inner).alpn_protocols =
            protocols.iter().map(|p| p.as_bytes().to_vec()).collect();
        self
    }

    /// Sets whether clients must, may or must not present certificates (mTLS).
    ///
    /// # Errors
    /// A [`TlsErrorKind::Config`](super::TlsErrorKind::Config) error for an empty pool, or on
    /// a configuration from [`from_rustls`](Self::from_rustls).
    pub fn with_client_auth(self, auth: ClientAuth) -> io::Result<ServerConfig> {
        let Some(slot) = self.slot.clone() else {
            return Err(TlsError::config(
                "tls: set client authentication on the rustls configuration itself",
            )
            .into_io());
        };
        let mut inner = build_server(auth, slot)?;
        inner.alpn_protocols = self.inner.alpn_protocols.clone();
        Ok(ServerConfig {
            inner: Arc::new(inner),
            slot: self.slot,
        })
    }

    /// Replaces the certificate and key for the handshakes from now on (connections already
    /// established keep theirs). On a failure the old certificate stays.
    ///
    /// # Errors
    /// As [`from_pem`](Self::from_pem); a `Config` error on a configuration from
    /// [`from_rustls`](Self::from_rustls).
    pub fn reload_pem(&self, cert_pem: &[u8], key_pem: &[u8]) -> io::Result<()> {
        let Some(slot) = &self.slot else {
            return Err(
                TlsError::config("tls: this configuration has no reloadable certificate").into_io(),
            );
        };
        let key = certified_key(cert_pem, key_pem)?;
        *slot.key.write() = key;
        Ok(())
    }

    /// [`reload_pem`](Self::reload_pem) from files.
    ///
    /// # Errors
    /// As `reload_pem`, or a file's read error.
    pub fn reload_pem_files(
        &self,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> io::Result<()> {
        let c = read_file(cert.as_ref(), "certificate")?;
        let k = read_file(key.as_ref(), "key")?;
        self.reload_pem(&c, &k)
    }

    /// The rustls configuration.
    pub fn rustls(&self) -> &Arc<rustls::ServerConfig> {
        &self.inner
    }
}

impl From<ServerConfig> for Arc<rustls::ServerConfig> {
    fn from(c: ServerConfig) -> Self {
        c.inner
    }
}

fn build_server(auth: ClientAuth, slot: Arc<CertSlot>) -> io::Result<rustls::ServerConfig> {
    let b = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::from_rustls(e).into_io())?;
    let b = match auth {
        ClientAuth::None => b.with_no_client_auth(),
        ClientAuth::Optional(pool) | ClientAuth::Require(pool) if pool.is_empty() => {
            return Err(
                TlsError::config("tls: client authentication needs a non-empty pool").into_io(),
            );
        }
        ClientAuth::Optional(pool) => {
            let v = WebPkiClientVerifier::builder_with_provider(pool.root_store(), provider())
                .allow_unauthenticated()
                .build()
                .map_err(|e| TlsError::config(format!("tls: client verifier: {e}")).into_io())?;
            b.with_client_cert_verifier(v)
        }
        ClientAuth::Require(pool) => {
            let v = WebPkiClientVerifier::builder_with_provider(pool.root_store(), provider())
                .build()
                .map_err(|e| TlsError::config(format!("tls: client verifier: {e}")).into_io())?;
            b.with_client_cert_verifier(v)
        }
    };
    let mut cfg = b.with_cert_resolver(slot);
    // One TLS 1.3 session ticket per full handshake, as Go's crypto/tls sends (rustls's
    // default is 2): each ticket costs both sides an encryption and the client a session
    // copy. A client that wants to resume more than once gets a new ticket on each resumption.
    cfg.send_tls13_tickets = TLS13_TICKETS;
    Ok(cfg)
}

/// TLS 1.3 session tickets a server sends after each handshake (see [`ServerConfig`]).
const TLS13_TICKETS: usize = 1;

// ----- client ---------------------------------------------------------------------------------

/// A client certificate, always offered.
#[derive(Debug)]
struct ClientCert(Arc<CertifiedKey>);

impl ResolvesClientCert for ClientCert {
    fn resolve(
        &self,
        _hints: &[&[u8]],
        _schemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A TLS client's configuration (the client side of Go's `tls.Config`): the roots it trusts,
/// its ALPN protocols, its certificate for mTLS, and optionally the name to verify the server
/// against in place of the dialed one (Go's `ServerName`).
///
/// ```
/// let cfg = goway::tls::ClientConfig::new()
///     .with_alpn(&["http/1.1"])
///     .with_server_name("example.com");
/// assert_eq!(cfg.server_name(), Some("example.com"));
/// ```
#[derive(Clone)]
pub struct ClientConfig {
    inner: Arc<rustls::ClientConfig>,
    server_name: Option<String>,
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("alpn", &self.inner.alpn_protocols)
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl ClientConfig {
    /// A client that trusts Mozilla's root program ([`CertPool::webpki`]).
    pub fn new() -> ClientConfig {
        Self::with_roots(CertPool::webpki())
    }

    /// A client that trusts exactly `roots` (Go's `RootCAs`).
    pub fn with_roots(roots: CertPool) -> ClientConfig {
        let inner = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map(|b| {
                b.with_root_certificates(roots.root_store())
                    .with_no_client_auth()
            })
            // The ring provider supports the default versions: this cannot fail.
            .unwrap_or_else(|_| unreachable!("ring supports TLS 1.2 and 1.3"));
        ClientConfig {
            inner: Arc::new(inner),
            server_name: None,
        }
    }

    /// A client that trusts the certificates of a PEM file (`curl --cacert`).
    ///
    /// # Errors
    /// As [`CertPool::from_pem_file`].
    pub fn with_ca_file(path: impl AsRef<Path>) -> io::Result<ClientConfig> {
        Ok(Self::with_roots(CertPool::from_pem_file(path)?))
    }

    /// A configuration made with rustls directly.
    pub fn from_rustls(cfg: Arc<rustls::ClientConfig>) -> ClientConfig {
        ClientConfig {
            inner: cfg,
            server_name: None,
        }
    }

    /// Sets the ALPN protocols to offer, most preferred first (Go's `NextProtos`).
    pub fn with_alpn(mut self, protocols: &[&str]) -> ClientConfig {
        Arc::make_mut(&mut self.inner).alpn_protocols =
            protocols.iter().map(|p| p.as_bytes().to_vec()).collect();
        self
    }

    /// Sets the certificate to present to servers that ask (mTLS; Go's `Certificates`).
    ///
    /// # Errors
    /// As [`ServerConfig::from_pem`].
    pub fn with_client_cert_pem(mut self, cert_pem: &[u8], key_pem: &[u8]) -> io::Result<Self> {
        let key = certified_key(cert_pem, key_pem)?;
        Arc::make_mut(&mut self.inner).client_auth_cert_resolver = Arc::new(ClientCert(key));
        Ok(self)
    }

    /// [`with_client_cert_pem`](Self::with_client_cert_pem) from files.
    ///
    /// # Errors
    /// As `with_client_cert_pem`, or a file's read error.
    pub fn with_client_cert_files(
        self,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> io::Result<Self> {
        let c = read_file(cert.as_ref(), "certificate")?;
        let k = read_file(key.as_ref(), "key")?;
        self.with_client_cert_pem(&c, &k)
    }

    /// Verifies servers against `name` (and sends it as SNI) whatever name a dial is given
    /// (Go's `ServerName`).
    pub fn with_server_name(mut self, name: impl Into<String>) -> ClientConfig {
        self.server_name = Some(name.into());
        self
    }

    /// The server-name override, if set.
    pub fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// The rustls configuration.
    pub fn rustls(&self) -> &Arc<rustls::ClientConfig> {
        &self.inner
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig::new()
    }
}
