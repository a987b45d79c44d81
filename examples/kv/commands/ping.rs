//! `PING [message]`: `PONG`, or the message.

use goway::net::codec::resp::{Reply, Req};

use super::wrong_args;

pub(crate) fn run(req: Req<'_>) -> Reply {
    match req.len() {
        1 => Reply::simple("PONG"),
        2 => Reply::Bulk(req.get(1).unwrap_or_default().to_vec()),
        _ => wrong_args("ping"),
    }
}
