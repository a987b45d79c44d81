//! A reverse proxy in Go's `httputil.ReverseProxy` shape, on goway's HTTP server and client:
//! every request goes to one upstream, with
//!
//! - `X-Forwarded-For` appended with the client's address;
//! - hop-by-hop headers removed both ways (`Connection` and the fields it names,
//!   `Keep-Alive`, `Proxy-Connection`, `Proxy-Authenticate`, `Proxy-Authorization`, `TE`,
//!   `Trailer`, `Transfer-Encoding`, `Upgrade`);
//! - bodies streamed both ways: the request body from the server's reader into the client,
//!   the response body from the client's reader to the response writer, a piece at a time
//!   (never whole in memory; flushed as it comes when the upstream gave no length);
//! - upstream errors answered `502 Bad Gateway` (`504` on a timeout), logged as Go's
//!   `http: proxy error: <err>`.
//!
//! The upstream may be `https://` (verified against the system's roots, or the CA file of
//! `--upstream-cacert`).
//!
//! Run: `cargo run --release --example reverse_proxy -- --addr 127.0.0.1:8081 --upstream
//! http://127.0.0.1:8080`, then `curl -v http://127.0.0.1:8081/`. Benchmarked beside Go's
//! `httputil.ReverseProxy` by `bench/compare.sh proxy`.

use std::io::{Read, Write};
use std::time::Duration;

use clap::Parser;
use goway::http::{
    ClientRequest, Header, Request, ResponseWriter, ServeError, Server, Transport, TransportConfig,
    Url,
};

/// Reverse proxy to one upstream on goway.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8081")]
    addr: String,
    /// The upstream's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    upstream: String,
    /// Largest request body passed on, in bytes (0: no limit, as Go's ReverseProxy).
    #[arg(long, default_value_t = 0)]
    max_body_bytes: u64,
    /// Idle keep-alive connections kept to the upstream.
    #[arg(long, default_value_t = 256)]
    max_idle: usize,
    /// PEM file of the CA certificates that an `https://` upstream is verified against,
    /// instead of the system's roots.
    #[arg(long)]
    upstream_cacert: Option<std::path::PathBuf>,
}

/// Go's `hopHeaders` (net/http/httputil/reverseproxy.go).
const HOP_HEADERS: &[&str] = &[
    "Connection",
    "Proxy-Connection",
    "Keep-Alive",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Te",
    "Trailer",
    "Transfer-Encoding",
    "Upgrade",
];

/// Copies `from` into `to` without hop-by-hop fields, nor the fields `Connection` names.
fn copy_end_to_end(from: &Header, to: &mut Header) {
    let named: Vec<String> = from
        .values("Connection")
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    for (name, value) in from.iter() {
        let hop = HOP_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name))
            || named.iter().any(|n| n.eq_ignore_ascii_case(name));
        if !hop {
            to.add(name, value);
        }
    }
}

struct Proxy {
    upstream: Url,
    transport: Transport,
}

impl Proxy {
    fn serve(&self, r: &Request, w: &mut ResponseWriter) {
        let url = match self.upstream.join(r.target()) {
            Ok(u) => u,
            Err(e) => return bad_gateway(w, &e.to_string(), 502),
        };
        let mut out = ClientRequest::from_url(r.method(), url).with_context(r.context());
        copy_end_to_end(r.header(), out.header_mut());
        // X-Forwarded-For: the earlier hops, then this client (Go's rule).
        let client_ip = r.remote_addr().ip().to_string();
        let prior: Vec<&str> = r.header().values("X-Forwarded-For").collect();
        let xff = if prior.is_empty() {
            client_ip
        } else {
            format!("{}, {client_ip}", prior.join(", "))
        };
        out.header_mut().set("X-Forwarded-For", &xff);
        let len = if r.header().contains("Transfer-Encoding") {
            None
        } else {
            Some(r.content_length().unwrap_or(0))
        };
        let mut body = r.body();
        let mut resp = match self
            .transport
            .round_trip_streaming(&mut out, &mut body, len)
        {
            Ok(resp) => resp,
            Err(e) => {
                log::warn!("http: proxy error: {e}");
                let code = if e.is_timeout() { 504 } else { 502 };
                return bad_gateway(w, "", code);
            }
        };
        // The upstream's Content-Length comes along: the writer then streams with it.
        copy_end_to_end(resp.header(), w.header());
        let known = resp.header().get("Content-Length").is_some();
        w.write_header(resp.status());
        let mut buf = vec![0u8; 32 << 10];
        loop {
            match resp.body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if w.write_all(&buf[..n]).is_err() {
                        // The client left; dropping the response closes the upstream
                        // connection.
                        return;
                    }
                    if !known && w.flush().is_err() {
                        return;
                    }
                }
                Err(e) => {
                    // Too late for a 502: the head is out. Go's ReverseProxy logs and
                    // aborts the response, so that the client sees a truncated body.
                    log::warn!("http: proxy error: read upstream body: {e}");
                    panic_abort_response();
                }
            }
        }
    }
}

/// Ends the handler so that the server closes the connection without finishing the
/// response (Go's `panic(http.ErrAbortHandler)`): the client sees the body cut short.
fn panic_abort_response() -> ! {
    std::panic::resume_unwind(Box::new("http: abort handler"))
}

fn bad_gateway(w: &mut ResponseWriter, msg: &str, code: u16) {
    w.header().set("Content-Length", &msg.len().to_string());
    w.write_header(code);
    let _ = w.write_all(msg.as_bytes());
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info,may=warn"))
        .init();
    let args = Args::parse();
    let upstream = Url::parse(&args.upstream)?;
    let transport = Transport::new(TransportConfig {
        max_idle_conns: args.max_idle,
        max_idle_conns_per_host: args.max_idle,
        dial_timeout: Duration::from_secs(10),
        tls: args
            .upstream_cacert
            .as_ref()
            .map(goway::tls::ClientConfig::with_ca_file)
            .transpose()?,
        ..TransportConfig::default()
    });
    let proxy = Proxy {
        upstream,
        transport,
    };
    let server = Server::builder()
        .addr(args.addr)
        .max_body_bytes(args.max_body_bytes)
        .handler(move |r: &Request, w: &mut ResponseWriter| proxy.serve(r, w))
        .bind()?;
    println!("listening on {}", server.local_addr()?);
    match server.serve() {
        Err(ServeError::ServerClosed) | Ok(()) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
