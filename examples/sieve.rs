//! Go's concurrent prime sieve (the `sieve.go` of Go's documentation and of the Go tour's
//! talks): a generator goroutine sends 2, 3, 4, …; each prime found gets a filter goroutine that
//! passes on only the numbers it does not divide; the filters form a daisy chain of unbuffered
//! channels.
//!
//! ```go
//! func generate(ch chan<- int) {
//!     for i := 2; ; i++ { ch <- i }
//! }
//! func filter(in <-chan int, out chan<- int, prime int) {
//!     for { i := <-in; if i%prime != 0 { out <- i } }
//! }
//! func main() {
//!     ch := make(chan int)
//!     go generate(ch)
//!     for i := 0; i < 100; i++ {
//!         prime := <-ch
//!         fmt.Println(prime)
//!         ch1 := make(chan int)
//!         go filter(ch, ch1, prime)
//!         ch = ch1
//!     }
//! }
//! ```
//!
//! The one difference: Go's version leaves its goroutines blocked forever when `main` returns.
//! In goway a send on a channel whose receivers are all gone returns `Err` instead of blocking,
//! so when `main` drops the last receiver, the last filter's send fails and it returns, which
//! drops *its* receiver, and so on back to the generator: every goroutine ends, and `main` joins
//! them all.
//!
//! Prints the first `--n` primes (100 by default), one per line, then
//! `<n> primes, the last is <p>; <n + 1> goroutines joined`.
//!
//! ```sh
//! cargo run --release --example sieve -- --n 10
//! ```

use clap::Parser;
use goway::chan::{self, Receiver, Sender};
use goway::go;

/// Go's concurrent prime sieve: prints the first N primes.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// How many primes to print.
    #[arg(long, default_value_t = 100)]
    n: usize,
}

/// Sends 2, 3, 4, … until nobody listens (Go's `generate`).
fn generate(ch: Sender<u64>) {
    for i in 2.. {
        if ch.send(i).is_err() {
            return;
        }
    }
}

/// Passes on the numbers that `prime` does not divide (Go's `filter`).
fn filter(input: Receiver<u64>, out: Sender<u64>, prime: u64) {
    for i in &input {
        if i % prime != 0 && out.send(i).is_err() {
            return;
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info,may=warn"))
        .init();
    let args = Args::parse();

    let mut goroutines = Vec::with_capacity(args.n + 1);
    let (tx, mut ch) = chan::bounded(0); // ch := make(chan int)
    goroutines.push(go!(move || generate(tx)));
    let mut last = None;
    for _ in 0..args.n {
        let prime = ch.recv()?; // prime := <-ch
        println!("{prime}");
        last = Some(prime);
        let (tx1, ch1) = chan::bounded(0); // ch1 := make(chan int)
        goroutines.push(go!(move || filter(ch, tx1, prime)));
        ch = ch1;
    }
    // Dropping the last receiver unwinds the chain: each goroutine's send fails in turn.
    drop(ch);
    let count = goroutines.len();
    for g in goroutines {
        g.join()?;
    }
    match last {
        Some(p) => println!(
            "{} primes, the last is {p}; {count} goroutines joined",
            args.n
        ),
        None => println!("0 primes; {count} goroutines joined"),
    }
    Ok(())
}
