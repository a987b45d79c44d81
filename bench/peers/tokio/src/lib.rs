//! What the tokio peers share: the `--addr` flag and the runtime.

use std::net::SocketAddr;
use std::process::exit;

/// The options every tokio peer takes: `--addr HOST:PORT` (also `-addr`, as the Go peers
/// spell it) and `--current-thread` (tokio's single-threaded runtime instead of the
/// multi-threaded one).
pub struct Opts {
    pub addr: SocketAddr,
    pub current_thread: bool,
}

pub fn opts(default_addr: &str) -> Opts {
    let mut addr = default_addr.to_owned();
    let mut current_thread = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--addr" | "-addr" => match args.next() {
                Some(a) => addr = a,
                None => usage(),
            },
            "--current-thread" => current_thread = true,
            _ => usage(),
        }
    }
    match addr.parse() {
        Ok(addr) => Opts {
            addr,
            current_thread,
        },
        Err(_) => {
            eprintln!("bad address {addr:?} (want HOST:PORT)");
            exit(2)
        }
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: {} [--addr HOST:PORT] [--current-thread]",
        std::env::args().next().unwrap_or_default()
    );
    exit(2)
}

/// The runtime: multi-threaded by default, with tokio's default worker count (one per CPU
/// the process may use, so one under `taskset -c 0`).
pub fn runtime(current_thread: bool) -> tokio::runtime::Runtime {
    let built = if current_thread {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
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
