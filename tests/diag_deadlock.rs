//! Go's deadlock detector, tested on whole programs: each scenario runs in a child process (this
//! same test binary, re-executed with `GOWAY_DIAG_CHILD=<scenario>`), because the detector
//! watches the process's main thread and ends the process with status 2.
//!
//! This target has `harness = false` (see Cargo.toml): libtest would run the scenarios on its
//! own threads, and the detector only fires while the *main* thread waits in goway.
//!
//! Deadlocks (in Go, a program whose every goroutine is blocked is killed with
//! `fatal error: all goroutines are asleep - deadlock!`, exit status 2): main blocked on a
//! channel receive, on a nil channel, on `select {}`, on a WaitGroup, on a mutex it holds, and
//! a cycle of goroutines that main joins. Not deadlocks (must never be reported): a program
//! whose only wake-up is a timer, a sleep, a blocking call on the blocking pool, a goroutine
//! that blocks its worker thread, a connection from outside the process, a coroutine spawned
//! with may directly, or a plain thread goway does not know about.
//!
//! Each scenario runs twice: with the default configuration (registry off, detector on: Go's
//! message, a short report and how to get the full one) and with the goroutine registry on
//! (the detailed report).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use goway::chan;
use goway::sync::{Mutex, WaitGroup};

mod common;
use common::child::{self, Outcome};

const FATAL: &str = "fatal error: all goroutines are asleep - deadlock!";

/// Far above the detector's ~200-300 ms, so that a detector that would fire has time to.
const EXPOSURE: Duration = Duration::from_millis(900);

// ----- the child side ----------------------------------------------------------------------

fn child(scenario: &str) {
    match scenario {
        "main_recv" => {
            let (_tx, rx) = chan::bounded::<i32>(0);
            let _ = rx.recv();
        }
        "nil_chan" => {
            let _ = chan::never::<i32>().recv();
        }
        "select_no_cases" => {
            let mut s = goway::select::Select::new();
            s.select();
        }
        "wait_group" => {
            let wg = WaitGroup::new();
            wg.add(1);
            wg.wait();
        }
        "double_lock" => {
            let m = Mutex::new(0);
            let _g = m.lock();
            let _g2 = m.lock();
        }
        "cycle" | "cycle_default" => {
            if scenario == "cycle" {
                goway::runtime::Config::new()
                    .registry(true)
                    .apply()
                    .expect("configure before the first goroutine");
            }
            // Each goroutine waits for the other's message before sending its own.
            let (a_tx, a_rx) = chan::bounded::<i32>(0);
            let (b_tx, b_rx) = chan::bounded::<i32>(0);
            let g1 = goway::Builder::new()
                .name("cycle-a")
                .spawn(move || {
                    let v = a_rx.recv();
                    let _ = b_tx.send(1);
                    v
                })
                .expect("spawn");
            let g2 = goway::Builder::new()
                .name("cycle-b")
                .spawn(move || {
                    let v = b_rx.recv();
                    let _ = a_tx.send(2);
                    v
                })
                .expect("spawn");
            let _ = g1.join();
            let _ = g2.join();
        }
        "timer_only" => {
            // A goroutine blocked for good, and main waiting on a timer: not a deadlock.
            let (_tx, rx) = chan::bounded::<i32>(0);
            let _stuck = goway::go!(move || rx.recv());
            let _ = goway::time::after(EXPOSURE).recv();
            println!("done");
        }
        "sleeper" => {
            let (tx, rx) = chan::bounded::<i32>(0);
            let _h = goway::go!(move || {
                goway::time::sleep(EXPOSURE);
                tx.send(1)
            });
            assert_eq!(rx.recv(), Ok(1));
            println!("done");
        }
        "block_on_thread" => {
            // The only wake-up is a blocking call on the blocking pool (its thread asleep in
            // the kernel meanwhile); its goroutine is awake as far as goway knows.
            let (tx, rx) = chan::bounded::<i32>(0);
            let _h = goway::go!(move || {
                goway::runtime::block_on_thread(|| std::thread::sleep(EXPOSURE))
                    .expect("the blocking call runs");
                tx.send(1)
            });
            assert_eq!(rx.recv(), Ok(1));
            println!("done");
        }
        "result_drop_waits" => {
            // A finished goroutine still waits: its result's destructor sends (its handle was
            // dropped, so the result is dropped by the goroutine, after it stopped counting as
            // live). The receiver is a goroutine busy in a blocking call.
            struct SendOnDrop(Option<chan::Sender<i32>>);
            impl Drop for SendOnDrop {
                fn drop(&mut self) {
                    if let Some(tx) = self.0.take() {
                        let _ = tx.send(7);
                    }
                }
            }
            let (tx, rx) = chan::bounded::<i32>(0);
            let (go_tx, go_rx) = chan::bounded::<()>(0);
            let a = goway::go!(move || {
                let _ = go_rx.recv();
                SendOnDrop(Some(tx))
            });
            drop(a);
            go_tx.send(()).expect("the goroutine waits");
            let (done_tx, done_rx) = chan::bounded::<i32>(0);
            let _b = goway::go!(move || {
                goway::runtime::block_on_thread(|| std::thread::sleep(EXPOSURE))
                    .expect("the blocking call runs");
                let v = rx.recv().unwrap_or(0);
                done_tx.send(v)
            });
            assert_eq!(done_rx.recv(), Ok(7));
            println!("done");
        }
        "worker_blocked" => {
            // A goroutine that breaks the rules: it blocks its worker thread in the kernel, then
            // sends. Its worker sleeps meanwhile, but the goroutine is not parked in goway.
            let (tx, rx) = chan::bounded::<i32>(0);
            let _h = goway::go!(move || {
                std::thread::sleep(EXPOSURE);
                tx.send(1)
            });
            assert_eq!(rx.recv(), Ok(1));
            println!("done");
        }
        "plain_thread" => {
            // A thread goway never saw, asleep in std, sends later.
            let (tx, rx) = chan::bounded::<i32>(0);
            let t = std::thread::spawn(move || {
                std::thread::sleep(EXPOSURE);
                tx.send(1).expect("main receives");
            });
            assert_eq!(rx.recv(), Ok(1));
            t.join().expect("thread");
            println!("done");
        }
        "foreign" => {
            // A coroutine spawned with may directly: once it waits in goway, the detector
            // stops vouching, since it cannot see what such coroutines do (here: sleep in
            // may's own timer, then send).
            goway::go!(|| ()).join().expect("a goroutine starts may");
            let (tx, rx) = chan::bounded::<i32>(0);
            let (_ftx, frx) = chan::bounded::<i32>(0);
            // SAFETY: the coroutine blocks only through goway and may, never its worker.
            let h = unsafe {
                may::coroutine::spawn(move || {
                    let _ = frx.recv_timeout(std::time::Duration::from_millis(1));
                    may::coroutine::sleep(EXPOSURE);
                    tx.send(1)
                })
            };
            assert_eq!(rx.recv(), Ok(1));
            h.join().expect("join").expect("send");
            println!("done");
        }
        "foreign_sleeps_in_may" => {
            // A coroutine spawned with may directly waits in goway (no deadline), then sleeps
            // in may's own timer and sends: may's timer thread has a timer pending meanwhile.
            goway::go!(|| ()).join().expect("a goroutine starts may");
            let (tx, rx) = chan::bounded::<i32>(0);
            let (go_tx, go_rx) = chan::bounded::<i32>(0);
            // SAFETY: the coroutine blocks only through goway and may, never its worker.
            let h = unsafe {
                may::coroutine::spawn(move || {
                    let _ = go_rx.recv();
                    may::coroutine::sleep(EXPOSURE);
                    tx.send(1)
                })
            };
            go_tx.send(0).expect("the coroutine waits");
            assert_eq!(rx.recv(), Ok(1));
            h.join().expect("join").expect("send");
            println!("done");
        }
        "foreign_parked_and_worker_blocked" => {
            // Counted as asleep: a coroutine spawned with may directly, parked in goway for
            // good. Awake: a goroutine that blocks its worker thread in the kernel, then sends.
            // As many parked as goroutines alive, but the blocked worker is not waiting for a
            // thread of the process.
            let (_never_tx, never) = chan::bounded::<i32>(0);
            // SAFETY: the coroutine blocks only through goway.
            let _f = unsafe { may::coroutine::spawn(move || never.recv()) };
            let (tx, rx) = chan::bounded::<i32>(0);
            let _h = goway::go!(move || {
                std::thread::sleep(EXPOSURE);
                tx.send(1)
            });
            assert_eq!(rx.recv(), Ok(1));
            println!("done");
        }
        "accept" => {
            // The only wake-up is a connection from another process (the test).
            let ln = goway::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            println!("listening on {}", ln.local_addr().expect("addr"));
            let (tx, rx) = chan::bounded::<()>(0);
            let _h = goway::go!(move || {
                let c = ln.accept();
                drop(c);
                tx.send(())
            });
            assert_eq!(rx.recv(), Ok(()));
            println!("done");
        }
        "gt44" => {
            // Go's "main blocked on a channel nobody sends to" program, line for line.
            let (_ch_tx, ch) = chan::bounded::<i32>(0);
            let _g = goway::go!(move || {
                let v = ch.recv(); // blocked forever too
                println!("WRONG {v:?}");
            });
            println!("main waiting on a channel nobody sends to");
            let (_tx, rx) = chan::bounded::<i32>(0);
            let _ = rx.recv();
        }
        "gt12" => {
            // Go's "a nil channel blocks forever" program, line for line.
            use std::time::Duration;
            let c = chan::never::<i32>();
            let c_tx = chan::Sender::<i32>::never();
            goway::select! {
                recv(c) -> v => println!("received from nil (WRONG) {v:?}"),
                recv(goway::time::after(Duration::from_millis(50))) -> _ => {
                    println!("receive on nil channel: still blocked after timeout")
                }
            }
            goway::select! {
                send(c_tx, 1) -> _ => println!("sent to nil (WRONG)"),
                recv(goway::time::after(Duration::from_millis(50))) -> _ => {
                    println!("send on nil channel: still blocked after timeout")
                }
            }
            let (done_tx, done) = chan::bounded::<bool>(0);
            let _outer = goway::go!(move || {
                let _leak = goway::go!(|| chan::never::<i32>().recv()); // leaks, blocked forever
                done_tx.send(true)
            });
            let _ = done.recv();
            println!("main blocking on nil channel now");
            let _ = c.recv();
        }
        "sigquit" => {
            // SIGQUIT prints the dump and the program goes on; main waits on standard input
            // (outside goway, so the deadlock detector stays out of it).
            goway::runtime::dump_on_signal().expect("install the SIGQUIT handler");
            let (tx, rx) = chan::bounded::<()>(0);
            let h = goway::Builder::new()
                .name("sigquit-waiter")
                .spawn(move || rx.recv())
                .expect("spawn");
            println!("ready");
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
            tx.send(()).expect("the waiter receives");
            assert!(h.join().expect("join").is_ok());
            println!("done");
        }
        other => panic!("unknown scenario {other}"),
    }
}

// ----- the parent side ---------------------------------------------------------------------

/// How a child is configured.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// Nothing set: the registry off, the detector on (the defaults).
    Default,
    /// The registry on (through `GOWAY_REGISTRY=1`, or `Config::registry` in the "cycle"
    /// scenario): the detailed report.
    Registry,
}

fn start(scenario: &str, mode: Mode) -> Child {
    command(scenario, mode)
        .stdin(Stdio::null())
        .spawn()
        .expect("start the child")
}

fn command(scenario: &str, mode: Mode) -> Command {
    let mut c = Command::new(std::env::current_exe().expect("current_exe"));
    c.env("GOWAY_DIAG_CHILD", scenario)
        .env_remove("GOWAY_DETECT_DEADLOCK")
        .env_remove("GOWAY_REGISTRY")
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if mode == Mode::Registry && scenario != "cycle" {
        c.env("GOWAY_REGISTRY", "1");
    }
    c
}

/// `dump_on_signal`: each SIGQUIT prints the dump, and the program goes on.
fn sigquit_prints_the_dump_and_the_program_goes_on() {
    let mut child = command("sigquit", Mode::Registry)
        .stdin(Stdio::piped())
        .spawn()
        .expect("start the child");
    let pid = child.id().to_string();
    let mut stdin = child.stdin.take();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let err = child.stderr.take().expect("stderr");
    let err_reader = std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let o = finish(child, |line| {
        if line != "ready" {
            return;
        }
        // Two signals: the handler stays installed after the first.
        for _ in 0..2 {
            let st = Command::new("kill")
                .args(["-QUIT", &pid])
                .status()
                .expect("run kill");
            assert!(st.success());
            let deadline = Instant::now() + common::WATCHDOG;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(l) if l.contains("\"sigquit-waiter\"") => break,
                    Ok(_) => {}
                    Err(_) => panic!("no dump on stderr after SIGQUIT"),
                }
            }
        }
        // Let the child finish.
        drop(stdin.take());
    });
    let _ = err_reader.join();
    assert_eq!(
        o.code(),
        Some(0),
        "the child did not survive SIGQUIT: {}",
        o.stdout
    );
    assert!(o.stdout.contains("done"), "{}", o.stdout);
}

/// How long a child may take.
const CHILD_LIMIT: Duration = Duration::from_secs(30);

/// Waits for the child and collects its output (see `common::child::finish`); `on_line` sees
/// each stdout line as it comes.
fn finish(running: Child, on_line: impl FnMut(&str)) -> Outcome {
    child::finish(running, "the child", CHILD_LIMIT, on_line)
}

fn run(scenario: &str, mode: Mode) -> Outcome {
    finish(start(scenario, mode), |_| {})
}

fn expect_deadlock(scenario: &str, mode: Mode, must_show: &[&str]) -> Outcome {
    let o = run(scenario, mode);
    assert_eq!(
        o.code(),
        Some(2),
        "{scenario} ({mode:?}): expected exit status 2\nstderr:\n{}\nstdout:\n{}",
        o.stderr,
        o.stdout
    );
    assert!(
        o.stderr.starts_with(FATAL),
        "{scenario} ({mode:?}): stderr does not start with Go's message:\n{}",
        o.stderr
    );
    for s in must_show {
        assert!(
            o.stderr.contains(s),
            "{scenario} ({mode:?}): the report lacks {s:?}:\n{}",
            o.stderr
        );
    }
    o
}

fn expect_no_report(o: Outcome, scenario: &str) {
    assert!(
        !o.stderr.contains(FATAL),
        "{scenario}: false deadlock report:\n{}",
        o.stderr
    );
    assert_eq!(
        o.code(),
        Some(0),
        "{scenario}: expected a clean exit\nstderr:\n{}",
        o.stderr
    );
    assert!(o.stdout.contains("done"), "{scenario}: {}", o.stdout);
}

/// A registry-off (default) deadlock report: Go's message, the goroutines' number, main's wait,
/// and how to get the full report.
const DEFAULT_REPORT: &[&str] = &["goroutine registry is off", "GOWAY_REGISTRY=1"];

type Test = (String, Box<dyn Fn() + Send + Sync>);

fn tests() -> Vec<Test> {
    let mut t: Vec<Test> = Vec::new();
    let mut add = |name: String, f: Box<dyn Fn() + Send + Sync>| t.push((name, f));
    for mode in [Mode::Registry, Mode::Default] {
        let suffix = match mode {
            Mode::Registry => "",
            Mode::Default => "_by_default",
        };
        // What the report shows of each scenario: the registry's dump, or with the registry off
        // the threads' states and the hint.
        let shows = move |with_registry: &[&'static str], by_default: &[&'static str]| {
            let mut v: Vec<&'static str> = match mode {
                Mode::Registry => with_registry.to_vec(),
                Mode::Default => by_default.to_vec(),
            };
            if mode == Mode::Default {
                v.extend_from_slice(DEFAULT_REPORT);
            }
            v
        };
        let main_recv = shows(
            &[
                "thread \"main\"",
                "[chan receive]",
                "tests/diag_deadlock.rs:",
            ],
            &[
                "0 goroutines, 1 thread waiting in goway",
                "thread \"main\"",
                "[chan receive]: channel made at tests/diag_deadlock.rs:",
            ],
        );
        add(
            format!("main_blocked_on_recv_is_a_deadlock{suffix}"),
            Box::new(move || {
                expect_deadlock("main_recv", mode, &main_recv);
            }),
        );
        let gt44 = shows(
            &["1 goroutine [chan receive]"],
            &["goroutine dump: 1 goroutine, 1 thread waiting in goway"],
        );
        add(
            format!("go_ground_truth_44_deadlock_main_blocked{suffix}"),
            Box::new(move || {
                let o = expect_deadlock("gt44", mode, &gt44);
                assert_eq!(o.stdout, "main waiting on a channel nobody sends to\n");
            }),
        );
        let gt12 = shows(
            &["[chan receive (nil chan)]"],
            &["1 goroutine, 1 thread", "[chan receive (nil chan)]"],
        );
        add(
            format!("go_ground_truth_12_nil_channel_blocks_forever{suffix}"),
            Box::new(move || {
                let o = run("gt12", mode);
                assert_eq!(o.code(), Some(2), "{}", o.stderr);
                assert_eq!(
                    o.stdout,
                    "receive on nil channel: still blocked after timeout\n\
                     send on nil channel: still blocked after timeout\n\
                     main blocking on nil channel now\n"
                );
                assert!(o.stderr.starts_with(FATAL), "{}", o.stderr);
                for s in &gt12 {
                    assert!(o.stderr.contains(s), "lacks {s:?}: {}", o.stderr);
                }
            }),
        );
        for (name, scenario, state) in [
            (
                "main_blocked_on_nil_channel_is_a_deadlock",
                "nil_chan",
                "[chan receive (nil chan)]",
            ),
            (
                "empty_select_is_a_deadlock",
                "select_no_cases",
                "[select (no cases)]",
            ),
            (
                "wait_group_never_done_is_a_deadlock",
                "wait_group",
                "[sync.WaitGroup.Wait]",
            ),
            (
                "locking_a_held_mutex_is_a_deadlock",
                "double_lock",
                "[sync.Mutex.Lock]",
            ),
        ] {
            let show = shows(&[state], &[state]);
            add(
                format!("{name}{suffix}"),
                Box::new(move || {
                    expect_deadlock(scenario, mode, &show);
                }),
            );
        }
        let (cycle, cycle_show) = match mode {
            Mode::Registry => (
                "cycle",
                shows(
                    &[
                        "[chan receive]: channel made at tests/diag_deadlock.rs:",
                        "\"cycle-a\"",
                        "\"cycle-b\"",
                        "[join]",
                    ],
                    &[],
                ),
            ),
            Mode::Default => (
                "cycle_default",
                shows(
                    &[],
                    &[
                        "goroutine dump: 2 goroutines, 1 thread waiting in goway",
                        "thread \"main\"",
                        "[join]",
                    ],
                ),
            ),
        };
        add(
            format!("cycle_of_goroutines_is_a_deadlock{suffix}"),
            Box::new(move || {
                expect_deadlock(cycle, mode, &cycle_show);
            }),
        );
        for (name, scenario) in [
            ("waiting_on_a_timer_is_not_a_deadlock", "timer_only"),
            (
                "waiting_on_a_sleeping_goroutine_is_not_a_deadlock",
                "sleeper",
            ),
            (
                "waiting_on_a_blocking_call_is_not_a_deadlock",
                "block_on_thread",
            ),
            (
                "waiting_on_a_goroutine_that_blocks_its_worker_is_not_a_deadlock",
                "worker_blocked",
            ),
            (
                "waiting_on_a_result_destructor_is_not_a_deadlock",
                "result_drop_waits",
            ),
            (
                "waiting_on_an_unknown_thread_is_not_a_deadlock",
                "plain_thread",
            ),
            (
                "waiting_on_a_coroutine_spawned_with_may_is_not_a_deadlock",
                "foreign",
            ),
            (
                "waiting_on_a_coroutine_sleeping_in_may_is_not_a_deadlock",
                "foreign_sleeps_in_may",
            ),
            (
                "a_coroutine_spawned_with_may_does_not_stand_in_for_a_goroutine",
                "foreign_parked_and_worker_blocked",
            ),
        ] {
            add(
                format!("{name}{suffix}"),
                Box::new(move || expect_no_report(run(scenario, mode), scenario)),
            );
        }
        add(
            format!("waiting_on_network_io_is_not_a_deadlock{suffix}"),
            Box::new(move || {
                let child = start("accept", mode);
                let mut connected = None;
                let o = finish(child, |line| {
                    if let Some(addr) = line.strip_prefix("listening on ") {
                        // Leave the child waiting on nothing but the network for a while: a
                        // detector that counted I/O as asleep would fire meanwhile.
                        std::thread::sleep(EXPOSURE);
                        connected =
                            Some(std::net::TcpStream::connect(addr.trim()).expect("connect"));
                    }
                });
                assert!(
                    connected.is_some(),
                    "the child never listened: {}",
                    o.stdout
                );
                expect_no_report(o, "accept");
            }),
        );
    }
    add(
        "sigquit_prints_the_dump_and_the_program_goes_on".to_owned(),
        Box::new(sigquit_prints_the_dump_and_the_program_goes_on),
    );
    t
}

fn main() {
    if let Ok(s) = std::env::var("GOWAY_DIAG_CHILD") {
        child(&s);
        return;
    }
    // libtest-style arguments (filters, --test-threads) are accepted and ignored; `--list`
    // prints nothing, as there are no libtest tests here.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let started = Instant::now();
    // Each test runs its children on a thread of its own: most of a child's life is spent
    // waiting (for the detector, or through `EXPOSURE`), so they overlap well.
    let tests = tests();
    let results: Vec<(String, bool)> = std::thread::scope(|s| {
        let running: Vec<_> = tests
            .iter()
            .map(|(name, f)| {
                let h = s.spawn(move || {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_ok()
                });
                (name.clone(), h)
            })
            .collect();
        running
            .into_iter()
            .map(|(name, h)| (name, h.join().unwrap_or(false)))
            .collect()
    });
    let mut failures = 0;
    for (name, ok) in &results {
        if *ok {
            println!("test {name} ... ok");
        } else {
            println!("test {name} ... FAILED");
            failures += 1;
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed; finished in {:.2}s",
        if failures == 0 { "ok" } else { "FAILED" },
        results.len() - failures,
        failures,
        started.elapsed().as_secs_f64()
    );
    if failures > 0 {
        std::process::exit(101);
    }
}
