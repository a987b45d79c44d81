//! HTTP/1.1 servers the Go way (Go's `net/http`): [`Handler`]s as functions or types, a
//! [`ServeMux`] with Go 1.22 patterns, and a [`Server`] with Go's timeouts, limits and
//! graceful shutdown; and the client side: a [`Client`] over a pooling [`Transport`], with
//! [`get`] and [`post`] helpers (Go's `http.Client`, `http.Get`, `http.Post`).
//!
//! | Go | goway |
//! |---|---|
//! | `http.HandleFunc("GET /items/{id}", f)` | [`mux.handle("GET /items/{id}", f)`](ServeMux::handle) |
//! | `func(w http.ResponseWriter, r *http.Request)` | `fn(r: &Request, w: &mut ResponseWriter)` |
//! | `r.PathValue("id")` | [`r.path_value("id")`](Request::path_value) |
//! | `r.URL.Query().Get("q")` | [`r.query_value("q")`](Request::query_value) |
//! | `r.Header.Get("X")`, `w.Header().Set("X", v)` | [`r.header().get("X")`](Header::get), [`w.header().set("X", v)`](Header::set) |
//! | `io.ReadAll(r.Body)` | [`r.read_body()`](Request::read_body) or [`r.body()`](Request::body) as a `Read` |
//! | `w.WriteHeader(404)`, `fmt.Fprint(w, ..)` | [`w.write_header(404)`](ResponseWriter::write_header), `write!(w, ..)` |
//! | `http.Error(w, msg, code)` | [`http::error(w, msg, code)`](error) |
//! | `w.(http.Flusher).Flush()` | `w.flush()` (streams the rest, chunked) |
//! | `srv := &http.Server{Addr: a, Handler: h, ReadHeaderTimeout: t}` | [`Server::builder().addr(a).handler(h).read_header_timeout(t).bind()?`](Server::builder) |
//! | `srv.ListenAndServe()` | [`server.serve()`](Server::serve) |
//! | `srv.Shutdown(ctx)` | [`handle.shutdown()`](ServerHandle::shutdown), or [`Builder::context`] |
//! | `r.Context()` | [`r.context()`](Request::context) |
//!
//! # The engine
//! goway serves HTTP with its own connection loop over [`goway::net`](crate::net) and the
//! `httparse` parser, not with `may_minihttp`: the faults a user meets in `may_minihttp`
//! (requests with more than 16 headers dropped, no `Connection: close` or HTTP/1.0, no
//! timeouts, limits or shutdown, a panic on a bad `Content-Length`, an unread body parsed as
//! the next request) live inside its parser and connection loop. The loop keeps what makes
//! `may_minihttp` fast: one goroutine per connection, one reusable read buffer, every
//! pipelined request in it answered into one output buffer written with one call, no
//! allocation per request once the buffers have grown, and a `Date` header formatted once a
//! second.
//!
//! # Behaviour on bad input (as Go's)
//! - a malformed request: `400 Bad Request` (with the reason), `Connection: close`, as soon
//!   as its first bad line arrives (a head is read with one pass over its bytes, however
//!   slowly it trickles in: [`Stats::head_bytes_scanned`]);
//! - a head over `max_header_bytes`: `431` (`414` if the request line alone is);
//! - a body over `max_body_bytes`: `413`; a transfer coding other than `chunked`: `501`;
//!   a version other than HTTP/1.x: `505` (any HTTP/1.x is served, as HTTP/1.1, as Go
//!   does); a malformed version, method or target (a bad `%` escape): `400`; `Expect`
//!   other than `100-continue`: `417`;
//! - both `Transfer-Encoding` and `Content-Length`, or differing `Content-Length`s: `400`;
//! - chunked framing that is malformed (a bare LF or CR, no size, a size line over 4 KiB, a
//!   bad trailer, trailers over 16 KiB or a trailer line longer than `max_header_bytes`
//!   plus 4 KiB) or mostly framing (chunk extensions or size lines beyond 16 bytes a chunk
//!   plus twice its data, by more than 16 KiB: Go 1.22's rule) fails the body's read, is
//!   answered `400` if the handler then sends nothing, and closes the connection;
//! - every one of these closes the connection; EOF or a timeout closes it without a reply;
//! - a handler's panic: `500` if nothing was sent yet, the log line
//!   `http: panic serving <addr>: <msg>`, the connection closes, the server goes on;
//! - a body the handler left unread is read and discarded up to 256 KiB, else the
//!   connection closes after the response;
//! - keep-alive by default for HTTP/1.1, close for HTTP/1.0 unless `Connection: keep-alive`,
//!   pipelined requests answered in order.
//!
//! # Examples
//! ```
//! use std::io::{Read, Write};
//! use goway::http::{Request, ResponseWriter, Server, ServeMux};
//!
//! fn item(r: &Request, w: &mut ResponseWriter) {
//!     let id = r.path_value("id").unwrap_or_default();
//!     w.header().set("Content-Type", "text/plain");
//!     let _ = write!(w, "item {id}");
//! }
//!
//! let mut mux = ServeMux::new();
//! mux.handle("GET /items/{id}", item);
//! let server = Server::builder().addr("127.0.0.1:0").handler(mux).bind().unwrap();
//! let (addr, handle) = (server.local_addr().unwrap(), server.handle());
//! goway::go!(move || server.serve());
//!
//! let mut c = std::net::TcpStream::connect(addr).unwrap();
//! c.write_all(b"GET /items/7 HTTP/1.0\r\n\r\n").unwrap();
//! let mut reply = String::new();
//! c.read_to_string(&mut reply).unwrap();
//! assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"));
//! assert!(reply.ends_with("item 7"));
//! handle.shutdown().unwrap();
//! ```

pub(crate) mod body;
mod client;
mod conn;
mod date;
pub mod debug;
#[doc(hidden)]
pub mod doctest;
mod handler;
mod header;
pub(crate) mod io;
#[cfg(feature = "json")]
mod json;
mod mux;
pub(crate) mod parse;
mod pattern;
mod query;
mod request;
mod response;
mod server;
mod status;

pub use client::{
    Client, ClientError, ClientRequest, Conn, Dialer, RedirectAction, RedirectFn, RedirectPolicy,
    RequestBody, Response, ResponseBody, TlsConnector, Transport, TransportConfig, TransportStats,
    Url, get, head, post,
};
pub use handler::{Handler, error, not_found, redirect};
pub use header::Header;
#[cfg(feature = "json")]
pub use json::{JsonError, MAX_JSON_DEPTH, read_json, write_json};
pub use mux::{PatternError, ServeMux};
pub use query::Query;
pub use request::{Body, Request};
pub use response::{ResponseWriter, STREAM_AT};
pub use server::{Builder, Config, Server, ServerHandle, Stats, listen_and_serve};
pub use status::{StatusCode, status_text};

pub use crate::net::server::{ServeError, ShutdownError};
