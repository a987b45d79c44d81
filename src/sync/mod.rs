//! Go's `sync` (and `x/sync`) for goroutines: every wait parks the goroutine, never its worker
//! thread, and every type works from plain OS threads too, in any mix.
//!
//! | Go | goway |
//! |---|---|
//! | `var wg sync.WaitGroup`; `wg.Add(n)`, `wg.Done()`, `wg.Wait()` | [`WaitGroup::new()`](WaitGroup::new); [`add(n)`](WaitGroup::add), [`done()`](WaitGroup::done), [`wait()`](WaitGroup::wait); clone to share |
//! | `wg.Add(1); go func() { defer wg.Done(); ... }()` | [`wg.go(f)`](WaitGroup::go) (Go 1.25's `wg.Go`); for work `go` does not start: `let _done = wg.`[`add_guard()`](WaitGroup::add_guard). Both release `wait` when the task panics, which a bare `add`/`done` pair does not |
//! | `sync.Mutex` + the data it guards | [`Mutex<T>`]: `*m.lock() += 1`; [`try_lock()`](Mutex::try_lock) |
//! | `sync.RWMutex` | [`RwLock<T>`]: [`read()`](RwLock::read), [`write()`](RwLock::write), `try_` forms |
//! | `sync.Once`, `once.Do(f)` | [`Once`], [`call_once(f)`](Once::call_once) |
//! | `sync.OnceValue(f)` | [`OnceValue::new(f)`](OnceValue::new), [`get()`](OnceValue::get) or `*v` |
//! | `sync.Cond`: `Wait`, `Signal`, `Broadcast` | [`Cond`]: [`wait(guard)`](Cond::wait), [`signal()`](Cond::signal), [`broadcast()`](Cond::broadcast) |
//! | `x/sync/semaphore.Weighted` | [`Semaphore`]: [`acquire()`](Semaphore::acquire), [`try_acquire()`](Semaphore::try_acquire), [`acquire_timeout(d)`](Semaphore::acquire_timeout), [`acquire_ctx(&ctx)`](Semaphore::acquire_ctx); RAII [`Permit`]s |
//! | `x/sync/errgroup` | [`Group`]: [`go(f)`](Group::go), [`try_go(f)`](Group::try_go), [`wait()`](Group::wait), [`set_limit(n)`](Group::set_limit), [`Group::with_context`] |
//!
//! **No poisoning.** Go has none, and in goway a panic ends only its goroutine: a guard
//! dropped by a panic unlocks, leaving the data as the panic left it (as `parking_lot` does).
//! So `lock()`, `read()` and `write()` return guards, not `LockResult`s.
//!
//! **Why not `may::sync`.** may's `Mutex`, `RwLock`, `Condvar` and `Semphore` park coroutines
//! correctly, but they carry std's poisoning API, may's `RwLock` lets a stream of readers
//! starve a writer (Go's does not), its `Condvar` works only with its own `Mutex`, its
//! semaphore has no RAII permits, weights or context, and its `WaitGroup` counts clones instead
//! of `Add`/`Done`. So goway has its own, all built on the parker that goway's channels use
//! (one queue of one-shot waiters per primitive, as Go builds package `sync` on its runtime
//! semaphore). Guards are `Send`: a goroutine may resume on another worker while it holds one.
//!
//! # Examples
//! ```
//! use std::sync::Arc;
//! use goway::sync::{Mutex, WaitGroup};
//!
//! let hits = Arc::new(Mutex::new(0u32));
//! let wg = WaitGroup::new();
//! for _ in 0..100 {
//!     let hits = hits.clone();
//!     wg.go(move || *hits.lock() += 1);
//! }
//! wg.wait();
//! assert_eq!(*hits.lock(), 100);
//! ```

mod cond;
mod errgroup;
mod mutex;
mod once;
mod rwlock;
mod semaphore;
mod wait_group;
mod waiters;

pub use cond::Cond;
pub use errgroup::Group;
pub use mutex::{Mutex, MutexGuard};
pub use once::{Once, OnceValue};
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use semaphore::{OwnedPermit, Permit, Semaphore};
pub use wait_group::{DoneGuard, WaitGroup};
