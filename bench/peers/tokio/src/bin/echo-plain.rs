//! tokio-echo-plain: one tokio task per connection copies what it reads back through a
//! 32 KiB buffer.
//!
//! Usage: tokio-echo-plain [--addr 127.0.0.1:PORT] [--current-thread] [--workers N]

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn echo(mut sock: TcpStream) {
    let _ = sock.set_nodelay(true);
    let mut buf = vec![0u8; 32 << 10];
    loop {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if sock.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn main() {
    let o = tokio_peers::opts("127.0.0.1:7012");
    tokio_peers::runtime(&o).block_on(async move {
        let ln = tokio_peers::listen(o.addr).await;
        loop {
            if let Ok((sock, _)) = ln.accept().await {
                tokio::spawn(echo(sock));
            }
        }
    });
}
