//! A small JSON REST service in the style of a Go `net/http` app: a store behind a mutex,
//! one handler function per route on a `ServeMux` with Go 1.22 patterns, and a context with a
//! timeout for each request's work.
//!
//! ```text
//! GET    /todos          list          200 [{"id":1,"title":"..","done":false}, ..]
//! POST   /todos          create        201 {"id":..} + Location      (body {"title":"..","done":false})
//! GET    /todos/{id}     get           200 | 404
//! PUT    /todos/{id}     update        200 | 404                     (body {"title":"..","done":true})
//! DELETE /todos/{id}     delete        204 | 404
//! ```
//!
//! Every handler gives the store 2 s (`context::with_timeout(&r.context(), ..)`); the store
//! checks the context as a database driver would, and the handler answers 504 when it runs
//! out. Add `?delay_ms=N` to any request to make the store that slow.
//!
//! Run it with `cargo run --release --example http_todo` (`--addr` to change the address),
//! then for example `curl -d '{"title":"milk"}' http://127.0.0.1:8080/todos`.
//!
//! SIGTERM or Ctrl-C drains it (Go's `srv.Shutdown`): it stops accepting, closes idle
//! connections, finishes the requests in flight within `--grace` seconds, cuts off the rest,
//! reports both and exits 0; a second signal exits at once (status 130 or 143). With
//! `--reuse-port`, several copies can serve one port (docs/deploy.md).

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Parser;
use goway::context::{self, Context, ContextError};
use goway::http::{self, Request, ResponseWriter, ServeError, ServeMux, Server, StatusCode};
use goway::net::ShutdownReport;
use goway::sync::Mutex;
use serde::{Deserialize, Serialize};

/// JSON to-do service on goway.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: String,
    /// Seconds a graceful shutdown (on SIGTERM or Ctrl-C) waits for the requests in flight
    /// before cutting them off; a second signal exits at once.
    #[arg(long, default_value_t = 10)]
    grace: u64,
    /// Set `SO_REUSEPORT`, so that several copies of this server listen on one port (see
    /// docs/deploy.md).
    #[arg(long)]
    reuse_port: bool,
}

#[derive(Debug, Clone, Serialize)]
struct Todo {
    id: u64,
    title: String,
    done: bool,
}

#[derive(Debug, Deserialize)]
struct TodoInput {
    title: String,
    #[serde(default)]
    done: bool,
}

#[derive(Default)]
struct Data {
    next_id: u64,
    items: BTreeMap<u64, Todo>,
}

/// The store: what a database client would be in a Go service. Each call takes the
/// request's context and gives up when it is done.
struct Store {
    data: Mutex<Data>,
}

impl Store {
    /// Simulated latency (`?delay_ms=`), cut short by the context.
    fn wait(ctx: &Context, delay: Duration) -> Result<(), ContextError> {
        if !delay.is_zero() {
            goway::select! {
                recv(ctx.done()) -> _ => {},
                recv(goway::time::after(delay)) -> _ => {},
            }
        }
        match ctx.err() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn list(&self, ctx: &Context, delay: Duration) -> Result<Vec<Todo>, ContextError> {
        Self::wait(ctx, delay)?;
        Ok(self.data.lock().items.values().cloned().collect())
    }

    fn get(&self, ctx: &Context, delay: Duration, id: u64) -> Result<Option<Todo>, ContextError> {
        Self::wait(ctx, delay)?;
        Ok(self.data.lock().items.get(&id).cloned())
    }

    fn create(&self, ctx: &Context, delay: Duration, t: TodoInput) -> Result<Todo, ContextError> {
        Self::wait(ctx, delay)?;
        let mut d = self.data.lock();
        d.next_id += 1;
        let todo = Todo {
            id: d.next_id,
            title: t.title,
            done: t.done,
        };
        d.items.insert(todo.id, todo.clone());
        Ok(todo)
    }

    fn update(
        &self,
        ctx: &Context,
        delay: Duration,
        id: u64,
        t: TodoInput,
    ) -> Result<Option<Todo>, ContextError> {
        Self::wait(ctx, delay)?;
        let mut d = self.data.lock();
        Ok(d.items.get_mut(&id).map(|item| {
            item.title = t.title;
            item.done = t.done;
            item.clone()
        }))
    }

    fn delete(&self, ctx: &Context, delay: Duration, id: u64) -> Result<bool, ContextError> {
        Self::wait(ctx, delay)?;
        Ok(self.data.lock().items.remove(&id).is_some())
    }
}

/// How long the store may take for one request.
const STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// The request's context with the store timeout, and the simulated delay.
fn work_ctx(r: &Request) -> (Context, context::CancelFunc, Duration) {
    let (ctx, cancel) = context::with_timeout(&r.context(), STORE_TIMEOUT);
    let delay = r
        .query_value("delay_ms")
        .and_then(|v| v.parse().ok())
        .map_or(Duration::ZERO, Duration::from_millis);
    (ctx, cancel, delay)
}

fn store_error(w: &mut ResponseWriter, e: ContextError) {
    if e.is_timeout() {
        http::error(w, "store timed out", StatusCode::GATEWAY_TIMEOUT);
    } else {
        http::error(w, "request canceled", StatusCode::SERVICE_UNAVAILABLE);
    }
}

fn id_of(r: &Request, w: &mut ResponseWriter) -> Option<u64> {
    let id = r.path_value("id").and_then(|v| v.parse().ok());
    if id.is_none() {
        http::error(w, "id must be a number", StatusCode::BAD_REQUEST);
    }
    id
}

fn list(store: &Store, r: &Request, w: &mut ResponseWriter) {
    let (ctx, _cancel, delay) = work_ctx(r);
    match store.list(&ctx, delay) {
        Ok(items) => http::write_json(w, StatusCode::OK, &items),
        Err(e) => store_error(w, e),
    }
}

fn create(store: &Store, r: &Request, w: &mut ResponseWriter) {
    let input: TodoInput = match http::read_json(r) {
        Ok(t) => t,
        Err(e) => return http::error(w, &e.to_string(), e.status()),
    };
    let (ctx, _cancel, delay) = work_ctx(r);
    match store.create(&ctx, delay, input) {
        Ok(t) => {
            w.header().set("Location", &format!("/todos/{}", t.id));
            http::write_json(w, StatusCode::CREATED, &t);
        }
        Err(e) => store_error(w, e),
    }
}

fn get(store: &Store, r: &Request, w: &mut ResponseWriter) {
    let Some(id) = id_of(r, w) else { return };
    let (ctx, _cancel, delay) = work_ctx(r);
    match store.get(&ctx, delay, id) {
        Ok(Some(t)) => http::write_json(w, StatusCode::OK, &t),
        Ok(None) => http::error(w, "no such todo", StatusCode::NOT_FOUND),
        Err(e) => store_error(w, e),
    }
}

fn update(store: &Store, r: &Request, w: &mut ResponseWriter) {
    let Some(id) = id_of(r, w) else { return };
    let input: TodoInput = match http::read_json(r) {
        Ok(t) => t,
        Err(e) => return http::error(w, &e.to_string(), e.status()),
    };
    let (ctx, _cancel, delay) = work_ctx(r);
    match store.update(&ctx, delay, id, input) {
        Ok(Some(t)) => http::write_json(w, StatusCode::OK, &t),
        Ok(None) => http::error(w, "no such todo", StatusCode::NOT_FOUND),
        Err(e) => store_error(w, e),
    }
}

fn delete(store: &Store, r: &Request, w: &mut ResponseWriter) {
    let Some(id) = id_of(r, w) else { return };
    let (ctx, _cancel, delay) = work_ctx(r);
    match store.delete(&ctx, delay, id) {
        Ok(true) => w.write_header(StatusCode::NO_CONTENT),
        Ok(false) => http::error(w, "no such todo", StatusCode::NOT_FOUND),
        Err(e) => store_error(w, e),
    }
}

/// Registers `f` for `pattern` with the shared store.
fn route(
    mux: &mut ServeMux,
    store: &std::sync::Arc<Store>,
    pattern: &str,
    f: fn(&Store, &Request, &mut ResponseWriter),
) {
    let store = store.clone();
    mux.handle(pattern, move |r: &Request, w: &mut ResponseWriter| {
        f(&store, r, w)
    });
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info,may=warn"))
        .init();
    let args = Args::parse();
    // Cancelled by the first SIGTERM or Ctrl-C; the second one exits at once.
    let shutdown = goway::signal::shutdown_context(&context::background())?;
    let grace = Duration::from_secs(args.grace);
    let store = std::sync::Arc::new(Store {
        data: Mutex::new(Data::default()),
    });
    let mut mux = ServeMux::new();
    route(&mut mux, &store, "GET /todos", list);
    route(&mut mux, &store, "POST /todos", create);
    route(&mut mux, &store, "GET /todos/{id}", get);
    route(&mut mux, &store, "PUT /todos/{id}", update);
    route(&mut mux, &store, "DELETE /todos/{id}", delete);
    let server = Server::builder()
        .addr(args.addr)
        .handler(mux)
        .read_header_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_secs(10))
        .write_timeout(Duration::from_secs(10))
        .max_body_bytes(1 << 20)
        .shutdown_grace(grace)
        .shutdown_on(shutdown.done())
        .reuse_port(args.reuse_port)
        .bind()?;
    println!("listening on {}", server.local_addr()?);
    let handle = server.handle();
    match server.serve() {
        Err(ServeError::ServerClosed) | Ok(()) => {}
        Err(e) => return Err(e.into()),
    }
    // `serve` returns as the drain starts: wait for it (it ends within the grace).
    let outcome = handle.wait_shutdown(grace + Duration::from_secs(5));
    println!("shutdown: {}", ShutdownReport::log_outcome(outcome));
    Ok(())
}
