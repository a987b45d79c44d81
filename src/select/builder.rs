//! [`Select`]: a select over a set of channels known only at run time, on the engine of
//! [`select!`](crate::select!).

use std::any::{Any, TypeId};
use std::fmt;
use std::time::{Duration, Instant};

use super::{Case, RecvCase, SendCase, run};
use crate::chan::{Receiver, RecvError, SendError, Sender};

/// A select over a set of channels known only at run time (Go's `reflect.Select`).
///
/// Add cases with [`recv`](Select::recv) and [`send`](Select::send), each returning the case's
/// index; [`select`](Select::select) commits exactly one ready case (uniformly at random among
/// ready ones) and returns its index; then read its result with
/// [`recv_result`](Select::recv_result) or [`send_result`](Select::send_result).
///
/// # Examples
/// ```
/// use goway::{chan, select::Select};
///
/// let rxs: Vec<_> = (0..4).map(|_| chan::bounded::<usize>(1)).collect();
/// rxs[2].0.send(42).unwrap();
/// let mut sel = Select::new();
/// for (_, rx) in &rxs {
///     sel.recv(rx);
/// }
/// let i = sel.select();
/// assert_eq!(i, 2);
/// assert_eq!(sel.recv_result::<usize>(i), Some(Ok(42)));
/// ```
pub struct Select<'a> {
    cases: Vec<Slot<'a>>,
    chosen: Option<usize>,
}

enum Slot<'a> {
    Recv(Box<dyn DynCase + 'a>),
    Send(Box<dyn DynCase + 'a>),
}

/// A case with its typed result reachable through `Any`.
trait DynCase: Case {
    /// The type of the result, while the case holds one.
    fn result_type(&self) -> Option<TypeId>;
    /// Takes the result.
    fn result_any(&mut self) -> Option<Box<dyn Any>>;
}

impl<T: 'static> DynCase for RecvCase<'_, T> {
    fn result_type(&self) -> Option<TypeId> {
        self.result
            .as_ref()
            .map(|_| TypeId::of::<Result<T, RecvError>>())
    }

    fn result_any(&mut self) -> Option<Box<dyn Any>> {
        self.result.take().map(|r| Box::new(r) as Box<dyn Any>)
    }
}

impl<T: 'static> DynCase for SendCase<'_, T> {
    fn result_type(&self) -> Option<TypeId> {
        self.result
            .as_ref()
            .map(|_| TypeId::of::<Result<(), SendError<T>>>())
    }

    fn result_any(&mut self) -> Option<Box<dyn Any>> {
        self.result.take().map(|r| Box::new(r) as Box<dyn Any>)
    }
}

impl fmt::Debug for Select<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Select")
            .field("cases", &self.cases.len())
            .field("chosen", &self.chosen)
            .finish()
    }
}

impl Default for Select<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> Select<'a> {
    /// An empty select. With no cases, `select()` blocks forever, like Go's `select {}`.
    ///
    /// # Examples
    /// ```
    /// let mut sel = goway::select::Select::new();
    /// assert_eq!(sel.try_select(), None); // no case can ever be ready
    /// ```
    pub fn new() -> Self {
        Select {
            cases: Vec::new(),
            chosen: None,
        }
    }

    /// Adds a receive case on `rx`; returns its index.
    ///
    /// # Examples
    /// ```
    /// let (tx, rx) = goway::chan::bounded(1);
    /// let mut sel = goway::select::Select::new();
    /// let i = sel.recv(&rx);
    /// tx.send('x').unwrap();
    /// assert_eq!(sel.select(), i);
    /// assert_eq!(sel.recv_result::<char>(i), Some(Ok('x')));
    /// ```
    pub fn recv<T: 'static>(&mut self, rx: &'a Receiver<T>) -> usize {
        self.cases.push(Slot::Recv(Box::new(RecvCase::new(rx))));
        self.cases.len() - 1
    }

    /// Adds a send case of `value` on `tx`; returns its index. If another case is chosen, the
    /// value is dropped (as Go evaluates and discards it).
    ///
    /// # Examples
    /// ```
    /// let (tx, rx) = goway::chan::bounded(1);
    /// let mut sel = goway::select::Select::new();
    /// let i = sel.send(&tx, 9);
    /// assert_eq!(sel.select(), i); // room in the buffer: ready at once
    /// assert_eq!(rx.recv(), Ok(9));
    /// ```
    pub fn send<T: 'static>(&mut self, tx: &'a Sender<T>, value: T) -> usize {
        self.cases
            .push(Slot::Send(Box::new(SendCase::new(tx, value))));
        self.cases.len() - 1
    }

    #[track_caller]
    fn run(&mut self, non_blocking: bool, deadline: Option<Instant>) -> Option<usize> {
        let mut dyns: Vec<&mut dyn Case> = self
            .cases
            .iter_mut()
            .map(|s| match s {
                Slot::Recv(c) | Slot::Send(c) => &mut **c as &mut dyn Case,
            })
            .collect();
        let r = run(&mut dyns, non_blocking, deadline);
        self.chosen = r;
        r
    }

    /// Waits until one case commits and returns its index.
    ///
    /// # Examples
    /// ```
    /// let (tx, rx) = goway::chan::bounded::<u8>(0);
    /// let (_tx2, rx2) = goway::chan::bounded::<u8>(0);
    /// let h = goway::go!(move || tx.send(1).unwrap());
    /// let mut sel = goway::select::Select::new();
    /// let a = sel.recv(&rx);
    /// sel.recv(&rx2);
    /// assert_eq!(sel.select(), a); // waits until the goroutine sends
    /// assert_eq!(sel.recv_result::<u8>(a), Some(Ok(1)));
    /// h.join().unwrap();
    /// ```
    #[track_caller]
    pub fn select(&mut self) -> usize {
        match self.run(false, None) {
            Some(i) => i,
            None => unreachable!("a select without a deadline only returns with a case"),
        }
    }

    /// Commits a ready case if there is one (Go's `select` with `default`).
    ///
    /// # Examples
    /// ```
    /// let (tx, rx) = goway::chan::bounded::<u8>(1);
    /// let mut sel = goway::select::Select::new();
    /// let i = sel.recv(&rx);
    /// assert_eq!(sel.try_select(), None); // nothing ready: the `default` arm
    /// tx.send(3).unwrap();
    /// assert_eq!(sel.try_select(), Some(i));
    /// ```
    #[track_caller]
    pub fn try_select(&mut self) -> Option<usize> {
        self.run(true, None)
    }

    /// Waits at most `timeout` for a case to commit.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let (_tx, rx) = goway::chan::bounded::<u8>(1);
    /// let mut sel = goway::select::Select::new();
    /// sel.recv(&rx);
    /// assert_eq!(sel.select_timeout(Duration::from_millis(1)), None);
    /// ```
    #[track_caller]
    pub fn select_timeout(&mut self, timeout: Duration) -> Option<usize> {
        self.run(false, Instant::now().checked_add(timeout))
    }

    /// Waits until `deadline` at most for a case to commit.
    ///
    /// # Examples
    /// ```
    /// use std::time::{Duration, Instant};
    /// let (tx, rx) = goway::chan::bounded::<u8>(1);
    /// tx.send(1).unwrap();
    /// let mut sel = goway::select::Select::new();
    /// let i = sel.recv(&rx);
    /// assert_eq!(sel.select_deadline(Instant::now() + Duration::from_secs(1)), Some(i));
    /// ```
    #[track_caller]
    pub fn select_deadline(&mut self, deadline: Instant) -> Option<usize> {
        self.run(false, Some(deadline))
    }

    /// The result of receive case `i`, once it was chosen; `None` if `i` is not the chosen
    /// receive case of type `T` (or its result was already taken).
    ///
    /// # Examples
    /// ```
    /// let (tx, rx) = goway::chan::bounded::<&str>(1);
    /// drop(tx); // closed: the receive is ready, with Err
    /// let mut sel = goway::select::Select::new();
    /// let i = sel.recv(&rx);
    /// assert_eq!(sel.select(), i);
    /// assert_eq!(sel.recv_result::<u32>(i), None); // wrong type: the result stays
    /// assert_eq!(sel.recv_result::<&str>(i), Some(Err(goway::chan::RecvError)));
    /// assert_eq!(sel.recv_result::<&str>(i), None); // taken
    /// ```
    pub fn recv_result<T: 'static>(&mut self, i: usize) -> Option<Result<T, RecvError>> {
        if self.chosen != Some(i) {
            return None;
        }
        match self.cases.get_mut(i)? {
            // The type is checked before the result is taken: a wrong guess leaves it there.
            Slot::Recv(c) if c.result_type() == Some(TypeId::of::<Result<T, RecvError>>()) => {
                c.result_any()?.downcast().ok().map(|b| *b)
            }
            _ => None,
        }
    }

    /// The result of send case `i`, once it was chosen; `None` if `i` is not the chosen send
    /// case of type `T` (or its result was already taken).
    ///
    /// # Examples
    /// ```
    /// let (tx, rx) = goway::chan::bounded::<i32>(1);
    /// drop(rx); // every receiver gone: the send is ready, and fails
    /// let mut sel = goway::select::Select::new();
    /// let i = sel.send(&tx, 5);
    /// assert_eq!(sel.select(), i);
    /// let r = sel.send_result::<i32>(i).unwrap();
    /// assert_eq!(r.unwrap_err().into_inner(), 5);
    /// ```
    pub fn send_result<T: 'static>(&mut self, i: usize) -> Option<Result<(), SendError<T>>> {
        if self.chosen != Some(i) {
            return None;
        }
        match self.cases.get_mut(i)? {
            // The type is checked before the result is taken: a wrong guess leaves it there.
            Slot::Send(c) if c.result_type() == Some(TypeId::of::<Result<(), SendError<T>>>()) => {
                c.result_any()?.downcast().ok().map(|b| *b)
            }
            _ => None,
        }
    }
}
