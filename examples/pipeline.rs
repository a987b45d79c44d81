//! The Go blog's "Go Concurrency Patterns: Pipelines and cancellation" (Sameer Ajmani, 2014),
//! its squaring pipeline ported stage for stage, with the blog's `done` channel replaced by a
//! [`goway::context`] (as Go code does today):
//!
//! - `gen` sends the numbers `1..=n` on a channel;
//! - **fan-out**: `--workers` `sq` goroutines read from that one channel and send squares;
//! - **fan-in**: `merge` starts one goroutine per `sq` output, copying into one channel, and a
//!   last goroutine closes it once a `WaitGroup` says they are all done.
//!
//! Every send is a `select` between the send and `ctx.Done()`:
//!
//! ```go
//! select {
//! case out <- n * n:
//! case <-ctx.Done():
//!     return
//! }
//! ```
//!
//! so cancelling the context stops every stage, wherever it is blocked: the blog's point that
//! "a stage closes its outbound channels when all the send operations are done" and that
//! downstream stages can tell upstream ones to abandon their work.
//!
//! The program runs the pipeline twice and prints two checkable lines:
//!
//! ```text
//! sum of squares of 1..=1000 through 4 workers: 333833500
//! cancelled after 10 of 1000 results: all 10 pipeline goroutines stopped (context canceled)
//! ```
//!
//! The first run consumes everything; the second reads `--take` results, cancels the context
//! while the stages are still blocked sending, and joins every goroutine of the pipeline.

use clap::Parser;
use goway::chan::{self, Receiver};
use goway::context::{self, Context};
use goway::sync::WaitGroup;
use goway::{JoinHandle, go, select};

/// Fan-out/fan-in squaring pipeline with cancellation.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Square the numbers 1..=N.
    #[arg(long, default_value_t = 1000)]
    n: u64,
    /// Number of `sq` goroutines (fan-out).
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Results to read before cancelling, in the second run.
    #[arg(long, default_value_t = 10)]
    take: u64,
}

/// The goroutines a pipeline started, to join them at the end.
type Goroutines = Vec<JoinHandle<()>>;

/// Emits `1..=n` (the blog's `gen`).
fn generate(ctx: &Context, n: u64, g: &mut Goroutines) -> Receiver<u64> {
    let (out, rx) = chan::bounded(0);
    let ctx = ctx.clone();
    g.push(go!(move || {
        for i in 1..=n {
            select! {
                send(out, i) -> _ => {},
                recv(ctx.done()) -> _ => return,
            }
        }
        // Dropping `out` closes the channel: the blog's `defer close(out)`.
    }));
    rx
}

/// Squares what it receives (the blog's `sq`); several of them share one input.
fn sq(ctx: &Context, input: Receiver<u64>, g: &mut Goroutines) -> Receiver<u64> {
    let (out, rx) = chan::bounded(0);
    let ctx = ctx.clone();
    g.push(go!(move || {
        for n in &input {
            select! {
                send(out, n * n) -> _ => {},
                recv(ctx.done()) -> _ => return,
            }
        }
    }));
    rx
}

/// Merges the channels into one, closed once they are all drained (the blog's `merge`).
fn merge(ctx: &Context, cs: Vec<Receiver<u64>>, g: &mut Goroutines) -> Receiver<u64> {
    let (out, rx) = chan::bounded(0);
    let wg = WaitGroup::new();
    for c in cs {
        // output := func(c <-chan int) { defer wg.Done(); for n := range c { select {...} } }
        let (out, ctx) = (out.clone(), ctx.clone());
        g.push(wg.go(move || {
            for n in &c {
                select! {
                    send(out, n) -> _ => {},
                    recv(ctx.done()) -> _ => return,
                }
            }
        }));
    }
    // go func() { wg.Wait(); close(out) }()
    g.push(go!(move || {
        wg.wait();
        out.close();
    }));
    rx
}

/// Builds gen → `workers` × sq → merge under `ctx`.
fn pipeline(ctx: &Context, n: u64, workers: usize, g: &mut Goroutines) -> Receiver<u64> {
    let nums = generate(ctx, n, g);
    let squares = (0..workers).map(|_| sq(ctx, nums.clone(), g)).collect();
    merge(ctx, squares, g)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info,may=warn"))
        .init();
    let args = Args::parse();
    if args.workers == 0 {
        return Err("--workers must be at least 1".into());
    }

    // Run 1: consume everything.
    let mut g = Goroutines::new();
    let (ctx, _cancel) = context::with_cancel(&context::background());
    let results = pipeline(&ctx, args.n, args.workers, &mut g);
    let sum: u64 = results.iter().sum();
    for h in g {
        h.join()?;
    }
    println!(
        "sum of squares of 1..={} through {} workers: {sum}",
        args.n, args.workers
    );

    // Run 2: read a few results, then cancel while every stage is still busy.
    let mut g = Goroutines::new();
    let (ctx, cancel) = context::with_cancel(&context::background());
    let results = pipeline(&ctx, args.n, args.workers, &mut g);
    let got = results.iter().take(args.take as usize).count();
    cancel.cancel(); // the blog's close(done)
    // `results` is still open here: the stages stop because of the context, not because
    // their channels closed.
    let count = g.len();
    for h in g {
        h.join()?;
    }
    let why = ctx
        .err()
        .map_or("not cancelled".to_string(), |e| e.to_string());
    println!(
        "cancelled after {got} of {} results: all {count} pipeline goroutines stopped ({why})",
        args.n
    );
    drop(results);
    Ok(())
}
