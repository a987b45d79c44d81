//! The TechEmpower shapes on goway's HTTP server: `GET /plaintext` answers `Hello, World!`
//! and `GET /json` answers `{"message":"Hello, World!"}`.
//!
//! Run it with `cargo run --release --example http_hello` (add `-- --addr 127.0.0.1:9000` for
//! another address), then `curl http://127.0.0.1:8080/plaintext`. With `--tls-cert cert.pem
//! --tls-key key.pem` it serves HTTPS (`curl --cacert ca.pem https://localhost:8080/plaintext`).
//! Benchmark it beside Go's
//! `net/http`, tokio+hyper and raw `may_minihttp` with `bench/compare.sh http` (see
//! bench/README.md).
//!
//! SIGTERM or Ctrl-C drains it (Go's `srv.Shutdown`): it stops accepting, closes idle
//! connections, finishes the requests in flight within `--grace` seconds, cuts off the rest,
//! reports both and exits 0; a second signal exits at once (status 130 or 143).

use std::io::Write;
use std::time::Duration;

use clap::Parser;
use goway::http::{Request, ResponseWriter, ServeError, ServeMux, Server};
use goway::net::ShutdownReport;

/// Hello-world HTTP server on goway.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// Also serve goway's metrics (`GET /metrics`, Prometheus text) on this address.
    #[arg(long)]
    metrics: Option<String>,
    /// Seconds a graceful shutdown (on SIGTERM or Ctrl-C) waits for the requests in flight
    /// before cutting them off; a second signal exits at once.
    #[arg(long, default_value_t = 10)]
    grace: u64,
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
    // Cancelled by the first SIGTERM or Ctrl-C; the second one exits at once.
    let ctx = goway::signal::shutdown_context(&goway::context::background())?;
    let grace = Duration::from_secs(args.grace);
    let mut mux = ServeMux::new();
    mux.handle("GET /plaintext", plaintext);
    mux.handle("GET /json", json);
    let mut builder = Server::builder()
        .addr(args.addr)
        .handler(mux)
        .shutdown_grace(grace)
        .shutdown_on(ctx.done());
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        // Go's ListenAndServeTLS(cert, key).
        builder = builder.tls(goway::tls::ServerConfig::from_pem_files(cert, key)?);
    }
    let server = builder.bind()?;
    // Tests and scripts read the bound address (`--addr 127.0.0.1:0` picks a free port).
    println!("listening on {}", server.local_addr()?);
    if let Some(addr) = args.metrics {
        // goway's metrics and this server's, the goroutine report and the health probes
        // (not ready once draining starts), on their own listener.
        let registry = goway::metrics::Registry::new();
        registry.register_server("http_hello", server.handle())?;
        let ready = goway::http::debug::Readiness::until_done(&ctx);
        let ops = goway::http::debug::serve(addr, &registry, &ready)?;
        let path = goway::http::debug::METRICS_PATH;
        println!("metrics on http://{}{path}", ops.local_addr()?);
    }
    let handle = server.handle();
    match server.serve() {
        Err(ServeError::ServerClosed) | Ok(()) => {}
        Err(e) => return Err(e.into()),
    }
    // `serve` returns as the drain starts: wait for it (it ends within the grace).
    let outcome = handle.wait_shutdown(grace + Duration::from_secs(5));
    println!("shutdown: {}", ShutdownReport::log_outcome(outcome));
    Ok(())
}
