//! Fetches a page over HTTPS with goway's HTTP client (Go's `http.Client` with a
//! `Transport.TLSClientConfig`) and prints the status line and the body.
//!
//! `cargo run --release --example https_client -- --host localhost --port 8080 --path /plaintext
//! --cacert ca.pem` (against `examples/http_hello` run with `--tls-cert/--tls-key`). Without
//! `--cacert` the server must chain to the system's roots.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use goway::http::{Client, ClientError, Conn, Transport, TransportConfig};
use goway::tls::ClientConfig;

/// HTTPS GET with goway::http::Client.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Server name: in the URL, verified against the certificate and sent as SNI.
    #[arg(long, default_value = "localhost")]
    host: String,
    #[arg(long, default_value_t = 443)]
    port: u16,
    /// Address to connect to, if not the host's (e.g. 127.0.0.1:8443).
    #[arg(long)]
    connect: Option<String>,
    #[arg(long, default_value = "/")]
    path: String,
    /// PEM file of the CA certificates to trust instead of the system's roots.
    #[arg(long)]
    cacert: Option<std::path::PathBuf>,
    /// Seconds allowed for the whole request.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = Args::parse();
    let cfg = TransportConfig {
        tls: args
            .cacert
            .as_ref()
            .map(ClientConfig::with_ca_file)
            .transpose()?,
        ..TransportConfig::default()
    };
    let transport = match args.connect.clone() {
        // Connect to another address than the URL's host (curl's `--connect-to`).
        Some(to) => {
            let dial = move |_addr: &str, t: Duration| -> std::io::Result<Box<dyn Conn>> {
                Ok(Box::new(goway::net::dial_timeout(to.as_str(), t)?))
            };
            Transport::with_parts(cfg, Arc::new(dial), None)
        }
        None => Transport::new(cfg),
    };
    let client = Client::new()
        .with_transport(transport)
        .with_timeout(Duration::from_secs(args.timeout));
    let url = format!("https://{}:{}{}", args.host, args.port, args.path);
    let got = goway::go!(move || -> Result<(String, Vec<u8>), ClientError> {
        let resp = client.get(&url)?;
        let status = format!(
            "{} {} {}",
            resp.proto(),
            resp.status().as_u16(),
            resp.reason()
        );
        Ok((status, resp.bytes().map_err(ClientError::Io)?))
    })
    .join()
    .map_err(|p| format!("request goroutine panicked: {p}"))?;
    match got {
        Ok((status, body)) => {
            println!("{status}");
            println!("{}", String::from_utf8_lossy(&body));
            Ok(())
        }
        Err(e) => {
            // A certificate problem says which one (unknown authority, wrong host, expired).
            if let Some(t) = e.tls_error() {
                eprintln!("TLS error ({:?}): {t}", t.kind());
            }
            Err(e.into())
        }
    }
}
