//! `CONFIG GET pattern|SET ...|RESETSTAT|HELP`: kv's settings as Redis names them, read only.

use goway::net::codec::resp::{Reply, Req};

use super::{SYNTAX, ServerInfo, err, glob, help, unknown_subcommand, upper};

/// CONFIG's subcommands, with Redis 7.0's arities (see
/// [`command::SUBCOMMANDS`](super::command::SUBCOMMANDS)).
pub(crate) const SUBCOMMANDS: &[(&str, i32)] =
    &[("get", -3), ("help", 2), ("resetstat", 2), ("set", -4)];

/// The parameters CONFIG GET shows.
fn config_params(info: &ServerInfo) -> [(&'static str, String); 8] {
    let (hard, soft, secs) = info.output_limit;
    [
        ("save", String::new()),
        ("appendonly", "no".into()),
        ("maxclients", info.maxclients.to_string()),
        ("databases", "1".into()),
        ("timeout", "0".into()),
        ("proto-max-bulk-len", info.max_bulk.to_string()),
        ("maxmemory", "0".into()),
        (
            "client-output-buffer-limit",
            format!("normal {hard} {soft} {secs} slave 0 0 0 pubsub {hard} {soft} {secs}"),
        ),
    ]
}

pub(crate) fn run(req: Req<'_>, info: &ServerInfo) -> Reply {
    let sub = &req[1];
    let mut buf = [0u8; 16];
    match upper(sub, &mut buf) {
        b"GET" => {
            let mut out = Vec::new();
            for (k, v) in &config_params(info) {
                if req.iter().skip(2).any(|p| glob(p, k.as_bytes())) {
                    out.push(Reply::Bulk(k.as_bytes().to_vec()));
                    out.push(Reply::Bulk(v.as_bytes().to_vec()));
                }
            }
            Reply::Array(out)
        }
        b"RESETSTAT" => Reply::OK,
        b"SET" => {
            // Redis's checks: pairs, then each name known; kv changes nothing at run time.
            if req.len() % 2 != 0 {
                return err(SYNTAX);
            }
            let params = config_params(info);
            let unknown = req.iter().skip(2).step_by(2).find(|p| {
                !params
                    .iter()
                    .any(|(k, _)| p.eq_ignore_ascii_case(k.as_bytes()))
            });
            match unknown {
                Some(p) => Reply::Error(
                    format!(
                        "ERR Unknown option or number of arguments for CONFIG SET - '{}'",
                        String::from_utf8_lossy(p)
                    )
                    .into(),
                ),
                None => err("ERR CONFIG SET is not supported by this server"),
            }
        }
        b"HELP" => help(
            "CONFIG",
            &[
                "GET <pattern>",
                "    Return parameters matching the glob-like <pattern> and their values.",
                "SET <directive> <value>",
                "    Not supported by this server.",
                "RESETSTAT",
                "    Reset statistics reported by the INFO command (a no-op here).",
            ],
        ),
        _ => unknown_subcommand(sub, "CONFIG"),
    }
}
