//! A worker pool the Go way: a `jobs` channel, `--workers` goroutines ranging over it, a
//! `sync.WaitGroup` that closes `results` once every worker has returned, and a context with a
//! deadline that bounds the whole batch.
//!
//! ```go
//! ctx, cancel := context.WithTimeout(context.Background(), timeout)
//! defer cancel()
//! jobs, results := make(chan Job), make(chan Result)
//! var wg sync.WaitGroup
//! for w := 0; w < workers; w++ {
//!     wg.Add(1)
//!     go func() { defer wg.Done(); worker(ctx, jobs, results) }()
//! }
//! go func() { defer close(jobs); for _, j := range all { select {
//!     case jobs <- j:
//!     case <-ctx.Done(): return
//! } } }()
//! go func() { wg.Wait(); close(results) }()
//! for r := range results { ... }
//! ```
//!
//! Each job computes the number of Collatz steps of its id (a small, checkable computation).
//! The last `--slow` jobs stand for work that hangs (a stuck backend): they wait until the
//! context's deadline and give up with its error. Output, with the defaults:
//!
//! ```text
//! 100 jobs on 8 workers, deadline 500ms
//! done: 96 jobs, total Collatz steps 2949
//! not done: 4 jobs (context deadline exceeded)
//! ```
//!
//! With `--slow 0` every job is done well before the deadline and the last line reads
//! `not done: 0 jobs`.

use std::time::Duration;

use clap::Parser;
use goway::chan::{self, Receiver, Sender};
use goway::context::{self, Context, ContextError};
use goway::sync::WaitGroup;
use goway::{go, select, time};

/// Worker pool with a WaitGroup and a context deadline.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Number of jobs (ids 1..=N).
    #[arg(long, default_value_t = 100)]
    jobs: u64,
    /// Number of worker goroutines.
    #[arg(long, default_value_t = 8)]
    workers: usize,
    /// Deadline for the whole batch, in milliseconds.
    #[arg(long, default_value_t = 500)]
    timeout_ms: u64,
    /// How many of the last jobs hang until the deadline.
    #[arg(long, default_value_t = 4)]
    slow: u64,
}

struct Job {
    id: u64,
    slow: bool,
}

/// What a worker reports for a job.
enum Outcome {
    Done { steps: u64 },
    GaveUp(ContextError),
}

/// Steps of the Collatz sequence from `n` down to 1.
fn collatz_steps(mut n: u64) -> u64 {
    let mut steps = 0;
    while n > 1 {
        n = if n % 2 == 0 { n / 2 } else { 3 * n + 1 };
        steps += 1;
    }
    steps
}

/// Runs one job, giving up when the context is done.
fn run(ctx: &Context, job: &Job) -> Outcome {
    if job.slow {
        // A call that never answers; only the deadline ends it.
        select! {
            recv(ctx.done()) -> _ => {},
            recv(time::after(Duration::from_secs(3600))) -> _ => {},
        }
    }
    match ctx.err() {
        Some(e) => Outcome::GaveUp(e),
        None => Outcome::Done {
            steps: collatz_steps(job.id),
        },
    }
}

/// Takes jobs until the channel closes or the context is done (Go's `worker`).
fn worker(ctx: Context, jobs: Receiver<Job>, results: Sender<(u64, Outcome)>) {
    for job in &jobs {
        let outcome = run(&ctx, &job);
        if results.send((job.id, outcome)).is_err() {
            return;
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info,may=warn"))
        .init();
    let args = Args::parse();
    if args.workers == 0 {
        return Err("--workers must be at least 1".into());
    }
    let timeout = Duration::from_millis(args.timeout_ms);
    println!(
        "{} jobs on {} workers, deadline {timeout:?}",
        args.jobs, args.workers
    );

    // ctx, cancel := context.WithTimeout(context.Background(), timeout); defer cancel()
    let (ctx, _cancel) = context::with_timeout(&context::background(), timeout);
    let (jobs_tx, jobs) = chan::bounded::<Job>(0);
    let (results_tx, results) = chan::bounded(args.workers);

    let wg = WaitGroup::new();
    for _ in 0..args.workers {
        // wg.Add(1); go func() { defer wg.Done(); worker(...) }()
        let (ctx, jobs, results_tx) = (ctx.clone(), jobs.clone(), results_tx.clone());
        wg.go(move || worker(ctx, jobs, results_tx));
    }
    drop(jobs);

    // The feeder stops handing out jobs once the deadline has passed.
    let feeder = {
        let (ctx, total, slow) = (ctx.clone(), args.jobs, args.slow);
        go!(move || {
            for id in 1..=total {
                let job = Job {
                    id,
                    slow: id > total.saturating_sub(slow),
                };
                select! {
                    send(jobs_tx, job) -> _ => {},
                    recv(ctx.done()) -> _ => return,
                }
            }
            // Dropping `jobs_tx` closes `jobs`: the workers' loops end.
        })
    };
    // go func() { wg.Wait(); close(results) }()
    let closer = go!(move || {
        wg.wait();
        results_tx.close();
    });

    let (mut done, mut steps, mut gave_up) = (0u64, 0u64, None);
    for (id, outcome) in &results {
        match outcome {
            Outcome::Done { steps: s } => {
                done += 1;
                steps += s;
            }
            Outcome::GaveUp(e) => {
                log::debug!("job {id}: {e}");
                gave_up = Some(e);
            }
        }
    }
    feeder.join()?;
    closer.join()?;

    println!("done: {done} jobs, total Collatz steps {steps}");
    let why = gave_up
        .or(ctx.err())
        .map_or(String::new(), |e| format!(" ({e})"));
    println!("not done: {} jobs{why}", args.jobs - done);
    Ok(())
}
