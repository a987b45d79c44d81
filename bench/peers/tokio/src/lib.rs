//! What the tokio peers share: the flags, the runtime, the HTTP routes and the TLS set-up.

use std::net::SocketAddr;
use std::process::exit;

pub mod hello;
pub mod tls;

/// The options every tokio peer takes: `--addr HOST:PORT` (also `-addr`, as the Go peers
/// spell it), `--current-thread` (tokio's single-threaded runtime instead of the
/// multi-threaded one), `--workers N` (the multi-threaded runtime's worker threads; default
/// one per CPU the process may use) and, for the peers that serve TLS,
/// `--tls-cert PATH --tls-key PATH`.
pub struct Opts {
    pub addr: SocketAddr,
    pub current_thread: bool,
    pub workers: Option<usize>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
}

pub fn opts(default_addr: &str) -> Opts {
    let mut addr = default_addr.to_owned();
    let mut current_thread = false;
    let mut workers = None;
    let (mut tls_cert, mut tls_key) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--addr" | "-addr" => match args.next() {
                Some(a) => addr = a,
                None => usage(),
            },
            "--current-thread" => current_thread = true,
            "--workers" | "-workers" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) if n > 0 => workers = Some(n),
                _ => usage(),
            },
            "--tls-cert" | "-tls-cert" => tls_cert = Some(args.next().unwrap_or_else(|| usage())),
            "--tls-key" | "-tls-key" => tls_key = Some(args.next().unwrap_or_else(|| usage())),
            _ => usage(),
        }
    }
    match addr.parse() {
        Ok(addr) => Opts {
            addr,
            current_thread,
            workers,
            tls_cert,
            tls_key,
        },
        Err(_) => {
            eprintln!("bad address {addr:?} (want HOST:PORT)");
            exit(2)
        }
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: {} [--addr HOST:PORT] [--current-thread] [--workers N] [--tls-cert PATH --tls-key PATH]",
        std::env::args().next().unwrap_or_default()
    );
    exit(2)
}

/// The runtime: multi-threaded by default, with `--workers` worker threads or tokio's default
/// count (one per CPU the process may use, so one under `taskset -c 0`).
pub fn runtime(o: &Opts) -> tokio::runtime::Runtime {
    let built = if o.current_thread {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if let Some(n) = o.workers {
            b.worker_threads(n);
        }
        b.enable_all().build()
    };
    built.unwrap_or_else(|e| {
        eprintln!("cannot start the tokio runtime: {e}");
        exit(1)
    })
}

/// Binds `addr` or exits with status 1.
pub async fn listen(addr: SocketAddr) -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| {
            eprintln!("listen {addr}: {e}");
            exit(1)
        })
}
