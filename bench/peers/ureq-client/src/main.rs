//! The Rust peer of the harness's `client` scenario: `-c` OS threads each send `GET -url`
//! in a loop over one shared `ureq::Agent` (its keep-alive pool holds one connection per
//! thread) for `-d` seconds after `-warmup` seconds, then it prints
//!
//! ```text
//! RESULT rps=<requests/s> errors=<failed requests> requests=<measured requests>
//! ```

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url: String = arg(&args, "-url", "http://127.0.0.1:8080/plaintext".to_owned());
    let conns: usize = arg(&args, "-c", 64);
    let secs: f64 = arg(&args, "-d", 5.0);
    let warmup: f64 = arg(&args, "-warmup", 1.0);
    let agent = ureq::AgentBuilder::new()
        .max_idle_connections(conns)
        .max_idle_connections_per_host(conns)
        .build();
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..conns)
        .map(|_| {
            let (agent, url) = (agent.clone(), url.clone());
            let (measuring, stop, ok, bad) =
                (measuring.clone(), stop.clone(), ok.clone(), bad.clone());
            std::thread::spawn(move || {
                let mut buf = Vec::with_capacity(4096);
                while !stop.load(Ordering::Relaxed) {
                    let r = agent.get(&url).call().map_err(|_| ()).and_then(|resp| {
                        buf.clear();
                        resp.into_reader().read_to_end(&mut buf).map_err(|_| ())
                    });
                    if !measuring.load(Ordering::Relaxed) {
                        continue;
                    }
                    match r {
                        Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(()) => bad.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(warmup));
    measuring.store(true, Ordering::Relaxed);
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    let (n, e) = (ok.load(Ordering::Relaxed), bad.load(Ordering::Relaxed));
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    println!("RESULT rps={:.0} errors={e} requests={n}", n as f64 / elapsed);
}
