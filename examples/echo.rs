//! The article's echo server: newline-delimited frames, and per connection a reader, a
//! handler and a writer goroutine joined by bounded channels.
//!
//! Run it with `cargo run --release --example echo` (add `-- --addr 127.0.0.1:9000` for another
//! address; `RUST_LOG=debug` logs each connection), then `nc 127.0.0.1 7878`. With
//! `--tls-cert cert.pem --tls-key key.pem` it serves TLS: try
//! `openssl s_client -connect 127.0.0.1:7878 -CAfile ca.pem`. On SIGTERM or Ctrl-C it drains:
//! it stops accepting, lets every connection finish the lines it has begun (up to `--grace`
//! seconds), cuts off the rest, reports both and exits 0; a second signal exits at once
//! (status 130 or 143).
//!
//! It ports the Go program `bench/peers/go/echo-article/main.go` (in this repository's
//! benchmark harness): `net.Listen`, then for each connection `go reader(c, in)`,
//! `go handler(in, out)`, `go writer(c, out)`; the writer flushes whenever `out` is
//! momentarily empty. Benchmark it beside its peers with `bench/compare.sh echo` (see
//! bench/README.md).

use std::time::Duration;

use clap::Parser;
use goway::net::codec::LinesCodec;
use goway::net::{Server, ShutdownReport};

/// Line echo server on goway.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7878")]
    addr: String,
    /// Microseconds to spin for the next frame before the worker thread sleeps
    /// (`Config::spin_poll`); 0, the default, never spins.
    #[arg(long, default_value_t = 0, alias = "busy-poll-us")]
    spin_poll_us: u64,
    /// Also serve goway's metrics (`GET /metrics`, Prometheus text) on this address.
    #[arg(long)]
    metrics: Option<String>,
    /// Seconds a graceful shutdown (on SIGTERM or Ctrl-C) waits for the connections to
    /// finish before cutting them off; a second signal exits at once.
    #[arg(long, default_value_t = 10)]
    grace: u64,
    /// Most connections served at once (`Config::max_connections`); 0: only the descriptor
    /// limit.
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    /// PEM certificate chain: serve TLS (with --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info,may=warn"))
        .init();
    let args = Args::parse();
    // Cancelled by the first SIGTERM or Ctrl-C; the second one exits at once.
    let ctx = goway::signal::shutdown_context(&goway::context::background())?;
    let grace = Duration::from_secs(args.grace);

    // One worker per CPU this process may use (1 under `taskset -c 0`): goway's default.
    let mut builder = Server::builder()
        .addr(args.addr)
        .codec(LinesCodec::new())
        .spin_poll(Duration::from_micros(args.spin_poll_us))
        .max_connections(args.max_connections)
        .shutdown_grace(grace)
        .shutdown_on(ctx.done());
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        builder = builder.tls(goway::tls::ServerConfig::from_pem_files(cert, key)?);
    }
    let server = builder
        .handler(|conn| {
            for frame in conn {
                conn.send(frame)?;
            }
            Ok(())
        })
        .bind()?;
    // Tests and scripts read the bound address (`--addr 127.0.0.1:0` picks a free port).
    println!("listening on {}", server.listen_addr());
    if let Some(addr) = args.metrics {
        // goway's metrics and this server's, the goroutine report and the health probes
        // (not ready once draining starts), on their own listener.
        let registry = goway::metrics::Registry::new();
        registry.register_server("echo", server.handle())?;
        let ready = goway::http::debug::Readiness::until_done(&ctx);
        let ops = goway::http::debug::serve(addr, &registry, &ready)?;
        let path = goway::http::debug::METRICS_PATH;
        println!("metrics on http://{}{path}", ops.local_addr()?);
    }
    let handle = server.handle();
    match server.serve() {
        Err(goway::net::server::ServeError::ServerClosed) | Ok(()) => {}
        Err(e) => return Err(e.into()),
    }
    // `serve` returns as the drain starts: wait for it (it ends within the grace).
    let outcome = handle.wait_shutdown(grace + Duration::from_secs(5));
    println!("shutdown: {}", ShutdownReport::log_outcome(outcome));
    Ok(())
}
