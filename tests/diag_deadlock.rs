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
//! whose only wake-up is a timer, a sleep, a connection from outside the process, or a plain
//! thread goway does not know about.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use goway::chan;
use goway::sync::{Mutex, WaitGroup};

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
        "cycle" => {
            goway::runtime::Config::new()
                .registry(true)
                .apply()
                .expect("configure before the first goroutine");
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

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn start(scenario: &str) -> Child {
    command(scenario)
        .stdin(Stdio::null())
        .spawn()
        .expect("start the child")
}

fn command(scenario: &str) -> Command {
    let mut c = Command::new(std::env::current_exe().expect("current_exe"));
    c.env("GOWAY_DIAG_CHILD", scenario)
        .env_remove("GOWAY_DETECT_DEADLOCK")
        .env_remove("GOWAY_REGISTRY")
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // The registry is off by default: on through the environment here, and through
    // `Config::registry` in the "cycle" scenario.
    if scenario != "cycle" {
        c.env("GOWAY_REGISTRY", "1");
    }
    c
}

/// `dump_on_signal`: each SIGQUIT prints the dump, and the program goes on.
fn sigquit_prints_the_dump_and_the_program_goes_on() {
    let mut child = command("sigquit")
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
            let deadline = Instant::now() + Duration::from_secs(10);
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
        o.code,
        Some(0),
        "the child did not survive SIGQUIT: {}",
        o.stdout
    );
    assert!(o.stdout.contains("done"), "{}", o.stdout);
}

/// Waits for the child (killing it after 30 s) and collects its output. `on_line` sees each
/// stdout line as it comes.
fn finish(mut child: Child, mut on_line: impl FnMut(&str)) -> Outcome {
    const LIMIT: Duration = Duration::from_secs(30);
    // Read by the caller when it took the pipe already.
    let err = child.stderr.take();
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut e) = err {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + LIMIT;
    let mut stdout = String::new();
    let status = loop {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(line) => {
                on_line(&line);
                stdout.push_str(&line);
                stdout.push('\n');
                continue;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                // stdout closed: the child is exiting; wait for it below.
            }
        }
        if let Some(st) = child.try_wait().expect("wait for the child") {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child still running after {LIMIT:?}; stdout:\n{stdout}");
        }
    };
    let _ = reader.join();
    for line in rx.try_iter() {
        stdout.push_str(&line);
        stdout.push('\n');
    }
    Outcome {
        code: status.code(),
        stdout,
        stderr: err.join().expect("stderr reader"),
    }
}

fn run(scenario: &str) -> Outcome {
    finish(start(scenario), |_| {})
}

fn expect_deadlock(scenario: &str, must_show: &[&str]) {
    let o = run(scenario);
    assert_eq!(
        o.code,
        Some(2),
        "{scenario}: expected exit status 2\nstderr:\n{}\nstdout:\n{}",
        o.stderr,
        o.stdout
    );
    assert!(
        o.stderr.starts_with(FATAL),
        "{scenario}: stderr does not start with Go's message:\n{}",
        o.stderr
    );
    for s in must_show {
        assert!(
            o.stderr.contains(s),
            "{scenario}: the dump lacks {s:?}:\n{}",
            o.stderr
        );
    }
}

fn expect_no_report(o: Outcome, scenario: &str) {
    assert!(
        !o.stderr.contains(FATAL),
        "{scenario}: false deadlock report:\n{}",
        o.stderr
    );
    assert_eq!(
        o.code,
        Some(0),
        "{scenario}: expected a clean exit\nstderr:\n{}",
        o.stderr
    );
    assert!(o.stdout.contains("done"), "{scenario}: {}", o.stdout);
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
    let mut failures = 0;
    let mut test = |name: &str, f: &dyn Fn()| {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        match r {
            Ok(()) => println!("test {name} ... ok"),
            Err(_) => {
                println!("test {name} ... FAILED");
                failures += 1;
            }
        }
    };
    test("main_blocked_on_recv_is_a_deadlock", &|| {
        expect_deadlock(
            "main_recv",
            &[
                "thread \"main\"",
                "[chan receive]",
                "tests/diag_deadlock.rs:",
            ],
        )
    });
    test("go_ground_truth_44_deadlock_main_blocked", &|| {
        let o = run("gt44");
        assert_eq!(o.code, Some(2), "{}", o.stderr);
        assert_eq!(o.stdout, "main waiting on a channel nobody sends to\n");
        assert!(o.stderr.starts_with(FATAL), "{}", o.stderr);
        assert!(
            o.stderr.contains("1 goroutine [chan receive]"),
            "{}",
            o.stderr
        );
    });
    test("go_ground_truth_12_nil_channel_blocks_forever", &|| {
        let o = run("gt12");
        assert_eq!(o.code, Some(2), "{}", o.stderr);
        assert_eq!(
            o.stdout,
            "receive on nil channel: still blocked after timeout\n\
             send on nil channel: still blocked after timeout\n\
             main blocking on nil channel now\n"
        );
        assert!(o.stderr.starts_with(FATAL), "{}", o.stderr);
        assert!(
            o.stderr.contains("[chan receive (nil chan)]"),
            "{}",
            o.stderr
        );
    });
    test("main_blocked_on_nil_channel_is_a_deadlock", &|| {
        expect_deadlock("nil_chan", &["[chan receive (nil chan)]"])
    });
    test("empty_select_is_a_deadlock", &|| {
        expect_deadlock("select_no_cases", &["[select (no cases)]"])
    });
    test("wait_group_never_done_is_a_deadlock", &|| {
        expect_deadlock("wait_group", &["[sync.WaitGroup.Wait]"])
    });
    test("locking_a_held_mutex_is_a_deadlock", &|| {
        expect_deadlock("double_lock", &["[sync.Mutex.Lock]"])
    });
    test("cycle_of_goroutines_is_a_deadlock", &|| {
        expect_deadlock(
            "cycle",
            &[
                "[chan receive]: channel made at tests/diag_deadlock.rs:",
                "\"cycle-a\"",
                "\"cycle-b\"",
                "[join]",
            ],
        )
    });
    test("waiting_on_a_timer_is_not_a_deadlock", &|| {
        expect_no_report(run("timer_only"), "timer_only")
    });
    test("waiting_on_a_sleeping_goroutine_is_not_a_deadlock", &|| {
        expect_no_report(run("sleeper"), "sleeper")
    });
    test("waiting_on_an_unknown_thread_is_not_a_deadlock", &|| {
        expect_no_report(run("plain_thread"), "plain_thread")
    });
    test(
        "waiting_on_a_coroutine_spawned_with_may_is_not_a_deadlock",
        &|| expect_no_report(run("foreign"), "foreign"),
    );
    test("waiting_on_network_io_is_not_a_deadlock", &|| {
        let child = start("accept");
        let mut connected = None;
        let o = finish(child, |line| {
            if let Some(addr) = line.strip_prefix("listening on ") {
                // Leave the child waiting on nothing but the network for a while: a detector
                // that counted I/O as asleep would fire meanwhile.
                std::thread::sleep(EXPOSURE);
                connected = Some(std::net::TcpStream::connect(addr.trim()).expect("connect"));
            }
        });
        assert!(
            connected.is_some(),
            "the child never listened: {}",
            o.stdout
        );
        expect_no_report(o, "accept");
    });
    test(
        "sigquit_prints_the_dump_and_the_program_goes_on",
        &sigquit_prints_the_dump_and_the_program_goes_on,
    );
    println!(
        "\ntest result: {}. {} failed; finished in {:.2}s",
        if failures == 0 { "ok" } else { "FAILED" },
        failures,
        started.elapsed().as_secs_f64()
    );
    if failures > 0 {
        std::process::exit(101);
    }
}
