//! uring-echo-plain: a hand-written, single-threaded echo server on io_uring, beside the
//! tokio and raw-may plain echoes: whatever bytes a connection sends are written back. It
//! exists to measure how little server CPU per frame an echo can cost on this kernel, not to
//! be a framework: one ring, one thread, no tasks.
//!
//! One loop: handle every completion, queue the next submissions, then one
//! `io_uring_enter` that both submits them and waits for at least one completion.
//! Connections are accepted by a multishot accept (re-armed single-shot accepts where the
//! kernel refuses multishot). Per connection, two designs:
//!
//! - default: one 32 KiB buffer (as tokio-echo-plain's); a recv, and once it has bytes a send
//!   of them linked to the next recv (`IOSQE_IO_LINK`): the send carries
//!   `IOSQE_CQE_SKIP_SUCCESS` and `MSG_WAITALL` (the kernel retries a short send on a stream
//!   socket itself; one that still ends short fails, posts its completion and cancels the
//!   linked recv, and the rest is sent again), so an echoed frame costs one completion and
//!   one enter. `--no-link` submits the send alone and the recv after its completion.
//! - `--multishot`: one multishot recv per connection that picks its buffers from a ring of
//!   provided buffers (1,024 of 4 KiB) shared by all connections; each received buffer is
//!   sent back (one send in flight per connection, in order, short sends continued) and
//!   returned to the ring when sent.
//!
//! Ring set-up: `--setup defer` (default: `IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN`,
//! completions are run only when this thread enters the kernel to wait for them), `coop`
//! (`SINGLE_ISSUER | COOP_TASKRUN`) or `none`; the ring's own descriptor is registered
//! (`IORING_REGISTER_RING_FDS`) unless `--no-reg-ring`.
//!
//! It prints `listening on HOST:PORT` once it listens (so that `--addr 127.0.0.1:0` is
//! usable) and runs until it is killed. A failed I/O closes that connection; only a failing
//! ring stops the server.
//!
//! Usage: uring-echo-plain [--addr 127.0.0.1:PORT] [--multishot] [--no-link]
//!        [--setup defer|coop|none] [--no-reg-ring]

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, RawFd};
use std::process::exit;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::squeue::Flags;
use io_uring::types::{BufRingEntry, Fd};
use io_uring::{cqueue, opcode, squeue, IoUring, SubmissionQueue, Submitter};

// user_data: the operation's kind in the high 32 bits, the connection's slot in the low 32.
const ACCEPT: u64 = 1;
const RECV: u64 = 2;
const SEND: u64 = 3;
const CANCEL: u64 = 4;

fn ud(kind: u64, idx: usize) -> u64 {
    kind << 32 | idx as u64
}

/// The default design's per-connection buffer: tokio-echo-plain's size.
const PLAIN_BUF: usize = 32 << 10;
/// The provided buffers of `--multishot`: their group, count (a power of two) and size.
const BGID: u16 = 0;
const RING_BUFS: u16 = 1024;
const RING_BUF_SIZE: usize = 4096;

const SEND_FLAGS: i32 = libc::MSG_WAITALL | libc::MSG_NOSIGNAL;

#[derive(Clone, Copy, PartialEq)]
enum Setup {
    Defer,
    Coop,
    None,
}

struct Opts {
    addr: SocketAddr,
    multishot: bool,
    link: bool,
    setup: Setup,
    reg_ring: bool,
}

fn opts() -> Opts {
    let mut o = Opts {
        addr: SocketAddr::from(([127, 0, 0, 1], 7014)),
        multishot: false,
        link: true,
        setup: Setup::Defer,
        reg_ring: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--addr" | "-addr" => match args.next().map(|a| a.parse()) {
                Some(Ok(a)) => o.addr = a,
                _ => usage(),
            },
            "--multishot" => o.multishot = true,
            "--no-link" => o.link = false,
            "--no-reg-ring" => o.reg_ring = false,
            "--setup" => {
                o.setup = match args.next().as_deref() {
                    Some("defer") => Setup::Defer,
                    Some("coop") => Setup::Coop,
                    Some("none") => Setup::None,
                    _ => usage(),
                }
            }
            _ => usage(),
        }
    }
    o
}

fn usage() -> ! {
    eprintln!(
        "usage: {} [--addr HOST:PORT] [--multishot] [--no-link] [--setup defer|coop|none] [--no-reg-ring]",
        std::env::args().next().unwrap_or_default()
    );
    exit(2)
}

fn die(what: &str, e: io::Error) -> ! {
    eprintln!("uring-echo-plain: {what}: {e}");
    exit(1)
}

/// The submission side of the ring: the queue and the submitter that enters the kernel.
struct Io<'a> {
    sub: Submitter<'a>,
    sq: SubmissionQueue<'a>,
}

impl Io<'_> {
    /// Queues `entries` together (a linked pair must not be split by a submit), submitting
    /// what is queued first when they do not fit.
    fn push(&mut self, entries: &[squeue::Entry]) {
        loop {
            // SAFETY: every buffer an entry points to (a connection's buffer, a provided
            // buffer) stays allocated and untouched by this thread until the operation's
            // completion says the kernel is done with it: a connection's slot is freed only
            // when it has no operation in flight, and a provided buffer is handed back only
            // once its send completed.
            if unsafe { self.sq.push_multiple(entries) }.is_ok() {
                return;
            }
            self.sq.sync();
            if let Err(e) = self.sub.submit() {
                if e.raw_os_error() != Some(libc::EBUSY) && e.raw_os_error() != Some(libc::EINTR) {
                    die("io_uring_enter", e);
                }
            }
            self.sq.sync();
        }
    }
}

/// The ring of provided buffers of `--multishot`: the ring's entries and the buffers, each
/// in memory of its own mapping (the kernel writes into the buffers behind Rust's back).
struct BufRing {
    entries: *mut BufRingEntry,
    bufs: *mut u8,
    tail: u16,
    dirty: bool,
    /// Buffers the kernel has filled and not been handed back yet.
    held: u16,
}

fn map(len: usize) -> io::Result<*mut u8> {
    // SAFETY: an anonymous private mapping at an address the kernel chooses: it aliases
    // nothing; it is never unmapped (it lives as long as the process).
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        Err(io::Error::last_os_error())
    } else {
        Ok(p.cast())
    }
}

impl BufRing {
    fn new(sub: &Submitter<'_>) -> io::Result<Self> {
        let entries = map(RING_BUFS as usize * std::mem::size_of::<BufRingEntry>())?.cast();
        let bufs = map(RING_BUFS as usize * RING_BUF_SIZE)?;
        // SAFETY: `entries` is a page-aligned mapping of RING_BUFS entries that is never
        // unmapped, as the registration requires.
        unsafe { sub.register_buf_ring_with_flags(entries as u64, RING_BUFS, BGID, 0) }?;
        let mut r = BufRing {
            entries,
            bufs,
            tail: 0,
            dirty: false,
            held: RING_BUFS,
        };
        for bid in 0..RING_BUFS {
            r.put(bid);
        }
        r.publish();
        Ok(r)
    }

    fn buf(&self, bid: u16) -> *mut u8 {
        // SAFETY: bid < RING_BUFS (the kernel hands back only the ids it was given), so the
        // offset is inside the buffers' mapping.
        unsafe { self.bufs.add(bid as usize * RING_BUF_SIZE) }
    }

    /// Hands buffer `bid` back to the kernel (seen once published).
    fn put(&mut self, bid: u16) {
        let slot = (self.tail & (RING_BUFS - 1)) as usize;
        // SAFETY: slot < RING_BUFS, inside the entries' mapping; the kernel reads the entries
        // past the published tail only, and this one is not published yet.
        let e = unsafe { &mut *self.entries.add(slot) };
        e.set_addr(self.buf(bid) as u64);
        e.set_len(RING_BUF_SIZE as u32);
        e.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
        self.dirty = true;
        self.held -= 1;
    }

    fn publish(&mut self) {
        // SAFETY: the tail is a u16 inside the first entry of the mapping, which the kernel
        // reads concurrently: it is written only through an atomic, after the entries.
        let tail = unsafe { &*(BufRingEntry::tail(self.entries) as *const AtomicU16) };
        tail.store(self.tail, Ordering::Release);
        self.dirty = false;
    }
}

struct Conn {
    fd: RawFd,
    closing: bool,
    send_inflight: bool,
    recv_inflight: bool,
    // The default design: the buffer, the bytes received into it and those sent back.
    buf: Box<[u8]>,
    len: usize,
    off: usize,
    // --multishot: received buffers waiting to be sent (id, length, bytes sent).
    queue: VecDeque<(u16, u32, u32)>,
    starved: bool,
    cancelled: bool,
}

struct Server {
    o: Opts,
    listen_fd: RawFd,
    accept_multi: bool,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    bufs: Option<BufRing>,
    starved: Vec<usize>,
}

impl Server {
    fn arm_accept(&self, io: &mut Io<'_>) {
        let e = if self.accept_multi {
            opcode::AcceptMulti::new(Fd(self.listen_fd))
                .flags(libc::SOCK_CLOEXEC)
                .build()
        } else {
            opcode::Accept::new(
                Fd(self.listen_fd),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
            .flags(libc::SOCK_CLOEXEC)
            .build()
        };
        io.push(&[e.user_data(ud(ACCEPT, 0))]);
    }

    fn on_accept(&mut self, io: &mut Io<'_>, res: i32, flags: u32) {
        if res >= 0 {
            let fd = res;
            let one: libc::c_int = 1;
            // SAFETY: fd is the socket just accepted; the option value is a live c_int.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::IPPROTO_TCP,
                    libc::TCP_NODELAY,
                    (&one as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
            let c = Conn {
                fd,
                closing: false,
                send_inflight: false,
                recv_inflight: false,
                buf: if self.o.multishot {
                    Box::default()
                } else {
                    vec![0u8; PLAIN_BUF].into_boxed_slice()
                },
                len: 0,
                off: 0,
                queue: VecDeque::new(),
                starved: false,
                cancelled: false,
            };
            let idx = match self.free.pop() {
                Some(i) => {
                    self.conns[i] = Some(c);
                    i
                }
                None => {
                    self.conns.push(Some(c));
                    self.conns.len() - 1
                }
            };
            self.next(io, idx);
        } else if res == -libc::EINVAL && self.accept_multi {
            eprintln!("uring-echo-plain: no multishot accept here: single-shot accepts");
            self.accept_multi = false;
        } else {
            eprintln!(
                "uring-echo-plain: accept: {}",
                io::Error::from_raw_os_error(-res)
            );
        }
        if !cqueue::more(flags) {
            self.arm_accept(io);
        }
    }

    fn on_recv(&mut self, io: &mut Io<'_>, idx: usize, res: i32, flags: u32) {
        let multishot = self.o.multishot;
        let Some(c) = self.conns.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        if multishot {
            if !cqueue::more(flags) {
                c.recv_inflight = false;
            }
            if res > 0 {
                match cqueue::buffer_select(flags) {
                    Some(bid) => {
                        c.queue.push_back((bid, res as u32, 0));
                        if let Some(b) = self.bufs.as_mut() {
                            b.held += 1;
                        }
                    }
                    None => c.closing = true,
                }
            } else if res == -libc::ENOBUFS {
                // Every provided buffer is in use: re-armed once some come back.
                if !c.starved {
                    c.starved = true;
                    self.starved.push(idx);
                }
            } else {
                c.closing = true; // end of stream, an error, or cancelled by us
            }
        } else {
            // A send linked before this recv has ended: its completion, if it posted one
            // (a failure), came first.
            c.recv_inflight = false;
            c.send_inflight = false;
            if res > 0 {
                c.len = res as usize;
                c.off = 0;
            } else if res != -libc::ECANCELED || c.off >= c.len {
                c.closing = true;
            }
        }
        self.next(io, idx);
    }

    fn on_send(&mut self, io: &mut Io<'_>, idx: usize, res: i32) {
        let Some(c) = self.conns.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        c.send_inflight = false;
        if res < 0 {
            c.closing = true;
        } else if self.o.multishot {
            if let Some(front) = c.queue.front_mut() {
                front.2 += res as u32;
                if front.2 >= front.1 {
                    let bid = front.0;
                    c.queue.pop_front();
                    if let Some(b) = self.bufs.as_mut() {
                        b.put(bid);
                    }
                }
            }
        } else {
            c.off += res as usize;
        }
        self.next(io, idx);
    }

    /// What connection `idx` does next, given what is in flight.
    fn next(&mut self, io: &mut Io<'_>, idx: usize) {
        let link = self.o.link;
        let Some(c) = self.conns.get_mut(idx).and_then(Option::as_mut) else {
            return;
        };
        let fd = Fd(c.fd);
        if c.closing {
            if c.recv_inflight && self.o.multishot && !c.cancelled {
                c.cancelled = true;
                io.push(&[opcode::AsyncCancel::new(ud(RECV, idx))
                    .build()
                    .user_data(ud(CANCEL, idx))]);
            }
            if c.recv_inflight || c.send_inflight {
                return;
            }
            // SAFETY: the connection's own descriptor, with no operation left on it.
            unsafe { libc::close(c.fd) };
            let queue = std::mem::take(&mut c.queue);
            if let Some(b) = self.bufs.as_mut() {
                for (bid, _, _) in queue {
                    b.put(bid);
                }
            }
            self.conns[idx] = None;
            self.free.push(idx);
            return;
        }
        if self.o.multishot {
            if !c.send_inflight {
                if let (Some(&(bid, len, off)), Some(b)) = (c.queue.front(), self.bufs.as_ref()) {
                    // SAFETY: off < len <= RING_BUF_SIZE: inside buffer bid.
                    let p = unsafe { b.buf(bid).add(off as usize) };
                    io.push(&[opcode::Send::new(fd, p, len - off)
                        .flags(SEND_FLAGS)
                        .build()
                        .user_data(ud(SEND, idx))]);
                    c.send_inflight = true;
                }
            }
            if !c.recv_inflight && !c.starved {
                io.push(&[opcode::RecvMulti::new(fd, BGID)
                    .build()
                    .user_data(ud(RECV, idx))]);
                c.recv_inflight = true;
            }
            return;
        }
        if c.recv_inflight || c.send_inflight {
            return;
        }
        let recv = opcode::Recv::new(fd, c.buf.as_mut_ptr(), c.buf.len() as u32)
            .build()
            .user_data(ud(RECV, idx));
        if c.off < c.len {
            // SAFETY: off < len <= the buffer's length.
            let p = unsafe { c.buf.as_ptr().add(c.off) };
            let send = opcode::Send::new(fd, p, (c.len - c.off) as u32)
                .flags(SEND_FLAGS)
                .build()
                .user_data(ud(SEND, idx));
            c.send_inflight = true;
            if link {
                io.push(&[send.flags(Flags::IO_LINK | Flags::SKIP_SUCCESS), recv]);
                c.recv_inflight = true;
            } else {
                io.push(&[send]);
            }
        } else {
            io.push(&[recv]);
            c.recv_inflight = true;
        }
    }

    /// After a batch of completions: the buffers handed back are published, and the
    /// connections that ran out of buffers re-armed if the ring has some again (it may have
    /// had them back before their recv's failure was seen: a re-arm does not wait for more).
    fn after_batch(&mut self, io: &mut Io<'_>) {
        let Some(b) = self.bufs.as_mut() else { return };
        if b.dirty {
            b.publish();
        }
        if b.held == RING_BUFS {
            return;
        }
        for idx in std::mem::take(&mut self.starved) {
            if let Some(c) = self.conns.get_mut(idx).and_then(Option::as_mut) {
                c.starved = false;
            }
            self.next(io, idx);
        }
    }
}

fn main() {
    let o = opts();
    let ln = TcpListener::bind(o.addr).unwrap_or_else(|e| die(&format!("listen {}", o.addr), e));
    let local = ln.local_addr().unwrap_or_else(|e| die("local address", e));

    let mut b = IoUring::builder();
    match o.setup {
        Setup::Defer => {
            b.setup_single_issuer().setup_defer_taskrun();
        }
        Setup::Coop => {
            b.setup_single_issuer().setup_coop_taskrun();
        }
        Setup::None => {}
    }
    b.setup_cqsize(16384);
    let mut ring: IoUring = b.build(4096).unwrap_or_else(|e| die("io_uring_setup", e));
    let (sub, sq, mut cq) = ring.split();
    let mut io = Io { sub, sq };
    if o.reg_ring {
        if let Err(e) = io.sub.register_ring_fd() {
            eprintln!(
                "uring-echo-plain: registering the ring's descriptor: {e} (going on without)"
            );
        }
    }
    let bufs = if o.multishot {
        Some(BufRing::new(&io.sub).unwrap_or_else(|e| die("registering the buffer ring", e)))
    } else {
        None
    };
    eprintln!(
        "uring-echo-plain: {} recv{}, setup {}, ring fd {}registered",
        if o.multishot {
            "multishot"
        } else {
            "single-shot"
        },
        if o.multishot || !o.link {
            ""
        } else {
            " linked after each send"
        },
        match o.setup {
            Setup::Defer => "SINGLE_ISSUER|DEFER_TASKRUN",
            Setup::Coop => "SINGLE_ISSUER|COOP_TASKRUN",
            Setup::None => "default",
        },
        if o.reg_ring { "" } else { "not " }
    );
    let mut s = Server {
        listen_fd: ln.as_raw_fd(),
        accept_multi: true,
        conns: Vec::new(),
        free: Vec::new(),
        bufs,
        starved: Vec::new(),
        o,
    };
    s.arm_accept(&mut io);
    println!("listening on {local}");

    let mut events: Vec<(u64, i32, u32)> = Vec::with_capacity(1024);
    loop {
        io.sq.sync();
        if let Err(e) = io.sub.submit_and_wait(1) {
            if e.raw_os_error() != Some(libc::EINTR) && e.raw_os_error() != Some(libc::EBUSY) {
                die("io_uring_enter", e);
            }
        }
        io.sq.sync();
        cq.sync();
        events.extend((&mut cq).map(|c| (c.user_data(), c.result(), c.flags())));
        cq.sync(); // hands the completions' slots back before the next wait
        for (u, res, flags) in events.drain(..) {
            let idx = (u & 0xffff_ffff) as usize;
            match u >> 32 {
                ACCEPT => s.on_accept(&mut io, res, flags),
                RECV => s.on_recv(&mut io, idx, res, flags),
                SEND => s.on_send(&mut io, idx, res),
                _ => {} // CANCEL: its target's own completion is what counts
            }
        }
        s.after_batch(&mut io);
    }
}
