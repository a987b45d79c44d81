//! The handler goroutine: runs the user's handler on the [`Conn`], records how it ended, and
//! closes the write queue after it.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::shared::{ConnCtl, Exit};
use super::{Conn, HandlerFn};
use crate::net::codec::Codec;
use crate::net::server::stats::CloseReason;

pub(crate) struct HandlerTask<C: Codec> {
    pub(super) conn: Conn<C>,
    pub(super) handler: Arc<HandlerFn<C>>,
    /// For its `panic_reply`.
    pub(super) codec: C,
    pub(super) exit: Exit<C::Out>,
}

impl<C: Codec> HandlerTask<C> {
    pub(crate) fn run(self) {
        let HandlerTask {
            mut conn,
            handler,
            mut codec,
            exit,
        } = self;
        let sh = &exit.0;
        #[cfg(feature = "tracing")]
        let _span = crate::runtime::enter_span(
            tracing::info_span!(target: "goway::server", "conn", server = %sh.server.listen, peer = %sh.peer, conn_id = sh.id),
        );
        // While the handler runs, each park of this goroutine starts the writer for a carry
        // the handler left (see the module docs of `conn`): replies held in a burst never
        // wait for the handler to come back.
        let kick = conn.tx.writer.clone();
        let hook: may::coroutine::ParkHook = Arc::new(move || kick.parking());
        let before = may::coroutine::Coroutine::set_park_hook(Some(hook));
        if before.is_ok() {
            conn.handler_key = may::coroutine::Coroutine::running_key().unwrap_or(0);
        }
        // A panic ends only this connection (Go's conn.serve recovers and logs it).
        let ended = panic::catch_unwind(AssertUnwindSafe(|| handler(&conn)));
        if let Ok(before) = before {
            let _ = may::coroutine::Coroutine::set_park_hook(before);
        }
        conn.handler_key = 0;
        match ended {
            Ok(Ok(())) => sh.set_reason(CloseReason::HandlerDone),
            Ok(Err(e)) => {
                log::debug!(target: "goway::server", "conn {} {}: handler error: {e}", sh.id, sh.peer);
                sh.set_reason(CloseReason::HandlerError);
            }
            // A panic out of `recv` (still marked waiting: nothing else there panics) is the
            // codec's, decoding on this goroutine: the reading part's failure, as in a reader
            // goroutine (whose exit guard does the same): the connection is aborted, and it
            // is neither counted nor answered as the handler's panic.
            Err(_) if sh.waiting.load(Ordering::Relaxed) => {
                log::error!(target: "goway::server", "conn {} {}: codec panicked; closing", sh.id, sh.peer);
                sh.abort(CloseReason::Panic);
            }
            Err(p) => {
                sh.server.stats.panics.fetch_add(1, Ordering::Relaxed);
                log::error!(target: "goway::server", "panic serving {}: {}", sh.peer, crate::runtime::panic_message(p.as_ref()));
                sh.set_reason(CloseReason::Panic);
                // Nothing answered yet: the codec's error reply, written after the queue
                // (which is empty) and before the connection closes.
                if !sh.replied.load(Ordering::Acquire) && sh.out_tx.is_empty() {
                    if let Some(reply) = codec.panic_reply() {
                        *sh.error_reply.lock() = Some(reply);
                    }
                }
            }
        }
        // Input from now on is discarded until the client closes (by a reader goroutine,
        // started before the writer can reach its linger, which waits for it).
        conn.finish_reading();
        // The writer writes what is queued, then closes: a writer goroutine running sees the
        // closed queue, else this goroutine does it. Clones held elsewhere now fail.
        conn.tx.tx.close();
        let writer = conn.tx.writer.clone();
        drop(conn);
        writer.finish();
        drop(exit);
    }
}
