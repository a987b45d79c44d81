//! idle-probe: what N idle connections cost an echo server in memory.
//!
//! It reads the server's resident memory (VmRSS), thread count and number of memory mappings
//! from `/proc/PID`, opens N connections, echoes one line on each (so that every connection
//! is fully set up on the server's side), waits `--settle-ms` and reads them again while the
//! connections are held, then closes them all, waits again and reads the memory a last time.
//! It runs as its own process, so that none of its memory is the server's.
//!
//! ```text
//! idle-probe --addr 127.0.0.1:PORT --server-pid PID [-n 10000] [--settle-ms 1000]
//!            [--tls-ca PEM] [--stack-kb KB]
//! RESULT conns= echoed= failed_connects= rss_before_kb= rss_held_kb= rss_after_close_kb=
//!        bytes_per_conn= maps_before= maps_held= maps_per_conn= threads_held=
//!        stack_kb= stack_maps= stack_pages_mean= stack_0p= stack_1p= stack_2p= stack_3p=
//!        stack_hist= secs=
//! ```
//!
//! The `stack_*` fields are about the server's coroutine stacks, read from
//! `/proc/PID/smaps` while the connections are held: `stack_kb` is the stack size (see
//! [`stack_size`]), `stack_maps` how many mappings of that size have a guard page below them,
//! `stack_pages_mean` their mean number of resident pages, `stack_0p` to `stack_3p` how many
//! have 0, 1, 2, and 3 or more resident pages (`stack_hist` is `1p/2p/3p`, for a table). A
//! server whose connections own no such stacks (Go's goroutine stacks live in its heap,
//! tokio's tasks are not stacks) gets `-` in all of them.
//!
//! The census covers every stack of that size, not only the connections': a may runtime's
//! spare coroutines (up to 1,000, made at start, each with its top page and the bottom one
//! holding the `generator` crate's marker words resident) count until connections have taken
//! them, so N should be well above 1,000. A difference against the stacks read before the
//! connections would not isolate them either: the connections' first stacks are those spare
//! ones, already resident before.
//!
//! With `--tls-ca`, every connection is TLS (rustls, `ring`): the server's certificate must be
//! signed by (or be) the certificate in that file and name the address's IP; each connection's
//! handshake runs before its line is sent, one connection at a time.
//!
//! `bytes_per_conn` is (held - before) / echoed connections. The probe raises its own limit
//! on open descriptors to the hard limit; the server needs one high enough too.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::exit;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use bench_loadgen::parse_flag;
use bench_loadgen::procfs::{
    guarded_mappings, map_count, raise_nofile_limit, status_value, GuardedMapping,
};

const USAGE: &str = "usage: idle-probe --addr HOST:PORT --server-pid PID [-n CONNS=10000] [--settle-ms 1000] [--tls-ca PEM] [--stack-kb KB]";

fn main() {
    let (mut addr, mut pid, mut n, mut settle_ms) =
        (None::<String>, None::<u32>, 10_000usize, 1000u64);
    let mut tls_ca = None::<String>;
    let mut stack_kb = None::<u64>;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next();
        match flag.as_str() {
            "--addr" => addr = value(),
            "--server-pid" => pid = Some(parse_flag(&flag, value())),
            "-n" | "--conns" => n = parse_flag(&flag, value()),
            "--settle-ms" => settle_ms = parse_flag(&flag, value()),
            "--tls-ca" => tls_ca = value(),
            "--stack-kb" => stack_kb = Some(parse_flag(&flag, value())),
            _ => {
                eprintln!("{USAGE}");
                exit(2)
            }
        }
    }
    let (Some(addr), Some(pid)) = (addr, pid) else {
        eprintln!("{USAGE}");
        exit(2)
    };
    let Some(addr) = addr.to_socket_addrs().ok().and_then(|mut a| a.next()) else {
        eprintln!("cannot resolve {addr}");
        exit(2)
    };
    let limit = raise_nofile_limit();
    if (n as u64) + 16 > limit {
        eprintln!("idle-probe: {n} connections need more descriptors than the limit ({limit}); raise `ulimit -n`");
        exit(2);
    }
    let settle = Duration::from_millis(settle_ms);
    let rss = || status_value(pid, "VmRSS").unwrap_or(0);
    let maps = || map_count(pid).unwrap_or(0);
    let t0 = Instant::now();
    let stacks = || guarded_mappings(pid).unwrap_or_default();
    let (rss_before, maps_before) = (rss(), maps());
    let stacks_before = stacks();

    let tls = tls_ca.map(|ca| tls_config(&ca));
    let (mut socks, failed) = open_all(addr, n, tls.as_ref());
    let echoed = echo_one_line_each(&mut socks);
    std::thread::sleep(settle);
    let (rss_held, maps_held) = (rss(), maps());
    let threads = status_value(pid, "Threads").unwrap_or(0);
    let stacks_held = stacks();
    drop(socks);
    std::thread::sleep(settle * 2);
    let rss_after = rss();

    let per = |delta: u64, scale: u64| (delta * scale) as f64 / echoed.max(1) as f64;
    let stack_bytes = match stack_kb {
        Some(kb) => Some(kb * 1024),
        None => stack_size(&stacks_before, &stacks_held, echoed),
    };
    let stack_fields = match stack_bytes {
        Some(bytes) => {
            let held = StackCensus::of(&stacks_held, bytes);
            println!(
                "{} mappings of {} KiB with a guard page held ({} before); resident pages per mapping: mean {:.2}, {} with 0, {} with 1, {} with 2, {} with 3 or more",
                held.maps,
                bytes / 1024,
                stacks_before.iter().filter(|m| m.bytes == bytes).count(),
                held.mean(),
                held.hist[0],
                held.hist[1],
                held.hist[2],
                held.hist[3]
            );
            format!(
                "stack_kb={} stack_maps={} stack_pages_mean={:.2} stack_0p={} stack_1p={} stack_2p={} stack_3p={} stack_hist={}/{}/{}",
                bytes / 1024,
                held.maps,
                held.mean(),
                held.hist[0],
                held.hist[1],
                held.hist[2],
                held.hist[3],
                held.hist[1],
                held.hist[2],
                held.hist[3],
            )
        }
        None => "stack_kb=- stack_maps=- stack_pages_mean=- stack_0p=- stack_1p=- stack_2p=- stack_3p=- stack_hist=-".to_owned(),
    };
    println!(
        "{} connections open ({failed} failed), {echoed} echoed; server RSS {rss_before} kB before, {rss_held} kB held, {rss_after} kB after closing; {maps_before} -> {maps_held} mappings",
        socks_len(n, failed)
    );
    println!(
        "RESULT conns={} echoed={echoed} failed_connects={failed} rss_before_kb={rss_before} rss_held_kb={rss_held} rss_after_close_kb={rss_after} bytes_per_conn={:.0} maps_before={maps_before} maps_held={maps_held} maps_per_conn={:.2} threads_held={threads} {stack_fields} secs={:.1}",
        socks_len(n, failed),
        per(rss_held.saturating_sub(rss_before), 1024),
        per(maps_held.saturating_sub(maps_before), 1),
        t0.elapsed().as_secs_f64()
    );
    if echoed == 0 {
        exit(1);
    }
}

fn socks_len(n: usize, failed: usize) -> usize {
    n - failed.min(n)
}

/// The size of the server's coroutine stacks, in bytes, without `--stack-kb`: among the sizes
/// of guarded anonymous mappings (see [`GuardedMapping`]) held at least once per echoed
/// connection, the one whose number grew most while the connections were opened; `None` if
/// no size is held that often (the server has no stack per connection: Go, tokio).
///
/// Why this rule, and not simply the most common size or the one that grew most: a server
/// with a coroutine per connection holds at least one stack per connection, and OS threads'
/// stacks (the same shape) are far fewer, so "at least one per connection" finds the stacks
/// without the harness knowing the size the server configured (goway's `handler_stack_size`,
/// may's default 32 KiB). Growth alone would miss them: may keeps up to 1,000 spare
/// coroutines (stacks included) in a pool from the start, and the first connections take
/// those, so 1,500 connections grow the count by only about 500. Among sizes held that often,
/// the largest growth picks the connections' own size over a pool of spare stacks of another
/// size (a handler stack size other than the runtime's default).
fn stack_size(before: &[GuardedMapping], held: &[GuardedMapping], echoed: usize) -> Option<u64> {
    use std::collections::HashMap;
    let mut count: HashMap<u64, (u64, u64)> = HashMap::new(); // size -> (held, before)
    for m in held {
        count.entry(m.bytes).or_default().0 += 1;
    }
    for m in before {
        count.entry(m.bytes).or_default().1 += 1;
    }
    count
        .into_iter()
        .filter(|&(_, (held, _))| echoed > 0 && held >= echoed as u64)
        .max_by_key(|&(bytes, (held, before))| (held as i64 - before as i64, held, bytes))
        .map(|(bytes, _)| bytes)
}

/// The mappings of one stack size and how many of their pages are resident.
struct StackCensus {
    maps: u64,
    pages: u64,
    /// How many mappings have 0, 1, 2, and 3 or more resident pages.
    hist: [u64; 4],
}

impl StackCensus {
    fn of(mappings: &[GuardedMapping], bytes: u64) -> StackCensus {
        let mut c = StackCensus {
            maps: 0,
            pages: 0,
            hist: [0; 4],
        };
        for m in mappings.iter().filter(|m| m.bytes == bytes) {
            c.maps += 1;
            c.pages += m.resident_pages;
            c.hist[m.resident_pages.min(3) as usize] += 1;
        }
        c
    }

    fn mean(&self) -> f64 {
        self.pages as f64 / self.maps.max(1) as f64
    }
}

/// A connection to the server: plain TCP, or TLS over it.
enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(t) => &t.sock,
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(t) => t.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(t) => t.flush(),
        }
    }
}

/// A client configuration trusting the certificates in `ca` (PEM), or exits with status 2.
fn tls_config(ca: &str) -> Arc<ClientConfig> {
    let fail = |e: &dyn std::fmt::Display| -> ! {
        eprintln!("idle-probe: --tls-ca {ca}: {e}");
        exit(2)
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap_or_else(|e| fail(&e)) {
        roots
            .add(cert.unwrap_or_else(|e| fail(&e)))
            .unwrap_or_else(|e| fail(&e));
    }
    // ring, the provider goway uses; rustls 0.23.48 deprecates it only because it has no
    // post-quantum key exchange (neither has Go 1.19, the other peer).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|e| fail(&e))
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(cfg)
}

/// Connects to `addr`, over TLS (handshake done) when `tls` is given.
fn connect(addr: SocketAddr, tls: Option<&Arc<ClientConfig>>) -> io::Result<Conn> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    let Some(cfg) = tls else {
        return Ok(Conn::Plain(s));
    };
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let name = ServerName::IpAddress(addr.ip().into());
    let conn = ClientConnection::new(cfg.clone(), name).map_err(io::Error::other)?;
    let mut t = StreamOwned::new(conn, s);
    while t.conn.is_handshaking() {
        t.conn.complete_io(&mut t.sock)?;
    }
    Ok(Conn::Tls(Box::new(t)))
}

/// Opens up to `n` connections; gives up after 50 failed connects.
fn open_all(addr: SocketAddr, n: usize, tls: Option<&Arc<ClientConfig>>) -> (Vec<Conn>, usize) {
    let mut socks = Vec::with_capacity(n);
    let mut failed = 0;
    while socks.len() + failed < n {
        match connect(addr, tls) {
            Ok(s) => socks.push(s),
            Err(e) => {
                if failed == 0 {
                    eprintln!("connect {addr}: {e}");
                }
                failed += 1;
                if failed > 50 {
                    failed = n - socks.len();
                    break;
                }
            }
        }
    }
    (socks, failed)
}

/// Sends `ping <i>\n` on every connection, then reads each echo back; returns how many
/// came back intact.
fn echo_one_line_each(socks: &mut [Conn]) -> usize {
    for (i, s) in socks.iter_mut().enumerate() {
        if s.write_all(format!("ping {i}\n").as_bytes())
            .and_then(|()| s.flush())
            .is_err()
        {
            continue;
        }
    }
    let mut ok = 0;
    for (i, s) in socks.iter_mut().enumerate() {
        let want = format!("ping {i}\n");
        let mut got = vec![0u8; want.len()];
        let read = s
            .tcp()
            .set_read_timeout(Some(Duration::from_secs(10)))
            .and_then(|()| s.read_exact(&mut got));
        if read.is_ok() && got == want.as_bytes() {
            ok += 1;
        }
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maps(spec: &[(u64, usize, u64)]) -> Vec<GuardedMapping> {
        let mut v = Vec::new();
        for &(kb, n, resident_pages) in spec {
            v.extend((0..n).map(|_| GuardedMapping {
                bytes: kb << 10,
                resident_pages,
            }));
        }
        v
    }

    #[test]
    fn stack_size_is_held_once_per_connection_and_grew_most() {
        // may's pool of 1,000 spare 32 KiB stacks, two 8 MiB thread stacks.
        let before = maps(&[(32, 1000, 2), (8192, 2, 1)]);
        // 1,500 connections: the pool's stacks taken first, so the count grew by 500 only.
        let held = maps(&[(32, 1501, 1), (8192, 3, 1)]);
        assert_eq!(stack_size(&before, &held, 1500), Some(32 << 10));
        // Handler stacks of 64 KiB beside the untouched pool of 32 KiB ones.
        let held = maps(&[(32, 1000, 2), (64, 500, 1), (8192, 3, 1)]);
        assert_eq!(stack_size(&before, &held, 500), Some(64 << 10));
        // No stack per connection (a tokio server): threads' stacks only.
        let held = maps(&[(8192, 3, 1)]);
        assert_eq!(stack_size(&held, &held, 500), None);
        assert_eq!(stack_size(&before, &held, 0), None);
    }

    #[test]
    fn census_counts_mappings_of_one_size_by_resident_pages() {
        let c = StackCensus::of(
            &maps(&[(32, 3, 1), (32, 1, 2), (32, 1, 5), (64, 4, 1)]),
            32 << 10,
        );
        assert_eq!((c.maps, c.pages, c.hist), (5, 3 + 2 + 5, [0, 3, 1, 1]));
        assert!((c.mean() - 2.0).abs() < 1e-9);
    }
}
