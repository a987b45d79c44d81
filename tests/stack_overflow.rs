//! A goroutine that overflows its stack ends the process as Go's does: `fatal error: stack
//! overflow` on stderr, with the goroutine's id, name, spawn site and stack size and the
//! settings that raise it, and exit status 2. A fault that is not a goroutine's stack overflow
//! (a null write, a plain thread's own overflow) is left to what handled it before.
//!
//! Each scenario runs in a child process: this test binary re-executed with
//! `GOWAY_STACK_OVERFLOW_CHILD=<scenario>` running the ignored `child` test, in the default
//! configuration unless the scenario sets workers or a stack size. The goroutine dump's stack
//! size and high-water mark are checked in this process (its only goroutines).

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

mod common;
use common::child::{self, Outcome};

const CHILD_ENV: &str = "GOWAY_STACK_OVERFLOW_CHILD";
const FATAL: &str = "fatal error: stack overflow";

/// A child is killed after this long: a silent overflow would hang its join.
const CHILD_LIMIT: Duration = Duration::from_secs(8);
/// The child's own bound on joining the overflowing goroutine.
const JOIN_LIMIT: Duration = Duration::from_secs(5);

// ----- the child side ----------------------------------------------------------------------

/// Recursion without end, 256 bytes of locals a frame.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let buf = [depth; 32];
    let b = std::hint::black_box(&buf);
    if std::hint::black_box(depth) == u64::MAX {
        return 0;
    }
    b[0].wrapping_add(recurse(depth + 1)).wrapping_add(b[31])
}

/// Recursion `depth` deep, 1 KiB of locals a frame.
#[inline(never)]
fn recurse_to(depth: u32) -> u8 {
    let mut buf = [depth as u8; 1024];
    std::hint::black_box(&mut buf);
    if depth == 0 {
        return buf[7];
    }
    buf[3].wrapping_add(recurse_to(depth - 1))
}

/// Prints the spawn's line (that of `go!` or of `.spawn(`), for the parent to look for.
fn announce_site(line: u32) {
    println!("site={}:{}", file!(), line);
    let _ = std::io::stdout().flush();
}

fn join_and_report<T: std::fmt::Debug>(h: goway::JoinHandle<T>) {
    match h.join_timeout(JOIN_LIMIT) {
        Ok(v) => println!("joined: returned {v:?}"),
        Err(Ok(_)) => println!("joined: still running after {JOIN_LIMIT:?}"),
        Err(Err(p)) => println!("joined: panicked: {p}"),
    }
    let _ = std::io::stdout().flush();
    std::process::exit(0);
}

fn null_write() {
    let p = std::hint::black_box(std::ptr::null_mut::<u64>());
    // SAFETY: not safe at all: the point is a fault that is not a stack overflow.
    unsafe { std::ptr::write_volatile(p, 1) };
}

fn run_child(scenario: &str) {
    match scenario {
        "default" => {
            announce_site(line!() + 1);
            let h = goway::go!(|| recurse(0));
            join_and_report(h);
        }
        "named" => {
            announce_site(line!() + 3);
            let h = goway::Builder::new()
                .name("deep-thought")
                .spawn(|| recurse(0))
                .expect("spawn");
            join_and_report(h);
        }
        "workers1" | "workers2" => {
            let n = if scenario == "workers1" { 1 } else { 2 };
            goway::runtime::Config::new()
                .workers(n)
                .apply()
                .expect("configure before the first goroutine");
            // Other goroutines about, some parked, so that the worker is a busy one.
            let (tx, rx) = goway::chan::bounded::<()>(0);
            let idle: Vec<_> = (0..8)
                .map(|_| {
                    let rx = rx.clone();
                    goway::go!(move || rx.recv())
                })
                .collect();
            announce_site(line!() + 1);
            let h = goway::go!(|| recurse(0));
            join_and_report(h);
            drop((tx, idle));
        }
        "churn" => {
            // Stacks come and go on both workers (dedicated stacks: each spawn maps one and
            // its end unmaps it) while one goroutine overflows.
            goway::runtime::Config::new()
                .workers(2)
                .apply()
                .expect("configure before the first goroutine");
            for _ in 0..4 {
                goway::go!(|| {
                    loop {
                        let h = goway::Builder::new()
                            .stack_size(64 * 1024)
                            .spawn(|| recurse_to(8))
                            .expect("spawn");
                        let _ = h.join();
                    }
                });
            }
            announce_site(line!() + 1);
            let h = goway::go!(|| recurse(0));
            join_and_report(h);
        }
        "http" => {
            // A connection handler of goway's HTTP server, with the server's default stack.
            let mut mux = goway::http::ServeMux::new();
            mux.handle(
                "/",
                |_r: &goway::http::Request, w: &mut goway::http::ResponseWriter| {
                    let n = recurse(0);
                    let _ = w.write_all(&n.to_le_bytes());
                },
            );
            let server = goway::http::Server::builder()
                .addr("127.0.0.1:0")
                .handler(mux)
                .bind()
                .expect("bind");
            let addr = server.local_addr().expect("a TCP address");
            std::thread::spawn(move || {
                let mut c = std::net::TcpStream::connect(addr).expect("connect");
                c.set_read_timeout(Some(JOIN_LIMIT)).expect("timeout");
                c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                    .expect("request");
                let mut reply = Vec::new();
                let _ = c.read_to_end(&mut reply);
                println!("reply: {}", String::from_utf8_lossy(&reply));
                std::process::exit(0);
            });
            let r = server.serve();
            println!("serve returned: {r:?}");
        }
        "big_stack" => {
            announce_site(line!() + 4);
            let h = goway::Builder::new()
                .name("big")
                .stack_size(256 * 1024)
                .spawn(|| recurse(0))
                .expect("spawn");
            join_and_report(h);
        }
        "tiny_stack" => {
            announce_site(line!() + 3);
            let h = goway::Builder::new()
                .stack_size(4096)
                .spawn(|| recurse(0))
                .expect("spawn");
            join_and_report(h);
        }
        "null_thread" => {
            // A goroutine runs first so that goway's handler is installed.
            assert_eq!(goway::go!(|| 7).join().expect("join"), 7);
            let t = std::thread::spawn(null_write);
            let _ = t.join();
            println!("null write in a thread returned");
        }
        "null_goroutine" => {
            let h = goway::go!(null_write);
            join_and_report(h);
        }
        "thread_overflow" => {
            // A plain thread's own overflow: Rust's handler reports it, not goway's. A
            // goroutine runs first so that goway's handler is installed.
            assert_eq!(goway::go!(|| 7).join().expect("join"), 7);
            let t = std::thread::Builder::new()
                .name("plain-deep".into())
                .stack_size(256 * 1024)
                .spawn(|| recurse(0))
                .expect("thread");
            let _ = t.join();
            println!("thread overflow returned");
        }
        "raw_may" => {
            // A may coroutine goway did not start: its overflow is may's (generator's) to
            // report, as before goway's handler. One worker, so that it runs where a goroutine
            // ran (goway only knows generator's state exists on such threads).
            goway::runtime::Config::new()
                .workers(1)
                .apply()
                .expect("configure before the first goroutine");
            assert_eq!(goway::go!(|| 7).join().expect("join"), 7);
            // SAFETY: the coroutine blocks nothing; overflowing is the point.
            let h = unsafe { may::coroutine::spawn(|| recurse(0)) };
            let _ = h.join();
            println!("raw may coroutine joined");
        }
        other => panic!("{CHILD_ENV}={other:?}: unknown scenario"),
    }
}

/// The child process of the tests below; does nothing unless [`CHILD_ENV`] is set.
#[test]
#[ignore = "the child process of the other tests: does nothing unless GOWAY_STACK_OVERFLOW_CHILD is set"]
fn child() {
    if let Ok(s) = std::env::var(CHILD_ENV) {
        run_child(&s);
    }
}

// ----- the parent side ---------------------------------------------------------------------

fn run(scenario: &str) -> Outcome {
    child::run(CHILD_ENV, scenario, CHILD_LIMIT)
}

/// The report of a goroutine's overflow: the fatal line, the goroutine (`name` if named), its
/// spawn site and stack size, the settings to raise it, exit status 2.
fn assert_overflow_report(o: &Outcome, name: Option<&str>, stack_bytes: usize) {
    let d = o.describe();
    assert_eq!(o.status.code(), Some(2), "{d}");
    assert!(o.stderr.contains(FATAL), "{d}");
    let g = o
        .stderr
        .lines()
        .find(|l| l.starts_with("goroutine "))
        .unwrap_or_else(|| panic!("no goroutine line\n{d}"));
    let id: u64 = g["goroutine ".len()..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no goroutine id in {g:?}\n{d}"));
    assert!(id > 0, "{d}");
    match name {
        Some(n) => assert!(g.contains(&format!("\"{n}\"")), "{d}"),
        None => assert!(!g.contains('"'), "{d}"),
    }
    assert!(
        o.stderr.contains(&format!("spawned at {}:", o.site())),
        "{d}"
    );
    assert!(
        o.stderr
            .contains(&format!("stack size {stack_bytes} bytes")),
        "{d}"
    );
    assert!(o.stderr.contains("Builder::stack_size"), "{d}");
    assert!(o.stderr.contains("runtime::Config::stack_size"), "{d}");
    assert!(!o.stdout.contains("joined:"), "{d}");
}

#[test]
fn overflow_in_default_configuration() {
    let o = run("default");
    assert_overflow_report(&o, None, goway::runtime::DEFAULT_STACK_SIZE);
}

#[test]
fn overflow_names_the_goroutine() {
    let o = run("named");
    assert_overflow_report(&o, Some("deep-thought"), goway::runtime::DEFAULT_STACK_SIZE);
}

#[test]
fn overflow_on_one_worker() {
    let o = run("workers1");
    assert_overflow_report(&o, None, goway::runtime::DEFAULT_STACK_SIZE);
}

#[test]
fn overflow_on_two_workers() {
    let o = run("workers2");
    assert_overflow_report(&o, None, goway::runtime::DEFAULT_STACK_SIZE);
}

#[test]
fn overflow_while_stacks_come_and_go() {
    let o = run("churn");
    assert_overflow_report(&o, None, goway::runtime::DEFAULT_STACK_SIZE);
}

/// A handler of goway's HTTP server: the report names the server's spawn site and its
/// default handler stack.
#[test]
fn overflow_in_an_http_handler() {
    let o = run("http");
    let d = o.describe();
    assert_eq!(o.status.code(), Some(2), "{d}");
    assert!(o.stderr.contains(FATAL), "{d}");
    assert!(o.stderr.contains("spawned at src/http/"), "{d}");
    let stack = if cfg!(debug_assertions) {
        256 << 10
    } else {
        64 << 10
    };
    assert!(
        o.stderr.contains(&format!("stack size {stack} bytes")),
        "{d}"
    );
    assert!(
        o.stderr.contains("goway::http::Config::handler_stack_size"),
        "{d}"
    );
}

#[test]
fn overflow_of_a_one_page_stack() {
    let o = run("tiny_stack");
    assert_overflow_report(&o, None, 4096);
}

#[test]
fn overflow_of_a_dedicated_stack() {
    let o = run("big_stack");
    assert_overflow_report(&o, Some("big"), 256 * 1024);
}

/// A null write is a plain SIGSEGV, in a thread or in a goroutine: not a stack overflow.
#[test]
fn null_write_is_not_a_stack_overflow() {
    for scenario in ["null_thread", "null_goroutine"] {
        let o = run(scenario);
        let d = o.describe();
        assert_eq!(o.status.signal(), Some(libc::SIGSEGV), "{scenario}: {d}");
        assert!(!o.stderr.contains("stack overflow"), "{scenario}: {d}");
    }
}

/// A plain thread's overflow is still Rust's to report (SIGABRT after its message).
#[test]
fn thread_overflow_is_left_to_rust() {
    let o = run("thread_overflow");
    let d = o.describe();
    assert_eq!(o.status.signal(), Some(libc::SIGABRT), "{d}");
    assert!(o.stderr.contains("thread 'plain-deep'"), "{d}");
    assert!(o.stderr.contains("has overflowed its stack"), "{d}");
    assert!(!o.stderr.contains(FATAL), "{d}");
}

/// A may coroutine goway did not start is left to may's own overflow handling (generator's
/// message; the coroutine is abandoned and the program goes on, which is why goroutines are
/// not left to it).
#[test]
fn raw_may_coroutine_is_left_to_may() {
    let o = run("raw_may");
    let d = o.describe();
    assert!(!o.stderr.contains(FATAL), "{d}");
    assert!(
        o.stderr.contains("coroutine has overflowed its stack"),
        "{d}"
    );
}

/// The goroutine dump shows each goroutine's stack size and how deep its stack has been used.
/// The only test that runs goroutines in this process (the others run children).
#[test]
fn dump_shows_stack_size_and_high_water() {
    goway::runtime::Config::new()
        .registry(true)
        .apply()
        .expect("no goroutine ran in the test process before");
    let limit = Duration::from_secs(10);
    let (release_tx, release_rx) = goway::chan::bounded::<()>(0);
    let (ready_tx, ready_rx) = goway::chan::bounded::<()>(2);
    let (r1, t1) = (release_rx.clone(), ready_tx.clone());
    let shallow = goway::Builder::new()
        .name("shallow")
        .spawn(move || {
            let _ = t1.send(());
            r1.recv()
        })
        .expect("spawn");
    let deep = goway::Builder::new()
        .name("deep")
        .spawn(move || {
            // About 20 KiB of the 32 KiB stack, then park.
            let x = recurse_to(20);
            let _ = ready_tx.send(());
            let _ = release_rx.recv();
            x
        })
        .expect("spawn");
    for _ in 0..2 {
        ready_rx
            .recv_timeout(limit)
            .expect("both goroutines parked");
    }
    let dump = goway::runtime::dump();
    let line = |name: &str| {
        dump.lines()
            .find(|l| l.contains(&format!("\"{name}\"")))
            .unwrap_or_else(|| panic!("no {name} line in\n{dump}"))
            .to_owned()
    };
    let high = |l: &str| -> usize {
        let rest = l
            .split_once("(high-water ")
            .unwrap_or_else(|| panic!("no high-water in {l:?}\n{dump}"))
            .1;
        rest.split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("KiB figure")
    };
    let (d, s) = (line("deep"), line("shallow"));
    assert!(d.contains(", stack 32 KiB (high-water "), "{dump}");
    assert!(s.contains(", stack 32 KiB (high-water "), "{dump}");
    let (hd, hs) = (high(&d), high(&s));
    assert!((20..=32).contains(&hd), "deep: {hd} KiB\n{dump}");
    assert!(hs < 16, "shallow: {hs} KiB\n{dump}");
    drop(release_tx);
    assert!(shallow.join_timeout(limit).is_ok(), "shallow finished");
    assert!(deep.join_timeout(limit).is_ok(), "deep finished");
}
