//! The URLs a client requests: `scheme://host[:port][/path][?query][#fragment]`, the part of
//! Go's `net/url` that `http.Client` needs (the fragment is dropped, as Go never sends it).
//! Small and own: the client needs only this and the resolution of a redirect's `Location`,
//! so no URL crate is added.

use std::fmt;

use super::error::ClientError;

/// A parsed `http://` or `https://` URL.
///
/// # Examples
/// ```
/// use goway::http::Url;
/// let u = Url::parse("http://example.com:8080/a/b?x=1#top").unwrap();
/// assert_eq!(u.scheme(), "http");
/// assert_eq!(u.host(), "example.com");
/// assert_eq!(u.port(), 8080);
/// assert_eq!(u.request_target(), "/a/b?x=1");
/// assert_eq!(u.join("../c").unwrap().to_string(), "http://example.com:8080/c");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    scheme: &'static str,
    /// As written, lower-cased; an IPv6 address keeps its brackets.
    host: String,
    port: u16,
    /// Starts with `/`; bytes that may not appear in a request target are %-escaped.
    path: String,
    query: Option<String>,
}

fn invalid(url: &str, why: &'static str) -> ClientError {
    ClientError::InvalidUrl {
        url: url.to_owned(),
        why,
    }
}

impl Url {
    /// Parses an absolute `http` or `https` URL.
    ///
    /// # Errors
    /// [`ClientError::InvalidUrl`] for a malformed URL (no scheme, empty host, a bad port,
    /// user information), [`ClientError::UnsupportedScheme`] for another scheme.
    pub fn parse(s: &str) -> Result<Url, ClientError> {
        let Some((scheme, rest)) = s.split_once("://") else {
            return Err(invalid(s, "missing protocol scheme"));
        };
        let scheme = if scheme.eq_ignore_ascii_case("http") {
            "http"
        } else if scheme.eq_ignore_ascii_case("https") {
            "https"
        } else {
            return Err(ClientError::UnsupportedScheme(scheme.to_owned()));
        };
        let rest = rest.split('#').next().unwrap_or("");
        let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(auth_end);
        if authority.contains('@') {
            return Err(invalid(s, "user information is not supported"));
        }
        let default_port = if scheme == "https" { 443 } else { 80 };
        let (host, port) = split_host_port(authority).ok_or_else(|| invalid(s, "invalid port"))?;
        let port = match port {
            None | Some("") => default_port,
            Some(p) => p.parse().map_err(|_| invalid(s, "invalid port"))?,
        };
        if host.is_empty() || host == "[]" {
            return Err(invalid(s, "missing host"));
        }
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~[]:%".contains(&b))
        {
            return Err(invalid(s, "invalid character in host name"));
        }
        let (path, query) = match tail.split_once('?') {
            Some((p, q)) => (p, Some(escape(q, true))),
            None => (tail, None),
        };
        let path = if path.is_empty() {
            "/".to_owned()
        } else {
            escape(path, false)
        };
        Ok(Url {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            path,
            query,
        })
    }

    /// `"http"` or `"https"`.
    pub fn scheme(&self) -> &'static str {
        self.scheme
    }

    /// The host name or address (an IPv6 address in brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, the scheme's default if the URL has none.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The path, from its `/`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The query, without its `?`.
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// `host:port`, what is dialled.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The `Host` header: the host, and the port unless it is the scheme's default.
    pub fn host_header(&self) -> String {
        if self.port == self.default_port() {
            self.host.clone()
        } else {
            self.addr()
        }
    }

    fn default_port(&self) -> u16 {
        if self.scheme == "https" { 443 } else { 80 }
    }

    /// The request target sent on the request line: path and query.
    pub fn request_target(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        }
    }

    /// Resolves a reference (a redirect's `Location`) against this URL (RFC 3986 §5.2, as
    /// Go's `URL.ResolveReference`): absolute, scheme-relative (`//host/p`), absolute-path
    /// (`/p`), relative (`p`, `../p`) or query-only (`?q`).
    ///
    /// # Errors
    /// As [`Url::parse`] for an absolute reference.
    pub fn join(&self, reference: &str) -> Result<Url, ClientError> {
        let reference = reference.trim();
        if has_scheme(reference) {
            return Url::parse(reference);
        }
        if let Some(rest) = reference.strip_prefix("//") {
            return Url::parse(&format!("{}://{rest}", self.scheme));
        }
        let reference = reference.split('#').next().unwrap_or("");
        let (rpath, rquery) = match reference.split_once('?') {
            Some((p, q)) => (p, Some(escape(q, true))),
            None => (reference, None),
        };
        let mut u = self.clone();
        if rpath.is_empty() {
            if rquery.is_some() {
                u.query = rquery;
            }
            return Ok(u);
        }
        let merged = if rpath.starts_with('/') {
            rpath.to_owned()
        } else {
            let dir = &self.path[..self.path.rfind('/').map_or(0, |i| i + 1)];
            format!("{dir}{rpath}")
        };
        u.path = escape(&remove_dot_segments(&merged), false);
        u.query = rquery;
        Ok(u)
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host_header())?;
        f.write_str(&self.path)?;
        if let Some(q) = &self.query {
            write!(f, "?{q}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Url {
    type Err = ClientError;

    fn from_str(s: &str) -> Result<Url, ClientError> {
        Url::parse(s)
    }
}

/// Whether a reference starts with a scheme (`[a-zA-Z][a-zA-Z0-9+.-]*:`).
fn has_scheme(r: &str) -> bool {
    match r.find(':') {
        Some(i) => {
            let s = &r[..i];
            s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+.-".contains(&b))
        }
        None => false,
    }
}

/// `host[:port]` or `[v6][:port]`; `None` if the port part is malformed.
fn split_host_port(a: &str) -> Option<(&str, Option<&str>)> {
    if a.starts_with('[') {
        let end = a.find(']')?;
        let (host, rest) = a.split_at(end + 1);
        return match rest {
            "" => Some((host, None)),
            r => r.strip_prefix(':').map(|p| (host, Some(p))),
        };
    }
    match a.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h, Some(p))),
        Some(_) => None,
        None => Some((a, None)),
    }
}

/// %-escapes the bytes that may not appear in a request target (controls, space, `"`,
/// `<`, `>`, `\`, `^`, `` ` ``, `{`, `|`, `}`, non-ASCII); existing escapes are kept.
fn escape(s: &str, query: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = b.is_ascii_graphic()
            && !matches!(
                b,
                b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}'
            )
            && (query || b != b'?');
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// RFC 3986 §5.2.4 on a path that starts with `/`.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segs: Vec<&str> = path.split('/').skip(1).collect();
    let last = segs.len().saturating_sub(1);
    let mut trailing = false;
    for (i, seg) in segs.iter().enumerate() {
        match *seg {
            "." => trailing = i == last,
            ".." => {
                out.pop();
                trailing = i == last;
            }
            s => {
                out.push(s);
                trailing = false;
            }
        }
    }
    let mut p = String::from("/");
    p.push_str(&out.join("/"));
    if trailing && !p.ends_with('/') {
        p.push('/');
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let u = Url::parse("HTTP://Example.COM/x y?q=a b#f").unwrap();
        assert_eq!(u.to_string(), "http://example.com/x%20y?q=a%20b");
        assert_eq!(u.addr(), "example.com:80");
        let u = Url::parse("https://[::1]:8443").unwrap();
        assert_eq!((u.host(), u.port(), u.path()), ("[::1]", 8443, "/"));
        assert_eq!(u.host_header(), "[::1]:8443");
        assert!(matches!(
            Url::parse("ftp://x/"),
            Err(ClientError::UnsupportedScheme(_))
        ));
        for bad in [
            "x",
            "http://",
            "http://h:99999/",
            "http://u@h/",
            "http://h:p/",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn joins() {
        let b = Url::parse("http://h:81/a/b/c?x").unwrap();
        let j = |r: &str| b.join(r).unwrap().to_string();
        assert_eq!(j("d"), "http://h:81/a/b/d");
        assert_eq!(j("../d?y"), "http://h:81/a/d?y");
        assert_eq!(j("/e"), "http://h:81/e");
        assert_eq!(j("?z"), "http://h:81/a/b/c?z");
        assert_eq!(j("//o/p"), "http://o/p");
        assert_eq!(j("https://s/t"), "https://s/t");
        assert_eq!(j("./"), "http://h:81/a/b/");
        assert_eq!(j("../../../.."), "http://h:81/");
    }
}
