//! examples/kv/ as a real process, through a small RESP client over TCP and through the
//! real `redis-cli`: every command and option, pipelining, inline commands, expiry (lazy and
//! swept), the protocol errors of docs/reliability.md S1, S2 and S15 answered as Redis answers
//! them, and the max-clients reply.
//!
//! `cargo test --test kv` does not rebuild the example: run `cargo build --release --examples`
//! first (a plain `cargo test --release` does both).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::Command;

use common::example::Example;
use common::{WATCHDOG, wait_until};
use goway::net::codec::resp::{Reply, Request, RespError};

fn start(args: &[&str]) -> Example {
    let mut all = vec!["--addr", "127.0.0.1:0"];
    all.extend_from_slice(args);
    Example::start("kv", &all, true)
}

/// A blocking RESP client: requests out, replies in (parsed by `Reply::decode`).
struct Client {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(addr: &str) -> Client {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(WATCHDOG)).unwrap();
        s.set_write_timeout(Some(WATCHDOG)).unwrap();
        Client { s, buf: Vec::new() }
    }

    fn send(&mut self, args: &[&[u8]]) {
        let mut w = Vec::new();
        Request::from_args(args).encode(&mut w);
        self.s.write_all(&w).unwrap();
    }

    fn raw(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    /// One command, one reply.
    fn cmd(&mut self, args: &[&str]) -> Reply {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.send(&args);
        self.read()
    }

    fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 16 << 10];
        let n = match self.s.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => 0,
            Err(e) => panic!("read: {e}"),
        };
        self.buf.extend_from_slice(&chunk[..n]);
        n
    }

    fn read(&mut self) -> Reply {
        loop {
            if let Some((r, used)) = Reply::decode(&self.buf, 1 << 30).expect("valid reply") {
                self.buf.drain(..used);
                return r;
            }
            assert!(self.fill() > 0, "EOF before a whole reply");
        }
    }

    /// Everything until the server closes the connection.
    fn read_to_eof(&mut self) -> Vec<u8> {
        while self.fill() > 0 {}
        std::mem::take(&mut self.buf)
    }
}

fn ok() -> Reply {
    Reply::OK
}
fn int(v: i64) -> Reply {
    Reply::Integer(v)
}
fn bulk(s: &str) -> Reply {
    Reply::Bulk(s.as_bytes().to_vec())
}
fn error(s: &str) -> Reply {
    Reply::Error(s.to_owned().into())
}

#[test]
fn strings_counters_and_keys() {
    let ex = start(&[]);
    let mut c = Client::connect(ex.addr());
    assert_eq!(c.cmd(&["PING"]), Reply::simple("PONG"));
    assert_eq!(c.cmd(&["ping", "hi"]), bulk("hi"));
    assert_eq!(
        c.cmd(&["PING", "a", "b"]),
        error("ERR wrong number of arguments for 'ping' command")
    );
    assert_eq!(c.cmd(&["EcHo", "x y"]), bulk("x y"));
    assert_eq!(c.cmd(&["GET", "k"]), Reply::Null);
    assert_eq!(c.cmd(&["SET", "k", "v"]), ok());
    assert_eq!(c.cmd(&["get", "k"]), bulk("v"));
    // Binary-safe keys and values.
    c.send(&[b"SET", b"b\r\n\0", b"\0\r\n\xff"]);
    assert_eq!(c.read(), ok());
    c.send(&[b"GET", b"b\r\n\0"]);
    assert_eq!(c.read(), Reply::Bulk(b"\0\r\n\xff".to_vec()));
    // NX, XX, GET.
    assert_eq!(c.cmd(&["SET", "k", "w", "NX"]), Reply::Null);
    assert_eq!(c.cmd(&["SET", "n", "1", "nx"]), ok());
    assert_eq!(c.cmd(&["SET", "missing", "1", "XX"]), Reply::Null);
    assert_eq!(c.cmd(&["SET", "k", "w", "XX"]), ok());
    assert_eq!(c.cmd(&["SET", "k", "x", "GET"]), bulk("w"));
    assert_eq!(c.cmd(&["SET", "new", "x", "GET"]), Reply::Null);
    assert_eq!(c.cmd(&["GET", "k"]), bulk("x"));
    assert_eq!(
        c.cmd(&["SET", "k", "v", "NX", "XX"]),
        error("ERR syntax error")
    );
    assert_eq!(
        c.cmd(&["SET", "k", "v", "EX", "1", "PX", "5"]),
        error("ERR syntax error")
    );
    assert_eq!(c.cmd(&["SET", "k", "v", "EX"]), error("ERR syntax error"));
    assert_eq!(
        c.cmd(&["SET", "k", "v", "BOGUS"]),
        error("ERR syntax error")
    );
    assert_eq!(
        c.cmd(&["SET", "k"]),
        error("ERR wrong number of arguments for 'set' command")
    );
    // DEL, EXISTS (duplicates count twice, as in Redis).
    assert_eq!(c.cmd(&["EXISTS", "k", "k", "nope"]), int(2));
    assert_eq!(c.cmd(&["DEL", "k", "n", "nope"]), int(2));
    assert_eq!(c.cmd(&["EXISTS", "k"]), int(0));
    // Counters.
    assert_eq!(c.cmd(&["INCR", "c"]), int(1));
    assert_eq!(c.cmd(&["INCRBY", "c", "41"]), int(42));
    assert_eq!(c.cmd(&["DECR", "c"]), int(41));
    assert_eq!(c.cmd(&["DECRBY", "c", "-9"]), int(50));
    assert_eq!(c.cmd(&["GET", "c"]), bulk("50"));
    assert_eq!(
        c.cmd(&["INCRBY", "c", "x"]),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(c.cmd(&["SET", "s", "abc"]), ok());
    assert_eq!(
        c.cmd(&["INCR", "s"]),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(c.cmd(&["SET", "s", " 1"]), ok());
    assert_eq!(
        c.cmd(&["INCR", "s"]),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(c.cmd(&["SET", "max", &i64::MAX.to_string()]), ok());
    assert_eq!(
        c.cmd(&["INCR", "max"]),
        error("ERR increment or decrement would overflow")
    );
    assert_eq!(
        c.cmd(&["INCR", "a", "b"]),
        error("ERR wrong number of arguments for 'incr' command")
    );
    // MSET, MGET.
    assert_eq!(c.cmd(&["MSET", "m1", "a", "m2", "b"]), ok());
    assert_eq!(
        c.cmd(&["MGET", "m1", "nope", "m2"]),
        Reply::Array(vec![bulk("a"), Reply::Null, bulk("b")])
    );
    assert_eq!(
        c.cmd(&["MSET", "m1", "a", "m2"]),
        error("ERR wrong number of arguments for 'mset' command")
    );
    // DBSIZE, FLUSHALL, SELECT.
    assert_eq!(c.cmd(&["DBSIZE"]), int(7));
    assert_eq!(c.cmd(&["FLUSHALL"]), ok());
    assert_eq!(c.cmd(&["DBSIZE"]), int(0));
    assert_eq!(c.cmd(&["FLUSHALL", "ASYNC"]), ok());
    assert_eq!(c.cmd(&["FLUSHALL", "LATER"]), error("ERR syntax error"));
    assert_eq!(c.cmd(&["SELECT", "0"]), ok());
    assert_eq!(
        c.cmd(&["SELECT", "1"]),
        error("ERR DB index is out of range")
    );
    // Unknown commands, with Redis's text.
    assert_eq!(
        c.cmd(&["FOO", "a", "b"]),
        error("ERR unknown command 'FOO', with args beginning with: 'a' 'b' ")
    );
    assert_eq!(
        c.cmd(&["NOPE"]),
        error("ERR unknown command 'NOPE', with args beginning with: ")
    );
    // QUIT: +OK, then the server closes.
    assert_eq!(c.cmd(&["QUIT"]), ok());
    assert_eq!(c.read_to_eof(), b"");
}

#[test]
fn tool_commands_for_redis_cli_and_benchmark() {
    let ex = start(&["--maxclients", "100"]);
    let mut c = Client::connect(ex.addr());
    assert_eq!(c.cmd(&["COMMAND"]), Reply::Array(vec![]));
    assert_eq!(c.cmd(&["COMMAND", "DOCS"]), Reply::Array(vec![]));
    assert!(matches!(c.cmd(&["COMMAND", "COUNT"]), Reply::Integer(n) if n > 15));
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "save"]),
        Reply::Array(vec![bulk("save"), bulk("")])
    );
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "MAXCLIENTS", "appendonly"]),
        Reply::Array(vec![
            bulk("appendonly"),
            bulk("no"),
            bulk("maxclients"),
            bulk("100")
        ])
    );
    assert!(matches!(c.cmd(&["CONFIG", "GET", "*"]), Reply::Array(v) if v.len() >= 8));
    assert_eq!(
        c.cmd(&["CONFIG", "NOPE"]),
        error("ERR unknown subcommand 'NOPE'. Try CONFIG HELP.")
    );
    assert!(matches!(c.cmd(&["CLIENT", "ID"]), Reply::Integer(_)));
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]), Reply::Null);
    assert_eq!(c.cmd(&["CLIENT", "SETNAME", "me"]), ok());
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]), bulk("me"));
    assert_eq!(
        c.cmd(&["CLIENT", "SETNAME", "a b"]),
        error("ERR Client names cannot contain spaces, newlines or special characters.")
    );
    assert_eq!(c.cmd(&["CLIENT", "SETINFO", "lib-name", "x"]), ok());
    match c.cmd(&["INFO"]) {
        Reply::Bulk(b) => {
            let info = String::from_utf8(b).unwrap();
            assert!(info.starts_with("# Server"), "{info}");
            // The server's own counters, spin polling's included (kv spins by default).
            for field in [
                "connected_clients:",
                "total_connections_received:",
                "spin_poll_spins:",
                "spin_poll_hits:",
            ] {
                assert!(info.contains(field), "no {field} in {info}");
            }
        }
        r => panic!("INFO: {r:?}"),
    }
}

#[test]
fn pipelining_and_inline_commands() {
    let ex = start(&[]);
    let mut c = Client::connect(ex.addr());
    // 2,000 commands in one write, answered in order.
    let mut w = Vec::new();
    for i in 0..1000 {
        Request::from_args(["SET".to_owned(), format!("key:{i}"), format!("v{i}")]).encode(&mut w);
        Request::from_args(["GET".to_owned(), format!("key:{i}")]).encode(&mut w);
    }
    c.raw(&w);
    for i in 0..1000 {
        assert_eq!(c.read(), ok());
        assert_eq!(c.read(), Reply::Bulk(format!("v{i}").into_bytes()));
    }
    // Inline commands, mixed with multibulk ones, in one write; empty lines are ignored.
    c.raw(b"PING\r\n\r\nSET \"a b\" 'it\\'s'\nGET \"a b\"\r\n*2\r\n$3\r\nGET\r\n$3\r\na b\r\nINCR n\r\n*-1\r\nDBSIZE\r\n");
    assert_eq!(c.read(), Reply::simple("PONG"));
    assert_eq!(c.read(), ok());
    assert_eq!(c.read(), bulk("it's"));
    assert_eq!(c.read(), bulk("it's"));
    assert_eq!(c.read(), int(1));
    assert_eq!(c.read(), int(1002));
    // A request split across many writes.
    let mut w = Vec::new();
    Request::from_args(["ECHO", "split across writes"]).encode(&mut w);
    for b in w.chunks(3) {
        c.raw(b);
    }
    assert_eq!(c.read(), bulk("split across writes"));
}

#[test]
fn keys_expire_lazily_and_by_the_sweeper() {
    let ex = start(&["--sweep-ms", "20"]);
    let mut c = Client::connect(ex.addr());
    assert_eq!(c.cmd(&["SET", "k", "v", "EX", "100"]), ok());
    assert!(matches!(c.cmd(&["TTL", "k"]), Reply::Integer(t) if (90..=100).contains(&t)));
    assert!(matches!(c.cmd(&["PTTL", "k"]), Reply::Integer(t) if t > 90_000 && t <= 100_000));
    assert_eq!(c.cmd(&["TTL", "nope"]), int(-2));
    assert_eq!(c.cmd(&["SET", "p", "v"]), ok());
    assert_eq!(c.cmd(&["TTL", "p"]), int(-1));
    // SET clears the deadline, KEEPTTL keeps it, INCR keeps it.
    assert_eq!(c.cmd(&["SET", "k", "w", "KEEPTTL"]), ok());
    assert!(matches!(c.cmd(&["TTL", "k"]), Reply::Integer(t) if t > 90));
    assert_eq!(c.cmd(&["SET", "k", "w"]), ok());
    assert_eq!(c.cmd(&["TTL", "k"]), int(-1));
    assert_eq!(c.cmd(&["SET", "n", "1", "PX", "100000"]), ok());
    assert_eq!(c.cmd(&["INCR", "n"]), int(2));
    assert!(matches!(c.cmd(&["TTL", "n"]), Reply::Integer(t) if t > 90));
    // EXPIRE and its options, PERSIST.
    assert_eq!(c.cmd(&["EXPIRE", "nope", "10"]), int(0));
    assert_eq!(c.cmd(&["EXPIRE", "p", "100", "XX"]), int(0));
    assert_eq!(c.cmd(&["EXPIRE", "p", "100", "GT"]), int(0));
    assert_eq!(c.cmd(&["EXPIRE", "p", "100", "NX"]), int(1));
    assert_eq!(c.cmd(&["EXPIRE", "p", "50", "NX"]), int(0));
    assert_eq!(c.cmd(&["EXPIRE", "p", "50", "GT"]), int(0));
    assert_eq!(c.cmd(&["EXPIRE", "p", "200", "GT"]), int(1));
    assert_eq!(c.cmd(&["EXPIRE", "p", "300", "LT"]), int(0));
    assert_eq!(c.cmd(&["EXPIRE", "p", "150", "LT"]), int(1));
    assert!(matches!(c.cmd(&["TTL", "p"]), Reply::Integer(t) if (140..=150).contains(&t)));
    assert_eq!(c.cmd(&["PERSIST", "p"]), int(1));
    assert_eq!(c.cmd(&["PERSIST", "p"]), int(0));
    assert_eq!(c.cmd(&["TTL", "p"]), int(-1));
    assert_eq!(
        c.cmd(&["EXPIRE", "p", "1", "NX", "XX"]),
        error("ERR NX and XX, GT or LT options at the same time are not compatible")
    );
    assert_eq!(
        c.cmd(&["EXPIRE", "p", "1", "GT", "LT"]),
        error("ERR GT and LT options at the same time are not compatible")
    );
    assert_eq!(
        c.cmd(&["EXPIRE", "p", "1", "ZZ"]),
        error("ERR Unsupported option ZZ")
    );
    assert_eq!(
        c.cmd(&["EXPIRE", "p", "x"]),
        error("ERR value is not an integer or out of range")
    );
    assert_eq!(
        c.cmd(&["EXPIRE", "p", &i64::MAX.to_string()]),
        error("ERR invalid expire time in 'expire' command")
    );
    assert_eq!(
        c.cmd(&["SET", "k", "v", "EX", "0"]),
        error("ERR invalid expire time in 'set' command")
    );
    assert_eq!(
        c.cmd(&["SET", "k", "v", "PX", "-5"]),
        error("ERR invalid expire time in 'set' command")
    );
    assert_eq!(
        c.cmd(&["SET", "k", "v", "EX", "soon"]),
        error("ERR value is not an integer or out of range")
    );
    // A non-positive EXPIRE deletes; an EXAT in the past too.
    assert_eq!(c.cmd(&["EXPIRE", "p", "-1"]), int(1));
    assert_eq!(c.cmd(&["EXISTS", "p"]), int(0));
    assert_eq!(c.cmd(&["SET", "old", "v", "EXAT", "1"]), ok());
    assert_eq!(c.cmd(&["EXISTS", "old"]), int(0));
    // Lazy expiry: a short PX key reads as gone once its time is up.
    assert_eq!(c.cmd(&["SET", "short", "v", "PX", "50"]), ok());
    wait_until("the short key to expire", WATCHDOG, || {
        c.cmd(&["GET", "short"]) == Reply::Null
    });
    assert_eq!(c.cmd(&["TTL", "short"]), int(-2));
    // The sweeper: keys nobody touches again leave DBSIZE (which does not touch keys).
    assert_eq!(c.cmd(&["FLUSHALL"]), ok());
    let mut w = Vec::new();
    for i in 0..500 {
        Request::from_args([
            "SET".to_owned(),
            format!("t{i}"),
            "v".into(),
            "PX".into(),
            "30".into(),
        ])
        .encode(&mut w);
    }
    c.raw(&w);
    for _ in 0..500 {
        assert_eq!(c.read(), ok());
    }
    assert_eq!(c.cmd(&["SET", "stays", "v"]), ok());
    wait_until("the sweeper to remove the keys", WATCHDOG, || {
        c.cmd(&["DBSIZE"]) == int(1)
    });
    assert_eq!(c.cmd(&["GET", "stays"]), bulk("v"));
}

/// The bytes Redis answers a protocol error with: `-` and the error's (Redis's) text.
fn reply(e: RespError) -> String {
    format!("-{e}\r\n")
}

/// Sends `input` on a fresh connection and returns everything up to the server's close.
fn bad_input(addr: &str, input: &[u8]) -> String {
    let mut c = Client::connect(addr);
    c.raw(input);
    String::from_utf8_lossy(&c.read_to_eof()).into_owned()
}

#[test]
fn protocol_errors_reply_then_close_and_the_server_stays_up() {
    let ex = start(&[]);
    let addr = ex.addr();
    let mut other = Client::connect(addr);
    assert_eq!(other.cmd(&["SET", "alive", "yes"]), ok());
    // S1 (Redis's protocol.tcl inputs), S15 (deep nesting).
    let nested = b"*1\r\n".repeat(100_000);
    let cases: Vec<(&[u8], String)> = vec![
        (b"*3000000000\r\n", reply(RespError::InvalidMultibulkLength)),
        (b"*20000000\r\n", reply(RespError::InvalidMultibulkLength)),
        (
            b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n",
            reply(RespError::InvalidBulkLength),
        ),
        (
            b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n",
            reply(RespError::InvalidBulkLength),
        ),
        (
            b"*1\r\n$18446744073709551615\r\n",
            reply(RespError::InvalidBulkLength),
        ),
        (
            b"*1\r\nfoo\r\n",
            reply(RespError::ExpectedDollar { got: b'f' }),
        ),
        (
            b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n",
            reply(RespError::ExpectedDollar { got: b'f' }),
        ),
        (b"SET \"unbalanced\r\n", reply(RespError::UnbalancedQuotes)),
        (&nested, reply(RespError::ExpectedDollar { got: b'*' })),
        // Requests before the error are answered first, as Redis does.
        (
            b"PING\r\nGET alive\r\n*1\r\nfoo\r\n",
            format!(
                "+PONG\r\n$3\r\nyes\r\n{}",
                reply(RespError::ExpectedDollar { got: b'f' })
            ),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(
            bad_input(addr, input),
            want,
            "{}",
            String::from_utf8_lossy(&input[..input.len().min(40)])
        );
        assert_eq!(other.cmd(&["GET", "alive"]), bulk("yes"));
    }
    // A negative count is an empty request: ignored, the connection goes on.
    let mut c = Client::connect(addr);
    c.raw(b"*-10\r\n*0\r\nPING\r\n");
    assert_eq!(c.read(), Reply::simple("PONG"));
    // Redis's desync tests: a line that never ends is cut at 64 KiB.
    for (start, want) in [
        (&b"\x00"[..], reply(RespError::TooBigInlineRequest)),
        (b"*\x00", reply(RespError::TooBigMultibulkCount)),
    ] {
        let mut input = start.to_vec();
        input.extend(std::iter::repeat_n(b'A', 70 << 10));
        assert_eq!(bad_input(addr, &input), want);
    }
    assert_eq!(other.cmd(&["GET", "alive"]), bulk("yes"));
}

#[test]
fn oversized_bulk_is_refused_before_it_is_buffered() {
    // S2: declare max+1 (the server's 1 MiB) and keep writing; the client must see the error
    // and the close long before 64 MiB.
    let ex = start(&[]);
    let mut c = Client::connect(ex.addr());
    c.raw(b"*2\r\n$3\r\nSET\r\n$1048577\r\n");
    let mut w = c.s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'x'; 64 << 10];
        let mut sent = 0usize;
        while sent < 64 << 20 {
            match w.write(&chunk) {
                Ok(n) => sent += n,
                Err(_) => break,
            }
        }
        sent
    });
    let got = c.read_to_eof();
    assert!(
        got.starts_with(reply(RespError::InvalidBulkLength).as_bytes()),
        "{}",
        String::from_utf8_lossy(&got)
    );
    let sent = common::join_thread(writer);
    assert!(sent < 64 << 20, "the server read all {sent} bytes");
    // Within the limit (with a larger --max-frame) big values work.
    let ex = start(&["--max-frame", "4194304"]);
    let mut c = Client::connect(ex.addr());
    let big = vec![b'z'; 2 << 20];
    c.send(&[b"SET", b"big", &big]);
    assert_eq!(c.read(), ok());
    c.send(&[b"GET", b"big"]);
    assert_eq!(c.read(), Reply::Bulk(big));
}

#[test]
fn clients_over_the_limit_get_redis_reply() {
    let ex = start(&["--maxclients", "2"]);
    let mut a = Client::connect(ex.addr());
    let mut b = Client::connect(ex.addr());
    assert_eq!(a.cmd(&["PING"]), Reply::simple("PONG"));
    assert_eq!(b.cmd(&["PING"]), Reply::simple("PONG"));
    let mut c = Client::connect(ex.addr());
    assert_eq!(c.read_to_eof(), b"-ERR max number of clients reached\r\n");
    assert_eq!(a.cmd(&["PING"]), Reply::simple("PONG"));
    // Once a client leaves, a new one is served.
    drop(b);
    wait_until("a place for a new client", WATCHDOG, || {
        let mut d = Client::connect(ex.addr());
        d.raw(b"PING\r\n");
        d.fill();
        d.buf.starts_with(b"+PONG")
    });
}

fn redis_cli() -> Option<&'static str> {
    let path = "/usr/bin/redis-cli";
    if std::path::Path::new(path).exists() {
        Some(path)
    } else {
        eprintln!("redis-cli not installed (Debian's redis-tools; .ci/run installs it): skipped");
        None
    }
}

fn cli(addr: &str, args: &[&str]) -> String {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let out = Command::new(redis_cli().unwrap())
        .args(["-h", host, "-p", port])
        .args(args)
        .output()
        .expect("run redis-cli");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_real_redis_cli_gets_redis_answers_in_command_and_pipe_modes() {
    let Some(path) = redis_cli() else { return };
    let ex = start(&[]);
    let addr = ex.addr();
    assert_eq!(cli(addr, &["PING"]), "PONG\n");
    assert_eq!(cli(addr, &["SET", "greeting", "hello world"]), "OK\n");
    assert_eq!(cli(addr, &["GET", "greeting"]), "hello world\n");
    assert_eq!(cli(addr, &["INCR", "hits"]), "1\n");
    assert_eq!(cli(addr, &["INCRBY", "hits", "9"]), "10\n");
    assert_eq!(
        cli(addr, &["MGET", "greeting", "hits", "nope"]),
        "hello world\n10\n\n"
    );
    assert_eq!(cli(addr, &["DBSIZE"]), "2\n");
    // Pipe mode: redis-cli --pipe sends a stream and counts the replies.
    let mut stream = Vec::new();
    for i in 0..1000 {
        Request::from_args(["SET".to_owned(), format!("p{i}"), i.to_string()]).encode(&mut stream);
    }
    let (host, port) = addr.rsplit_once(':').unwrap();
    let mut child = Command::new(path)
        .args(["-h", host, "-p", port, "--pipe"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&stream).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("errors: 0, replies: 1000"), "{text}");
    assert_eq!(cli(addr, &["GET", "p999"]), "999\n");
    assert_eq!(cli(addr, &["DBSIZE"]), "1002\n");
}

#[test]
fn the_real_redis_benchmark_runs_unmodified() {
    let path = "/usr/bin/redis-benchmark";
    if !std::path::Path::new(path).exists() {
        eprintln!("redis-benchmark not installed (Debian's redis-tools): skipped");
        return;
    }
    let ex = start(&[]);
    let (host, port) = ex.addr().rsplit_once(':').unwrap();
    let out = Command::new(path)
        .args(["-h", host, "-p", port, "-n", "2000", "-c", "4", "-P", "8"])
        .args(["-t", "ping_inline,ping_mbulk,set,get,incr,mset", "--csv"])
        .output()
        .expect("run redis-benchmark");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text} {out:?}");
    for test in [
        "PING_INLINE",
        "PING_MBULK",
        "SET",
        "GET",
        "INCR",
        "MSET (10 keys)",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("\"{test}\""))),
            "{test} missing from:\n{text}"
        );
    }
    assert!(!text.to_lowercase().contains("error"), "{text}");
    let mut c = Client::connect(ex.addr());
    assert_eq!(c.cmd(&["GET", "counter:__rand_int__"]), bulk("2000"));
}

#[test]
fn expired_keys_left_for_the_sweeper_read_and_write_as_missing() {
    // A sweeper that never runs during the test: expired entries stay in the map.
    let ex = start(&["--sweep-ms", "600000"]);
    let mut c = Client::connect(ex.addr());
    for k in ["x", "y", "z"] {
        assert_eq!(c.cmd(&["SET", k, "5", "PX", "30"]), ok());
    }
    wait_until("x to expire", WATCHDOG, || {
        c.cmd(&["GET", "x"]) == Reply::Null
    });
    assert_eq!(c.cmd(&["EXISTS", "x", "y", "z"]), int(0));
    assert_eq!(
        c.cmd(&["MGET", "x", "y"]),
        Reply::Array(vec![Reply::Null, Reply::Null])
    );
    assert_eq!(c.cmd(&["TTL", "y"]), int(-2));
    assert_eq!(c.cmd(&["DEL", "y"]), int(0));
    // A write starts from a missing key: no value, no deadline.
    assert_eq!(c.cmd(&["INCR", "x"]), int(1));
    assert_eq!(c.cmd(&["TTL", "x"]), int(-1));
    assert_eq!(c.cmd(&["SET", "z", "new", "KEEPTTL"]), ok());
    assert_eq!(c.cmd(&["TTL", "z"]), int(-1));
    assert_eq!(c.cmd(&["GET", "z"]), bulk("new"));
    assert_eq!(c.cmd(&["SET", "z", "n", "NX"]), Reply::Null);
}

/// Raw replies (the bytes of one reply each), for comparing byte for byte.
fn raw_reply<S: Read + Write>(s: &mut S, buf: &mut Vec<u8>, args: &[&[u8]]) -> Vec<u8> {
    let mut w = Vec::new();
    Request::from_args(args).encode(&mut w);
    s.write_all(&w).expect("send a command");
    loop {
        if let Some((_, used)) = Reply::decode(buf, 1 << 30).expect("a valid reply") {
            return buf.drain(..used).collect();
        }
        let mut chunk = [0u8; 16 << 10];
        let n = s.read(&mut chunk).expect("read a reply");
        assert!(n > 0, "EOF before a whole reply to {args:?}");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Wrong arities, of commands and of subcommands, with the texts of Redis 7.0 (taken from
/// redis-server 7.0.15 with a raw socket): a command's arity is checked before it runs, a
/// container's subcommand is looked up and its own arity checked first (`'command|count'`).
#[test]
fn wrong_arity_is_answered_as_redis_answers_it() {
    let ex = start(&[]);
    let mut c = Client::connect(ex.addr());
    let wrong = |name: &str| format!("-ERR wrong number of arguments for '{name}' command\r\n");
    let syntax = "-ERR syntax error\r\n".to_owned();
    let cases: Vec<(&str, String)> = vec![
        ("GET", wrong("get")),
        ("GET a b", wrong("get")),
        ("SET a", wrong("set")),
        ("PING a b", wrong("ping")),
        ("ECHO", wrong("echo")),
        ("ECHO a b", wrong("echo")),
        ("DEL", wrong("del")),
        ("EXISTS", wrong("exists")),
        ("INCR a b", wrong("incr")),
        ("DECR", wrong("decr")),
        ("INCRBY a", wrong("incrby")),
        ("DECRBY a 1 2", wrong("decrby")),
        ("MGET", wrong("mget")),
        ("MSET a", wrong("mset")),
        ("MSET a b c", wrong("mset")),
        ("EXPIRE a", wrong("expire")),
        ("PEXPIRE a", wrong("pexpire")),
        ("TTL a b", wrong("ttl")),
        ("PTTL", wrong("pttl")),
        ("PERSIST a b", wrong("persist")),
        ("DBSIZE x", wrong("dbsize")),
        ("SELECT 0 1", wrong("select")),
        ("FLUSHALL a b", syntax.clone()),
        ("FLUSHDB x", syntax.clone()),
        // The issue: COUNT takes no argument.
        ("COMMAND COUNT x", wrong("command|count")),
        ("command count X Y", wrong("command|count")),
        ("COMMAND HELP x", wrong("command|help")),
        ("COMMAND LIST x", syntax.clone()),
        (
            "COMMAND foo",
            "-ERR unknown subcommand 'foo'. Try COMMAND HELP.\r\n".into(),
        ),
        ("CLIENT", wrong("client")),
        ("CLIENT ID x", wrong("client|id")),
        ("client Id x", wrong("client|id")),
        ("CLIENT GETNAME x", wrong("client|getname")),
        ("CLIENT SETNAME", wrong("client|setname")),
        ("CLIENT SETNAME a b", wrong("client|setname")),
        ("CLIENT INFO x", wrong("client|info")),
        ("CLIENT HELP x", wrong("client|help")),
        ("CLIENT LIST x", syntax.clone()),
        ("CLIENT LIST TYPE", syntax.clone()),
        (
            "CLIENT LIST TYPE foo",
            "-ERR Unknown client type 'foo'\r\n".into(),
        ),
        ("CLIENT LIST ID 1 x", "-ERR Invalid client ID\r\n".into()),
        (
            "CLIENT foo",
            "-ERR unknown subcommand 'foo'. Try CLIENT HELP.\r\n".into(),
        ),
        ("CONFIG", wrong("config")),
        ("CONFIG GET", wrong("config|get")),
        ("CONFIG SET a", wrong("config|set")),
        ("CONFIG SET a b c", syntax.clone()),
        (
            "CONFIG SET a b",
            "-ERR Unknown option or number of arguments for CONFIG SET - 'a'\r\n".into(),
        ),
        ("CONFIG RESETSTAT x", wrong("config|resetstat")),
        ("CONFIG HELP x", wrong("config|help")),
        (
            "CONFIG foo",
            "-ERR unknown subcommand 'foo'. Try CONFIG HELP.\r\n".into(),
        ),
        // Options before the time, as Redis checks them.
        ("EXPIRE a b c", "-ERR Unsupported option c\r\n".into()),
        // Right arities still answer.
        ("COMMAND INFO nosuch", "*1\r\n$-1\r\n".into()),
        ("CLIENT LIST TYPE pubsub", "$0\r\n\r\n".into()),
        ("INFO nosuch", "$0\r\n\r\n".into()),
        ("QUIT x", "+OK\r\n".into()),
    ];
    for (cmd, want) in &cases {
        let args: Vec<&[u8]> = cmd.split(' ').map(str::as_bytes).collect();
        let got = raw_reply(&mut c.s, &mut c.buf, &args);
        assert_eq!(
            String::from_utf8_lossy(&got),
            want.as_str(),
            "{cmd}: kv answered {:?}",
            String::from_utf8_lossy(&got)
        );
    }
    // The containers' HELP, in Redis's layout.
    let mut c = Client::connect(ex.addr());
    for cmd in ["COMMAND", "CLIENT", "CONFIG"] {
        match c.cmd(&[cmd, "help"]) {
            Reply::Array(lines) => {
                let first =
                    format!("{cmd} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:");
                assert_eq!(lines.first(), Some(&Reply::Simple(first.into())));
                assert_eq!(lines.last(), Some(&Reply::simple("    Prints this help.")));
            }
            r => panic!("{cmd} HELP: {r:?}"),
        }
    }
    assert_eq!(
        c.cmd(&["COMMAND", "LIST", "FILTERBY", "PATTERN", "g*"]),
        Reply::Array(vec![bulk("get")])
    );
    match c.cmd(&["INFO", "keyspace", "CLIENTS"]) {
        Reply::Bulk(b) => {
            let info = String::from_utf8(b).unwrap();
            assert!(info.starts_with("# Clients\r\n"), "{info}");
            assert!(info.contains("\r\n\r\n# Keyspace\r\n"), "{info}");
            assert!(!info.contains("# Server"), "{info}");
        }
        r => panic!("INFO: {r:?}"),
    }
}

/// `redis-server` 7.0.x, if installed (Debian's redis-server package; CI installs only
/// redis-tools, so this comparison runs where the server is present).
fn redis_server_7_0() -> Option<&'static str> {
    let path = "/usr/bin/redis-server";
    let version = Command::new(path).arg("--version").output().ok()?;
    let version = String::from_utf8_lossy(&version.stdout).into_owned();
    if version.contains("v=7.0.") {
        Some(path)
    } else {
        eprintln!("redis-server 7.0 not installed ({version:?}): comparison skipped");
        None
    }
}

/// Every command kv lists and every subcommand it serves, with no argument and with one to
/// four more than it takes, sent to kv and to a real Redis 7.0 alike: where Redis answers an
/// error, kv answers the same bytes; where Redis answers, kv does not answer an error.
/// (CLIENT SETINFO, Redis 7.2's, and QUIT, which closes, are left out; Redis runs with one
/// database, as kv has.)
#[test]
fn errors_match_a_real_redis_7_0_byte_for_byte() {
    use std::os::unix::net::UnixStream;
    let Some(server) = redis_server_7_0() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("goway-kv-redis-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("redis.sock");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let redis = Kill(
        Command::new(server)
            .args(["--port", "0", "--unixsocket"])
            .arg(&sock)
            .args(["--save", "", "--appendonly", "no", "--databases", "1"])
            .arg("--dir")
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start redis-server"),
    );
    let mut r = None;
    wait_until("redis-server's socket", WATCHDOG, || {
        r = UnixStream::connect(&sock).ok();
        r.is_some()
    });
    let mut r = r.unwrap();
    r.set_read_timeout(Some(WATCHDOG)).unwrap();
    let mut rbuf = Vec::new();

    let ex = start(&[]);
    let mut k = Client::connect(ex.addr());
    let Reply::Array(names) = k.cmd(&["COMMAND", "LIST"]) else {
        panic!("COMMAND LIST");
    };
    let subs: &[(&str, &[&str])] = &[
        (
            "command",
            &["count", "docs", "help", "info", "list", "Count", "nosuch"],
        ),
        (
            "client",
            &[
                "getname", "help", "id", "info", "list", "setname", "SetName", "nosuch",
            ],
        ),
        (
            "config",
            &["get", "help", "resetstat", "set", "Get", "nosuch"],
        ),
    ];
    let mut probes: Vec<Vec<String>> = Vec::new();
    for n in &names {
        let Reply::Bulk(n) = n else { panic!("{n:?}") };
        let n = String::from_utf8(n.clone()).unwrap();
        if n == "quit" {
            continue;
        }
        for extra in 0..=4 {
            let mut p = vec![n.clone()];
            p.extend(["a", "b", "c", "d"][..extra].iter().map(|s| s.to_string()));
            probes.push(p);
        }
        if let Some((_, ss)) = subs.iter().find(|(c, _)| *c == n) {
            for s in *ss {
                for extra in 0..=4 {
                    let mut p = vec![n.clone(), s.to_string()];
                    p.extend(["x", "y", "z", "w"][..extra].iter().map(|s| s.to_string()));
                    probes.push(p);
                }
            }
        }
    }
    assert!(probes.len() > 150, "{} probes", probes.len());
    let mut errors = 0;
    for p in &probes {
        let args: Vec<&[u8]> = p.iter().map(|a| a.as_bytes()).collect();
        let want = raw_reply(&mut r, &mut rbuf, &args);
        let got = raw_reply(&mut k.s, &mut k.buf, &args);
        let (want, got) = (
            String::from_utf8_lossy(&want),
            String::from_utf8_lossy(&got),
        );
        if want.starts_with('-') {
            errors += 1;
            assert_eq!(got, want, "{p:?}");
        } else {
            assert!(!got.starts_with('-'), "{p:?}: Redis {want:?}, kv {got:?}");
        }
    }
    eprintln!(
        "{} requests compared with redis-server 7.0; {errors} errors answered alike",
        probes.len()
    );
    drop(redis);
    let _ = std::fs::remove_dir_all(&dir);
}
