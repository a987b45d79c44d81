//! A UDP echo server: every datagram goes back to its sender, unchanged.
//!
//! Run it with `cargo run --release --example udp_echo` (add `-- --addr 127.0.0.1:9000` for
//! another address, `--workers N` for N worker threads), then `nc -u 127.0.0.1 7879`. It
//! stops on SIGTERM or Ctrl-C.
//!
//! It ports the Go program `bench/peers/go/udp-echo/main.go` (in this repository's benchmark
//! harness): one socket from `net.ListenUDP`, and per worker a goroutine looping on
//! `ReadFrom` and `WriteTo`. All of them share the one socket: each receive takes one whole
//! datagram, so they split the traffic between them. Benchmark it beside its Go peer with
//! `bench/compare.sh udp` (see bench/README.md).

use std::sync::Arc;

use clap::Parser;
use goway::net::UdpSocket;

/// UDP echo server on goway.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7879")]
    addr: String,
    /// Worker threads (0: one per CPU this process may use); as many goroutines serve the
    /// socket.
    #[arg(long, default_value_t = 0)]
    workers: usize,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info,may=warn"))
        .init();
    let args = Args::parse();
    goway::runtime::Config::new()
        .workers(args.workers)
        .apply()?;
    let workers = if args.workers == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        args.workers
    };

    let sock = Arc::new(UdpSocket::bind(args.addr.as_str())?);
    // Tests and scripts read the bound address (`--addr 127.0.0.1:0` picks a free port).
    println!("listening on {}", sock.local_addr()?);
    let servers: Vec<_> = (0..workers)
        .map(|_| {
            let sock = sock.clone();
            goway::go!(move || serve(&sock))
        })
        .collect();
    for h in servers {
        h.join()??;
    }
    Ok(())
}

/// Echoes datagrams until the socket fails.
fn serve(sock: &UdpSocket) -> std::io::Result<()> {
    // Any UDP datagram fits whole.
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, peer) = sock.recv_from(&mut buf)?;
        if let Err(e) = sock.send_to(&buf[..n], peer) {
            // A full send buffer or an unreachable peer costs this datagram only.
            log::debug!("send to {peer}: {e}");
        }
    }
}
