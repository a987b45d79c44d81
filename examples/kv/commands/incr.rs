//! `INCR key`, `DECR key`, `INCRBY key n`, `DECRBY key n`: integer arithmetic on a value
//! stored as decimal digits, as Redis stores it.

use goway::net::codec::resp::{Reply, Req, parse_int};

use super::{NOT_INT, err, int_arg};
use crate::store::{Clock, Db};

fn key<'a>(req: &Req<'a>) -> &'a [u8] {
    req.get(1).unwrap_or_default()
}

pub(crate) fn incr(db: &Db, req: Req<'_>, clock: &mut Clock) -> Reply {
    incr_by(db, key(&req), 1, clock)
}

pub(crate) fn decr(db: &Db, req: Req<'_>, clock: &mut Clock) -> Reply {
    incr_by(db, key(&req), -1, clock)
}

pub(crate) fn incrby(db: &Db, req: Req<'_>, clock: &mut Clock) -> Reply {
    match int_arg(req.get(2).unwrap_or_default()) {
        Ok(d) => incr_by(db, key(&req), d, clock),
        Err(e) => e,
    }
}

pub(crate) fn decrby(db: &Db, req: Req<'_>, clock: &mut Clock) -> Reply {
    match int_arg(req.get(2).unwrap_or_default()) {
        Ok(i64::MIN) => err("ERR decrement would overflow"),
        Ok(d) => incr_by(db, key(&req), -d, clock),
        Err(e) => e,
    }
}

/// Adds `by` to the number stored at `key` (0 if missing), keeping its deadline.
fn incr_by(db: &Db, key: &[u8], by: i64, clock: &mut Clock) -> Reply {
    let mut s = db.shard(key);
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
