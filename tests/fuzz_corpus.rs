//! The fuzz targets on stable, in `cargo test`: every input of the corpus in
//! `fuzz/corpus/<target>/`, then mutations of them (bit flips, protocol bytes, inserted,
//! deleted and repeated runs, splices of two inputs, truncations) for a bounded number of
//! rounds, each through the same entry point the cargo-fuzz target calls
//! (`goway::fuzzing`). A failing input is written to `target/fuzz-failures/` and named in the
//! failure, ready to replay with `cargo +nightly fuzz run <target> <file>` or to add to the
//! corpus once fixed.
//!
//! `GOWAY_FUZZ_ROUNDS` sets the mutations per target (default 20,000: well under a second in
//! release); `GOWAY_FUZZ_SEED` the generator's seed (default: fixed, so CI is reproducible).
//! For long runs that grow the corpus, use cargo-fuzz (see `fuzz/Cargo.toml`).

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use goway::fuzzing::{Rng, hash};

/// Bytes that matter to the protocols under test.
const INTERESTING: &[u8] = b"\r\n\0\xff*$:+-0123456789 \t;\"'%/?=HhTtPp.";

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let inputs: Vec<Vec<u8>> = files
        .iter()
        .map(|p| fs::read(p).expect("read corpus file"))
        .collect();
    assert!(!inputs.is_empty(), "corpus {} is empty", dir.display());
    inputs
}

fn mutate(rng: &mut Rng, base: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => {
                let i = rng.below(len + 1);
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n)
                    .map(|_| {
                        if rng.below(2) == 0 {
                            INTERESTING[rng.below(INTERESTING.len())]
                        } else {
                            rng.next_u64() as u8
                        }
                    })
                    .collect();
                v.splice(i..i, bytes);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(16));
                v.drain(i..i + n);
            }
            4 if len > 0 => {
                // Repeat a run, sometimes many times (long lines, many headers, deep nesting).
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(32));
                let run = v[i..i + n].to_vec();
                let times = if rng.below(4) == 0 {
                    1 + rng.below(200)
                } else {
                    1
                };
                for _ in 0..times {
                    v.splice(i..i, run.iter().copied());
                }
            }
            5 if !other.is_empty() => {
                let cut = rng.below(len + 1);
                let from = rng.below(other.len());
                v.truncate(cut);
                v.extend_from_slice(&other[from..]);
            }
            6 if len > 0 => v.truncate(rng.below(len)),
            _ => {
                // An ASCII digit string changed into another number.
                if let Some(i) = (0..len).find(|&i| v[(i + len / 2) % len].is_ascii_digit()) {
                    let i = (i + len / 2) % len;
                    let n = [0u64, 1, 9, 10, 255, 4096, 65535, 1 << 31, u64::MAX][rng.below(9)];
                    let mut j = i;
                    while j < v.len() && v[j].is_ascii_digit() {
                        j += 1;
                    }
                    v.splice(i..j, n.to_string().into_bytes());
                }
            }
        }
    }
    v
}

fn save_failure(target: &str, input: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-failures");
    let _ = fs::create_dir_all(&dir);
    let p = dir.join(format!("{target}-{:016x}", hash(input)));
    let _ = fs::write(&p, input);
    p
}

fn run(target: &str, f: fn(&[u8])) {
    let inputs = corpus(target);
    let rounds: usize = std::env::var("GOWAY_FUZZ_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let seed: u64 = std::env::var("GOWAY_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x676f_7761_7900_0001);
    let mut rng = Rng::new(seed);
    let check = |input: &[u8], what: &str| {
        if let Err(p) = panic::catch_unwind(AssertUnwindSafe(|| f(input))) {
            let file = save_failure(target, input);
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!(
                "{target}: {what} failed ({msg}); input saved as {} ({} bytes): {:?}",
                file.display(),
                input.len(),
                String::from_utf8_lossy(&input[..input.len().min(300)])
            );
        }
    };
    for (i, input) in inputs.iter().enumerate() {
        check(input, &format!("corpus input {i}"));
    }
    for round in 0..rounds {
        let base = &inputs[rng.below(inputs.len())];
        let other = &inputs[rng.below(inputs.len())];
        let input = mutate(&mut rng, base, other);
        check(&input, &format!("mutation round {round} (seed {seed})"));
    }
}

#[test]
fn lines_fuzz_checks_hold_on_the_corpus_and_its_mutations() {
    run("lines", goway::fuzzing::lines);
}

#[test]
fn length_fuzz_checks_hold_on_the_corpus_and_its_mutations() {
    run("length", goway::fuzzing::length);
}

#[test]
fn resp_fuzz_checks_hold_on_the_corpus_and_its_mutations() {
    run("resp", goway::fuzzing::resp);
}

#[test]
fn resp_reply_fuzz_checks_hold_on_the_corpus_and_its_mutations() {
    run("resp_reply", goway::fuzzing::resp_reply);
}

#[test]
fn http_request_fuzz_checks_hold_on_the_corpus_and_its_mutations() {
    run("http_request", goway::fuzzing::http_request);
}
