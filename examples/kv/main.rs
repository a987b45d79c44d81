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
//! SIGTERM or Ctrl-C drains the server: it stops accepting, answers the requests it has
//! received (a request half received is waited for, within `--grace` seconds), cuts off what
//! is left after the grace, reports both and exits 0; a second signal exits at once (status
//! 130 or 143).
//!
//! Benchmark it beside Go and Redis with
//! `RESP_CANDIDATE='target/release/examples/kv --addr {addr}' bench/compare.sh resp`.

mod commands;
mod store;

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use goway::net::codec::RespPipelineCodec;
use goway::net::codec::resp::{Replies, Reply};
use goway::net::{Server, ShutdownReport};

use commands::{Client, ServerInfo, Step};
use store::Db;

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
    /// Seconds a graceful shutdown (on SIGTERM or Ctrl-C) waits for the connections to
    /// finish before cutting them off; a second signal exits at once.
    #[arg(long, default_value_t = 10)]
    grace: u64,
}

/// Replies of one batch of requests are handed to the writer whenever this many bytes are
/// ready, so that the output limit sees them grow (a batch of 1,024 GETs of a 100 KiB value
/// would otherwise be 100 MiB in one piece).
const REPLY_CHUNK: usize = 64 << 10;
/// Replies queued for the writer, in pieces: enough that the output limit is reached before
/// this count for replies of [`REPLY_CHUNK`] bytes and more (the count makes the handler
/// wait instead of disconnecting).
const WRITE_QUEUE: usize = 1024;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info,may=warn"))
        .init();
    let args = Args::parse();
    // Cancelled by the first SIGTERM or Ctrl-C; the second one exits at once.
    let ctx = goway::signal::shutdown_context(&goway::context::background())?;
    let grace = Duration::from_secs(args.grace);
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
        .shutdown_grace(grace)
        .shutdown_on(ctx.done())
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
                    match commands::exec(&handler_db, req, &mut client, &info, &mut replies) {
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
    let handle = server.handle();
    match server.serve() {
        Err(goway::net::server::ServeError::ServerClosed) | Ok(()) => {}
        Err(e) => return Err(e.into()),
    }
    // `serve` returns as the drain starts: wait for it (it ends within the grace).
    let outcome = handle.wait_shutdown(grace + Duration::from_secs(5));
    println!("shutdown: {}", ShutdownReport::log_outcome(outcome));
    Ok(())
}
