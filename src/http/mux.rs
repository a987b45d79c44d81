//! Go 1.22's `ServeMux`: patterns with methods, hosts and wildcards; the most specific
//! matching pattern wins; 405 with `Allow` when only the method is wrong; 404 otherwise;
//! 301 to the canonical path or to the path with a trailing slash.

use std::fmt;
use std::sync::Arc;

use super::handler::{Handler, error, not_found};
use super::pattern::{self, Pattern, Rel, clean_path};
use super::query::unescape;
use super::request::Request;
use super::response::ResponseWriter;
use super::status::StatusCode;

/// A pattern that cannot be registered: malformed, or in conflict with one registered before
/// (both match some request and neither is more specific).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatternError {
    /// The pattern does not parse.
    #[error("parsing {pattern:?}: {why}")]
    Invalid {
        /// The pattern.
        pattern: String,
        /// What is wrong with it.
        why: String,
    },
    /// The pattern conflicts with another one.
    #[error("pattern {pattern:?} conflicts with pattern {other:?}: {why}")]
    Conflict {
        /// The new pattern.
        pattern: String,
        /// The one registered before.
        other: String,
        /// How they conflict.
        why: &'static str,
    },
}

struct Entry {
    pat: Pattern,
    handler: Arc<dyn Handler>,
}

/// An HTTP request router (Go's `http.ServeMux`, with Go 1.22 patterns).
///
/// A pattern is `[METHOD ][HOST]/[PATH]`:
/// - `"/index.html"` matches that path for any method and host;
/// - `"GET /static/"` matches GET and HEAD requests whose path starts with `/static/`;
/// - `"example.com/"` matches any request for host `example.com`;
/// - `"/items/{id}"` matches `/items/42` and sets [`Request::path_value("id")`]; a wildcard
///   matches one whole non-empty segment;
/// - `"/files/{path...}"` matches the rest of the path;
/// - `"/{$}"` matches only `/` (a trailing slash otherwise matches everything below).
///
/// When several patterns match, the most specific one wins (a literal segment beats a
/// wildcard, a method beats none); registering two patterns that match some request with
/// neither more specific panics, as in Go. A path that matches only with another method gets
/// `405 Method Not Allowed` with an `Allow` header; no match at all gets `404 page not
/// found`. `/a` is redirected (301) to `/a/` when only `/a/` is registered, and unclean paths
/// (`//`, `.`, `..`) to their clean form.
///
/// [`Request::path_value("id")`]: super::Request::path_value
///
/// # Examples
/// ```
/// use std::io::Write;
/// use goway::http::{Request, ResponseWriter, ServeMux};
///
/// let mut mux = ServeMux::new();
/// mux.handle("GET /items/{id}", |r: &Request, w: &mut ResponseWriter| {
///     let _ = write!(w, "item {}", r.path_value("id").unwrap());
/// });
/// mux.handle("POST /items", |_r: &Request, w: &mut ResponseWriter| {
///     w.write_header(201);
/// });
/// ```
#[derive(Default)]
pub struct ServeMux {
    entries: Vec<Entry>,
    /// Whether any pattern names a host (else the request's host is never looked at).
    hosts: bool,
}

impl fmt::Debug for ServeMux {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| &*e.pat.raw))
            .finish()
    }
}

/// The result of looking a request up.
enum Lookup {
    Handler(usize, Vec<(usize, usize)>),
    MethodNotAllowed(String),
    Redirect(String),
    NotFound,
}

impl ServeMux {
    /// An empty mux (every request gets 404).
    ///
    /// ```
    /// let mux = goway::http::ServeMux::new();
    /// // The reply to any request:
    /// # let req = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    /// # let reply = goway::http::doctest::serve_one(mux, req).unwrap();
    /// assert_eq!(reply.status, 404);
    /// ```
    pub fn new() -> ServeMux {
        ServeMux::default()
    }

    /// Registers `handler` for `pattern` (Go's `Handle`).
    ///
    /// # Panics
    /// If the pattern is malformed or conflicts with one registered before, as Go does
    /// (see [`try_handle`](Self::try_handle)).
    ///
    /// ```
    /// use std::io::Write;
    /// use goway::http::{Request, ResponseWriter, ServeMux};
    ///
    /// let mut mux = ServeMux::new();
    /// mux.handle("GET /items/{id}", |r: &Request, w: &mut ResponseWriter| {
    ///     let _ = write!(w, "item {}", r.path_value("id").unwrap_or_default());
    /// });
    /// # let mux = std::sync::Arc::new(mux);
    /// // The reply to `GET /items/7`:
    /// # let req = "GET /items/7 HTTP/1.1\r\nHost: a\r\n\r\n";
    /// # let reply = goway::http::doctest::serve_one(mux.clone(), req).unwrap();
    /// assert_eq!(reply.body, "item 7");
    /// // Another method on the same path: 405, with the allowed ones.
    /// # let req = "DELETE /items/7 HTTP/1.1\r\nHost: a\r\n\r\n";
    /// # let reply = goway::http::doctest::serve_one(mux, req).unwrap();
    /// assert_eq!(reply.status, 405);
    /// assert_eq!(reply.header("Allow"), Some("GET, HEAD"));
    /// ```
    pub fn handle(&mut self, pattern: &str, handler: impl Handler) {
        if let Err(e) = self.try_handle(pattern, handler) {
            panic!("{e}");
        }
    }

    /// The same as [`handle`](Self::handle) (Go's `HandleFunc`: in Rust a function already is
    /// a handler).
    ///
    /// # Panics
    /// As [`handle`](Self::handle).
    ///
    /// ```
    /// use std::io::Write;
    /// use goway::http::{Request, ResponseWriter, ServeMux};
    ///
    /// fn health(_r: &Request, w: &mut ResponseWriter) {
    ///     let _ = w.write_all(b"ok");
    /// }
    /// let mut mux = ServeMux::new();
    /// mux.handle_func("GET /healthz", health);
    /// // The reply to `GET /healthz`:
    /// # let req = "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n";
    /// # let reply = goway::http::doctest::serve_one(mux, req).unwrap();
    /// assert_eq!(reply.body, "ok");
    /// ```
    pub fn handle_func<F>(&mut self, pattern: &str, f: F)
    where
        F: Fn(&Request<'_>, &mut ResponseWriter<'_>) + Send + Sync + 'static,
    {
        self.handle(pattern, f);
    }

    /// Registers `handler` for `pattern`, or says why it cannot.
    ///
    /// # Errors
    /// [`PatternError::Invalid`] for a malformed pattern, [`PatternError::Conflict`] when it
    /// conflicts with a registered one.
    ///
    /// ```
    /// use goway::http::{PatternError, Request, ResponseWriter, ServeMux};
    ///
    /// fn h(_r: &Request, _w: &mut ResponseWriter) {}
    /// let mut mux = ServeMux::new();
    /// assert!(mux.try_handle("GET /items/{id}", h).is_ok());
    /// let conflict = mux.try_handle("GET /items/{name}", h);
    /// assert!(matches!(conflict, Err(PatternError::Conflict { .. })));
    /// let invalid = mux.try_handle("GET /a/{", h);
    /// assert!(matches!(invalid, Err(PatternError::Invalid { .. })));
    /// ```
    pub fn try_handle(&mut self, pattern: &str, handler: impl Handler) -> Result<(), PatternError> {
        let pat = pattern::parse(pattern).map_err(|why| PatternError::Invalid {
            pattern: pattern.to_owned(),
            why,
        })?;
        for e in &self.entries {
            let same_host = match (&e.pat.host, &pat.host) {
                (None, None) => true,
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                _ => false,
            };
            if !same_host {
                continue;
            }
            let why = match pat.compare(&e.pat) {
                Rel::Equivalent => "they match the same requests",
                Rel::Overlaps => "both match some requests and neither is more specific",
                _ => continue,
            };
            return Err(PatternError::Conflict {
                pattern: pattern.to_owned(),
                other: e.pat.raw.to_string(),
                why,
            });
        }
        self.hosts |= pat.host.is_some();
        self.entries.push(Entry {
            pat,
            handler: Arc::new(handler),
        });
        Ok(())
    }

    fn find(&self, method: &str, host: &str, path: &str) -> Lookup {
        let mut caps = Vec::new();
        let mut best: Option<(usize, Vec<(usize, usize)>)> = None;
        let mut allow: Vec<&str> = Vec::new();
        // Patterns with a host first (Go: a host-specific match wins), then the others.
        let groups: &[bool] = if self.hosts { &[true, false] } else { &[false] };
        for &with_host in groups {
            for (i, e) in self.entries.iter().enumerate() {
                match &e.pat.host {
                    Some(h) if with_host && h.eq_ignore_ascii_case(host) => {}
                    None if !with_host => {}
                    _ => continue,
                }
                if !e.pat.match_path(path, &mut caps) {
                    continue;
                }
                if !e.pat.method_matches(method) {
                    if let Some(m) = &e.pat.method {
                        allow.push(m);
                        if m == "GET" {
                            allow.push("HEAD");
                        }
                    }
                    continue;
                }
                let better = match &best {
                    None => true,
                    Some((b, _)) => e.pat.compare(&self.entries[*b].pat) == Rel::MoreSpecific,
                };
                if better {
                    best = Some((i, std::mem::take(&mut caps)));
                }
            }
            if best.is_some() {
                break;
            }
        }
        if let Some((i, caps)) = best {
            return Lookup::Handler(i, caps);
        }
        if !allow.is_empty() {
            allow.sort_unstable();
            allow.dedup();
            return Lookup::MethodNotAllowed(allow.join(", "));
        }
        if !path.ends_with('/') {
            let with_slash = format!("{path}/");
            let hit = self.entries.iter().any(|e| {
                e.pat
                    .host
                    .as_ref()
                    .is_none_or(|h| h.eq_ignore_ascii_case(host))
                    && e.pat.method_matches(method)
                    && e.pat.match_path(&with_slash, &mut caps)
            });
            if hit {
                return Lookup::Redirect(with_slash);
            }
        }
        Lookup::NotFound
    }
}

/// The host without its port, as patterns name it.
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |i| &host[..=i]);
    }
    host.rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h)
}

fn with_query(path: &str, r: &Request<'_>) -> String {
    let q = r.raw_query();
    if q.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{q}")
    }
}

impl Handler for ServeMux {
    fn serve_http(&self, r: &Request<'_>, w: &mut ResponseWriter<'_>) {
        let method = r.method();
        let path = r.path();
        if method != "CONNECT" {
            let clean = clean_path(path);
            if clean != path {
                let to = with_query(&clean, r);
                super::handler::redirect(r, w, &to, StatusCode::MOVED_PERMANENTLY);
                return;
            }
        }
        let host = if self.hosts { strip_port(r.host()) } else { "" };
        match self.find(method, host, path) {
            Lookup::Handler(i, caps) => {
                let e = &self.entries[i];
                {
                    let mut pv = r.path_values.borrow_mut();
                    pv.clear();
                    for (name, (a, b)) in e.pat.cap_names().zip(caps) {
                        if let Some(name) = name {
                            pv.push((name.clone(), unescape(&path[a..b], false).into_owned()));
                        }
                    }
                }
                *r.pattern.borrow_mut() = Some(e.pat.raw.clone());
                e.handler.serve_http(r, w);
            }
            Lookup::MethodNotAllowed(allow) => {
                w.header().set("Allow", &allow);
                error(w, "Method Not Allowed", StatusCode::METHOD_NOT_ALLOWED);
            }
            Lookup::Redirect(to) => {
                let to = with_query(&to, r);
                super::handler::redirect(r, w, &to, StatusCode::MOVED_PERMANENTLY);
            }
            Lookup::NotFound => not_found(r, w),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noop(_r: &Request<'_>, _w: &mut ResponseWriter<'_>) {}

    #[test]
    fn conflicts_are_refused() {
        let mut m = ServeMux::new();
        m.handle("GET /", noop);
        assert!(matches!(
            m.try_handle("/index.html", noop),
            Err(PatternError::Conflict { .. })
        ));
        assert!(matches!(
            m.try_handle("GET /{x...}", noop),
            Err(PatternError::Conflict { .. })
        ));
        m.handle("GET /items/{id}", noop);
        m.handle("GET /items/new", noop);
        m.handle("POST /items/{id}", noop);
        m.handle("example.com/", noop);
        assert!(matches!(
            m.try_handle("/a{", noop),
            Err(PatternError::Invalid { .. })
        ));
    }

    #[test]
    fn lookup() {
        let mut m = ServeMux::new();
        for p in [
            "GET /items/{id}",
            "GET /items/new",
            "DELETE /items/{id}",
            "/static/",
            "GET /{$}",
        ] {
            m.handle(p, noop);
        }
        let name = |f: Lookup| match f {
            Lookup::Handler(i, _) => m.entries[i].pat.raw.to_string(),
            Lookup::MethodNotAllowed(a) => format!("405 {a}"),
            Lookup::Redirect(to) => format!("301 {to}"),
            Lookup::NotFound => "404".into(),
        };
        assert_eq!(name(m.find("GET", "h", "/items/new")), "GET /items/new");
        assert_eq!(name(m.find("HEAD", "h", "/items/7")), "GET /items/{id}");
        assert_eq!(
            name(m.find("DELETE", "h", "/items/7")),
            "DELETE /items/{id}"
        );
        assert_eq!(
            name(m.find("PUT", "h", "/items/7")),
            "405 DELETE, GET, HEAD"
        );
        assert_eq!(name(m.find("GET", "h", "/static")), "301 /static/");
        assert_eq!(name(m.find("GET", "h", "/nope")), "404");
        assert_eq!(name(m.find("GET", "h", "/")), "GET /{$}");
        assert_eq!(strip_port("example.com:80"), "example.com");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
    }
}
