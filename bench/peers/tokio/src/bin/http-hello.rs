//! tokio-http-hello: hyper 1.x, HTTP/1.1 with keep-alive.
//!
//! * `GET /plaintext`: `Hello, World!` (text/plain)
//! * `GET /json`: `{"message":"Hello, World!"}` (application/json, serialized per request)
//! * anything else: 404
//!
//! Usage: tokio-http-hello [--addr 127.0.0.1:PORT] [--current-thread]

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

fn reply(body: Bytes, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

async fn route(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(match req.uri().path() {
        "/plaintext" => reply(Bytes::from_static(b"Hello, World!"), "text/plain"),
        "/json" => match serde_json::to_vec(&serde_json::json!({ "message": "Hello, World!" })) {
            Ok(body) => reply(Bytes::from(body), "application/json"),
            Err(_) => {
                let mut r = reply(Bytes::new(), "text/plain");
                *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                r
            }
        },
        _ => {
            let mut r = reply(Bytes::from_static(b"404 page not found\n"), "text/plain");
            *r.status_mut() = StatusCode::NOT_FOUND;
            r
        }
    })
}

fn main() {
    let o = tokio_peers::opts("127.0.0.1:7013");
    tokio_peers::runtime(o.current_thread).block_on(async move {
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
