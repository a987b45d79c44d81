//! `EXISTS key [key ...]`: how many of the keys exist (a key named twice counts twice).

use goway::net::codec::resp::{Reply, Req};

use crate::store::{Clock, Db};

pub(crate) fn run(db: &Db, req: Req<'_>, clock: &mut Clock) -> Reply {
    let n = req
        .iter()
        .skip(1)
        .filter(|k| db.shard(k).peek(k, clock).is_some())
        .count();
    Reply::Integer(n as i64)
}
