//! Address resolution that never blocks a worker thread.
//!
//! `std`'s `ToSocketAddrs` calls the system resolver (`getaddrinfo`), which blocks its OS
//! thread for as long as DNS takes. Inside a goroutine that would stall every goroutine on the
//! same worker, so [`ToAddrs`] parses literal addresses in place and sends host names to a
//! short-lived helper thread while the goroutine parks on a channel.

use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6, ToSocketAddrs};

use crate::chan;

/// Something that names one or more socket addresses: a [`SocketAddr`], `"127.0.0.1:7878"`,
/// `"localhost:7878"`, `("localhost", 7878)`, `(ip, port)`.
///
/// Literal addresses are parsed without any system call. A host name is looked up with the
/// system resolver; called from a goroutine, the lookup runs on a helper OS thread while the
/// goroutine parks, so the worker thread keeps running other goroutines.
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
        lookup(self.to_owned())
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
        lookup(format!("{}:{}", self.0, self.1))
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

/// Resolves `host:port` with the system resolver, off the worker thread when in a goroutine.
fn lookup(name: String) -> io::Result<Vec<SocketAddr>> {
    let resolve = |name: String| -> io::Result<Vec<SocketAddr>> {
        let v: Vec<SocketAddr> = name.to_socket_addrs()?.collect();
        if v.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{name}: no addresses found"),
            ));
        }
        Ok(v)
    };
    if !crate::runtime::in_goroutine() {
        return resolve(name);
    }
    let (tx, rx) = chan::bounded(1);
    std::thread::Builder::new()
        .name("goway-resolve".into())
        .spawn(move || {
            let _ = tx.send(resolve(name));
        })?;
    match rx.recv() {
        Ok(r) => r,
        Err(_) => Err(io::Error::other(
            "address lookup thread ended without an answer",
        )),
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
