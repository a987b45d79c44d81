//! Fetches a page over HTTPS with goway's TLS client (Go's `tls.Dial` plus a hand-written
//! HTTP/1.1 request) and prints the status line and the body.
//!
//! `cargo run --release --example https_client -- --host localhost --port 8080 --path /plaintext
//! --cacert ca.pem` (against `examples/http_hello` run with `--tls-cert/--tls-key`). Without
//! `--cacert` the server must chain to Mozilla's roots (the `webpki-roots` crate).

use std::io::{BufRead, BufReader, Read, Write};
use std::time::Duration;

use clap::Parser;
use goway::tls::{self, ClientConfig};

/// HTTPS GET with goway::tls.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Server name: verified against the certificate and sent as SNI.
    #[arg(long, default_value = "localhost")]
    host: String,
    #[arg(long, default_value_t = 443)]
    port: u16,
    /// Address to connect to, if not the host's (e.g. 127.0.0.1:8443).
    #[arg(long)]
    connect: Option<String>,
    #[arg(long, default_value = "/")]
    path: String,
    /// PEM file of the CA certificates to trust instead of Mozilla's roots.
    #[arg(long)]
    cacert: Option<std::path::PathBuf>,
    /// Seconds allowed for the connection and the handshake.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = Args::parse();
    let cfg = match &args.cacert {
        Some(path) => ClientConfig::with_ca_file(path)?,
        None => ClientConfig::new(),
    }
    .with_alpn(&["http/1.1"]);
    let addr = args
        .connect
        .clone()
        .unwrap_or_else(|| format!("{}:{}", args.host, args.port));
    let timeout = Duration::from_secs(args.timeout);
    let mut c = match tls::dial_timeout(addr.as_str(), &cfg, &args.host, timeout) {
        Ok(c) => c,
        Err(e) => {
            // A certificate problem says which one (unknown authority, wrong host, expired).
            if let Some(t) = tls::TlsError::from_io(&e) {
                eprintln!("TLS error ({:?}): {t}", t.kind());
            }
            return Err(e.into());
        }
    };
    c.set_deadline(Some(std::time::Instant::now() + timeout));
    write!(
        c,
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nUser-Agent: goway-https-client\r\n\r\n",
        args.path, args.host
    )?;
    let mut r = BufReader::new(c);
    let mut status = String::new();
    r.read_line(&mut status)?;
    println!("{}", status.trim_end());
    // Headers, up to the blank line.
    loop {
        let mut l = String::new();
        if r.read_line(&mut l)? == 0 || l == "\r\n" {
            break;
        }
    }
    let mut body = Vec::new();
    match r.read_to_end(&mut body) {
        Ok(_) => {}
        // Many servers close without close_notify after `Connection: close`; the body is
        // complete by then (a real client would check Content-Length).
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
        Err(e) => return Err(e.into()),
    }
    println!("{}", String::from_utf8_lossy(&body));
    Ok(())
}
