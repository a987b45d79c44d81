//! `MSET key value [key value ...]`: all set at once, under the locks of all their shards.

use goway::net::codec::resp::{Reply, Req};

use super::wrong_args;
use crate::store::Db;

pub(crate) fn run(db: &Db, req: Req<'_>) -> Reply {
    let argc = req.len();
    if argc % 2 == 0 {
        return wrong_args("mset");
    }
    let a = |i: usize| req.get(i).unwrap_or_default();
    let keys = req.iter().skip(1).step_by(2);
    let mut guards = db.lock_many(keys);
    let mut i = 1;
    while i + 1 < argc {
        let (k, v) = (a(i), a(i + 1));
        let s = db.shard_of(k);
        if let Some((_, g)) = guards.iter_mut().find(|(j, _)| *j == s) {
            g.set(k, v, Some(0));
        }
        i += 2;
    }
    drop(guards);
    Reply::OK
}
