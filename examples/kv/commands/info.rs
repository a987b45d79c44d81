//! `INFO [section ...]`: Redis's server, clients, stats and keyspace sections, with goway's
//! server counters.

use goway::net::codec::resp::{Reply, Req};
use goway::net::server::CloseReason;

use super::ServerInfo;
use crate::store::Db;

pub(crate) fn run(db: &Db, req: Req<'_>, info: &ServerInfo) -> Reply {
    let argc = req.len();
    let (keys, expires) = db.dbsize();
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
