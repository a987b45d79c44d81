//! The TechEmpower shapes on goway's HTTP server: `GET /plaintext` answers `Hello, World!`
//! and `GET /json` answers `{"message":"Hello, World!"}`.
//!
//! Run it with `cargo run --release --example http_hello` (add `-- --addr 127.0.0.1:9000` for
//! another address), then `curl http://127.0.0.1:8080/plaintext`. With `--tls-cert cert.pem
//! --tls-key key.pem` it serves HTTPS (`curl --cacert ca.pem https://localhost:8080/plaintext`).
//! Benchmark it beside Go's
//! `net/http`, tokio+hyper and raw `may_minihttp` with `bench/compare.sh http` (see
//! bench/README.md).

use std::io::Write;

use clap::Parser;
use goway::http::{Request, ResponseWriter, ServeError, ServeMux, Server};

/// Hello-world HTTP server on goway.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
}

fn plaintext(_r: &Request, w: &mut ResponseWriter) {
    w.header().set("Content-Type", "text/plain");
    w.header().set("Server", "goway");
    let _ = w.write_all(b"Hello, World!");
}

#[derive(serde::Serialize)]
struct Message {
    message: &'static str,
}

fn json(_r: &Request, w: &mut ResponseWriter) {
    w.header().set("Server", "goway");
    goway::http::write_json(
        w,
        200,
        &Message {
            message: "Hello, World!",
        },
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info,may=warn"))
        .init();
    let args = Args::parse();
    let mut mux = ServeMux::new();
    mux.handle("GET /plaintext", plaintext);
    mux.handle("GET /json", json);
    let mut builder = Server::builder().addr(args.addr).handler(mux);
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        // Go's ListenAndServeTLS(cert, key).
        builder = builder.tls(goway::tls::ServerConfig::from_pem_files(cert, key)?);
    }
    let server = builder.bind()?;
    // Tests and scripts read the bound address (`--addr 127.0.0.1:0` picks a free port).
    println!("listening on {}", server.local_addr()?);
    match server.serve() {
        Err(ServeError::ServerClosed) | Ok(()) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
