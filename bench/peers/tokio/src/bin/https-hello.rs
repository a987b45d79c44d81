//! tokio-https-hello: `tokio-http-hello`'s routes (hyper 1.x, HTTP/1.1, keep-alive) over
//! tokio-rustls. Each connection's handshake runs in its own task.
//!
//! Usage: tokio-https-hello --tls-cert PATH --tls-key PATH [--addr 127.0.0.1:PORT] [--current-thread] [--workers N]

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio_peers::hello::route;

fn main() {
    let o = tokio_peers::opts("127.0.0.1:7014");
    let (Some(cert), Some(key)) = (o.tls_cert.as_deref(), o.tls_key.as_deref()) else {
        eprintln!("tokio-https-hello: --tls-cert and --tls-key are required");
        std::process::exit(2)
    };
    let acceptor = tokio_peers::tls::acceptor(cert, key);
    tokio_peers::runtime(&o).block_on(async move {
        let ln = tokio_peers::listen(o.addr).await;
        loop {
            let Ok((sock, _)) = ln.accept().await else {
                continue;
            };
            let _ = sock.set_nodelay(true);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(sock).await else {
                    return;
                };
                let conn = http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(tls), service_fn(route));
                let _ = conn.await;
            });
        }
    });
}
