//! `FLUSHALL [ASYNC|SYNC]` and `FLUSHDB [ASYNC|SYNC]`: removes every key.

use goway::net::codec::resp::{Reply, Req};

use super::{SYNTAX, err, upper};
use crate::store::Db;

pub(crate) fn run(db: &Db, req: Req<'_>) -> Reply {
    let argc = req.len();
    let mut buf = [0u8; 16];
    let mode = upper(req.get(1).unwrap_or_default(), &mut buf);
    if argc > 2 || !(argc == 1 || mode == b"ASYNC" || mode == b"SYNC") {
        err(SYNTAX)
    } else {
        db.flush();
        Reply::OK
    }
}
