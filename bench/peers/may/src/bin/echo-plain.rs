//! may-echo-plain: one may coroutine per connection copies what it reads back through a
//! 32 KiB buffer, with may's blocking-style `TcpStream` (the coroutine parks, not the
//! worker). One may worker per CPU the process may use.
//!
//! Usage: may-echo-plain [-addr 127.0.0.1:PORT]

use std::io::{Read, Write};

use may::go;
use may::net::TcpStream;

fn echo(mut sock: TcpStream) {
    let _ = sock.set_nodelay(true);
    let mut buf = vec![0u8; 32 << 10];
    loop {
        match sock.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if sock.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

fn main() {
    let addr = may_peers::addr("127.0.0.1:7013");
    may_peers::set_workers(may_peers::cpus());
    let ln = may_peers::listen(addr);
    let acceptor = go!(move || {
        for sock in ln.incoming().flatten() {
            go!(move || echo(sock));
        }
    });
    let _ = acceptor.join();
}
