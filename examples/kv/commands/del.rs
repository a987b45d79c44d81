//! `DEL key [key ...]`: how many of the keys existed.

use goway::net::codec::resp::{Reply, Req};

use crate::store::{Clock, Db};

pub(crate) fn run(db: &Db, req: Req<'_>, clock: &mut Clock) -> Reply {
    let n = req
        .iter()
        .skip(1)
        .filter(|k| {
            let removed = db.shard(k).remove(k);
            // Dropped after the guard; a key past its deadline did not exist.
            removed.is_some_and(|e| e.expires == 0 || e.expires > clock.get())
        })
        .count();
    Reply::Integer(n as i64)
}
