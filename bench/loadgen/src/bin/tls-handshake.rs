//! tls-handshake: the harness's load generator for TLS handshakes per second. It does not
//! use goway: blocking std sockets and rustls (`ring`), one OS thread per connection slot.
//!
//! Each of C threads (`-c`) loops: connect, TLS handshake, send
//! `GET PATH HTTP/1.1` with `Connection: close`, read the response (its `Content-Length`
//! body), then read on to the server's close and drop the connection. By default the client
//! never resumes (rustls `Resumption::disabled()`: no session ID, no ticket, no PSK offered),
//! so every connection is a full handshake for the server; with `--resume` the threads share
//! an in-memory session cache and offer what the server's previous handshakes gave them.
//! Each connection's kind as rustls saw it is counted (`full=`, `resumed=`), so a run shows
//! which one the server did.
//!
//! The client offers an X25519 key share (and supports P-256), as browsers, curl and Go
//! clients do; TLS 1.3 and 1.2 are enabled, the server picks the cipher suite among rustls's
//! defaults.
//!
//! The server's certificate must be signed by (or be) the certificate in `--ca` (PEM) and name
//! the address's IP. `--verify` sets what the client checks on every handshake, which is
//! client CPU only (the server does the same work in all three):
//! `full` (default) verifies the chain and the handshake signature like any client;
//! `cached` verifies the chain of the first certificate the run sees and, later, only that
//! the certificate is byte for byte the same, the signature still each time;
//! `none` does as `cached` but does not verify the handshake signature (the server still
//! computes and sends it).
//!
//! The first W seconds (`-w`) are a warm-up, the next D seconds (`-d`) are measured: a
//! connection counts when its response is complete inside them, its latency is from the
//! connect to the last byte of the response. The last line of output is machine-readable:
//!
//! ```text
//! RESULT conns_per_s= p50_us= p99_us= p999_us= max_us= conns= full= resumed= errors=
//!        threads= loadgen_cpu= loadgen_us_per_conn= [server_cores= server_us_per_conn=]
//! ```
//!
//! `loadgen_cpu` is this process's CPU time over the measured seconds (in cores, so 1.00 is a
//! whole CPU: then the client, not the server, set the pace); with `--server-pid`, the
//! server's CPU time over the same seconds too. The exit status is 1 when an error was counted
//! or no connection completed.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::exit;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bench_loadgen::parse_flag;
use bench_loadgen::procfs::{clock_ticks_per_second, own_cpu_seconds, CpuSample};
use hdrhistogram::Histogram;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, HandshakeKind, RootCertStore,
    SignatureScheme, StreamOwned,
};

const USAGE: &str = "\
usage: tls-handshake --addr HOST:PORT --ca PEM [-c THREADS=32] [-d SECONDS=5]
                     [-w WARMUP_SECONDS=1] [--path /plaintext] [--resume]
                     [--verify full|cached|none] [--server-pid PID]";

#[derive(Clone, Copy, PartialEq)]
enum Verify {
    Full,
    Cached,
    None,
}

struct Opts {
    addr: SocketAddr,
    ca: String,
    threads: usize,
    duration: f64,
    warmup: f64,
    path: String,
    resume: bool,
    verify: Verify,
    server_pid: Option<u32>,
}

fn usage() -> ! {
    eprintln!("{USAGE}");
    exit(2)
}

fn parse_opts() -> Opts {
    let (mut addr, mut ca, mut threads) = (None::<String>, None::<String>, 32usize);
    let (mut duration, mut warmup, mut path) = (5.0f64, 1.0f64, "/plaintext".to_owned());
    let (mut resume, mut verify, mut server_pid) = (false, Verify::Full, None);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next();
        match flag.as_str() {
            "--addr" | "-a" => addr = value(),
            "--ca" => ca = value(),
            "-c" | "--threads" => threads = parse_flag(&flag, value()),
            "-d" | "--duration" => duration = parse_flag(&flag, value()),
            "-w" | "--warmup" => warmup = parse_flag(&flag, value()),
            "--path" => path = parse_flag(&flag, value()),
            "--resume" => resume = true,
            "--server-pid" => server_pid = Some(parse_flag(&flag, value())),
            "--verify" => {
                verify = match value().as_deref() {
                    Some("full") => Verify::Full,
                    Some("cached") => Verify::Cached,
                    Some("none") => Verify::None,
                    _ => usage(),
                }
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                exit(0)
            }
            _ => {
                eprintln!("unknown argument {flag:?}");
                usage()
            }
        }
    }
    let (Some(addr), Some(ca)) = (addr, ca) else {
        usage()
    };
    let Some(addr) = addr.to_socket_addrs().ok().and_then(|mut a| a.next()) else {
        eprintln!("cannot resolve {addr}");
        exit(2)
    };
    if threads == 0 || !path.starts_with('/') {
        usage();
    }
    if !(duration > 0.0 && duration.is_finite() && warmup >= 0.0 && warmup.is_finite()) {
        usage();
    }
    Opts {
        addr,
        ca,
        threads,
        duration,
        warmup,
        path,
        resume,
        verify,
        server_pid,
    }
}

/// The WebPKI verifier, with the chain check done once per run in `cached` and `none` modes.
#[derive(Debug)]
struct BenchVerifier {
    inner: Arc<WebPkiServerVerifier>,
    cache_chain: bool,
    check_signature: bool,
    /// The end-entity certificate whose chain was verified (cached modes).
    verified: OnceLock<Vec<u8>>,
}

impl ServerCertVerifier for BenchVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.cache_chain {
            if let Some(known) = self.verified.get() {
                if known[..] == end_entity[..] {
                    return Ok(ServerCertVerified::assertion());
                }
            }
        }
        let ok = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        if self.cache_chain {
            let _ = self.verified.set(end_entity.to_vec());
        }
        Ok(ok)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if !self.check_signature {
            return Ok(HandshakeSignatureValid::assertion());
        }
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if !self.check_signature {
            return Ok(HandshakeSignatureValid::assertion());
        }
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The client configuration of the run, or exits with status 2.
fn tls_config(opts: &Opts) -> Arc<ClientConfig> {
    let fail = |e: &dyn std::fmt::Display| -> ! {
        eprintln!("tls-handshake: --ca {}: {e}", opts.ca);
        exit(2)
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&opts.ca).unwrap_or_else(|e| fail(&e)) {
        roots
            .add(cert.unwrap_or_else(|e| fail(&e)))
            .unwrap_or_else(|e| fail(&e));
    }
    // ring, the provider goway uses; rustls 0.23.48 deprecates it only because it has no
    // post-quantum key exchange (neither has Go 1.19, the other peer).
    #[allow(deprecated)]
    let mut provider = rustls::crypto::ring::default_provider();
    // Key exchange as browsers, curl (OpenSSL) and Go clients offer it: an X25519 key share
    // (P-256 supported too). The ring provider's default order puts P-384 first, which would
    // make every server run P-384 ECDHE, the slowest of the three.
    provider.kx_groups = vec![
        rustls::crypto::ring::kx_group::X25519,
        rustls::crypto::ring::kx_group::SECP256R1,
    ];
    let provider = Arc::new(provider);
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .unwrap_or_else(|e| fail(&e));
    let verifier = BenchVerifier {
        inner,
        cache_chain: opts.verify != Verify::Full,
        check_signature: opts.verify != Verify::None,
        verified: OnceLock::new(),
    };
    let mut cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|e| fail(&e))
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    if !opts.resume {
        cfg.resumption = Resumption::disabled();
    }
    Arc::new(cfg)
}

/// Where `needle` starts in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The Content-Length of a response head (case-insensitive name), if it has one.
fn content_length(head: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(head).ok()?;
    text.split("\r\n").find_map(|line| {
        let (name, value) = line.split_once(':')?;
        if name.trim().eq_ignore_ascii_case("content-length") {
            value.trim().parse().ok()
        } else {
            None
        }
    })
}

/// One connection: handshake, request, response, the server's close. Returns the time the
/// response was complete and the handshake's kind.
fn one_conn(
    addr: SocketAddr,
    cfg: &Arc<ClientConfig>,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> io::Result<(Instant, HandshakeKind)> {
    let sock = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    sock.set_nodelay(true)?;
    let name = ServerName::IpAddress(addr.ip().into());
    let conn = ClientConnection::new(cfg.clone(), name).map_err(io::Error::other)?;
    let mut tls = StreamOwned::new(conn, sock);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    let kind = tls
        .conn
        .handshake_kind()
        .ok_or_else(|| io::Error::other("no handshake kind after the handshake"))?;
    tls.write_all(request)?;
    tls.flush()?;
    buf.clear();
    let mut chunk = [0u8; 4096];
    let mut want = None::<usize>;
    let done = loop {
        if let Some(w) = want {
            if buf.len() >= w {
                break Instant::now();
            }
        } else if let Some(end) = find(buf, b"\r\n\r\n") {
            let head = &buf[..end];
            if !head.starts_with(b"HTTP/1.1 200") && !head.starts_with(b"HTTP/1.0 200") {
                return Err(io::Error::other("response is not 200"));
            }
            let len = content_length(head)
                .ok_or_else(|| io::Error::other("response without Content-Length"))?;
            want = Some(end + 4 + len);
            continue;
        }
        let n = tls.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                "closed mid-response",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    // On to the server's close (it was asked for one), so that the server closes first and
    // the TIME_WAIT state is its; a close without close_notify is no error here.
    loop {
        match tls.read(&mut chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        }
    }
    Ok((done, kind))
}

#[derive(Default)]
struct Counts {
    conns: u64,
    full: u64,
    resumed: u64,
    errors: u64,
}

fn run_thread(
    opts: &Opts,
    cfg: &Arc<ClientConfig>,
    start: Instant,
    end: Instant,
    stop: &AtomicBool,
    first_error: &AtomicU64,
) -> (Counts, Histogram<u64>) {
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        opts.path, opts.addr
    );
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    let mut counts = Counts::default();
    let mut buf = Vec::with_capacity(4096);
    while !stop.load(Ordering::Relaxed) {
        let t0 = Instant::now();
        if t0 >= end {
            break;
        }
        match one_conn(opts.addr, cfg, request.as_bytes(), &mut buf) {
            Ok((done, kind)) => {
                if done >= start && done < end {
                    counts.conns += 1;
                    match kind {
                        HandshakeKind::Resumed => counts.resumed += 1,
                        _ => counts.full += 1,
                    }
                    let us = done.duration_since(t0).as_micros() as u64;
                    let _ = hist.record(us.max(1));
                }
            }
            Err(e) => {
                let now = Instant::now();
                if now >= start && now < end {
                    counts.errors += 1;
                }
                if first_error.fetch_add(1, Ordering::Relaxed) == 0 {
                    eprintln!("tls-handshake: {}: {e}", opts.addr);
                }
                if counts.errors > 1000 {
                    break;
                }
            }
        }
    }
    (counts, hist)
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

fn main() {
    let opts = parse_opts();
    let cfg = tls_config(&opts);
    let start = Instant::now() + Duration::from_secs_f64(opts.warmup);
    let end = start + Duration::from_secs_f64(opts.duration);
    let stop = AtomicBool::new(false);
    let first_error = AtomicU64::new(0);
    let (results, cpu, server) = std::thread::scope(|s| {
        let handles: Vec<_> = (0..opts.threads)
            .map(|_| {
                let (opts, cfg, stop, first_error) = (&opts, &cfg, &stop, &first_error);
                s.spawn(move || run_thread(opts, cfg, start, end, stop, first_error))
            })
            .collect();
        // CPU time over the measured seconds only: sampled at their start and end.
        sleep_until(start);
        let (cpu0, srv0) = (own_cpu_seconds(), opts.server_pid.map(CpuSample::read));
        sleep_until(end);
        let (cpu1, srv1) = (own_cpu_seconds(), opts.server_pid.map(CpuSample::read));
        stop.store(true, Ordering::Relaxed);
        let results: Vec<(Counts, Histogram<u64>)> = handles
            .into_iter()
            .map(|h| h.join().expect("load thread"))
            .collect();
        let server = srv0.zip(srv1).map(|(a, b)| {
            (b.ticks.saturating_sub(a.ticks)) as f64 / clock_ticks_per_second() as f64
        });
        (results, cpu1 - cpu0, server)
    });
    let mut counts = Counts::default();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    for (c, h) in &results {
        counts.conns += c.conns;
        counts.full += c.full;
        counts.resumed += c.resumed;
        counts.errors += c.errors;
        hist.add(h).expect("histogram add");
    }
    let per_conn = |secs: f64| {
        if counts.conns > 0 {
            format!("{:.1}", secs * 1e6 / counts.conns as f64)
        } else {
            "-".to_owned()
        }
    };
    let server_fields = server.map_or(String::new(), |secs| {
        format!(
            " server_cores={:.2} server_us_per_conn={}",
            secs / opts.duration,
            per_conn(secs)
        )
    });
    println!(
        "RESULT conns_per_s={:.0} p50_us={} p99_us={} p999_us={} max_us={} conns={} full={} \
         resumed={} errors={} threads={} loadgen_cpu={:.2} loadgen_us_per_conn={}{server_fields}",
        counts.conns as f64 / opts.duration,
        hist.value_at_quantile(0.5),
        hist.value_at_quantile(0.99),
        hist.value_at_quantile(0.999),
        hist.max(),
        counts.conns,
        counts.full,
        counts.resumed,
        counts.errors,
        opts.threads,
        cpu / opts.duration,
        per_conn(cpu),
    );
    if counts.errors > 0 || counts.conns == 0 {
        exit(1);
    }
}
