//! A Redis-protocol (RESP2) key-value server on goway's server model: `redis-cli` and
//! `redis-benchmark` work against it unmodified.
//!
//! Run it with `cargo run --release --example kv` (`--addr` picks another address than
//! 127.0.0.1:6380, `RUST_LOG=debug` logs each connection), then
//! `redis-cli -p 6380 SET greeting hello` and `redis-cli -p 6380 GET greeting`.
//!
//! Commands: PING, ECHO, SET (EX, PX, EXAT, PXAT, NX, XX, KEEPTTL, GET), GET, DEL, EXISTS,
//! INCR, DECR, INCRBY, DECRBY, MGET, MSET, EXPIRE / PEXPIRE (NX, XX, GT, LT), TTL, PTTL,
//! PERSIST, DBSIZE, FLUSHALL / FLUSHDB, SELECT 0, QUIT, and enough of COMMAND, CLIENT, CONFIG
//! and INFO (with sections) for the Redis tools. Requests are multibulk or inline; pipelined
//! requests are answered in order. Replies and errors use Redis's texts: every command and
//! every subcommand has Redis 7.0's arity, checked before it runs (`COMMAND COUNT x` is
//! `ERR wrong number of arguments for 'command|count' command`), and COMMAND, CLIENT and
//! CONFIG answer HELP.
//!
//! The Go shape it ports: `net.Listen`, a goroutine per connection reading requests and
//! writing replies, a map sharded behind mutexes, and a `time.Ticker` goroutine that sweeps
//! expired keys (they also vanish lazily, when a command touches them). Here the connection's
//! goroutines are goway's reader / handler / writer trio, with [`RespPipelineCodec`] handing
//! the handler every request a read brought in, so a pipeline of 16 commands costs one trip
//! through the channels.
//!
//! Replies a client has not read are bounded as Redis bounds them with
//! `client-output-buffer-limit`: a client whose unread replies would pass `--output-hard-limit`
//! bytes, or stay above `--output-soft-limit` for `--output-soft-seconds`, is disconnected and
//! logged (`conn 7 127.0.0.1:50312: closed for overcoming its output limit: hard limit ...`),
//! so a client that pipelines GETs of a large value and never reads costs the server at
//! most about the hard limit. Replies are handed to the writer in pieces of
//! [`REPLY_CHUNK`] bytes, and an MGET stops building its reply past the hard limit, so no
//! single request makes the handler hold more either.
//!
//! Benchmark it beside Go and Redis with
//! `RESP_CANDIDATE='target/release/examples/kv --addr {addr}' bench/compare.sh resp`.

use std::borrow::Cow;
use std::collections::hash_map::RandomState;
use std::collections::{BTreeSet, HashMap};
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use crossbeam_utils::CachePadded;
use goway::net::Server;
use goway::net::codec::RespPipelineCodec;
use goway::net::codec::resp::{Replies, Reply, Req, parse_int};
use goway::net::server::CloseReason;
// The store's lock. A shard is locked only for a hash-map operation and a copy of one value:
// no I/O, no channel operation, nothing that parks, and no drop of a large value (those are
// dropped after unlocking). With 64 shards and one or two worker threads, waiting for a
// shard is rare and lasts a few hundred nanoseconds, so parking_lot's mutex (one CAS when
// free, a brief spin otherwise) is the right tool; goway::sync::Mutex would park the
// goroutine instead, which costs more than the whole critical section.
use parking_lot::{Mutex, MutexGuard};

/// Redis-protocol key-value server on goway.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:6380")]
    addr: String,
    /// Most clients served at once (Redis's `maxclients`); others get
    /// `-ERR max number of clients reached`.
    #[arg(long, default_value_t = 10_000)]
    maxclients: usize,
    /// Largest request in bytes (0: the server's default, 1 MiB); a longer bulk string is
    /// `Protocol error: invalid bulk length`.
    #[arg(long, default_value_t = 0)]
    max_frame: usize,
    /// Milliseconds between sweeps of expired keys.
    #[arg(long, default_value_t = 100)]
    sweep_ms: u64,
    /// Microseconds the server may spin for the next request before its worker thread
    /// sleeps (`Config::spin_poll`; 0: never spin). Spinning spares pipelining clients the
    /// cost of waking a sleeping server, at up to this much server CPU per burst of requests.
    #[arg(long, default_value_t = 50, alias = "busy-poll-us")]
    spin_poll_us: u64,
    /// Bytes of unread replies past which a client is disconnected (Redis's hard
    /// `client-output-buffer-limit`; the default is Redis's for pub/sub clients). 0: none,
    /// the handler waits for the client instead.
    #[arg(long, default_value_t = 32 << 20)]
    output_hard_limit: usize,
    /// Bytes of unread replies a client may stay above for `--output-soft-seconds` (Redis's
    /// soft limit). 0: none.
    #[arg(long, default_value_t = 8 << 20)]
    output_soft_limit: usize,
    /// Seconds a client may stay above the soft limit.
    #[arg(long, default_value_t = 60)]
    output_soft_seconds: u64,
}

const SHARDS: usize = 64;
/// Replies of one batch of requests are handed to the writer whenever this many bytes are
/// ready, so that the output limit sees them grow (a batch of 1,024 GETs of a 100 KiB value
/// would otherwise be 100 MiB in one piece).
const REPLY_CHUNK: usize = 64 << 10;
/// Replies queued for the writer, in pieces: enough that the output limit is reached before
/// this count for replies of [`REPLY_CHUNK`] bytes and more (the count makes the handler
/// wait instead of disconnecting).
const WRITE_QUEUE: usize = 1024;
/// Most expired keys one sweep removes from a shard per lock.
const SWEEP_BATCH: usize = 64;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info,may=warn"))
        .init();
    let args = Args::parse();
    let db = Arc::new(Db::new());
    let mut builder = Server::builder()
        .addr(args.addr)
        .codec(RespPipelineCodec::new())
        .max_connections(args.maxclients)
        .overload_reply(&b"-ERR max number of clients reached\r\n"[..])
        // Redis keeps idle clients forever (`timeout 0`); redis-benchmark's clients wait
        // between tests.
        .idle_timeout(Duration::ZERO)
        .spin_poll(Duration::from_micros(args.spin_poll_us))
        .write_queue(WRITE_QUEUE)
        .output_limit(
            args.output_hard_limit,
            args.output_soft_limit,
            Duration::from_secs(args.output_soft_seconds),
        );
    if args.max_frame > 0 {
        builder = builder.max_frame(args.max_frame);
    }
    let info = ServerInfo {
        maxclients: args.maxclients,
        max_bulk: if args.max_frame > 0 {
            args.max_frame
        } else {
            goway::net::codec::DEFAULT_MAX_FRAME
        },
        server: Arc::new(std::sync::OnceLock::new()),
        output_limit: (
            args.output_hard_limit,
            args.output_soft_limit,
            args.output_soft_seconds,
        ),
    };
    let handle_slot = info.server.clone();
    let handler_db = db.clone();
    let server = builder
        .handler(move |conn| {
            let mut client = Client {
                id: conn.id(),
                peer: conn.peer_addr().to_string(),
                name: None,
            };
            for batch in conn {
                let mut replies = Replies::with_capacity(16 * batch.len());
                let mut quit = false;
                for req in batch.iter() {
                    match handler_db.exec(req, &mut client, &info, &mut replies) {
                        Step::Reply(r) => replies.push(&r),
                        Step::Written => {}
                        Step::Quit => {
                            replies.push(&Reply::OK);
                            quit = true;
                            break;
                        }
                        Step::Overflow => {
                            // Past the hard limit: the server refuses this piece and
                            // disconnects the client, logging why.
                            let _ = conn.send(replies);
                            return Ok(());
                        }
                    }
                    if replies.len() >= REPLY_CHUNK {
                        conn.send(std::mem::take(&mut replies))?;
                    }
                }
                if !replies.is_empty() {
                    conn.send(replies)?;
                }
                if quit {
                    break;
                }
            }
            Ok(())
        })
        .bind()?;
    let _ = handle_slot.set(server.handle());
    // The sweeper: Go's `for range time.Tick(d)`.
    let sweep_db = db.clone();
    let sweep_every = Duration::from_millis(args.sweep_ms.max(1));
    goway::go!(move || {
        for _ in &goway::time::tick(sweep_every) {
            let n = sweep_db.sweep();
            if n > 0 {
                log::debug!("swept {n} expired keys");
            }
        }
    });
    // Tests and scripts read the bound address (`--addr 127.0.0.1:0` picks a free port).
    println!("listening on {}", server.listen_addr());
    match server.serve() {
        Err(goway::net::server::ServeError::ServerClosed) | Ok(()) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

// ----- the store -----------------------------------------------------------------------------

/// Milliseconds since the Unix epoch (Redis's `mstime()`); expiry times use the same clock.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `now_ms()` read at most once per command, and only if a key with a deadline is met.
struct Clock(Option<i64>);

impl Clock {
    fn get(&mut self) -> i64 {
        *self.0.get_or_insert_with(now_ms)
    }
}

struct Entry {
    value: Vec<u8>,
    /// Deadline in `now_ms()` milliseconds; 0 for none.
    expires: i64,
}

#[derive(Default)]
struct Shard {
    map: HashMap<Vec<u8>, Entry>,
    /// `(deadline, key)` of every key with a deadline, soonest first, for the sweeper.
    expiring: BTreeSet<(i64, Vec<u8>)>,
}

impl Shard {
    /// The live entry for `key`, for reading: one hash lookup. An entry past its deadline
    /// reads as missing and is left for the sweeper (or the next write) to remove.
    fn peek(&mut self, key: &[u8], clock: &mut Clock) -> Option<&Entry> {
        match self.map.get(key) {
            Some(e) if e.expires != 0 && e.expires <= clock.get() => None,
            other => other,
        }
    }

    /// The live entry for `key`, for writing: an entry past its deadline is removed first,
    /// so a write starts from a missing key (no stale deadline kept).
    fn live(&mut self, key: &[u8], clock: &mut Clock) -> Option<&mut Entry> {
        if self.expiring.is_empty() {
            // No key of this shard has a deadline: one lookup.
            return self.map.get_mut(key);
        }
        let expired = match self.map.get(key) {
            None => return None,
            Some(e) => e.expires != 0 && e.expires <= clock.get(),
        };
        if expired {
            self.remove(key);
            return None;
        }
        self.map.get_mut(key)
    }

    fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let e = self.map.remove(key)?;
        if e.expires != 0 {
            self.expiring.remove(&(e.expires, key.to_vec()));
        }
        Some(e)
    }

    /// Stores `value` under `key`. `expires`: `Some(deadline or 0)` replaces the deadline,
    /// `None` keeps the current one (KEEPTTL, INCR). Reuses the old value's buffer.
    fn set(&mut self, key: &[u8], value: &[u8], expires: Option<i64>) {
        match self.map.get_mut(key) {
            Some(e) => {
                e.value.clear();
                e.value.extend_from_slice(value);
                if let Some(t) = expires {
                    let old = std::mem::replace(&mut e.expires, t);
                    self.retime(key, old, t);
                }
            }
            None => {
                let t = expires.unwrap_or(0);
                self.map.insert(
                    key.to_vec(),
                    Entry {
                        value: value.to_vec(),
                        expires: t,
                    },
                );
                self.retime(key, 0, t);
            }
        }
    }

    /// Sets the deadline of an existing key.
    fn set_expiry(&mut self, key: &[u8], t: i64) {
        if let Some(e) = self.map.get_mut(key) {
            let old = std::mem::replace(&mut e.expires, t);
            self.retime(key, old, t);
        }
    }

    fn retime(&mut self, key: &[u8], old: i64, new: i64) {
        if old == new {
            return;
        }
        if old != 0 {
            self.expiring.remove(&(old, key.to_vec()));
        }
        if new != 0 {
            self.expiring.insert((new, key.to_vec()));
        }
    }
}

struct Db {
    shards: Box<[CachePadded<Mutex<Shard>>]>,
    /// Seeds the shard choice (per process, so clients cannot easily aim at one shard).
    seed: u64,
}

impl Db {
    fn new() -> Self {
        Db {
            shards: (0..SHARDS)
                .map(|_| CachePadded::new(Mutex::default()))
                .collect(),
            seed: RandomState::new().hash_one(0x6b76u64),
        }
    }

    /// FxHash's step (a rotate, xor and multiply per 8 bytes) from a per-process seed: much
    /// cheaper than the maps' SipHash, and the maps keep SipHash against collision floods.
    fn shard_of(&self, key: &[u8]) -> usize {
        let mut h = self.seed;
        let mut chunks = key.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
        let mut w = [0u8; 8];
        w[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w) ^ key.len() as u64)
            .wrapping_mul(0x517c_c1b7_2722_0a95);
        (h >> 32) as usize % SHARDS
    }

    fn shard(&self, key: &[u8]) -> MutexGuard<'_, Shard> {
        self.shards[self.shard_of(key)].lock()
    }

    /// Locks the shards of `keys` in index order (so two multi-key commands cannot deadlock)
    /// and returns the guards by shard index.
    fn lock_many<'a, 'k>(
        &'a self,
        keys: impl Iterator<Item = &'k [u8]>,
    ) -> Vec<(usize, MutexGuard<'a, Shard>)> {
        let mut idx: Vec<usize> = keys.map(|k| self.shard_of(k)).collect();
        idx.sort_unstable();
        idx.dedup();
        idx.into_iter()
            .map(|i| (i, self.shards[i].lock()))
            .collect()
    }

    /// Removes expired keys, a bounded batch per lock; returns how many.
    fn sweep(&self) -> usize {
        let mut total = 0;
        for s in self.shards.iter() {
            loop {
                let now = now_ms();
                let mut dead = Vec::new();
                {
                    let mut g = s.lock();
                    while dead.len() < SWEEP_BATCH {
                        let Some((t, _)) = g.expiring.first() else {
                            break;
                        };
                        if *t > now {
                            break;
                        }
                        let Some((_, key)) = g.expiring.pop_first() else {
                            break;
                        };
                        if let Some(e) = g.map.remove(&key) {
                            dead.push(e);
                        }
                    }
                }
                let n = dead.len();
                total += n;
                // `dead` is dropped here, outside the lock.
                drop(dead);
                if n < SWEEP_BATCH {
                    break;
                }
            }
        }
        total
    }

    fn dbsize(&self) -> (usize, usize) {
        self.shards.iter().fold((0, 0), |(k, e), s| {
            let g = s.lock();
            (k + g.map.len(), e + g.expiring.len())
        })
    }

    fn flush(&self) {
        for s in self.shards.iter() {
            let old = std::mem::take(&mut *s.lock());
            drop(old); // outside the lock
        }
    }
}

// ----- commands ------------------------------------------------------------------------------

struct Client {
    id: u64,
    peer: String,
    name: Option<Vec<u8>>,
}

struct ServerInfo {
    maxclients: usize,
    max_bulk: usize,
    /// The server's counters for INFO, set once the server is bound.
    server: Arc<std::sync::OnceLock<goway::net::ServerHandle>>,
    /// `--output-hard-limit`, `--output-soft-limit`, `--output-soft-seconds`.
    output_limit: (usize, usize, u64),
}

enum Step {
    /// Append this reply.
    Reply(Reply),
    /// The reply is already in the output (written from borrowed data under the lock).
    Written,
    Quit,
    /// The output passed the hard output limit while the reply was built (an MGET of many
    /// large values): the client is to be disconnected.
    Overflow,
}

fn err(s: &'static str) -> Reply {
    Reply::Error(Cow::Borrowed(s))
}

const NOT_INT: &str = "ERR value is not an integer or out of range";
const SYNTAX: &str = "ERR syntax error";

fn wrong_args(name: &str) -> Reply {
    Reply::Error(format!("ERR wrong number of arguments for '{name}' command").into())
}

fn unknown_command(req: Req<'_>) -> Reply {
    // Redis: the name cut at 128 bytes, then up to 128 bytes of quoted arguments.
    let name = String::from_utf8_lossy(req.get(0).unwrap_or_default());
    let name: String = name.chars().take(128).collect();
    let mut args = String::new();
    for a in req.iter().skip(1) {
        if args.len() >= 128 {
            break;
        }
        let room = 128 - args.len();
        let a = String::from_utf8_lossy(a);
        let a: String = a.chars().take(room).collect();
        args.push('\'');
        args.push_str(&a);
        args.push_str("' ");
    }
    Reply::Error(format!("ERR unknown command '{name}', with args beginning with: {args}").into())
}

fn unknown_subcommand(sub: &[u8], cmd: &str) -> Reply {
    Reply::Error(
        format!(
            "ERR unknown subcommand '{}'. Try {cmd} HELP.",
            String::from_utf8_lossy(sub)
                .chars()
                .take(128)
                .collect::<String>()
        )
        .into(),
    )
}

/// `name` upper-cased into `buf`, without allocating; empty if it does not fit.
fn upper<'b>(name: &[u8], buf: &'b mut [u8; 16]) -> &'b [u8] {
    if name.len() > buf.len() {
        return &[];
    }
    for (d, s) in buf.iter_mut().zip(name) {
        *d = s.to_ascii_uppercase();
    }
    &buf[..name.len()]
}

/// Redis's arity rule: `n > 0` exactly n arguments, `n < 0` at least -n.
fn arity_ok(argc: usize, n: i32) -> bool {
    if n > 0 {
        argc == n as usize
    } else {
        argc >= n.unsigned_abs() as usize
    }
}

fn int_arg(a: &[u8]) -> Result<i64, Reply> {
    parse_int(a).ok_or_else(|| err(NOT_INT))
}

impl Db {
    fn exec(&self, req: Req<'_>, cl: &mut Client, info: &ServerInfo, out: &mut Replies) -> Step {
        let mut buf = [0u8; 16];
        let name = upper(req.get(0).unwrap_or_default(), &mut buf);
        let argc = req.len();
        let (lname, arity): (&str, i32) = match name {
            b"GET" => ("get", 2),
            b"SET" => ("set", -3),
            b"PING" => ("ping", -1),
            b"ECHO" => ("echo", 2),
            b"DEL" => ("del", -2),
            b"EXISTS" => ("exists", -2),
            b"INCR" => ("incr", 2),
            b"DECR" => ("decr", 2),
            b"INCRBY" => ("incrby", 3),
            b"DECRBY" => ("decrby", 3),
            b"MGET" => ("mget", -2),
            b"MSET" => ("mset", -3),
            b"EXPIRE" => ("expire", -3),
            b"PEXPIRE" => ("pexpire", -3),
            b"TTL" => ("ttl", 2),
            b"PTTL" => ("pttl", 2),
            b"PERSIST" => ("persist", 2),
            b"DBSIZE" => ("dbsize", 1),
            b"FLUSHALL" => ("flushall", -1),
            b"FLUSHDB" => ("flushdb", -1),
            b"SELECT" => ("select", 2),
            b"QUIT" => ("quit", -1),
            b"COMMAND" => ("command", -1),
            b"CLIENT" => ("client", -2),
            b"CONFIG" => ("config", -2),
            b"INFO" => ("info", -1),
            _ => return Step::Reply(unknown_command(req)),
        };
        if !arity_ok(argc, arity) {
            return Step::Reply(wrong_args(lname));
        }
        // A container's subcommand is looked up, and its own arity checked, before it runs:
        // Redis's `lookupCommand` then `processCommand`.
        let subs = match name {
            b"COMMAND" => COMMAND_SUBS,
            b"CLIENT" => CLIENT_SUBS,
            b"CONFIG" => CONFIG_SUBS,
            _ => &[],
        };
        if let (false, Some(sub)) = (subs.is_empty(), req.get(1)) {
            match subs
                .iter()
                .find(|(s, _)| s.as_bytes().eq_ignore_ascii_case(sub))
            {
                None => {
                    return Step::Reply(unknown_subcommand(sub, &lname.to_ascii_uppercase()));
                }
                Some((s, n)) if !arity_ok(argc, *n) => {
                    return Step::Reply(wrong_args(&format!("{lname}|{s}")));
                }
                Some(_) => {}
            }
        }
        let a = |i: usize| req.get(i).unwrap_or_default();
        let mut clock = Clock(None);
        let r = match name {
            b"GET" => {
                // Copied once, from the store into the output, under the shard's lock.
                let mut s = self.shard(a(1));
                match s.peek(a(1), &mut clock) {
                    Some(e) => out.bulk(&e.value),
                    None => out.null(),
                }
                return Step::Written;
            }
            b"SET" => self.set(req, &mut clock),
            b"PING" => match argc {
                1 => Reply::simple("PONG"),
                2 => Reply::Bulk(a(1).to_vec()),
                _ => wrong_args("ping"),
            },
            b"ECHO" => Reply::Bulk(a(1).to_vec()),
            b"DEL" => {
                let n = req
                    .iter()
                    .skip(1)
                    .filter(|k| {
                        let removed = self.shard(k).remove(k);
                        // Dropped after the guard; a key past its deadline did not exist.
                        removed.is_some_and(|e| e.expires == 0 || e.expires > clock.get())
                    })
                    .count();
                Reply::Integer(n as i64)
            }
            b"EXISTS" => {
                let n = req
                    .iter()
                    .skip(1)
                    .filter(|k| self.shard(k).peek(k, &mut clock).is_some())
                    .count();
                Reply::Integer(n as i64)
            }
            b"INCR" => self.incr_by(a(1), 1, &mut clock),
            b"DECR" => self.incr_by(a(1), -1, &mut clock),
            b"INCRBY" => match int_arg(a(2)) {
                Ok(d) => self.incr_by(a(1), d, &mut clock),
                Err(e) => e,
            },
            b"DECRBY" => match int_arg(a(2)) {
                Ok(i64::MIN) => err("ERR decrement would overflow"),
                Ok(d) => self.incr_by(a(1), -d, &mut clock),
                Err(e) => e,
            },
            b"MGET" => {
                let keys = || req.iter().skip(1);
                let mut guards = self.lock_many(keys());
                out.array(argc - 1);
                let limit = info.output_limit.0;
                for k in keys() {
                    if limit != 0 && out.len() > limit {
                        drop(guards);
                        return Step::Overflow;
                    }
                    let i = self.shard_of(k);
                    let e = match guards.iter_mut().find(|(j, _)| *j == i) {
                        Some((_, g)) => g.peek(k, &mut clock),
                        None => None,
                    };
                    match e {
                        Some(e) => out.bulk(&e.value),
                        None => out.null(),
                    }
                }
                drop(guards);
                return Step::Written;
            }
            b"MSET" => {
                if argc % 2 == 0 {
                    wrong_args("mset")
                } else {
                    let keys = req.iter().skip(1).step_by(2);
                    let mut guards = self.lock_many(keys);
                    let mut i = 1;
                    while i + 1 < argc {
                        let (k, v) = (a(i), a(i + 1));
                        let s = self.shard_of(k);
                        if let Some((_, g)) = guards.iter_mut().find(|(j, _)| *j == s) {
                            g.set(k, v, Some(0));
                        }
                        i += 2;
                    }
                    drop(guards);
                    Reply::OK
                }
            }
            b"EXPIRE" => self.expire(req, 1000, "expire", &mut clock),
            b"PEXPIRE" => self.expire(req, 1, "pexpire", &mut clock),
            b"TTL" | b"PTTL" => {
                let mut s = self.shard(a(1));
                let t = s.peek(a(1), &mut clock).map(|e| e.expires);
                match t {
                    None => Reply::Integer(-2),
                    Some(0) => Reply::Integer(-1),
                    Some(t) => {
                        let left = (t - clock.get()).max(0);
                        Reply::Integer(if name == b"TTL" {
                            (left + 500) / 1000
                        } else {
                            left
                        })
                    }
                }
            }
            b"PERSIST" => {
                let mut s = self.shard(a(1));
                match s.live(a(1), &mut clock).map(|e| e.expires) {
                    Some(t) if t != 0 => {
                        s.set_expiry(a(1), 0);
                        Reply::Integer(1)
                    }
                    _ => Reply::Integer(0),
                }
            }
            b"DBSIZE" => Reply::Integer(self.dbsize().0 as i64),
            b"FLUSHALL" | b"FLUSHDB" => {
                let mode = upper(a(1), &mut buf);
                if argc > 2 || !(argc == 1 || mode == b"ASYNC" || mode == b"SYNC") {
                    err(SYNTAX)
                } else {
                    self.flush();
                    Reply::OK
                }
            }
            b"SELECT" => match parse_int(a(1)) {
                Some(0) => Reply::OK,
                Some(_) => err("ERR DB index is out of range"),
                None => err(NOT_INT),
            },
            b"QUIT" => return Step::Quit,
            b"COMMAND" => command_cmd(req),
            b"CLIENT" => client_cmd(req, cl),
            b"CONFIG" => config_cmd(req, info),
            b"INFO" => {
                let (keys, expires) = self.dbsize();
                let st = info.server.get().map(|h| h.stats()).unwrap_or_default();
                let sections = [
                    (
                        "server",
                        "# Server\r\nredis_version:7.0.0\r\nredis_mode:standalone\r\n\
                         server:goway-kv\r\n"
                            .to_owned(),
                    ),
                    (
                        "clients",
                        format!(
                            "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\n\
                             client_recent_max_output_buffer:{}\r\n",
                            st.active, info.maxclients, st.queued_bytes_peak,
                        ),
                    ),
                    (
                        "stats",
                        format!(
                            "# Stats\r\ntotal_connections_received:{}\r\n\
                             rejected_connections:{}\r\ntotal_net_input_bytes:{}\r\n\
                             total_net_output_bytes:{}\r\noutput_buffer_bytes:{}\r\n\
                             client_output_buffer_limit_disconnections:{}\r\n\
                             spin_poll_spins:{}\r\nspin_poll_hits:{}\r\n",
                            st.accepted,
                            st.rejected,
                            st.bytes_in,
                            st.bytes_out,
                            st.queued_bytes,
                            st.closed_by[CloseReason::OutputLimit],
                            st.spins,
                            st.spin_hits,
                        ),
                    ),
                    (
                        "keyspace",
                        format!("# Keyspace\r\ndb0:keys={keys},expires={expires},avg_ttl=0\r\n"),
                    ),
                ];
                // INFO [section ...]: the sections named (any case; all, default and
                // everything mean every one), an empty string when none is known, as Redis.
                let wanted = |name: &str| {
                    argc == 1
                        || req.iter().skip(1).any(|a| {
                            [name, "all", "default", "everything"]
                                .iter()
                                .any(|n| a.eq_ignore_ascii_case(n.as_bytes()))
                        })
                };
                let text: Vec<&str> = sections
                    .iter()
                    .filter(|(name, _)| wanted(name))
                    .map(|(_, text)| text.as_str())
                    .collect();
                Reply::Bulk(text.join("\r\n").into_bytes())
            }
            _ => unknown_command(req),
        };
        Step::Reply(r)
    }

    fn set(&self, req: Req<'_>, clock: &mut Clock) -> Reply {
        #[derive(PartialEq)]
        enum Unit {
            None,
            Ex,
            Px,
            ExAt,
            PxAt,
            Keep,
        }
        let (mut nx, mut xx, mut get) = (false, false, false);
        let mut unit = Unit::None;
        let mut when: &[u8] = &[];
        let mut j = 3;
        while j < req.len() {
            let mut buf = [0u8; 16];
            let opt = upper(&req[j], &mut buf);
            let next = req.get(j + 1);
            match opt {
                b"NX" if !xx => nx = true,
                b"XX" if !nx => xx = true,
                b"GET" => get = true,
                b"KEEPTTL" if unit == Unit::None || unit == Unit::Keep => unit = Unit::Keep,
                b"EX" | b"PX" | b"EXAT" | b"PXAT" if next.is_some() => {
                    let u = match opt {
                        b"EX" => Unit::Ex,
                        b"PX" => Unit::Px,
                        b"EXAT" => Unit::ExAt,
                        _ => Unit::PxAt,
                    };
                    if unit != Unit::None && unit != u {
                        return err(SYNTAX);
                    }
                    unit = u;
                    when = next.unwrap_or_default();
                    j += 1;
                }
                _ => return err(SYNTAX),
            }
            j += 1;
        }
        // The new deadline: Some(0) clears it, None keeps it (KEEPTTL).
        let expires = match unit {
            Unit::None => Some(0),
            Unit::Keep => None,
            _ => {
                let Some(n) = parse_int(when) else {
                    return err(NOT_INT);
                };
                let bad = || err("ERR invalid expire time in 'set' command");
                let secs = matches!(unit, Unit::Ex | Unit::ExAt);
                if n <= 0 || (secs && n > i64::MAX / 1000) {
                    return bad();
                }
                let ms = if secs { n * 1000 } else { n };
                let t = if matches!(unit, Unit::Ex | Unit::Px) {
                    match ms.checked_add(clock.get()) {
                        Some(t) => t,
                        None => return bad(),
                    }
                } else {
                    ms
                };
                Some(t)
            }
        };
        let key = &req[1];
        let mut s = self.shard(key);
        // A plain SET (the common case) needs no look at the old entry: `set` replaces its
        // value and deadline in one lookup.
        let mut old_value = None;
        if nx || xx || get || expires.is_none() {
            let old = s.live(key, clock);
            let exists = old.is_some();
            if get {
                old_value = old.map(|e| e.value.clone());
            }
            if (nx && exists) || (xx && !exists) {
                return if get { old_value.into() } else { Reply::Null };
            }
        }
        s.set(key, &req[2], expires);
        if let Some(t) = expires
            && t != 0
            && t <= clock.get()
        {
            // EXAT/PXAT in the past: set, then gone at once (Redis deletes it).
            s.remove(key);
        }
        drop(s);
        if get { old_value.into() } else { Reply::OK }
    }

    fn incr_by(&self, key: &[u8], by: i64, clock: &mut Clock) -> Reply {
        let mut s = self.shard(key);
        let cur = match s.live(key, clock) {
            None => 0,
            Some(e) => match parse_int(&e.value) {
                Some(v) => v,
                None => return err(NOT_INT),
            },
        };
        let Some(v) = cur.checked_add(by) else {
            return err("ERR increment or decrement would overflow");
        };
        let digits = itoa_buf(v);
        s.set(key, digits.as_slice(), None);
        drop(s);
        Reply::Integer(v)
    }

    fn expire(&self, req: Req<'_>, unit_ms: i64, name: &str, clock: &mut Clock) -> Reply {
        // The options first, then the time: Redis's order of checks (and of its errors).
        let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
        for o in req.iter().skip(3) {
            let mut buf = [0u8; 16];
            match upper(o, &mut buf) {
                b"NX" => nx = true,
                b"XX" => xx = true,
                b"GT" => gt = true,
                b"LT" => lt = true,
                _ => {
                    return Reply::Error(
                        format!("ERR Unsupported option {}", String::from_utf8_lossy(o)).into(),
                    );
                }
            }
        }
        if nx && (xx || gt || lt) {
            return err("ERR NX and XX, GT or LT options at the same time are not compatible");
        }
        if gt && lt {
            return err("ERR GT and LT options at the same time are not compatible");
        }
        let Some(n) = parse_int(&req[2]) else {
            return err(NOT_INT);
        };
        let bad = || Reply::Error(format!("ERR invalid expire time in '{name}' command").into());
        let Some(ms) = n.checked_mul(unit_ms) else {
            return bad();
        };
        let Some(t) = ms.checked_add(clock.get()) else {
            return bad();
        };
        let key = &req[1];
        let mut s = self.shard(key);
        let Some(cur) = s.live(key, clock).map(|e| e.expires) else {
            return Reply::Integer(0);
        };
        // No deadline counts as infinite for GT and LT.
        let ok = (!nx || cur == 0)
            && (!xx || cur != 0)
            && (!gt || (cur != 0 && t > cur))
            && (!lt || cur == 0 || t < cur);
        if !ok {
            return Reply::Integer(0);
        }
        if t <= clock.get() {
            let old = s.remove(key);
            drop(s);
            drop(old);
        } else {
            s.set_expiry(key, t);
        }
        Reply::Integer(1)
    }
}

/// The decimal digits of `v` (a small vector; INCR stores numbers as strings, as Redis does).
fn itoa_buf(v: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(20);
    let mut n = v.unsigned_abs();
    loop {
        out.push(b'0' + (n % 10) as u8);
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        out.push(b'-');
    }
    out.reverse();
    out
}

const COMMANDS: [&str; 26] = [
    "get", "set", "ping", "echo", "del", "exists", "incr", "decr", "incrby", "decrby", "mget",
    "mset", "expire", "pexpire", "ttl", "pttl", "persist", "dbsize", "flushall", "flushdb",
    "select", "quit", "command", "client", "config", "info",
];

/// The subcommands kv serves, with Redis 7.0's arities (what its `COMMAND INFO` says:
/// `n > 0` exactly n arguments, command and subcommand included, `n < 0` at least -n).
/// `exec` checks them before the subcommand runs. CLIENT SETINFO is Redis 7.2's (redis-cli
/// and redis-benchmark 7.2 send it).
const COMMAND_SUBS: &[(&str, i32)] = &[
    ("count", 2),
    ("docs", -2),
    ("help", 2),
    ("info", -2),
    ("list", -2),
];
const CLIENT_SUBS: &[(&str, i32)] = &[
    ("getname", 2),
    ("help", 2),
    ("id", 2),
    ("info", 2),
    ("list", -2),
    ("setinfo", 4),
    ("setname", 3),
];
const CONFIG_SUBS: &[(&str, i32)] = &[("get", -3), ("help", 2), ("resetstat", 2), ("set", -4)];

/// A container's HELP, in Redis's layout: a usage line, then each subcommand and what it
/// does, then HELP itself.
fn help(cmd: &str, lines: &[&'static str]) -> Reply {
    let mut out = vec![Reply::Simple(
        format!("{cmd} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:").into(),
    )];
    out.extend(lines.iter().map(|l| Reply::Simple((*l).into())));
    out.push(Reply::simple("HELP"));
    out.push(Reply::simple("    Prints this help."));
    Reply::Array(out)
}

fn command_cmd(req: Req<'_>) -> Reply {
    let Some(sub) = req.get(1) else {
        // The full command table: an empty one is enough for the tools.
        return Reply::Array(Vec::new());
    };
    let mut buf = [0u8; 16];
    let mut buf2 = [0u8; 16];
    let mut buf3 = [0u8; 16];
    let arg = |i: usize| req.get(i).unwrap_or_default();
    match upper(sub, &mut buf) {
        b"COUNT" => Reply::Integer(COMMANDS.len() as i64),
        b"DOCS" => Reply::Array(Vec::new()),
        b"LIST" => {
            // FILTERBY PATTERN <glob> (kv has no modules and no ACL categories).
            let pattern = match (
                req.len(),
                upper(arg(2), &mut buf2),
                upper(arg(3), &mut buf3),
            ) {
                (2, _, _) => None,
                (5, b"FILTERBY", b"PATTERN") => Some(arg(4)),
                _ => return err(SYNTAX),
            };
            Reply::Array(
                COMMANDS
                    .iter()
                    .filter(|c| pattern.is_none_or(|p| glob(p, c.as_bytes())))
                    .map(|c| Reply::Bulk(c.as_bytes().to_vec()))
                    .collect(),
            )
        }
        // Details are not kept: a null per name, as Redis answers for a name it lacks.
        b"INFO" => Reply::Array(req.iter().skip(2).map(|_| Reply::Null).collect()),
        b"HELP" => help(
            "COMMAND",
            &[
                "(no subcommand)",
                "    Return details about all commands (none are kept: an empty list).",
                "COUNT",
                "    Return the total number of commands in this server.",
                "LIST [FILTERBY PATTERN <pattern>]",
                "    Return a list of all commands in this server.",
                "INFO [<command-name> ...]",
                "    Return details about multiple commands (none are kept).",
                "DOCS [<command-name> ...]",
                "    Return documentation details about multiple commands (none are kept).",
            ],
        ),
        _ => unknown_subcommand(sub, "COMMAND"),
    }
}

fn client_cmd(req: Req<'_>, cl: &mut Client) -> Reply {
    let sub = &req[1];
    let mut buf = [0u8; 16];
    match upper(sub, &mut buf) {
        b"ID" => Reply::Integer(cl.id as i64),
        b"GETNAME" => cl.name.clone().into(),
        b"SETNAME" => {
            let name = &req[2];
            if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
                err("ERR Client names cannot contain spaces, newlines or special characters.")
            } else {
                cl.name = (!name.is_empty()).then(|| name.to_vec());
                Reply::OK
            }
        }
        b"SETINFO" => Reply::OK,
        b"INFO" => Reply::Bulk(client_line(cl)),
        b"LIST" => {
            // kv lists the calling client only; TYPE and ID filter it as Redis does.
            let mut buf2 = [0u8; 16];
            let arg = |i: usize| req.get(i).unwrap_or_default();
            let listed = match (req.len(), upper(arg(2), &mut buf2)) {
                (2, _) => true,
                (4, b"TYPE") => {
                    let mut buf3 = [0u8; 16];
                    match upper(arg(3), &mut buf3) {
                        b"NORMAL" => true,
                        b"MASTER" | b"REPLICA" | b"SLAVE" | b"PUBSUB" => false,
                        _ => {
                            return Reply::Error(
                                format!(
                                    "ERR Unknown client type '{}'",
                                    String::from_utf8_lossy(arg(3))
                                )
                                .into(),
                            );
                        }
                    }
                }
                (n, b"ID") if n > 3 => {
                    let mut me = false;
                    for id in req.iter().skip(3) {
                        match parse_int(id) {
                            Some(id) => me |= id == cl.id as i64,
                            None => return err("ERR Invalid client ID"),
                        }
                    }
                    me
                }
                _ => return err(SYNTAX),
            };
            Reply::Bulk(if listed { client_line(cl) } else { Vec::new() })
        }
        b"HELP" => help(
            "CLIENT",
            &[
                "GETNAME",
                "    Return the name of the current connection.",
                "ID",
                "    Return the ID of the current connection.",
                "INFO",
                "    Return information about the current client connection.",
                "LIST [TYPE (NORMAL|MASTER|REPLICA|PUBSUB)] [ID <id> [<id> ...]]",
                "    Return information about client connections (this one, if it matches).",
                "SETINFO <option> <value>",
                "    Accepted and ignored (lib-name, lib-ver).",
                "SETNAME <name>",
                "    Assign the name <name> to the current connection.",
            ],
        ),
        _ => unknown_subcommand(sub, "CLIENT"),
    }
}

/// The calling client's line of CLIENT INFO and CLIENT LIST.
fn client_line(cl: &Client) -> Vec<u8> {
    format!(
        "id={} addr={} name={} db=0 cmd=client\n",
        cl.id,
        cl.peer,
        String::from_utf8_lossy(cl.name.as_deref().unwrap_or_default())
    )
    .into_bytes()
}

/// The parameters CONFIG GET shows.
fn config_params(info: &ServerInfo) -> [(&'static str, String); 8] {
    let (hard, soft, secs) = info.output_limit;
    [
        ("save", String::new()),
        ("appendonly", "no".into()),
        ("maxclients", info.maxclients.to_string()),
        ("databases", "1".into()),
        ("timeout", "0".into()),
        ("proto-max-bulk-len", info.max_bulk.to_string()),
        ("maxmemory", "0".into()),
        (
            "client-output-buffer-limit",
            format!("normal {hard} {soft} {secs} slave 0 0 0 pubsub {hard} {soft} {secs}"),
        ),
    ]
}

fn config_cmd(req: Req<'_>, info: &ServerInfo) -> Reply {
    let sub = &req[1];
    let mut buf = [0u8; 16];
    match upper(sub, &mut buf) {
        b"GET" => {
            let mut out = Vec::new();
            for (k, v) in &config_params(info) {
                if req.iter().skip(2).any(|p| glob(p, k.as_bytes())) {
                    out.push(Reply::Bulk(k.as_bytes().to_vec()));
                    out.push(Reply::Bulk(v.as_bytes().to_vec()));
                }
            }
            Reply::Array(out)
        }
        b"RESETSTAT" => Reply::OK,
        b"SET" => {
            // Redis's checks: pairs, then each name known; kv changes nothing at run time.
            if req.len() % 2 != 0 {
                return err(SYNTAX);
            }
            let params = config_params(info);
            let unknown = req.iter().skip(2).step_by(2).find(|p| {
                !params
                    .iter()
                    .any(|(k, _)| p.eq_ignore_ascii_case(k.as_bytes()))
            });
            match unknown {
                Some(p) => Reply::Error(
                    format!(
                        "ERR Unknown option or number of arguments for CONFIG SET - '{}'",
                        String::from_utf8_lossy(p)
                    )
                    .into(),
                ),
                None => err("ERR CONFIG SET is not supported by this server"),
            }
        }
        b"HELP" => help(
            "CONFIG",
            &[
                "GET <pattern>",
                "    Return parameters matching the glob-like <pattern> and their values.",
                "SET <directive> <value>",
                "    Not supported by this server.",
                "RESETSTAT",
                "    Reset statistics reported by the INFO command (a no-op here).",
            ],
        ),
        _ => unknown_subcommand(sub, "CONFIG"),
    }
}

/// Glob match ignoring ASCII case (`*`, `?`), iterative with one backtrack point: Redis's
/// `stringmatch` for CONFIG GET patterns, without classes.
fn glob(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pat.len() && (pat[p] == b'?' || pat[p].eq_ignore_ascii_case(&s[i])) {
            p += 1;
            i += 1;
        } else if p < pat.len() && pat[p] == b'*' {
            star = Some((p, i));
            p += 1;
        } else if let Some((sp, si)) = star {
            p = sp + 1;
            i = si + 1;
            star = Some((sp, si + 1));
        } else {
            return false;
        }
    }
    while p < pat.len() && pat[p] == b'*' {
        p += 1;
    }
    p == pat.len()
}
