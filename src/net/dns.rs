//! Name resolution that never blocks a worker thread: [`lookup_host`],
//! [`lookup_host_timeout`], a [`Resolver`] to plug another lookup in, and Go's
//! [`DnsError`].
//!
//! # The choice: the system resolver on the blocking pool
//!
//! A host name is looked up with the C library's `getaddrinfo`, the resolver every other
//! program on the host uses (`/etc/hosts`, `nsswitch.conf`, `resolv.conf` with its search
//! domains, timeouts and options; Go's cgo resolver makes the same call). `getaddrinfo`
//! blocks its OS thread for as long as DNS takes, so a goroutine never calls it on its
//! worker: the call runs on the runtime's blocking pool
//! ([`block_on_thread`](crate::runtime::block_on_thread)) while the goroutine parks.
//!
//! A resolver crate (`hickory-resolver`) would speak DNS itself over non-blocking sockets,
//! needing no thread per lookup in flight. It is async, built on tokio, which goway's
//! goroutines do not run, and it brings a large dependency tree and a second reading of the
//! system's configuration that can disagree with the C library's (nsswitch modules, mDNS,
//! LDAP). Lookups are rare beside the I/O of a server (resolve once, then connect), so one
//! pool thread per lookup in flight is a fair price; the pool's limit
//! ([`Config::max_blocking_threads`](crate::runtime::Config::max_blocking_threads)) bounds
//! them.
//!
//! A lookup with a timeout stops waiting when the time is up and returns a timeout
//! [`DnsError`]: the goroutine goes on, and the pool thread finishes the `getaddrinfo` call in
//! its own time (bounded by `resolv.conf`'s `timeout` × `attempts`), its answer dropped.
//!
//! Literal addresses (`"127.0.0.1"`, `"::1"`) are parsed in place with no lookup, and names
//! under the special `.invalid` top-level domain fail at once with "no such host" (RFC 6761
//! asks resolver libraries to answer them negatively without asking DNS).

use std::ffi::{CStr, CString};
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::runtime::{block_on_thread, block_on_thread_until};

/// What went wrong in a lookup, as Go's `DNSError` tells it (`IsNotFound`, `IsTimeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DnsErrorKind {
    /// The name does not exist or has no address ("no such host").
    NotFound,
    /// The lookup did not finish in time ("i/o timeout").
    Timeout,
    /// Anything else: a failing or unreachable DNS server, a system error.
    Other,
}

/// A failed lookup (Go's `net.DNSError`): the name, what went wrong, and Go's text,
/// `lookup <name>: <error>` (e.g. `lookup nonexistent.invalid: no such host`).
///
/// It converts into an [`io::Error`] (kind `NotFound`, `TimedOut` or `Other`) that carries it:
/// [`DnsError::find`] gets it back, as Go's `errors.As(err, &dnsErr)`.
///
/// # Examples
/// ```
/// use goway::net::{DnsError, DnsErrorKind};
/// let e = goway::net::lookup_host("nonexistent.invalid").unwrap_err();
/// assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
/// assert_eq!(e.to_string(), "lookup nonexistent.invalid: no such host");
/// let dns = DnsError::find(&e).unwrap();
/// assert_eq!(dns.kind(), DnsErrorKind::NotFound);
/// assert_eq!(dns.name(), "nonexistent.invalid");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsError {
    name: String,
    kind: DnsErrorKind,
    err: String,
    temporary: bool,
}

impl DnsError {
    /// The error `kind` for `name`, with Go's text for it ("no such host", "i/o timeout",
    /// "lookup failed").
    pub fn new(name: impl Into<String>, kind: DnsErrorKind) -> Self {
        let err = match kind {
            DnsErrorKind::NotFound => "no such host",
            DnsErrorKind::Timeout => "i/o timeout",
            DnsErrorKind::Other => "lookup failed",
        };
        DnsError {
            name: name.into(),
            kind,
            err: err.to_owned(),
            temporary: kind == DnsErrorKind::Timeout,
        }
    }

    /// An [`Other`](DnsErrorKind::Other) error for `name` with the text `err`.
    pub fn other(name: impl Into<String>, err: impl Into<String>) -> Self {
        DnsError {
            name: name.into(),
            kind: DnsErrorKind::Other,
            err: err.into(),
            temporary: false,
        }
    }

    /// The name looked up.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What went wrong.
    pub fn kind(&self) -> DnsErrorKind {
        self.kind
    }

    /// `true` if the name does not exist (Go's `IsNotFound`).
    pub fn is_not_found(&self) -> bool {
        self.kind == DnsErrorKind::NotFound
    }

    /// `true` if the lookup timed out (Go's `Timeout()`).
    pub fn is_timeout(&self) -> bool {
        self.kind == DnsErrorKind::Timeout
    }

    /// `true` if a retry may succeed (Go's `Temporary()`): a timeout, or the system
    /// resolver's `EAI_AGAIN` (no answer from the DNS server).
    pub fn is_temporary(&self) -> bool {
        self.temporary
    }

    /// The `DnsError` inside `e`, if `e` came from one (Go's `errors.As`).
    pub fn find(e: &io::Error) -> Option<&DnsError> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<DnsError>())
    }
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lookup {}: {}", self.name, self.err)
    }
}

impl std::error::Error for DnsError {}

impl From<DnsError> for io::Error {
    fn from(e: DnsError) -> io::Error {
        let kind = match e.kind {
            DnsErrorKind::NotFound => io::ErrorKind::NotFound,
            DnsErrorKind::Timeout => io::ErrorKind::TimedOut,
            DnsErrorKind::Other => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

/// A lookup function: a host name to its addresses.
type LookupFn = dyn Fn(&str) -> Result<Vec<IpAddr>, DnsError> + Send + Sync;

/// Where host names are looked up (Go's `net.Resolver`): the system resolver by default, or a
/// function of yours (a fixed table, a service registry, a DNS client, a test's slow
/// resolver). Either way the lookup runs on the blocking pool, never on a worker thread;
/// literal addresses are returned without calling it, and an empty name is "no such host".
///
/// A [`Dialer`](super::Dialer) takes a resolver for the names it dials.
///
/// # Examples
/// ```
/// use std::net::IpAddr;
/// use goway::net::{DnsError, DnsErrorKind, Resolver};
///
/// let table = Resolver::from_fn(|name| match name {
///     "db.internal" => Ok(vec!["10.0.0.7".parse().unwrap()]),
///     _ => Err(DnsError::new(name, DnsErrorKind::NotFound)),
/// });
/// let ips = goway::go!(move || table.lookup_host("db.internal")).join().unwrap();
/// assert_eq!(ips.unwrap(), ["10.0.0.7".parse::<IpAddr>().unwrap()]);
/// ```
#[derive(Clone, Default)]
pub struct Resolver {
    custom: Option<Arc<LookupFn>>,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.custom.is_some() {
            "Resolver(custom)"
        } else {
            "Resolver(system)"
        })
    }
}

impl Resolver {
    /// The system resolver (`getaddrinfo`); the same as `Resolver::default()`.
    pub fn system() -> Self {
        Resolver::default()
    }

    /// A resolver that looks names up with `f`. `f` runs on the blocking pool, so it may
    /// block; an empty answer counts as "no such host".
    pub fn from_fn<F>(f: F) -> Self
    where
        F: Fn(&str) -> Result<Vec<IpAddr>, DnsError> + Send + Sync + 'static,
    {
        Resolver {
            custom: Some(Arc::new(f)),
        }
    }

    /// Looks up `host`'s addresses, in the resolver's order without duplicates, waiting as
    /// long as the resolver takes (the system resolver gives up after `resolv.conf`'s
    /// timeouts). See [`lookup_host`] for the rules.
    ///
    /// # Errors
    /// A [`DnsError`]: `NotFound` for an unknown name, `Other` for a failed lookup.
    pub fn lookup_host(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        self.lookup_until(host, None)
    }

    /// As [`lookup_host`](Self::lookup_host), giving up after `timeout`.
    ///
    /// # Errors
    /// As [`lookup_host`](Self::lookup_host), and a [`Timeout`](DnsErrorKind::Timeout) error
    /// when the time is up.
    pub fn lookup_host_timeout(
        &self,
        host: &str,
        timeout: Duration,
    ) -> Result<Vec<IpAddr>, DnsError> {
        self.lookup_until(host, Instant::now().checked_add(timeout))
    }

    /// Looks `host` up, giving up at `deadline` (`None`: never).
    pub(crate) fn lookup_until(
        &self,
        host: &str,
        deadline: Option<Instant>,
    ) -> Result<Vec<IpAddr>, DnsError> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        if host.is_empty() {
            return Err(DnsError::new(host, DnsErrorKind::NotFound));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(DnsError::new(host, DnsErrorKind::Timeout));
        }
        let name = host.to_owned();
        let custom = self.custom.clone();
        let lookup = move || match custom {
            Some(f) => f(&name),
            None => system_lookup(&name),
        };
        let done = match deadline {
            None => Some(block_on_thread(lookup)),
            Some(d) => block_on_thread_until(lookup, d),
        };
        let ips = match done {
            None => return Err(DnsError::new(host, DnsErrorKind::Timeout)),
            Some(Err(p)) => {
                return Err(DnsError::other(host, format!("lookup panicked: {p}")));
            }
            Some(Ok(r)) => r?,
        };
        let mut unique: Vec<IpAddr> = Vec::with_capacity(ips.len());
        for ip in ips {
            if !unique.contains(&ip) {
                unique.push(ip);
            }
        }
        if unique.is_empty() {
            return Err(DnsError::new(host, DnsErrorKind::NotFound));
        }
        Ok(unique)
    }
}

/// `true` for `invalid` and the names under it (`nonexistent.invalid`, with or without the
/// final dot, in any case): RFC 6761 §6.4.
fn is_invalid_domain(host: &str) -> bool {
    let h = host.strip_suffix('.').unwrap_or(host);
    let tld = h.rsplit('.').next().unwrap_or(h);
    tld.eq_ignore_ascii_case("invalid")
}

/// Looks up `host`'s IP addresses with the system resolver (Go's `net.LookupHost`, which
/// returns them as strings: here they are [`IpAddr`]s), in the resolver's order, without
/// duplicates. A literal address (`"127.0.0.1"`, `"::1"`) is returned as it is, with no
/// lookup. Called from a goroutine, the lookup runs on the runtime's blocking pool while the
/// goroutine parks, so a slow DNS server stalls only the goroutine that asked; from a plain
/// thread it runs on that thread. No timeout of its own: the system resolver's (`resolv.conf`)
/// applies; see [`lookup_host_timeout`].
///
/// To connect, [`dial`](super::dial) takes `"host:port"` itself; [`ToAddrs`](super::ToAddrs)
/// gives the socket addresses of `"host:port"` the same way.
///
/// # Errors
/// A [`DnsError`] inside the `io::Error` ([`DnsError::find`]), with Go's text: an unknown
/// name (or an empty one) gives kind `NotFound` and `lookup <name>: no such host`; a failed
/// lookup kind `Other` and the resolver's reason.
///
/// # Examples
/// ```
/// use std::net::IpAddr;
/// let h = goway::go!(|| goway::net::lookup_host("localhost"));
/// let addrs = h.join().unwrap().unwrap();
/// assert!(addrs.iter().all(IpAddr::is_loopback));
///
/// let literal = goway::net::lookup_host("192.0.2.1").unwrap(); // no lookup
/// assert_eq!(literal, ["192.0.2.1".parse::<IpAddr>().unwrap()]);
/// ```
pub fn lookup_host(host: &str) -> io::Result<Vec<IpAddr>> {
    Ok(Resolver::system().lookup_host(host)?)
}

/// As [`lookup_host`], giving up after `timeout` (the lookup goes on to its end on its pool
/// thread, its answer dropped; the caller goes on at once). Always runs the lookup on the
/// blocking pool, also from a plain thread.
///
/// # Errors
/// As [`lookup_host`]; when the time is up, kind `TimedOut` and `lookup <name>: i/o timeout`.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// let ips = goway::net::lookup_host_timeout("localhost", Duration::from_secs(5)).unwrap();
/// assert!(ips.iter().all(|ip| ip.is_loopback()));
/// ```
pub fn lookup_host_timeout(host: &str, timeout: Duration) -> io::Result<Vec<IpAddr>> {
    Ok(Resolver::system().lookup_host_timeout(host, timeout)?)
}

/// `getaddrinfo(host)`: its addresses in its order, or Go's error for its failure.
fn system_lookup(host: &str) -> Result<Vec<IpAddr>, DnsError> {
    if is_invalid_domain(host) {
        return Err(DnsError::new(host, DnsErrorKind::NotFound));
    }
    // A name with a NUL byte cannot exist.
    let c_host = CString::new(host).map_err(|_| DnsError::new(host, DnsErrorKind::NotFound))?;
    // SAFETY: `addrinfo` is a plain C struct for which all-zero is a valid value (null
    // pointers, no flags), as `getaddrinfo`'s hints expect.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = libc::AF_UNSPEC;
    // One entry per address rather than one per socket type.
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: `c_host` is a NUL-terminated string alive for the call, the service may be
    // null, `hints` is a valid `addrinfo`, and `res` a valid place for the result list.
    let rc = unsafe { libc::getaddrinfo(c_host.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if rc != 0 {
        let os = io::Error::last_os_error();
        return Err(gai_error(host, rc, os));
    }
    let mut ips = Vec::new();
    let mut cur = res;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list `getaddrinfo` returned, not yet freed.
        let ai = unsafe { &*cur };
        if !ai.ai_addr.is_null() {
            match ai.ai_family {
                libc::AF_INET => {
                    // SAFETY: for `AF_INET` `ai_addr` points to a `sockaddr_in`.
                    let sa = unsafe { &*(ai.ai_addr as *const libc::sockaddr_in) };
                    ips.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr))));
                }
                libc::AF_INET6 => {
                    // SAFETY: for `AF_INET6` `ai_addr` points to a `sockaddr_in6`.
                    let sa = unsafe { &*(ai.ai_addr as *const libc::sockaddr_in6) };
                    ips.push(IpAddr::V6(Ipv6Addr::from(sa.sin6_addr.s6_addr)));
                }
                _ => {}
            }
        }
        cur = ai.ai_next;
    }
    if !res.is_null() {
        // SAFETY: `res` is the list `getaddrinfo` returned, freed once, and not used after.
        unsafe { libc::freeaddrinfo(res) };
    }
    Ok(ips)
}

/// Go's error for `getaddrinfo`'s failure `rc` (`os`: `errno` right after the call).
fn gai_error(host: &str, rc: i32, os: io::Error) -> DnsError {
    match rc {
        libc::EAI_NONAME | libc::EAI_NODATA => DnsError::new(host, DnsErrorKind::NotFound),
        libc::EAI_SYSTEM => DnsError::other(host, os.to_string()),
        _ => {
            // SAFETY: `gai_strerror` returns a pointer to a static NUL-terminated string
            // for any code.
            let text = unsafe { CStr::from_ptr(libc::gai_strerror(rc)) };
            let mut e = DnsError::other(host, text.to_string_lossy());
            e.temporary = rc == libc::EAI_AGAIN;
            e
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_texts_and_io_kinds() {
        let e = DnsError::new("a.example", DnsErrorKind::NotFound);
        assert_eq!(e.to_string(), "lookup a.example: no such host");
        let io: io::Error = e.clone().into();
        assert_eq!(io.kind(), io::ErrorKind::NotFound);
        assert_eq!(io.to_string(), "lookup a.example: no such host");
        assert_eq!(DnsError::find(&io), Some(&e));
        let t: io::Error = DnsError::new("b", DnsErrorKind::Timeout).into();
        assert_eq!(t.kind(), io::ErrorKind::TimedOut);
        assert_eq!(t.to_string(), "lookup b: i/o timeout");
        assert!(DnsError::find(&io::Error::other("x")).is_none());
    }

    #[test]
    fn getaddrinfo_codes_map_to_kinds() {
        let os = || io::Error::from_raw_os_error(libc::EMFILE);
        assert!(gai_error("x", libc::EAI_NONAME, os()).is_not_found());
        assert!(gai_error("x", libc::EAI_NODATA, os()).is_not_found());
        let again = gai_error("x", libc::EAI_AGAIN, os());
        assert_eq!(again.kind(), DnsErrorKind::Other);
        assert!(again.is_temporary());
        assert!(again.to_string().starts_with("lookup x: "));
        let sys = gai_error("x", libc::EAI_SYSTEM, os());
        assert_eq!(sys.kind(), DnsErrorKind::Other);
        assert_eq!(sys.err, os().to_string());
    }

    #[test]
    fn the_invalid_domain_is_recognised() {
        assert!(is_invalid_domain("nonexistent.invalid"));
        assert!(is_invalid_domain("x.INVALID."));
        assert!(is_invalid_domain("invalid"));
        assert!(!is_invalid_domain("invalid.example"));
        assert!(!is_invalid_domain("localhost"));
    }

    #[test]
    fn literals_and_special_names_need_no_lookup() {
        let never = Resolver::from_fn(|_| panic!("looked up"));
        assert_eq!(
            never.lookup_host("::1").unwrap(),
            [IpAddr::V6(Ipv6Addr::LOCALHOST)]
        );
        assert!(never.lookup_host("").unwrap_err().is_not_found());
        // The system resolver answers `.invalid` itself.
        assert!(system_lookup("a.invalid").unwrap_err().is_not_found());
    }
}
