//! Hostile clients that never read, and the server process they attack.
//!
//! - [`ServerProcess`]: a server run as a child process (an example, or the test binary itself
//!   re-run as a server), whose death by a signal of its own (SIGSEGV, SIGABRT from glibc's heap
//!   checks) is caught and reported with the tail of its stderr, and whose memory (`VmRSS`) and
//!   descriptor count are read from `/proc`.
//! - [`Flood`]: many loopback connections, driven by a few OS threads with `poll(2)`, that each
//!   pipeline requests for as long as the server takes them and never read a byte of the
//!   replies. The server's writes to them stall, its write timeouts fire (for all connections
//!   at about the same time: in bursts) and it closes them; each client then reconnects at once
//!   and does it again, so the bursts repeat every write timeout or so.
//! - [`attack`]: a flood (for a bounded time, or until the server closed so many connections)
//!   with the server watched throughout.
//!
//! Linux only (`poll` with `POLLRDHUP`, `/proc`).

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

// Every test binary that includes this file includes `common` too.
use crate::common::WATCHDOG;

/// How long a server may take to print `listening on <addr>`.
const START_LIMIT: Duration = Duration::from_secs(20);
/// Stderr lines of the server kept for the report.
const TAIL: usize = 40;

/// The name of a signal the server may die of.
fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGABRT => "SIGABRT".into(),
        libc::SIGBUS => "SIGBUS".into(),
        libc::SIGILL => "SIGILL".into(),
        libc::SIGFPE => "SIGFPE".into(),
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGTERM => "SIGTERM".into(),
        n => format!("signal {n}"),
    }
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with code {c}"),
        (_, Some(s)) => format!(
            "killed by {}{}",
            signal_name(s),
            if status.core_dumped() {
                " (core dumped)"
            } else {
                ""
            }
        ),
        _ => format!("{status}"),
    }
}

/// What the server wrote on stderr: a count and the first and last lines.
#[derive(Default)]
struct StderrLog {
    lines: u64,
    head: Vec<String>,
    tail: VecDeque<String>,
}

/// A server in a child process, killed and reaped on drop.
pub struct ServerProcess {
    child: Child,
    /// The address from its `listening on <addr>` line.
    pub addr: SocketAddr,
    stderr: Arc<Mutex<StderrLog>>,
    stderr_reader: Option<JoinHandle<()>>,
}

impl ServerProcess {
    /// Starts `cmd` (stdout and stderr piped, glibc's fatal messages sent to stderr) and waits
    /// for its `listening on <addr>` line.
    pub fn start(cmd: &mut Command) -> ServerProcess {
        let mut child = cmd
            .env("LIBC_FATAL_STDERR_", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the server process");
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        // Drains stdout for the whole life of the child, so that it never blocks on the pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let stderr = Arc::new(Mutex::new(StderrLog::default()));
        let log = stderr.clone();
        let stderr_reader = std::thread::spawn(move || {
            let mut r = BufReader::new(err);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                        let mut l = log.lock().unwrap();
                        l.lines += 1;
                        if l.head.len() < 5 {
                            l.head.push(line.clone());
                        }
                        if l.tail.len() == TAIL {
                            l.tail.pop_front();
                        }
                        l.tail.push_back(line);
                    }
                }
            }
        });
        let mut p = ServerProcess {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            stderr,
            stderr_reader: Some(stderr_reader),
        };
        let deadline = Instant::now() + START_LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(a) = line.strip_prefix("listening on ") {
                        p.addr = a.trim().parse().expect("a socket address");
                        return p;
                    }
                }
                Err(_) => {
                    let why = match p.child.try_wait() {
                        Ok(Some(s)) => describe(s),
                        _ => format!("no `listening on` line within {START_LIMIT:?}"),
                    };
                    panic!("the server did not start: {why}\n{}", p.stderr_report());
                }
            }
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `VmRSS` of the server, in KiB (0 once it is gone).
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// Open file descriptors of the server (listener, connections, the runtime's own).
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Lines the server wrote on stderr so far.
    pub fn stderr_lines(&self) -> u64 {
        self.stderr.lock().unwrap().lines
    }

    /// What the server wrote on stderr: the line count, and the first and last lines.
    pub fn stderr_report(&mut self) -> String {
        // Once the child is gone its stderr reaches EOF: wait (bounded) for the last lines.
        if let Ok(Some(_)) = self.child.try_wait() {
            let end = Instant::now() + Duration::from_secs(2);
            while self
                .stderr_reader
                .as_ref()
                .is_some_and(|h| !h.is_finished())
                && Instant::now() < end
            {
                // Bounds a poll on the reader thread's end; it synchronises nothing.
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let l = self.stderr.lock().unwrap();
        let mut s = format!("server stderr: {} line(s)", l.lines);
        if l.lines as usize > l.tail.len() {
            s.push_str("\n  first:");
            for h in &l.head {
                s.push_str(&format!("\n    {h}"));
            }
            s.push_str("\n  last:");
        }
        for t in &l.tail {
            s.push_str(&format!("\n    {t}"));
        }
        s
    }

    /// Panics, with the exit status and the end of its stderr, if the server is gone.
    pub fn assert_alive(&mut self, when: &str) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            self.died(status, when);
        }
    }

    fn died(&mut self, status: ExitStatus, when: &str) -> ! {
        panic!(
            "the server (pid {}) died {when}: {}\n{}",
            self.pid(),
            describe(status),
            self.stderr_report()
        );
    }

    /// Checks the server is still alive, then kills it and checks that it was this kill that
    /// ended it (not a signal of its own that arrived just before).
    pub fn kill_and_reap(mut self) {
        self.assert_alive("before the test killed it");
        self.child.kill().expect("kill the server");
        let status = self.child.wait().expect("reap the server");
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "the server ended with {} instead of the test's SIGKILL\n{}",
            describe(status),
            self.stderr_report()
        );
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How the hostile clients behave.
#[derive(Clone, Debug)]
pub struct FloodConfig {
    /// Connections kept open at once.
    pub clients: usize,
    /// OS threads driving them.
    pub threads: usize,
    /// Bytes each connection sends again and again, as long as the server takes them (for
    /// example several pipelined requests).
    pub batch: Vec<u8>,
    /// Most bytes each connection sends; `None`: as long as the server takes them.
    ///
    /// The client learns that the server closed its end from the reset the server's kernel
    /// sends when it closes a socket with input unread: make sure the server cannot read all
    /// of it (more than its read buffer). Without unread input, the server's FIN would queue
    /// behind the replies the client never takes, and the client would never learn of the
    /// close. (Probing with more bytes instead would defeat the write timeout under test: may
    /// re-arms a socket write's timeout in full whenever any event, incoming data included,
    /// wakes the waiting writer.)
    pub max_bytes: Option<usize>,
    /// `SO_RCVBUF` of each client socket (`None`: the kernel's default). A small buffer
    /// makes the server's writes stall after fewer bytes.
    pub recv_buffer: Option<usize>,
    /// `SO_SNDBUF` of each client socket (`None`: the kernel's default, which grows to
    /// megabytes per connection for a client that keeps sending).
    pub send_buffer: Option<usize>,
    /// MSS the clients announce (`TCP_MAXSEG`; `None`: loopback's 64 KiB). The server's
    /// kernel sizes its send buffer from it: with loopback's MSS it grows to 4 MiB per
    /// connection, and the server spends its time copying gigabytes into send buffers
    /// instead of meeting its deadlines. An Ethernet client announces 1460.
    pub mss: Option<u32>,
}

/// Counters of a flood.
#[derive(Debug, Default)]
pub struct FloodStats {
    /// Connections opened.
    pub connects: AtomicU64,
    /// Connections the server closed (reset or FIN seen by the client).
    pub server_closes: AtomicU64,
    /// Failed connection attempts (the server gone, or its backlog full).
    pub connect_errors: AtomicU64,
    /// Bytes of requests sent.
    pub sent: AtomicU64,
}

/// Clients that pipeline requests and never read; see the module documentation.
pub struct Flood {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// Live counters.
    pub stats: Arc<FloodStats>,
}

struct Client {
    stream: TcpStream,
    /// Bytes sent so far.
    sent: usize,
}

fn connect(addr: SocketAddr, cfg: &FloodConfig) -> io::Result<TcpStream> {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    // Before connecting, so that the window scale matches.
    if let Some(n) = cfg.recv_buffer {
        s.set_recv_buffer_size(n)?;
    }
    if let Some(n) = cfg.send_buffer {
        s.set_send_buffer_size(n)?;
    }
    if let Some(n) = cfg.mss {
        s.set_mss(n)?;
    }
    s.connect_timeout(&addr.into(), Duration::from_secs(2))?;
    s.set_nodelay(true)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// Sends as much of the batch (over and over, up to `max_bytes` in all) as the socket takes
/// now, at most 256 KiB. `Err` when the connection is gone.
fn push(c: &mut Client, cfg: &FloodConfig, sent: &AtomicU64) -> io::Result<()> {
    let batch = &cfg.batch;
    let mut budget: usize = 256 << 10;
    while budget > 0 && cfg.max_bytes.is_none_or(|m| c.sent < m) {
        let at = c.sent % batch.len();
        let mut chunk = &batch[at..];
        if let Some(m) = cfg.max_bytes {
            chunk = &chunk[..chunk.len().min(m - c.sent)];
        }
        match c.stream.write(chunk) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                sent.fetch_add(n as u64, Ordering::Relaxed);
                budget = budget.saturating_sub(n);
                c.sent += n;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn drive(addr: SocketAddr, n: usize, cfg: &FloodConfig, stop: &AtomicBool, st: &FloodStats) {
    let mut clients: Vec<Option<Client>> = (0..n).map(|_| None).collect();
    let mut fds: Vec<libc::pollfd> = Vec::with_capacity(n);
    let mut idx: Vec<usize> = Vec::with_capacity(n);
    while !stop.load(Ordering::Relaxed) {
        for slot in clients.iter_mut().filter(|c| c.is_none()) {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            match connect(addr, cfg) {
                Ok(stream) => {
                    st.connects.fetch_add(1, Ordering::Relaxed);
                    *slot = Some(Client { stream, sent: 0 });
                }
                Err(_) => {
                    st.connect_errors.fetch_add(1, Ordering::Relaxed);
                    // Retried after the next poll (which waits up to 50 ms): no spinning on
                    // a server that is gone.
                    break;
                }
            }
        }
        fds.clear();
        idx.clear();
        for (i, c) in clients.iter().enumerate() {
            if let Some(c) = c {
                let more = cfg.max_bytes.is_none_or(|m| c.sent < m);
                fds.push(libc::pollfd {
                    fd: c.stream.as_raw_fd(),
                    events: if more { libc::POLLOUT } else { 0 } | libc::POLLRDHUP,
                    revents: 0,
                });
                idx.push(i);
            }
        }
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structures, alive for the call.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 50) };
        if r <= 0 {
            continue;
        }
        for (pfd, &i) in fds.iter().zip(&idx) {
            let ev = pfd.revents;
            if ev == 0 {
                continue;
            }
            let gone = if ev & (libc::POLLERR | libc::POLLHUP | libc::POLLRDHUP) != 0 {
                true
            } else {
                let c = clients[i].as_mut().expect("polled client");
                push(c, cfg, &st.sent).is_err()
            };
            if gone {
                // Dropping it closes it (with a reset, as replies are unread): reconnected on
                // the next pass.
                clients[i] = None;
                st.server_closes.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    // Closing with unread replies resets the connections.
    for c in clients.iter().flatten() {
        let _ = c.stream.shutdown(Shutdown::Both);
    }
}

impl Flood {
    /// Starts the clients.
    pub fn start(addr: SocketAddr, cfg: &FloodConfig) -> Flood {
        assert!(!cfg.batch.is_empty() && cfg.threads > 0);
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(FloodStats::default());
        let threads = (0..cfg.threads)
            .map(|t| {
                let n = cfg.clients / cfg.threads + usize::from(t < cfg.clients % cfg.threads);
                let (cfg, stop, st) = (cfg.clone(), stop.clone(), stats.clone());
                std::thread::Builder::new()
                    .name(format!("never-read-{t}"))
                    .spawn(move || drive(addr, n, &cfg, &stop, &st))
                    .expect("spawn a client thread")
            })
            .collect();
        Flood {
            stop,
            threads,
            stats,
        }
    }

    /// Closes every connection and ends the client threads.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            // Each thread notices within one poll (50 ms) plus one connect (2 s at most).
            t.join().expect("client thread panicked");
        }
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// What an [`attack`] saw.
#[derive(Debug)]
pub struct AttackReport {
    pub duration: Duration,
    pub connects: u64,
    /// Connections the server closed (its write timeouts firing).
    pub server_closes: u64,
    pub connect_errors: u64,
    pub sent_bytes: u64,
    /// Server `VmRSS` (KiB) before, at its highest during, and right after the flood.
    pub rss_before_kib: u64,
    pub rss_peak_kib: u64,
    pub rss_after_kib: u64,
    /// `VmRSS` samples (seconds into the flood, KiB), one every `rss_every`.
    pub rss_samples: Vec<(u64, u64)>,
    /// Server descriptors before the flood and once its connections were gone again.
    pub fds_before: usize,
    pub fds_after: usize,
    /// Server stderr lines written during the flood.
    pub stderr_lines: u64,
}

/// Threads that keep the CPUs busy (spinning) until dropped, as the other jobs of a busy
/// machine do: the server's threads then lose their CPU at arbitrary points, which is what
/// turns a race between its threads into a crash.
struct Hogs {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Hogs {
    fn start(n: usize) -> Hogs {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..n)
            .map(|i| {
                let stop = stop.clone();
                std::thread::Builder::new()
                    .name(format!("cpu-hog-{i}"))
                    .spawn(move || {
                        let mut x = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            for _ in 0..1000 {
                                x = std::hint::black_box(x.wrapping_add(1));
                            }
                        }
                    })
                    .expect("spawn a CPU hog")
            })
            .collect();
        Hogs { stop, threads }
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Floods `server` with never-reading clients for `duration`, beside `hogs` spinning threads,
/// checking every 100 ms that it is alive (a death fails at once, with its signal and
/// stderr). Then closes the clients, checks the server is still alive, and waits (bounded)
/// until its descriptor count is back to what it was before: no connection left stuck.
pub fn attack(
    server: &mut ServerProcess,
    cfg: &FloodConfig,
    length: FloodLength,
    rss_every: Duration,
    hogs: usize,
) -> AttackReport {
    let FloodLength {
        at_least: duration,
        until_closes,
        at_most,
    } = length;
    let rss_before = server.rss_kib();
    let fds_before = server.fds();
    let lines_before = server.stderr_lines();
    let start = Instant::now();
    let hogs = Hogs::start(hogs);
    let flood = Flood::start(server.addr, cfg);
    let mut peak = rss_before;
    let mut samples = Vec::new();
    let mut next_sample = start;
    loop {
        let now = Instant::now();
        if now >= next_sample {
            let rss = server.rss_kib();
            peak = peak.max(rss);
            samples.push((now.duration_since(start).as_secs(), rss));
            next_sample += rss_every;
        }
        if let Some(status) = server.child.try_wait().expect("try_wait") {
            let st = &flood.stats;
            let seen = format!(
                "after {:.1} s of the flood ({} connects, {} closed by the server)",
                start.elapsed().as_secs_f64(),
                st.connects.load(Ordering::Relaxed),
                st.server_closes.load(Ordering::Relaxed)
            );
            flood.stop();
            server.died(status, &seen);
        }
        let closes = flood.stats.server_closes.load(Ordering::Relaxed);
        if now >= start + at_most || (now >= start + duration && closes >= until_closes) {
            break;
        }
        // The flood's length is set by time and by what the server did, not by this sleep:
        // it only paces the watch on the server.
        std::thread::sleep(Duration::from_millis(100));
    }
    let stats = flood.stats.clone();
    flood.stop();
    drop(hogs);
    let elapsed = start.elapsed();
    server.assert_alive("right after the clients closed");
    let rss_after = server.rss_kib();
    // The server sees the resets at once; give it (bounded) time to close every connection.
    let end = Instant::now() + Duration::from_secs(10);
    let mut fds = server.fds();
    while fds > fds_before && Instant::now() < end {
        // Bounds a poll on the server's descriptor count; it synchronises nothing.
        std::thread::sleep(Duration::from_millis(20));
        fds = server.fds();
    }
    server.assert_alive("after the clients closed");
    AttackReport {
        duration: elapsed,
        connects: stats.connects.load(Ordering::Relaxed),
        server_closes: stats.server_closes.load(Ordering::Relaxed),
        connect_errors: stats.connect_errors.load(Ordering::Relaxed),
        sent_bytes: stats.sent.load(Ordering::Relaxed),
        rss_before_kib: rss_before,
        rss_peak_kib: peak,
        rss_after_kib: rss_after,
        rss_samples: samples,
        fds_before,
        fds_after: fds,
        stderr_lines: server.stderr_lines() - lines_before,
    }
}

/// How long [`attack`] floods: at least `at_least`, then on until the server has closed
/// `until_closes` connections (so a slow, busy machine gets the same number of bursts as a
/// fast one, instead of a test that depends on CPU speed), but never past `at_most`.
#[derive(Debug, Clone, Copy)]
pub struct FloodLength {
    pub at_least: Duration,
    pub until_closes: u64,
    pub at_most: Duration,
}

impl FloodLength {
    /// Exactly `d`.
    pub fn fixed(d: Duration) -> FloodLength {
        FloodLength {
            at_least: d,
            until_closes: 0,
            at_most: d,
        }
    }
}

/// A fresh, well-behaved connection to `addr` with bounded reads and writes.
pub fn client(addr: SocketAddr) -> TcpStream {
    let c = TcpStream::connect_timeout(&addr, WATCHDOG).expect("connect to the server");
    c.set_read_timeout(Some(WATCHDOG)).unwrap();
    c.set_write_timeout(Some(WATCHDOG)).unwrap();
    c
}

/// One HTTP/1.0 request (so the body ends with the connection, chunked or not): returns the
/// status code and the body.
pub fn http_request(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, Vec<u8>) {
    let mut c = client(addr);
    let req = format!(
        "{method} {path} HTTP/1.0\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    c.write_all(req.as_bytes()).expect("send the request");
    let mut resp = Vec::new();
    c.read_to_end(&mut resp).expect("read the whole response");
    let end = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&resp[..end]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, resp[end + 4..].to_vec())
}

/// Sends `line` and a newline, reads one line back (without its newline).
pub fn line_request(addr: SocketAddr, line: &[u8]) -> Vec<u8> {
    let mut c = client(addr);
    c.write_all(line).unwrap();
    c.write_all(b"\n").unwrap();
    let mut r = BufReader::new(c);
    let mut out = Vec::new();
    r.read_until(b'\n', &mut out).expect("read the reply");
    assert_eq!(out.pop(), Some(b'\n'), "a whole line");
    out
}
