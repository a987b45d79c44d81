//! Certificates made at test time (rcgen): a CA that issues server and client certificates,
//! expired ones included, and configs built from them.

use goway::tls::{CertPool, ClientConfig, ServerConfig};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

/// A test certificate authority.
pub struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A PEM certificate and its PEM key.
pub struct Pair {
    pub cert: String,
    pub key: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// The CA's certificate (PEM).
    pub fn pem(&self) -> &str {
        &self.pem
    }

    pub fn pool(&self) -> CertPool {
        CertPool::from_pem(self.pem.as_bytes()).unwrap()
    }

    /// A leaf certificate for `names` (DNS names or IP addresses).
    pub fn issue(&self, names: &[&str]) -> Pair {
        self.issue_with(names, |_| {})
    }

    /// A leaf certificate that expired in 2001.
    pub fn issue_expired(&self, names: &[&str]) -> Pair {
        self.issue_with(names, |p| {
            p.not_before = rcgen::date_time_ymd(2000, 1, 1);
            p.not_after = rcgen::date_time_ymd(2001, 1, 1);
        })
    }

    fn issue_with(&self, names: &[&str], edit: impl FnOnce(&mut CertificateParams)) -> Pair {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        edit(&mut params);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Pair {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    /// A server config with a fresh certificate for `localhost` and 127.0.0.1.
    pub fn server(&self) -> ServerConfig {
        let p = self.issue(&["localhost", "127.0.0.1"]);
        ServerConfig::from_pem(p.cert.as_bytes(), p.key.as_bytes()).unwrap()
    }

    /// A client config trusting this CA only.
    pub fn client(&self) -> ClientConfig {
        ClientConfig::with_roots(self.pool())
    }
}

/// The TLS error kind inside `e`, if any.
pub fn tls_kind(e: &std::io::Error) -> Option<goway::tls::TlsErrorKind> {
    goway::tls::TlsError::from_io(e).map(|t| t.kind())
}
