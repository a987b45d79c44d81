//! Address resolution that never blocks a worker thread.
//!
//! `std`'s `ToSocketAddrs` calls the system resolver (`getaddrinfo`), which blocks its OS
//! thread for as long as DNS takes. Inside a goroutine that would stall every goroutine on the
//! same worker, so [`ToAddrs`] and [`lookup_host`] parse literal addresses in place and send
//! host names to the runtime's blocking pool ([`block_on_thread`]) while the goroutine parks.

use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6, ToSocketAddrs};

use crate::runtime::block_on_thread;

/// Something that names one or more socket addresses: a [`SocketAddr`], `"127.0.0.1:7878"`,
/// `"localhost:7878"`, `("localhost", 7878)`, `(ip, port)`.
///
/// Literal addresses are parsed without any system call. A host name is looked up with the
/// system resolver (`getaddrinfo`: `/etc/hosts`, then DNS, as the system is configured);
/// called from a goroutine, the lookup runs on the runtime's blocking pool
/// ([`block_on_thread`](crate::runtime::block_on_thread)) while the goroutine parks, so the
/// worker thread keeps running other goroutines.
///
/// # Examples
/// ```
/// use goway::net::ToAddrs;
/// let addrs = "127.0.0.1:7878".to_addrs().unwrap();
/// assert_eq!(addrs, ["127.0.0.1:7878".parse().unwrap()]);
/// ```
pub trait ToAddrs {
    /// The addresses, in the resolver's order.
    ///
    /// # Errors
    /// The name does not parse or does not resolve (`InvalidInput` when it yields no address).
    fn to_addrs(&self) -> io::Result<Vec<SocketAddr>>;
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
        if let Ok(a) = self.parse::<SocketAddr>() {
            return Ok(vec![a]);
        }
        lookup(self.to_owned(), self.to_owned())
    }
}

impl ToAddrs for String {
    fn to_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        self.as_str().to_addrs()
    }
}

impl ToAddrs for (&str, u16) {
    fn to_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        if let Ok(ip) = self.0.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, self.1)]);
        }
        lookup(
            (self.0.to_owned(), self.1),
            format!("{}:{}", self.0, self.1),
        )
    }
}

impl ToAddrs for (String, u16) {
    fn to_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        (self.0.as_str(), self.1).to_addrs()
    }
}

impl<T: ToAddrs + ?Sized> ToAddrs for &T {
    fn to_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        (**self).to_addrs()
    }
}

/// Looks up `host`'s IP addresses with the system resolver (Go's `net.LookupHost`, which
/// returns them as strings: here they are [`IpAddr`]s), in the resolver's order, without
/// duplicates. A literal address (`"127.0.0.1"`, `"::1"`) is returned as it is, with no
/// lookup. Called from a goroutine, the lookup runs on the runtime's blocking pool
/// ([`block_on_thread`]) while the goroutine parks, so a slow DNS server stalls only the
/// goroutine that asked; from a plain thread it runs on that thread.
///
/// To connect, [`dial`](super::dial) takes `"host:port"` itself; [`ToAddrs`] gives the socket
/// addresses of `"host:port"` the same way.
///
/// # Errors
/// `InvalidInput` for an empty host or one that resolves to no address; otherwise the
/// resolver's error as `std::net::ToSocketAddrs` reports it (an unknown host gives an error
/// whose kind `std` leaves uncategorized, with a text such as `failed to lookup address
/// information: Name or service not known`).
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
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    if host.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no such host: empty name",
        ));
    }
    let addrs = lookup((host.to_owned(), 0), host.to_owned())?;
    let mut ips: Vec<IpAddr> = Vec::with_capacity(addrs.len());
    for a in addrs {
        if !ips.contains(&a.ip()) {
            ips.push(a.ip());
        }
    }
    Ok(ips)
}

/// Resolves `name` (`label` in errors) with the system resolver, on the blocking pool when in
/// a goroutine.
fn lookup<N>(name: N, label: String) -> io::Result<Vec<SocketAddr>>
where
    N: ToSocketAddrs + Send + 'static,
{
    let what = label.clone();
    let resolve = move || -> io::Result<Vec<SocketAddr>> {
        let v: Vec<SocketAddr> = name.to_socket_addrs()?.collect();
        if v.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{what}: no addresses found"),
            ));
        }
        Ok(v)
    };
    match block_on_thread(resolve) {
        Ok(r) => r,
        Err(p) => Err(io::Error::other(format!(
            "{label}: address lookup panicked: {p}"
        ))),
    }
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
}
