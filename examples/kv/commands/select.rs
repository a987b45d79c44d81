//! `SELECT index`: kv has one database, 0.

use goway::net::codec::resp::{Reply, Req, parse_int};

use super::{NOT_INT, err};

pub(crate) fn run(req: Req<'_>) -> Reply {
    match parse_int(req.get(1).unwrap_or_default()) {
        Some(0) => Reply::OK,
        Some(_) => err("ERR DB index is out of range"),
        None => err(NOT_INT),
    }
}
