//! pubsub_kv: a line-protocol key-value store with publish/subscribe, ported line for line from
//! the plain Go program beside it (`examples/go/pubsub_kv/main.go`): one goroutine per
//! connection reading commands, one writer goroutine per connection fed by a channel, shared
//! maps under a mutex, an idle timeout by read deadline, and a drain on SIGINT or SIGTERM that
//! wakes every blocked reader by moving its deadline to now, from another goroutine, as Go's
//! `conn.SetReadDeadline(time.Now())` does. A second signal during the drain exits at once
//! (status 130 or 143), as the other example servers do.
//!
//! Commands, one per line: `SET key value` | `GET key` | `DEL key` | `SUB topic` |
//! `PUB topic message` | `QUIT`. Replies: `OK`, the value, `(nil)`, `(integer) n`, `ERR ...`.
//! A subscriber receives `MESSAGE topic message` lines.
//!
//! ```text
//! cargo run --release --example pubsub_kv -- --addr 127.0.0.1:7890 --idle 30s
//! nc 127.0.0.1 7890     # then: SUB news, and from another nc: PUB news hello
//! ```
//!
//! `docs/porting-from-go.md` ("A Go server, ported whole") shows the two programs side by
//! side; `tests/ports.rs` runs the same conversation against both and compares the replies.

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use goway::bufio::Scanner;
use goway::chan::{self, Sender};
use goway::go;
use goway::net::{TcpListener, TcpStream};
use goway::signal::{self, Signal};
use goway::sync::{Mutex, WaitGroup};

#[derive(Parser)]
struct Args {
    /// listen address
    #[arg(long, default_value = "127.0.0.1:7890")]
    addr: String,
    /// close a connection idle this long (Go's duration syntax: 30s, 500ms, 2m)
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    idle: Duration,
}

struct Server {
    mu: Mutex<State>,
    idle: Duration,
    draining: AtomicBool,
    wg: WaitGroup,
}

/// What `mu` guards: Go's three maps (a client is its id here; Go keys by `*client`).
#[derive(Default)]
struct State {
    data: HashMap<String, String>,
    topics: HashMap<String, HashMap<u64, Sender<String>>>,
    conns: HashMap<u64, Arc<TcpStream>>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let args = Args::parse();

    let ln = Arc::new(TcpListener::bind(args.addr.as_str())?);
    println!("listening on {}", ln.local_addr()?);
    let s = Arc::new(Server {
        mu: Mutex::new(State::default()),
        idle: args.idle,
        draining: AtomicBool::new(false),
        wg: WaitGroup::new(),
    });

    let sigs = signal::notify(&[Signal::INT, Signal::TERM])?;
    {
        let (s, ln) = (s.clone(), ln.clone());
        go!(move || {
            let Ok(sig) = sigs.recv() else { return };
            println!("{sig}: draining");
            let _ = ln.close();
            s.draining.store(true, Ordering::SeqCst);
            for c in s.mu.lock().conns.values() {
                c.set_read_deadline(Some(Instant::now())); // wakes the blocked reader
            }
            drop(s);
            // Not in the Go program (whose drain ignores further signals): a second signal
            // during the drain exits at once, as goway's other servers do
            // (`signal::shutdown_context`).
            if let Ok(sig) = sigs.recv() {
                println!("{sig}: exiting at once");
                std::process::exit(128 + sig.as_raw());
            }
        });
    }

    let ids = AtomicU64::new(0);
    while let Ok((conn, _)) = ln.accept() {
        let id = ids.fetch_add(1, Ordering::Relaxed);
        let s2 = s.clone();
        s.wg.go(move || s2.serve(id, conn));
    }
    s.wg.wait();
    println!("drained");
    Ok(())
}

impl Server {
    fn serve(&self, id: u64, conn: TcpStream) {
        let conn = Arc::new(conn);
        let (out, out_rx) = chan::bounded::<String>(64);
        self.mu.lock().conns.insert(id, conn.clone());

        let writer = {
            let conn = conn.clone();
            go!(move || {
                let mut w = BufWriter::new(&*conn);
                for line in &out_rx {
                    if writeln!(w, "{line}").is_err() {
                        break;
                    }
                    if out_rx.is_empty() && w.flush().is_err() {
                        break;
                    }
                }
                for _ in &out_rx {} // drain after a write error
            })
        };

        let mut sc = Scanner::new(&*conn);
        loop {
            conn.set_read_deadline(Some(Instant::now() + self.idle));
            // Checked after the deadline is set: a drain that starts later moves it to now.
            if self.draining.load(Ordering::SeqCst) || !sc.scan() {
                break;
            }
            if !self.command(id, &out, &sc.text()) {
                break;
            }
        }

        {
            let mut st = self.mu.lock();
            st.conns.remove(&id);
            for subs in st.topics.values_mut() {
                subs.remove(&id);
            }
        }
        drop(out); // close(c.out)
        let _ = writer.join();
        let _ = conn.close();
    }

    /// Runs one line; `false` ends the connection.
    fn command(&self, id: u64, out: &Sender<String>, line: &str) -> bool {
        let f: Vec<&str> = line.split_whitespace().collect();
        let Some(cmd) = f.first() else { return true };
        let reply = |r: String| {
            let _ = out.send(r);
        };
        match (cmd.to_uppercase().as_str(), f.len()) {
            ("SET", 3..) => {
                self.mu.lock().data.insert(f[1].into(), f[2..].join(" "));
                reply("OK".into());
            }
            ("GET", 2) => {
                let v = self.mu.lock().data.get(f[1]).cloned();
                reply(v.unwrap_or_else(|| "(nil)".into()));
            }
            ("DEL", 2) => {
                let gone = self.mu.lock().data.remove(f[1]).is_some();
                reply(format!("(integer) {}", u8::from(gone)));
            }
            ("SUB", 2) => {
                let mut st = self.mu.lock();
                let subs = st.topics.entry(f[1].into()).or_default();
                subs.insert(id, out.clone());
                drop(st);
                reply("OK".into());
            }
            ("PUB", 3..) => {
                let msg = format!("MESSAGE {} {}", f[1], f[2..].join(" "));
                let st = self.mu.lock();
                let mut n = 0;
                for sub in st.topics.get(f[1]).into_iter().flat_map(|t| t.values()) {
                    // A subscriber that does not keep up misses messages.
                    if sub.try_send(msg.clone()).is_ok() {
                        n += 1;
                    }
                }
                drop(st);
                reply(format!("(integer) {n}"));
            }
            ("QUIT", _) => {
                reply("OK".into());
                return false;
            }
            _ => reply(format!("ERR unknown command or wrong arguments: {line:?}")),
        }
        true
    }
}

/// Go's `time.ParseDuration` for one number and unit (`30s`, `500ms`, `2m`, `1h`, `1.5s`).
fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("time: missing unit in duration {s:?}"))?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("time: invalid duration {s:?}"))?;
    let secs = match unit {
        "ns" => n / 1e9,
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("time: unknown unit {unit:?} in duration {s:?}")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("time: invalid duration {s:?}"))
}
