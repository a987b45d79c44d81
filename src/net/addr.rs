//! Socket addresses from names, resolved without blocking a worker thread.
//!
//! `std`'s `ToSocketAddrs` calls the system resolver (`getaddrinfo`), which blocks its OS
//! thread for as long as DNS takes. Inside a goroutine that would stall every goroutine on the
//! same worker, so [`ToAddrs`] parses literal addresses in place and sends host names to a
//! [`Resolver`] (the system one by default), which runs on the runtime's blocking pool.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::Instant;

use super::dns::Resolver;

/// Something that names one or more socket addresses: a [`SocketAddr`], `"127.0.0.1:7878"`,
/// `"[::1]:7878"`, `"localhost:7878"`, `("localhost", 7878)`, `(ip, port)`, and Go's
/// `":7878"` (no host: the local system, `0.0.0.0`, which listens on every interface and
/// dials this host).
///
/// Literal addresses are parsed without any system call. A host name is looked up with the
/// system resolver (`getaddrinfo`: `/etc/hosts`, then DNS, as the system is configured);
/// called from a goroutine, the lookup runs on the runtime's blocking pool
/// ([`block_on_thread`](crate::runtime::block_on_thread)) while the goroutine parks, so the
/// worker thread keeps running other goroutines. See [`lookup_host`](super::lookup_host) for
/// the lookup's rules and errors.
///
/// # Examples
/// ```
/// use goway::net::ToAddrs;
/// let addrs = "127.0.0.1:7878".to_addrs().unwrap();
/// assert_eq!(addrs, ["127.0.0.1:7878".parse().unwrap()]);
/// let err = "localhost".to_addrs().unwrap_err();
/// assert_eq!(err.to_string(), "address localhost: missing port in address");
/// ```
pub trait ToAddrs {
    /// The addresses, in the resolver's order.
    ///
    /// # Errors
    /// The address does not parse (`InvalidInput`), or its host does not resolve (a
    /// [`DnsError`](super::DnsError)).
    fn to_addrs(&self) -> io::Result<Vec<SocketAddr>>;

    /// The addresses, with host names looked up by `resolver` until `deadline`. For goway's
    /// own dialer; the default ignores both and calls [`to_addrs`](Self::to_addrs).
    #[doc(hidden)]
    fn to_addrs_with(
        &self,
        resolver: &Resolver,
        deadline: Option<Instant>,
    ) -> io::Result<Vec<SocketAddr>> {
        let _ = (resolver, deadline);
        self.to_addrs()
    }
}

impl ToAddrs for SocketAddr {
    fn to_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![*self])
    }
}

impl ToAddrs for SocketAddrV4 {
    fn to_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::V4(*self)])
    }
}

impl ToAddrs for SocketAddrV6 {
    fn to_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::V6(*self)])
    }
}

impl ToAddrs for (IpAddr, u16) {
    fn to_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(vec![SocketAddr::new(self.0, self.1)])
    }
}

impl ToAddrs for str {
    fn to_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        self.to_addrs_with(&Resolver::system(), None)
    }

    fn to_addrs_with(
        &self,
        resolver: &Resolver,
        deadline: Option<Instant>,
    ) -> io::Result<Vec<SocketAddr>> {
        if let Ok(a) = self.parse::<SocketAddr>() {
            return Ok(vec![a]);
        }
        let (host, port) = split_host_port(self)?;
        if host.is_empty() {
            // Go's ":port": the local system (to listen: every interface).
            return Ok(vec![SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port)]);
        }
        (host, port).to_addrs_with(resolver, deadline)
    }
}

impl ToAddrs for String {
    fn to_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        self.as_str().to_addrs()
    }

    fn to_addrs_with(
        &self,
        resolver: &Resolver,
        deadline: Option<Instant>,
    ) -> io::Result<Vec<SocketAddr>> {
        self.as_str().to_addrs_with(resolver, deadline)
    }
}

impl ToAddrs for (&str, u16) {
    fn to_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        self.to_addrs_with(&Resolver::system(), None)
    }

    fn to_addrs_with(
        &self,
        resolver: &Resolver,
        deadline: Option<Instant>,
    ) -> io::Result<Vec<SocketAddr>> {
        let ips = resolver.lookup_until(self.0, deadline)?;
        Ok(ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, self.1))
            .collect())
    }
}

impl ToAddrs for (String, u16) {
    fn to_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        (self.0.as_str(), self.1).to_addrs()
    }

    fn to_addrs_with(
        &self,
        resolver: &Resolver,
        deadline: Option<Instant>,
    ) -> io::Result<Vec<SocketAddr>> {
        (self.0.as_str(), self.1).to_addrs_with(resolver, deadline)
    }
}

impl<T: ToAddrs + ?Sized> ToAddrs for &T {
    fn to_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        (**self).to_addrs()
    }

    fn to_addrs_with(
        &self,
        resolver: &Resolver,
        deadline: Option<Instant>,
    ) -> io::Result<Vec<SocketAddr>> {
        (**self).to_addrs_with(resolver, deadline)
    }
}

/// Splits `"host:port"` or `"[host]:port"` (Go's `net.SplitHostPort`, numeric ports only),
/// with Go's error texts.
fn split_host_port(addr: &str) -> io::Result<(&str, u16)> {
    let bad = |why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("address {addr}: {why}"),
        )
    };
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err(bad("missing port in address"));
    };
    let host = if let Some(inner) = host.strip_prefix('[') {
        inner
            .strip_suffix(']')
            .ok_or_else(|| bad("missing ']' in address"))?
    } else if host.contains(':') {
        return Err(bad("too many colons in address"));
    } else {
        host
    };
    let port = port.parse::<u16>().map_err(|_| bad("invalid port"))?;
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_parse_without_lookup() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!("127.0.0.1:1".to_addrs().unwrap(), [a]);
        assert_eq!(("127.0.0.1", 1).to_addrs().unwrap(), [a]);
        assert_eq!(a.to_addrs().unwrap(), [a]);
        assert!("not an address".to_addrs().is_err());
    }

    #[test]
    fn host_and_port_split_as_go_does() {
        assert_eq!(split_host_port("localhost:80").unwrap(), ("localhost", 80));
        assert_eq!(split_host_port("[::1]:80").unwrap(), ("::1", 80));
        assert_eq!(split_host_port(":80").unwrap(), ("", 80));
        let text = |a: &str| split_host_port(a).unwrap_err().to_string();
        assert_eq!(
            text("localhost"),
            "address localhost: missing port in address"
        );
        assert_eq!(text("a:b:80"), "address a:b:80: too many colons in address");
        assert_eq!(text("[::1:80"), "address [::1:80: missing ']' in address");
        assert_eq!(text("host:http"), "address host:http: invalid port");
    }
}
