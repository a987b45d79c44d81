//! The commands, one per file as in mini-redis (a family such as INCR/DECR/INCRBY/DECRBY
//! shares one), and [`exec`], which looks a request's command up, checks its arity as Redis
//! does, and runs it. The helpers here give Redis's error texts.

mod client;
mod command;
mod config;
mod dbsize;
mod del;
mod echo;
mod exists;
mod expire;
mod flush;
mod get;
mod incr;
mod info;
mod mget;
mod mset;
mod persist;
mod ping;
mod select;
mod set;
mod ttl;

use std::borrow::Cow;
use std::sync::Arc;

use goway::net::codec::resp::{Replies, Reply, Req, parse_int};

use crate::store::{Clock, Db};

pub(crate) struct Client {
    pub(crate) id: u64,
    pub(crate) peer: String,
    pub(crate) name: Option<Vec<u8>>,
}

pub(crate) struct ServerInfo {
    pub(crate) maxclients: usize,
    pub(crate) max_bulk: usize,
    /// The server's counters for INFO, set once the server is bound.
    pub(crate) server: Arc<std::sync::OnceLock<goway::net::ServerHandle>>,
    /// `--output-hard-limit`, `--output-soft-limit`, `--output-soft-seconds`.
    pub(crate) output_limit: (usize, usize, u64),
}

pub(crate) enum Step {
    /// Append this reply.
    Reply(Reply),
    /// The reply is already in the output (written from borrowed data under the lock).
    Written,
    Quit,
    /// The output passed the hard output limit while the reply was built (an MGET of many
    /// large values): the client is to be disconnected.
    Overflow,
}

pub(crate) fn err(s: &'static str) -> Reply {
    Reply::Error(Cow::Borrowed(s))
}

pub(crate) const NOT_INT: &str = "ERR value is not an integer or out of range";
pub(crate) const SYNTAX: &str = "ERR syntax error";

pub(crate) fn wrong_args(name: &str) -> Reply {
    Reply::Error(format!("ERR wrong number of arguments for '{name}' command").into())
}

pub(crate) fn unknown_command(req: Req<'_>) -> Reply {
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

pub(crate) fn unknown_subcommand(sub: &[u8], cmd: &str) -> Reply {
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
pub(crate) fn upper<'b>(name: &[u8], buf: &'b mut [u8; 16]) -> &'b [u8] {
    if name.len() > buf.len() {
        return &[];
    }
    for (d, s) in buf.iter_mut().zip(name) {
        *d = s.to_ascii_uppercase();
    }
    &buf[..name.len()]
}

/// Redis's arity rule: `n > 0` exactly n arguments, `n < 0` at least -n.
pub(crate) fn arity_ok(argc: usize, n: i32) -> bool {
    if n > 0 {
        argc == n as usize
    } else {
        argc >= n.unsigned_abs() as usize
    }
}

pub(crate) fn int_arg(a: &[u8]) -> Result<i64, Reply> {
    parse_int(a).ok_or_else(|| err(NOT_INT))
}

/// Runs one request, appending its reply to `out` or returning it.
pub(crate) fn exec(
    db: &Db,
    req: Req<'_>,
    cl: &mut Client,
    info: &ServerInfo,
    out: &mut Replies,
) -> Step {
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
        b"COMMAND" => command::SUBCOMMANDS,
        b"CLIENT" => client::SUBCOMMANDS,
        b"CONFIG" => config::SUBCOMMANDS,
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
    let mut clock = Clock(None);
    let r = match name {
        b"GET" => return get::run(db, req, &mut clock, out),
        b"SET" => set::run(db, req, &mut clock),
        b"PING" => ping::run(req),
        b"ECHO" => echo::run(req),
        b"DEL" => del::run(db, req, &mut clock),
        b"EXISTS" => exists::run(db, req, &mut clock),
        b"INCR" => incr::incr(db, req, &mut clock),
        b"DECR" => incr::decr(db, req, &mut clock),
        b"INCRBY" => incr::incrby(db, req, &mut clock),
        b"DECRBY" => incr::decrby(db, req, &mut clock),
        b"MGET" => return mget::run(db, req, info, &mut clock, out),
        b"MSET" => mset::run(db, req),
        b"EXPIRE" => expire::run(db, req, 1000, "expire", &mut clock),
        b"PEXPIRE" => expire::run(db, req, 1, "pexpire", &mut clock),
        b"TTL" => ttl::run(db, req, true, &mut clock),
        b"PTTL" => ttl::run(db, req, false, &mut clock),
        b"PERSIST" => persist::run(db, req, &mut clock),
        b"DBSIZE" => dbsize::run(db),
        b"FLUSHALL" | b"FLUSHDB" => flush::run(db, req),
        b"SELECT" => select::run(req),
        b"QUIT" => return Step::Quit,
        b"COMMAND" => command::run(req),
        b"CLIENT" => client::run(req, cl),
        b"CONFIG" => config::run(req, info),
        b"INFO" => info::run(db, req, info),
        _ => unknown_command(req),
    };
    Step::Reply(r)
}

/// Every command's name, for COMMAND COUNT and COMMAND LIST.
pub(crate) const COMMANDS: [&str; 26] = [
    "get", "set", "ping", "echo", "del", "exists", "incr", "decr", "incrby", "decrby", "mget",
    "mset", "expire", "pexpire", "ttl", "pttl", "persist", "dbsize", "flushall", "flushdb",
    "select", "quit", "command", "client", "config", "info",
];

/// A container's HELP, in Redis's layout: a usage line, then each subcommand and what it
/// does, then HELP itself.
pub(crate) fn help(cmd: &str, lines: &[&'static str]) -> Reply {
    let mut out = vec![Reply::Simple(
        format!("{cmd} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:").into(),
    )];
    out.extend(lines.iter().map(|l| Reply::Simple((*l).into())));
    out.push(Reply::simple("HELP"));
    out.push(Reply::simple("    Prints this help."));
    Reply::Array(out)
}

/// Glob match ignoring ASCII case (`*`, `?`), iterative with one backtrack point: Redis's
/// `stringmatch` for CONFIG GET patterns, without classes.
pub(crate) fn glob(pat: &[u8], s: &[u8]) -> bool {
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
