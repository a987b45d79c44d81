//! The article's echo server: newline-delimited frames, and per connection a reader, a
//! handler and a writer goroutine joined by bounded channels.
//!
//! Run it with `cargo run --release --example echo` (add `-- --addr 127.0.0.1:9000` for another
//! address; `RUST_LOG=debug` logs each connection), then `nc 127.0.0.1 7878`. It stops on
//! SIGTERM or Ctrl-C.
//!
//! It ports the Go program `bench/peers/go/echo-article/main.go` (in this repository's
//! benchmark harness): `net.Listen`, then for each connection `go reader(c, in)`,
//! `go handler(in, out)`, `go writer(c, out)`; the writer flushes whenever `out` is
//! momentarily empty. Benchmark it beside its peers with `bench/compare.sh echo` (see
//! bench/README.md).

use clap::Parser;
use goway::net::Server;
use goway::net::codec::LinesCodec;

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
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info,may=warn"))
        .init();
    let args = Args::parse();

    // One worker per CPU this process may use (1 under `taskset -c 0`): goway's default.
    let server = Server::builder()
        .addr(args.addr)
        .codec(LinesCodec::new())
        .spin_poll(std::time::Duration::from_micros(args.spin_poll_us))
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
        serve_metrics(addr, "echo", server.handle())?;
    }
    // SIGTERM and Ctrl-C end the process; the kernel closes the connections.
    match server.serve() {
        Err(goway::net::server::ServeError::ServerClosed) | Ok(()) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// `--metrics ADDR`: goway's metrics and this server's (`GET /metrics`), with http::debug's
/// goroutine dump and health probes, served on ADDR in a goroutine.
fn serve_metrics(
    addr: String,
    name: &str,
    server: impl goway::metrics::ServerMetrics,
) -> Result<(), Box<dyn std::error::Error>> {
    use goway::http::debug;
    let registry = goway::metrics::Registry::new();
    registry.register_server(name, server)?;
    let mut mux = goway::http::ServeMux::new();
    debug::register(&mut mux);
    debug::register_metrics(&mut mux, &registry);
    debug::register_health(&mut mux, &debug::Readiness::new());
    let srv = goway::http::Server::builder()
        .addr(addr)
        .handler(mux)
        .bind()?;
    println!(
        "metrics on http://{}{}",
        srv.local_addr()?,
        debug::METRICS_PATH
    );
    goway::go!(move || srv.serve());
    Ok(())
}
