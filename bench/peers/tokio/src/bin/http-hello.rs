//! tokio-http-hello: hyper 1.x, HTTP/1.1 with keep-alive.
//!
//! * `GET /plaintext`: `Hello, World!` (text/plain)
//! * `GET /json`: `{"message":"Hello, World!"}` (application/json, serialized per request)
//! * anything else: 404
//!
//! Usage: tokio-http-hello [--addr 127.0.0.1:PORT] [--current-thread] [--workers N]

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio_peers::hello::route;

fn main() {
    let o = tokio_peers::opts("127.0.0.1:7013");
    if o.tls_cert.is_some() || o.tls_key.is_some() {
        eprintln!("tokio-http-hello serves plain HTTP: use tokio-https-hello for TLS");
        std::process::exit(2)
    }
    tokio_peers::runtime(&o).block_on(async move {
        let ln = tokio_peers::listen(o.addr).await;
        loop {
            let Ok((sock, _)) = ln.accept().await else {
                continue;
            };
            let _ = sock.set_nodelay(true);
            tokio::spawn(async move {
                let conn = http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(sock), service_fn(route));
                let _ = conn.await;
            });
        }
    });
}
