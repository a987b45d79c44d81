//! Client load on goway's `http::Client`: `--conns` goroutines each send `GET --url` in a
//! loop over one shared client (keep-alive, one idle connection kept per goroutine) for
//! `--duration` seconds after `--warmup` seconds, then it prints
//!
//! ```text
//! RESULT rps=<requests/s> errors=<failed requests> requests=<measured requests>
//! ```
//!
//! The goway side of `bench/compare.sh client`, beside Go's `http.Client`
//! (bench/peers/go/http-client) and `ureq` (bench/peers/ureq-client) against the same
//! server. Run: `cargo run --release --example http_client_load -- --url
//! http://127.0.0.1:8080/plaintext`.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use goway::http::{Client, Transport, TransportConfig};

/// HTTP client load on goway.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// URL to GET.
    #[arg(long, default_value = "http://127.0.0.1:8080/plaintext")]
    url: String,
    /// Goroutines, each with its own request loop.
    #[arg(long, default_value_t = 64)]
    conns: usize,
    /// Seconds measured.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Seconds of unmeasured load first.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
}

fn main() {
    let args = Args::parse();
    let transport = Transport::new(TransportConfig {
        max_idle_conns: args.conns,
        max_idle_conns_per_host: args.conns,
        ..TransportConfig::default()
    });
    let client = Client::new().with_transport(transport);
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..args.conns)
        .map(|_| {
            let (client, url) = (client.clone(), args.url.clone());
            let (measuring, stop, ok, bad) =
                (measuring.clone(), stop.clone(), ok.clone(), bad.clone());
            goway::go!(move || {
                let mut buf = [0u8; 4096];
                while !stop.load(Ordering::Relaxed) {
                    let r = client.get(&url).map_err(|_| ()).and_then(|mut resp| {
                        let failed = resp.status().as_u16() >= 400;
                        loop {
                            match resp.body.read(&mut buf) {
                                Ok(0) => break,
                                Ok(_) => {}
                                Err(_) => return Err(()),
                            }
                        }
                        if failed { Err(()) } else { Ok(()) }
                    });
                    if !measuring.load(Ordering::Relaxed) {
                        continue;
                    }
                    match r {
                        Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(()) => bad.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    goway::time::sleep(Duration::from_secs_f64(args.warmup));
    measuring.store(true, Ordering::Relaxed);
    let start = Instant::now();
    goway::time::sleep(Duration::from_secs_f64(args.duration));
    let (n, e) = (ok.load(Ordering::Relaxed), bad.load(Ordering::Relaxed));
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    println!(
        "RESULT rps={:.0} errors={e} requests={n}",
        n as f64 / elapsed
    );
}
