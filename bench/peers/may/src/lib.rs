//! What the raw-may peers share: the `-addr` flag and may's worker count.

use std::net::SocketAddr;
use std::process::exit;

/// Parses `-addr HOST:PORT` (or `--addr`), the only flag the server peers take.
pub fn addr(default: &str) -> SocketAddr {
    let mut addr = default.to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("-addr" | "--addr", Some(a)) => addr = a,
            _ => {
                eprintln!(
                    "usage: {} [-addr HOST:PORT]",
                    std::env::args().next().unwrap_or_default()
                );
                exit(2)
            }
        }
    }
    addr.parse().unwrap_or_else(|_| {
        eprintln!("bad address {addr:?} (want HOST:PORT)");
        exit(2)
    })
}

/// The CPUs this process may run on (1 under `taskset -c 0`).
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Gives may `workers` worker threads; call it before the first coroutine starts. may's
/// default worker pinning stays on: worker i runs on the i-th CPU of the process's affinity
/// mask, so the workers stay inside the `taskset` the harness gave.
pub fn set_workers(workers: usize) {
    may::config().set_workers(workers.max(1));
}

/// Binds `addr` with may's listener, or exits with status 1.
pub fn listen(addr: SocketAddr) -> may::net::TcpListener {
    may::net::TcpListener::bind(addr).unwrap_or_else(|e| {
        eprintln!("listen {addr}: {e}");
        exit(1)
    })
}
