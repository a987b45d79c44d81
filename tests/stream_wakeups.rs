//! Go's concurrency contract for goway's streams: deadlines, timeouts, `close` and `shutdown`
//! are called through `&self` from another goroutine or thread while an operation is blocked
//! on the stream, and wake it with the right outcome: `TimedOut` for a deadline in the past
//! (and a later deadline keeps it waiting), Go's `net.ErrClosed` for `close`, EOF for
//! `shutdown(Read)`. The stream stays usable after a timeout, a blocked reader and a blocked
//! writer share the socket, and no descriptor is added.
//!
//! Every scenario runs on TCP and on Unix sockets, in this process (the default runtime) and
//! again in a child process on one worker thread. There the proof that the operation was
//! blocked is strict: goroutine A tells the test it is about to block, the test then spawns
//! the waking goroutine B, and B can only run once A has parked (nothing A does in between
//! yields the single worker). Plain-thread operations are seen blocked in `/proc` (the thread
//! sleeping) before they are woken.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::{Duration, Instant};

use goway::chan;
use goway::go;
use goway::net::{TcpListener, TcpStream, UnixStream, dial, is_closed_error};

/// Upper bound for any wait that should succeed; reaching it means a bug (a hang).
const WATCHDOG: Duration = Duration::from_secs(10);
/// The variable that makes the ignored `child` test run the scenarios.
const CHILD_ENV: &str = "GOWAY_STREAM_WAKEUPS_CHILD";

/// What the scenarios need of a stream, for TCP and Unix alike.
trait Stream: Send + Sync + 'static {
    fn set_read_deadline(&self, t: Option<Instant>);
    fn set_write_deadline(&self, t: Option<Instant>);
    fn set_read_timeout(&self, d: Option<Duration>) -> std::io::Result<()>;
    fn close(&self) -> std::io::Result<()>;
    fn shutdown(&self, how: Shutdown) -> std::io::Result<()>;
    fn read_some(&self, buf: &mut [u8]) -> std::io::Result<usize>;
    fn write_some(&self, buf: &[u8]) -> std::io::Result<usize>;
}

macro_rules! impl_stream {
    ($t:ty) => {
        impl Stream for $t {
            fn set_read_deadline(&self, t: Option<Instant>) {
                <$t>::set_read_deadline(self, t)
            }
            fn set_write_deadline(&self, t: Option<Instant>) {
                <$t>::set_write_deadline(self, t)
            }
            fn set_read_timeout(&self, d: Option<Duration>) -> std::io::Result<()> {
                <$t>::set_read_timeout(self, d)
            }
            fn close(&self) -> std::io::Result<()> {
                <$t>::close(self)
            }
            fn shutdown(&self, how: Shutdown) -> std::io::Result<()> {
                <$t>::shutdown(self, how)
            }
            fn read_some(&self, buf: &mut [u8]) -> std::io::Result<usize> {
                let mut s = self;
                s.read(buf)
            }
            fn write_some(&self, buf: &[u8]) -> std::io::Result<usize> {
                let mut s = self;
                s.write(buf)
            }
        }
    };
}

impl_stream!(TcpStream);
impl_stream!(UnixStream);

/// A connected pair: the stream under test and its peer (never read unless a scenario says).
type Pair<S> = (Arc<S>, Arc<S>);

fn tcp_pair() -> Pair<TcpStream> {
    let ln = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = dial(ln.local_addr().unwrap()).unwrap();
    let (s, _) = ln.accept().unwrap();
    (Arc::new(c), Arc::new(s))
}

fn unix_pair() -> Pair<UnixStream> {
    let (a, b) = UnixStream::pair().unwrap();
    (Arc::new(a), Arc::new(b))
}

/// Spawns goroutine A: it sends on the returned channel, then runs `op` at once (so on one
/// worker, a goroutine spawned after the message runs only once `op` has parked).
fn spawn_a<T: Send + 'static>(
    op: impl FnOnce() -> T + Send + 'static,
) -> (goway::JoinHandle<T>, chan::Receiver<()>) {
    let (tx, rx) = chan::bounded::<()>(1);
    let h = go!(move || {
        tx.send(()).unwrap();
        op()
    });
    (h, rx)
}

/// Waits for A's message, then runs `wake` in a new goroutine B and waits for it.
fn then_b(ready: chan::Receiver<()>, wake: impl FnOnce() + Send + 'static) {
    ready.recv_timeout(WATCHDOG).expect("A starts");
    common::join(go!(wake));
}

/// Writes until the socket's send buffer is full and the write blocks, then the write's error
/// (the bytes written before it are returned too).
fn fill<S: Stream>(s: &S) -> (usize, std::io::Error) {
    let chunk = vec![7u8; 256 << 10];
    let mut total = 0;
    loop {
        match s.write_some(&chunk) {
            Ok(n) => total += n,
            Err(e) => return (total, e),
        }
    }
}

/// Reads exactly `n` bytes from `s` on a plain thread (the peer that drains a filled socket).
fn drain_on_thread<S: Stream>(s: Arc<S>, n: usize) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        s.set_read_timeout(Some(WATCHDOG)).unwrap();
        let mut buf = vec![0u8; 64 << 10];
        let mut got = 0;
        while got < n {
            match s.read_some(&mut buf) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) => panic!("the peer's read failed after {got} bytes: {e}"),
            }
        }
        got
    })
}

fn kind<T>(r: std::io::Result<T>) -> Result<T, ErrorKind> {
    r.map_err(|e| e.kind())
}

// ---- the scenarios ----

/// A reader blocked without a deadline: B sets the deadline to now, the read fails with
/// `TimedOut` ("i/o timeout"); with the deadline moved on, the next read gets the peer's data.
fn read_deadline_now_wakes_a_blocked_reader<S: Stream>((s, peer): Pair<S>) {
    let (a, ready) = {
        let s = s.clone();
        spawn_a(move || s.read_some(&mut [0u8; 16]))
    };
    {
        let s = s.clone();
        then_b(ready, move || s.set_read_deadline(Some(Instant::now())));
    }
    let err = common::join(a).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert_eq!(err.to_string(), "i/o timeout");
    // Still usable: a later deadline, and the data arrives.
    s.set_read_deadline(Some(Instant::now() + WATCHDOG));
    peer.write_some(b"after").unwrap();
    let mut buf = [0u8; 16];
    let n = s.read_some(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"after");
}

/// A writer blocked on a full send buffer: B sets the write deadline to now, the write fails
/// with `TimedOut`; with the deadline cleared and the peer reading, writes go through again.
fn write_deadline_now_wakes_a_blocked_writer<S: Stream>((s, peer): Pair<S>) {
    let (a, ready) = {
        let s = s.clone();
        spawn_a(move || fill(&*s))
    };
    {
        let s = s.clone();
        then_b(ready, move || s.set_write_deadline(Some(Instant::now())));
    }
    let (written, err) = common::join(a);
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    s.set_write_deadline(None);
    let more = 1 << 20;
    let drain = drain_on_thread(peer, written + more);
    let mut left = more;
    let chunk = vec![1u8; 64 << 10];
    while left > 0 {
        let n = s.write_some(&chunk[..left.min(chunk.len())]).unwrap();
        left -= n;
    }
    assert_eq!(common::join_thread(drain), written + more);
}

/// A reader and a writer blocked on the stream at the same time (one waits in may's slot for
/// the socket, the other beside it): `close` from B wakes both with the closed error, every
/// later operation fails with it, and the peer sees EOF.
fn close_wakes_a_blocked_reader_and_writer<S: Stream>((s, peer): Pair<S>) {
    let (reader, ready) = {
        let s = s.clone();
        spawn_a(move || s.read_some(&mut [0u8; 16]))
    };
    ready.recv_timeout(WATCHDOG).expect("the reader starts");
    let (writer, ready) = {
        let s = s.clone();
        spawn_a(move || fill(&*s).1)
    };
    {
        let s = s.clone();
        then_b(ready, move || s.close().unwrap());
    }
    let err = common::join(reader).unwrap_err();
    assert!(is_closed_error(&err), "the reader got {err:?}");
    assert_eq!(err.to_string(), "use of closed network connection");
    let err = common::join(writer);
    assert!(is_closed_error(&err), "the writer got {err:?}");
    assert!(is_closed_error(&s.read_some(&mut [0u8; 1]).unwrap_err()));
    assert!(is_closed_error(&s.write_some(b"x").unwrap_err()));
    assert!(is_closed_error(&s.close().unwrap_err()), "a second close");
    // The peer reads what was written, then EOF.
    peer.set_read_timeout(Some(WATCHDOG)).unwrap();
    let mut buf = vec![0u8; 64 << 10];
    while peer.read_some(&mut buf).unwrap() > 0 {}
}

/// A reader blocked on the stream: `shutdown(Read)` from B ends it with EOF.
fn shutdown_read_gives_a_blocked_reader_eof<S: Stream>((s, _peer): Pair<S>) {
    let (a, ready) = {
        let s = s.clone();
        spawn_a(move || s.read_some(&mut [0u8; 16]))
    };
    {
        let s = s.clone();
        then_b(ready, move || s.shutdown(Shutdown::Read).unwrap());
    }
    assert_eq!(kind(common::join(a)), Ok(0));
}

/// A deadline moved later while a read is blocked does not end it early: set 200 ms ahead, the
/// read fails no sooner; moved further ahead while the read waits, the read outlives the old
/// deadline and gets the data that comes later.
fn a_later_deadline_does_not_fire_early<S: Stream>((s, peer): Pair<S>) {
    let ahead = Duration::from_millis(200);
    let (a, ready) = {
        let s = s.clone();
        spawn_a(move || s.read_some(&mut [0u8; 16]))
    };
    let set_at = {
        let (at_tx, at_rx) = chan::bounded::<Instant>(1);
        let s = s.clone();
        then_b(ready, move || {
            let now = Instant::now();
            s.set_read_deadline(Some(now + ahead));
            at_tx.send(now).unwrap();
        });
        at_rx.recv_timeout(WATCHDOG).unwrap()
    };
    assert_eq!(kind(common::join(a)), Err(ErrorKind::TimedOut));
    assert!(
        set_at.elapsed() >= ahead,
        "the read timed out {:?} after the deadline was set {ahead:?} ahead",
        set_at.elapsed()
    );

    // A deadline 1 s away, moved 10 s away while the read waits.
    s.set_read_deadline(Some(Instant::now() + Duration::from_secs(1)));
    let (done_tx, done_rx) = chan::bounded::<std::io::Result<usize>>(1);
    let (a, ready) = {
        let s = s.clone();
        spawn_a(move || done_tx.send(s.read_some(&mut [0u8; 16])).unwrap())
    };
    {
        let s = s.clone();
        then_b(ready, move || {
            s.set_read_deadline(Some(Instant::now() + WATCHDOG));
        });
    }
    // Past the old deadline, the read is still waiting.
    assert!(done_rx.recv_timeout(Duration::from_millis(1200)).is_err());
    peer.write_some(b"late").unwrap();
    let r = done_rx.recv_timeout(WATCHDOG).expect("the read ends");
    assert_eq!(kind(r), Ok(4));
    common::join(a);
}

/// A reader and a writer blocked at the same time each finish when their own direction is
/// ready: the peer drains the writer's data (its room wakes the writer, whichever of the two
/// waits in may's slot), then writes to the reader.
fn a_blocked_reader_and_writer_both_complete<S: Stream>((s, peer): Pair<S>) {
    let (reader, ready) = {
        let s = s.clone();
        spawn_a(move || {
            let mut buf = [0u8; 16];
            let n = s.read_some(&mut buf)?;
            Ok::<_, std::io::Error>(buf[..n].to_vec())
        })
    };
    ready.recv_timeout(WATCHDOG).expect("the reader starts");
    // More than loopback TCP's send and receive buffers hold together.
    let total = 32 << 20;
    let (writer, ready) = {
        let s = s.clone();
        spawn_a(move || {
            // The writes fill the buffers and block until the peer reads.
            s.set_write_deadline(Some(Instant::now() + WATCHDOG));
            let chunk = vec![3u8; 64 << 10];
            let mut written = 0;
            while written < total {
                written += s.write_some(&chunk)?;
            }
            Ok::<_, std::io::Error>(written)
        })
    };
    ready.recv_timeout(WATCHDOG).expect("the writer starts");
    let drained = common::join_thread(drain_on_thread(peer.clone(), total));
    let written = common::join(writer).unwrap();
    assert!(drained <= written && written >= total);
    peer.write_some(b"hello").unwrap();
    assert_eq!(common::join(reader).unwrap(), b"hello");
}

/// A plain thread blocked in a read is woken too: by a deadline set from a goroutine
/// (`TimedOut`), then, blocked again, by `close` (the closed error).
fn a_plain_thread_reader_is_woken<S: Stream>((s, _peer): Pair<S>) {
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let reader = {
        let s = s.clone();
        std::thread::spawn(move || {
            // SAFETY: gettid has no preconditions.
            tid_tx.send(unsafe { libc::gettid() }).unwrap();
            let first = s.read_some(&mut [0u8; 16]).map_err(|e| e.kind());
            s.set_read_deadline(None);
            tid_tx.send(0).unwrap();
            let second = s.read_some(&mut [0u8; 16]);
            (first, second)
        })
    };
    let tid = tid_rx.recv_timeout(WATCHDOG).unwrap();
    wait_until_sleeping(tid);
    {
        let s = s.clone();
        common::join(go!(move || s.set_read_deadline(Some(Instant::now()))));
    }
    tid_rx.recv_timeout(WATCHDOG).unwrap();
    wait_until_sleeping(tid);
    {
        let s = s.clone();
        common::join(go!(move || s.close().unwrap()));
    }
    let (first, second) = common::join_thread(reader);
    assert_eq!(first, Err(ErrorKind::TimedOut));
    let err = second.unwrap_err();
    assert!(is_closed_error(&err), "{err:?}");
}

/// Waits until thread `tid` of this process sleeps (state `S` in `/proc`): blocked, here, in
/// the read it was about to start.
fn wait_until_sleeping(tid: i32) {
    let path = format!("/proc/self/task/{tid}/stat");
    let deadline = Instant::now() + WATCHDOG;
    loop {
        let stat = std::fs::read_to_string(&path).unwrap_or_default();
        // The state follows the command name, which is in parentheses.
        let state = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next());
        if state == Some('S') {
            return;
        }
        assert!(Instant::now() < deadline, "thread {tid} never blocked");
        // Bounds a poll of /proc; it synchronises nothing.
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Each scenario on TCP and on Unix sockets.
fn every_scenario() {
    read_deadline_now_wakes_a_blocked_reader(tcp_pair());
    read_deadline_now_wakes_a_blocked_reader(unix_pair());
    write_deadline_now_wakes_a_blocked_writer(tcp_pair());
    write_deadline_now_wakes_a_blocked_writer(unix_pair());
    close_wakes_a_blocked_reader_and_writer(tcp_pair());
    close_wakes_a_blocked_reader_and_writer(unix_pair());
    shutdown_read_gives_a_blocked_reader_eof(tcp_pair());
    shutdown_read_gives_a_blocked_reader_eof(unix_pair());
    a_later_deadline_does_not_fire_early(tcp_pair());
    a_later_deadline_does_not_fire_early(unix_pair());
    a_blocked_reader_and_writer_both_complete(tcp_pair());
    a_blocked_reader_and_writer_both_complete(unix_pair());
    a_plain_thread_reader_is_woken(tcp_pair());
    a_plain_thread_reader_is_woken(unix_pair());
}

// ---- the tests ----

#[test]
fn read_deadline_from_another_goroutine() {
    let _g = common::shared();
    read_deadline_now_wakes_a_blocked_reader(tcp_pair());
    read_deadline_now_wakes_a_blocked_reader(unix_pair());
}

#[test]
fn write_deadline_from_another_goroutine() {
    let _g = common::shared();
    write_deadline_now_wakes_a_blocked_writer(tcp_pair());
    write_deadline_now_wakes_a_blocked_writer(unix_pair());
}

#[test]
fn close_from_another_goroutine() {
    let _g = common::shared();
    close_wakes_a_blocked_reader_and_writer(tcp_pair());
    close_wakes_a_blocked_reader_and_writer(unix_pair());
}

#[test]
fn shutdown_read_from_another_goroutine() {
    let _g = common::shared();
    shutdown_read_gives_a_blocked_reader_eof(tcp_pair());
    shutdown_read_gives_a_blocked_reader_eof(unix_pair());
}

#[test]
fn later_deadline_from_another_goroutine() {
    let _g = common::shared();
    a_later_deadline_does_not_fire_early(tcp_pair());
    a_later_deadline_does_not_fire_early(unix_pair());
}

#[test]
fn reader_and_writer_blocked_at_once() {
    let _g = common::shared();
    a_blocked_reader_and_writer_both_complete(tcp_pair());
    a_blocked_reader_and_writer_both_complete(unix_pair());
}

#[test]
fn plain_thread_reader() {
    let _g = common::shared();
    a_plain_thread_reader_is_woken(tcp_pair());
    a_plain_thread_reader_is_woken(unix_pair());
}

/// Every scenario again on a one-worker runtime, in a child process.
#[test]
fn every_scenario_on_one_worker() {
    let _g = common::shared();
    let out = common::child::run(CHILD_ENV, "one-worker", Duration::from_secs(60));
    assert!(out.status.success(), "{}", out.describe());
    assert!(out.stdout.contains("scenarios done"), "{}", out.describe());
}

#[test]
#[ignore = "the child process of every_scenario_on_one_worker"]
fn child() {
    if std::env::var(CHILD_ENV).is_err() {
        return;
    }
    goway::runtime::Config::new()
        .workers(1)
        .apply()
        .expect("the child configures its runtime first");
    assert_eq!(may::config().get_workers(), 1);
    every_scenario();
    println!("scenarios done");
}

/// `split` shares the stream: the halves add no descriptor, their `&self` methods wake the
/// other half's blocked operation, and the descriptor closes when both halves are dropped.
#[test]
fn split_halves_share_one_descriptor() {
    let _g = common::exclusive();
    let fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
    let (s, peer) = tcp_pair();
    let s = Arc::into_inner(s).unwrap();
    let before = fds();
    let (r, w) = s.split().unwrap();
    assert_eq!(fds(), before, "split added a descriptor");
    let r = Arc::new(r);
    let (a, ready) = {
        let r = r.clone();
        spawn_a(move || (&*r).read(&mut [0u8; 8]).map_err(|e| e.kind()))
    };
    {
        let r = r.clone();
        then_b(ready, move || r.set_read_deadline(Some(Instant::now())));
    }
    assert_eq!(common::join(a), Err(ErrorKind::TimedOut));
    // The write half closes the connection: the peer reads EOF.
    (&w).write_all(b"bye").unwrap();
    w.close().unwrap();
    peer.set_read_timeout(Some(WATCHDOG)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 16];
    loop {
        match peer.read_some(&mut buf).unwrap() {
            0 => break,
            n => got.extend_from_slice(&buf[..n]),
        }
    }
    assert_eq!(got, b"bye");
    drop(w);
    assert_eq!(fds(), before, "the read half still holds the descriptor");
    drop(r);
    assert_eq!(fds(), before - 1, "the last half releases the descriptor");
}

/// A peer that answers a connection with a short greeting and its FIN at once can have both
/// arrive before the dialer's first read, their readiness event taken by the connect's own
/// wait. The first short read must not be taken for "the socket is empty, wait for news":
/// no news would ever come, and the read after the greeting would hang instead of seeing EOF.
#[test]
fn greeting_and_fin_that_arrive_with_the_connect_are_read_to_the_end() {
    let ln = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = ln.local_addr().unwrap();
    const ROUNDS: usize = 300;
    let server = std::thread::spawn(move || {
        for _ in 0..ROUNDS {
            let (mut c, _) = ln.accept().unwrap();
            c.write_all(b"banner\n").unwrap();
            drop(c); // FIN right behind the greeting
        }
    });
    let client = go!(move || {
        for round in 0..ROUNDS {
            let c = dial(addr).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            loop {
                match (&c).read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) => panic!("round {round}: {e}"),
                }
            }
            assert_eq!(got, b"banner\n", "round {round}");
        }
    });
    match client.join_timeout(WATCHDOG * 3) {
        Ok(()) => {}
        Err(Ok(_)) => panic!("a read after the greeting never saw the FIN (a lost wake-up)"),
        Err(Err(p)) => panic!("{p}"),
    }
    server.join().unwrap();
}
