//! The blocked-worker watchdog: a goroutine that holds its worker thread (here with
//! `std::thread::sleep`, which never parks) for longer than the threshold, 100 ms by default,
//! is named in a warning logged by the runtime; a goroutine that parks for as long (goway's
//! `time::sleep`) is not, and neither is a blocking one once the watchdog is off.
//!
//! Each scenario runs in a child process (the watchdog's default is on, in the configuration
//! of a fresh process) whose logger writes warnings to stderr: this test binary re-executed
//! with `GOWAY_WATCHDOG_CHILD=<scenario>` running the ignored `child` test.

use std::io::Write;
use std::time::Duration;

mod common;
use common::child::{self, Outcome};

const CHILD_ENV: &str = "GOWAY_WATCHDOG_CHILD";
/// A child is killed after this long (each takes about 300 ms).
const CHILD_LIMIT: Duration = Duration::from_secs(10);
/// How long the goroutine keeps its worker (or parks): three times the default threshold.
const HOLD: Duration = Duration::from_millis(300);
const WARNING: &str = "has held its worker thread for";

// ----- the child side ----------------------------------------------------------------------

/// Prints the spawn's line (that of `.spawn(`), for the parent to look for.
fn announce_site(line: u32) {
    println!("site={}:{}", file!(), line);
    let _ = std::io::stdout().flush();
}

fn run_child(scenario: &str) {
    env_logger::Builder::new()
        .filter_level(log::LevelFilter::Warn)
        .target(env_logger::Target::Stderr)
        .init();
    if scenario == "off" {
        goway::runtime::Config::new()
            .blocked_worker(Duration::ZERO)
            .apply()
            .expect("configure before the first goroutine");
    }
    let parks = scenario == "parks";
    announce_site(line!() + 3);
    let h = goway::Builder::new()
        .name("sleeper")
        .spawn(move || {
            if parks {
                goway::time::sleep(HOLD);
            } else {
                // The point of the test: a goroutine that blocks its worker.
                std::thread::sleep(HOLD);
            }
        })
        .expect("spawn");
    common::join(h);
    println!("joined");
}

/// The child process of the tests below; does nothing unless [`CHILD_ENV`] is set.
#[test]
#[ignore = "the child process of the other tests: does nothing unless GOWAY_WATCHDOG_CHILD is set"]
fn child() {
    if let Ok(s) = std::env::var(CHILD_ENV) {
        run_child(&s);
    }
}

// ----- the parent side ---------------------------------------------------------------------

fn run(scenario: &str) -> Outcome {
    let o = child::run(CHILD_ENV, scenario, CHILD_LIMIT);
    assert!(o.status.success(), "{}", o.describe());
    assert!(o.stdout.contains("joined"), "{}", o.describe());
    o
}

#[test]
fn a_goroutine_blocking_its_worker_is_named() {
    let o = run("blocks");
    let d = o.describe();
    let warnings: Vec<&str> = o.stderr.lines().filter(|l| l.contains(WARNING)).collect();
    assert_eq!(warnings.len(), 1, "one warning per incident\n{d}");
    let w = warnings[0];
    assert!(w.contains("WARN"), "{d}");
    assert!(w.contains("goroutine "), "{d}");
    assert!(w.contains("\"sleeper\""), "{d}");
    assert!(w.contains(&format!("(spawned at {}:", o.site())), "{d}");
    let ms: u64 = w
        .split(WARNING)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no duration in {w:?}\n{d}"));
    assert!(
        (100..=HOLD.as_millis() as u64).contains(&ms),
        "held {ms} ms\n{d}"
    );
}

#[test]
fn a_goroutine_parking_as_long_is_not() {
    let o = run("parks");
    assert!(!o.stderr.contains(WARNING), "{}", o.describe());
}

#[test]
fn no_warning_with_the_watchdog_off() {
    let o = run("off");
    assert!(!o.stderr.contains(WARNING), "{}", o.describe());
}
