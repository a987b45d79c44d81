//! may-resp-kv: a small Redis-protocol (RESP2) key-value server on raw may, answering what
//! the Go peer answers: PING [msg], ECHO msg, SET key value (later options ignored), GET key,
//! DEL key..., INCR key, QUIT, plus `CONFIG GET name` ([name, ""]) and `COMMAND` (an empty
//! array) for redis-benchmark's and redis-cli's start-up. Requests are multibulk arrays or
//! inline lines.
//!
//! One coroutine per connection; the keys in one map behind may's `RwLock`. After each read,
//! every complete request in the buffer runs and its reply is appended to one output
//! buffer, which is then written with one `write_all`: a pipeline that arrives in one read
//! costs one write. One may worker per CPU the process may use.
//!
//! Usage: may-resp-kv [-addr 127.0.0.1:PORT]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::ops::Range;
use std::sync::Arc;

use may::go;
use may::net::TcpStream;
use may::sync::RwLock;

const READ_SIZE: usize = 16 << 10;
const MAX_LINE: usize = 64 << 10;
const MAX_ARGS: usize = 1 << 20;
const MAX_BULK: usize = 512 << 20;

type Store = Arc<RwLock<HashMap<Vec<u8>, Vec<u8>>>>;

/// Malformed input: the server answers `-ERR Protocol error` and closes.
struct ProtocolError;

/// The next line of `buf` from `from`: (end of its text, start of the next line), without
/// "\r\n" or "\n"; `None` while incomplete.
fn next_line(buf: &[u8], from: usize) -> Result<Option<(usize, usize)>, ProtocolError> {
    match buf[from..].iter().position(|&b| b == b'\n') {
        Some(i) => {
            let nl = from + i;
            let end = if nl > from && buf[nl - 1] == b'\r' {
                nl - 1
            } else {
                nl
            };
            Ok(Some((end, nl + 1)))
        }
        None if buf.len() - from > MAX_LINE => Err(ProtocolError),
        None => Ok(None),
    }
}

fn decimal(b: &[u8]) -> Option<usize> {
    if b.is_empty() || b.len() > 18 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0, |n, &d| n * 10 + usize::from(d - b'0')))
}

/// Parses the request at the start of `buf` into argument ranges; returns the bytes it
/// used, or `None` while the request is incomplete.
fn parse(buf: &[u8], args: &mut Vec<Range<usize>>) -> Result<Option<usize>, ProtocolError> {
    args.clear();
    let Some((end, mut pos)) = next_line(buf, 0)? else {
        return Ok(None);
    };
    if end == 0 || buf[0] != b'*' {
        // inline: words separated by white space
        let mut i = 0;
        while i < end {
            let start = i + buf[i..end]
                .iter()
                .take_while(|b| b.is_ascii_whitespace())
                .count();
            let stop = start
                + buf[start..end]
                    .iter()
                    .take_while(|b| !b.is_ascii_whitespace())
                    .count();
            if stop > start {
                args.push(start..stop);
            }
            i = stop.max(start + 1);
        }
        return Ok(Some(pos));
    }
    let count = decimal(&buf[1..end])
        .filter(|&n| n <= MAX_ARGS)
        .ok_or(ProtocolError)?;
    for _ in 0..count {
        let Some((end, data)) = next_line(buf, pos)? else {
            return Ok(None);
        };
        if end == pos || buf[pos] != b'$' {
            return Err(ProtocolError);
        }
        let len = decimal(&buf[pos + 1..end])
            .filter(|&l| l <= MAX_BULK)
            .ok_or(ProtocolError)?;
        if buf.len() < data + len + 2 {
            return Ok(None);
        }
        if &buf[data + len..data + len + 2] != b"\r\n" {
            return Err(ProtocolError);
        }
        args.push(data..data + len);
        pos = data + len + 2;
    }
    Ok(Some(pos))
}

fn bulk(out: &mut Vec<u8>, v: &[u8]) {
    out.push(b'$');
    out.extend_from_slice(v.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(v);
    out.extend_from_slice(b"\r\n");
}

fn integer(out: &mut Vec<u8>, n: i64) {
    out.push(b':');
    out.extend_from_slice(n.to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn arity(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(
        format!("-ERR wrong number of arguments for '{name}' command\r\n").as_bytes(),
    );
}

/// One parsed request: argument ranges into the read buffer (no copy, no allocation).
struct Args<'a> {
    buf: &'a [u8],
    ranges: &'a [Range<usize>],
}

impl<'a> Args<'a> {
    fn get(&self, i: usize) -> &'a [u8] {
        &self.buf[self.ranges[i].clone()]
    }

    fn len(&self) -> usize {
        self.ranges.len()
    }
}

/// Runs one request, appending its reply to `out`; returns true for QUIT.
fn execute(store: &Store, args: &Args, out: &mut Vec<u8>) -> bool {
    let mut upper = [0u8; 8];
    let name: &[u8] = if args.get(0).len() <= upper.len() {
        let n = args.get(0).len();
        upper[..n].copy_from_slice(args.get(0));
        upper[..n].make_ascii_uppercase();
        &upper[..n]
    } else {
        b""
    };
    match name {
        b"GET" if args.len() == 2 => match store.read() {
            Ok(map) => match map.get(args.get(1)) {
                Some(v) => bulk(out, v),
                None => out.extend_from_slice(b"$-1\r\n"),
            },
            Err(_) => out.extend_from_slice(b"-ERR store unavailable\r\n"),
        },
        b"GET" => arity(out, "get"),
        b"SET" if args.len() >= 3 => {
            if let Ok(mut map) = store.write() {
                map.insert(args.get(1).to_vec(), args.get(2).to_vec());
            }
            out.extend_from_slice(b"+OK\r\n");
        }
        b"SET" => arity(out, "set"),
        b"PING" => match args.len() {
            1 => out.extend_from_slice(b"+PONG\r\n"),
            2 => bulk(out, args.get(1)),
            _ => arity(out, "ping"),
        },
        b"ECHO" if args.len() == 2 => bulk(out, args.get(1)),
        b"ECHO" => arity(out, "echo"),
        b"DEL" if args.len() >= 2 => {
            let removed = match store.write() {
                Ok(mut map) => (1..args.len())
                    .filter(|&i| map.remove(args.get(i)).is_some())
                    .count(),
                Err(_) => 0,
            };
            integer(out, removed as i64);
        }
        b"DEL" => arity(out, "del"),
        b"INCR" if args.len() == 2 => incr(store, args.get(1), out),
        b"INCR" => arity(out, "incr"),
        b"QUIT" => {
            out.extend_from_slice(b"+OK\r\n");
            return true;
        }
        b"CONFIG" if args.len() == 3 && args.get(1).eq_ignore_ascii_case(b"GET") => {
            out.extend_from_slice(b"*2\r\n");
            bulk(out, args.get(2));
            bulk(out, b"");
        }
        b"CONFIG" | b"COMMAND" => out.extend_from_slice(b"*0\r\n"),
        _ => {
            out.extend_from_slice(b"-ERR unknown command '");
            out.extend(
                args.get(0)
                    .iter()
                    .map(|&c| if (b' '..=b'~').contains(&c) { c } else { b' ' }),
            );
            out.extend_from_slice(b"'\r\n");
        }
    }
    false
}

fn incr(store: &Store, key: &[u8], out: &mut Vec<u8>) {
    let Ok(mut map) = store.write() else {
        out.extend_from_slice(b"-ERR store unavailable\r\n");
        return;
    };
    let current = match map.get(key) {
        None => Some(0),
        Some(v) => std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse::<i64>().ok()),
    };
    match current {
        None => out.extend_from_slice(b"-ERR value is not an integer or out of range\r\n"),
        Some(i64::MAX) => out.extend_from_slice(b"-ERR increment or decrement would overflow\r\n"),
        Some(n) => {
            map.insert(key.to_vec(), (n + 1).to_string().into_bytes());
            drop(map);
            integer(out, n + 1);
        }
    }
}

fn serve(mut sock: TcpStream, store: Store) {
    let _ = sock.set_nodelay(true);
    let mut buf = vec![0u8; READ_SIZE];
    let mut filled = 0; // buf[..filled] holds bytes not yet parsed
    let mut out = Vec::with_capacity(READ_SIZE);
    let mut ranges = Vec::new();
    loop {
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0); // a request larger than the buffer
        }
        match sock.read(&mut buf[filled..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => filled += n,
        }
        let (mut used, mut close) = (0, false);
        while used < filled && !close {
            let rest = &buf[used..filled];
            match parse(rest, &mut ranges) {
                Ok(None) => break,
                Ok(Some(n)) => {
                    if !ranges.is_empty() {
                        close = execute(
                            &store,
                            &Args {
                                buf: rest,
                                ranges: &ranges,
                            },
                            &mut out,
                        );
                    }
                    used += n;
                }
                Err(ProtocolError) => {
                    out.extend_from_slice(b"-ERR Protocol error\r\n");
                    close = true;
                }
            }
        }
        if !out.is_empty() {
            if sock.write_all(&out).is_err() {
                return;
            }
            out.clear();
        }
        if close {
            return;
        }
        buf.copy_within(used..filled, 0);
        filled -= used;
        if filled == 0 && buf.len() > 4 * READ_SIZE {
            buf = vec![0u8; READ_SIZE]; // give back what a huge request grew
        }
    }
}

fn main() {
    let addr = may_peers::addr("127.0.0.1:7015");
    may_peers::set_workers(may_peers::cpus());
    let store: Store = Arc::default();
    let ln = may_peers::listen(addr);
    let acceptor = go!(move || {
        for sock in ln.incoming().flatten() {
            let store = store.clone();
            go!(move || serve(sock, store));
        }
    });
    let _ = acceptor.join();
}
