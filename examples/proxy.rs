//! A TCP proxy: every client connection is forwarded to `--upstream`, with two copy goroutines
//! per connection, the Go way:
//!
//! ```go
//! for {
//!     client, _ := ln.Accept()
//!     go func() {
//!         upstream, err := net.DialTimeout("tcp", *upstreamAddr, *dialTimeout)
//!         if err != nil { log.Print(err); client.Close(); return }
//!         var wg sync.WaitGroup
//!         wg.Add(2)
//!         go pipe(upstream, client, &wg) // client → upstream
//!         go pipe(client, upstream, &wg) // upstream → client
//!         wg.Wait()
//!         client.Close(); upstream.Close()
//!     }()
//! }
//!
//! func pipe(dst, src *net.TCPConn, wg *sync.WaitGroup) {
//!     defer wg.Done()
//!     if _, err := io.Copy(dst, src); err != nil { dst.Close(); src.Close(); return }
//!     dst.CloseWrite() // pass the EOF on: half-close
//! }
//! ```
//!
//! **Half-close.** When one side finishes sending (EOF), the proxy shuts down the write side of
//! the other connection (`shutdown(SHUT_WR)`, Go's `CloseWrite`) and keeps copying the other
//! direction: a client that sends a request and then half-closes still gets the whole reply.
//! Both connections are closed once both directions are done. A read or write error in either
//! direction (a reset) shuts both connections down completely, which ends the other direction
//! too.
//!
//! **Dial timeout.** The upstream connection is attempted for at most `--dial-timeout`
//! (`goway::net::dial_timeout`, Go's `net.DialTimeout`); if it fails, the client's connection is
//! closed at once and the failure logged (at most one line per 10 s, then a count: an upstream
//! that is down would otherwise log a line per client).
//!
//! **Connection cap.** At most `--max-connections` clients (10,000) are proxied at once, fewer
//! if the descriptor limit allows fewer (each takes four descriptors; the soft `RLIMIT_NOFILE`
//! is first raised towards the hard one, as Go does); clients over the cap are refused (their
//! connection closed at once), so a connect/close storm can never exhaust the proxy's
//! descriptors, and a client arriving after the storm is served at once. Accept errors from
//! exhausted resources back off 5 ms doubling to 1 s, as Go's `http.Server.Serve` does. This is
//! `goway::net::Acceptor`, the accept loop of goway's own servers.
//!
//! Run it with `cargo run --release --example proxy -- --listen 127.0.0.1:7880 --upstream
//! 127.0.0.1:7878` (next to `cargo run --release --example echo`), then
//! `nc 127.0.0.1 7880`. `RUST_LOG=debug` logs every connection with its byte counts.
//!
//! **Graceful stop.** SIGTERM or Ctrl-C stops accepting and lets the connections being proxied
//! finish, for `--grace` seconds at most; then the process reports how many drained and how
//! many it cut off (still open: its exit closes them) and exits 0. A second signal exits at
//! once (status 130 or 143).

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use clap::Parser;
use goway::chan::{self, RecvTimeoutError};
use goway::go;
use goway::logging::LogSummary;
use goway::net::{Acceptor, TcpListener, TcpReadHalf, TcpStream, TcpWriteHalf};
use goway::sync::WaitGroup;

/// TCP proxy: forwards each connection to an upstream address.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, visible_alias = "addr", default_value = "127.0.0.1:7880")]
    listen: String,
    /// Address to forward connections to.
    #[arg(long, default_value = "127.0.0.1:7878")]
    upstream: String,
    /// Longest wait for the upstream connection, e.g. `3s`, `500ms`.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    dial_timeout: Duration,
    /// Client connections proxied at once at most (lowered to what the descriptor limit
    /// allows, four descriptors each); more are refused (closed at once). `0`: only the
    /// descriptor limit.
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    /// Seconds a graceful stop (on SIGTERM or Ctrl-C) waits for the open connections to
    /// finish before cutting them off; a second signal exits at once.
    #[arg(long, default_value_t = 10)]
    grace: u64,
}

/// Parses `250ms`, `3s`, `1m` or a bare number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("bad duration unit in {s:?} (use ms, s or m)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

/// Failed connections (upstream down, out of descriptors): a client can cause them as often as
/// it likes, so they are logged at most once per 10 s, the first with its detail, then a count.
static FAILED: LazyLock<LogSummary> = LazyLock::new(|| {
    LogSummary::new("connections failed")
        .target("proxy")
        .level(log::Level::Warn)
});

/// Descriptors a proxied connection holds: the client's socket and the upstream one, each
/// split into a read and a write half (`dup`).
const FDS_PER_CONNECTION: usize = 4;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info,may=warn"))
        .init();
    let args = Args::parse();
    // Cancelled by the first SIGTERM or Ctrl-C; the second one exits at once.
    let stop = goway::signal::shutdown_context(&goway::context::background())?;
    let grace = Duration::from_secs(args.grace);

    let ln = TcpListener::bind(&args.listen)?;
    // Stopping: shutting the listening socket down (through a duplicate of its descriptor,
    // the acceptor owns the listener) wakes the accept below with an error.
    let wake = socket2::SockRef::from(ln.as_may().inner()).try_clone()?;
    {
        let stop = stop.clone();
        go!(move || {
            let _ = stop.done().recv();
            let _ = wake.shutdown(Shutdown::Read);
        });
    }
    // Tests and scripts read the bound address (`--listen 127.0.0.1:0` picks a free port).
    println!("listening on {}", ln.local_addr()?);
    // The connection cap, the descriptor budget and Go's accept backoff of goway's servers.
    let mut acceptor = Acceptor::new(ln)
        .fds_per_connection(FDS_PER_CONNECTION)
        .max_connections(args.max_connections);
    log::info!(
        "forwarding to {} (dial timeout {:?}, at most {} connections)",
        args.upstream,
        args.dial_timeout,
        acceptor.limit()
    );

    let upstream: Arc<str> = args.upstream.into();
    // Every connection's goroutine holds a clone; `all_done` closes once they are all gone.
    let (alive, all_done) = chan::bounded::<()>(0);
    // Sessions that ended after the stop signal.
    let drained = Arc::new(AtomicUsize::new(0));
    loop {
        // Only an error that retrying cannot fix comes back (or the stop's).
        let (client, peer, slot) = match acceptor.accept() {
            Ok(c) => c,
            Err(_) if stop.is_done() => break,
            Err(e) => return Err(e.into()),
        };
        let (upstream, timeout) = (upstream.clone(), args.dial_timeout);
        let (alive, stop, drained) = (alive.clone(), stop.clone(), drained.clone());
        go!(move || {
            let _alive = alive;
            // The connection's place under the cap, until both sockets are closed.
            let _slot = slot;
            if let Err(e) = proxy(client, &peer.to_string(), &upstream, timeout) {
                FAILED.record(|| format!("{peer}: {e}"));
            }
            if stop.is_done() {
                drained.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    // The drain: no new connections; the open ones finish within the grace.
    drop(alive);
    log::info!(
        "shutting down: draining {} connection(s), grace {grace:?}",
        acceptor.active()
    );
    if let Err(RecvTimeoutError::Timeout) = all_done.recv_timeout(grace) {
        let cut_off = acceptor.active();
        log::warn!("shutdown: grace period over, {cut_off} connection(s) cut off");
        println!("shutdown: grace over, cut off {cut_off} connection(s)");
    } else {
        let n = drained.load(Ordering::Relaxed);
        log::info!("shutdown complete: {n} connection(s) drained");
        println!("shutdown: drained {n} connection(s), cut off 0");
    }
    Ok(())
}

/// Forwards one client connection until both directions are done.
fn proxy(client: TcpStream, peer: &str, upstream: &str, timeout: Duration) -> io::Result<()> {
    let start = Instant::now();
    let up = match goway::net::dial_timeout(upstream, timeout) {
        Ok(up) => up,
        Err(e) => {
            // Dropping `client` closes it: the client reads EOF at once.
            return Err(io::Error::new(e.kind(), format!("dial {upstream}: {e}")));
        }
    };
    log::debug!("{peer}: connected to {upstream}");
    let (client_r, client_w) = client.split()?;
    let (up_r, up_w) = up.split()?;

    let wg = WaitGroup::new();
    let to_upstream = wg.go(move || pipe(client_r, up_w));
    let to_client = wg.go(move || pipe(up_r, client_w));
    wg.wait();
    // Both copies have returned: joining only collects their byte counts. Dropping the halves
    // (inside the copies) closed both connections.
    let sent = to_upstream.join().unwrap_or(0);
    let received = to_client.join().unwrap_or(0);
    log::debug!(
        "{peer}: closed after {:?}: {sent} bytes sent upstream, {received} bytes back",
        start.elapsed()
    );
    Ok(())
}

/// Copies `src` into `dst` until EOF, then half-closes `dst` (Go's `io.Copy` then
/// `CloseWrite`). On an error both connections are shut down, which ends the other direction.
/// Returns the bytes copied.
fn pipe(mut src: TcpReadHalf, mut dst: TcpWriteHalf) -> u64 {
    // On the heap: a goroutine's stack is small.
    let mut buf = vec![0u8; 32 * 1024];
    let mut total = 0u64;
    let result = loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(e),
        };
        if let Err(e) = dst.write_all(&buf[..n]) {
            break Err(e);
        }
        total += n as u64;
    };
    match result {
        // Pass the EOF on; the other direction keeps going.
        Ok(()) => {
            let _ = dst.shutdown(Shutdown::Write);
        }
        Err(e) => {
            log::debug!("copy failed after {total} bytes: {e}");
            let _ = src.shutdown(Shutdown::Both);
            let _ = dst.shutdown(Shutdown::Both);
        }
    }
    total
}
