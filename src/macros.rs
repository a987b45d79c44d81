//! `go!` and `select!`: thin macros, with the logic in `runtime` and `select`.

/// Spawns a goroutine running the closure and returns its
/// [`JoinHandle`](crate::runtime::JoinHandle): Go's `go f(x)`.
///
/// The goroutine runs on `may`'s worker threads. Inside it, never block the OS thread: use
/// goway's channels, sync types, `time::sleep` and `net`, not `std::sync::mpsc`,
/// `std::thread::sleep` or a std `Mutex` held across a wait. `thread_local!` values do not
/// survive a blocking call (the goroutine may resume on another worker). The stack is fixed
/// in size ([`runtime::Config::stack_size`](crate::runtime::Config::stack_size), default
/// 32 KiB): keep deep recursion and large stack arrays out of goroutines, or give them a
/// bigger stack through [`Builder`](crate::Builder).
///
/// A panic ends only this goroutine: [`JoinHandle::join`](crate::runtime::JoinHandle::join)
/// returns it as `Err(Panicked)`, and if nobody joins, it is logged with `log::error!`.
///
/// `go!` cannot return an error: it panics (in the caller) if the goroutine cannot be created,
/// when the process is at [`max_goroutines`](crate::runtime::max_goroutines) or the OS
/// refuses a stack, as Go dies with a fatal error then. Its stack has the runtime's default
/// size, checked by [`Config::apply`](crate::runtime::Config::apply), so the stack size is
/// never the cause. To handle those errors, or to choose the stack size, use
/// [`Builder::spawn`](crate::Builder::spawn).
///
/// # Examples
/// ```
/// let h = goway::go!(|| 6 * 7);
/// assert_eq!(h.join().unwrap(), 42);
/// ```
#[macro_export]
macro_rules! go {
    ($f:expr) => {
        $crate::runtime::spawn($f)
    };
}

/// Waits on several channel operations and runs the arm of the one that commits: Go's `select`.
///
/// ```text
/// select! {
///     recv(rx) -> res => ..,          // res: Result<T, RecvError>; Err once closed and drained
///     send(tx, value) -> res => ..,   // res: Result<(), SendError<T>>; Err if closed
///     recv(goway::time::after(d)) -> _ => ..,   // a timeout
///     default => ..,                  // optional: run if no arm is ready now
/// }
/// ```
///
/// - Exactly one arm commits. When several are ready the choice is uniformly random.
/// - An arm over a [`never`](crate::chan::never) channel is never chosen; a closed channel is
///   always ready (its `recv` arm gets `Err(RecvError)`, its `send` arm gets the value back).
/// - Without `default` and with every arm never ready, it blocks forever, like `select {}`.
/// - Every channel expression and every sent value is evaluated once, in order, before
///   waiting, as in Go; the value of a send arm that is not chosen is dropped.
/// - Patterns after `->` must be irrefutable (`res`, `_`, `Ok::<_, _>(..)` is not allowed);
///   arms may `break`, `continue` or `return` from the enclosing function.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use goway::{chan, select, time};
///
/// let (tx, rx) = chan::bounded::<i32>(1);
/// tx.send(7).unwrap();
/// let got = select! {
///     recv(rx) -> v => v.unwrap(),
///     recv(time::after(Duration::from_secs(1))) -> _ => -1,
/// };
/// assert_eq!(got, 7);
///
/// let idle = select! {
///     recv(rx) -> _ => false,
///     default => true,
/// };
/// assert!(idle);
/// ```
#[macro_export]
macro_rules! select {
    ($($tokens:tt)*) => {
        $crate::__select_parse!(
            @parse [] []
            [__goway_c0 __goway_c1 __goway_c2 __goway_c3 __goway_c4 __goway_c5 __goway_c6
             __goway_c7 __goway_c8 __goway_c9 __goway_c10 __goway_c11 __goway_c12 __goway_c13
             __goway_c14 __goway_c15 __goway_c16 __goway_c17 __goway_c18 __goway_c19
             __goway_c20 __goway_c21 __goway_c22 __goway_c23 __goway_c24 __goway_c25
             __goway_c26 __goway_c27 __goway_c28 __goway_c29 __goway_c30 __goway_c31]
            $($tokens)*
        )
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_parse {
    // All arms read.
    (@parse [$($cases:tt)*] [$($def:tt)*] [$($ids:ident)*]) => {
        $crate::__select_emit!(@emit [$($cases)*] [$($cases)*] [$($def)*])
    };
    // recv arms: a block body (comma optional), or an expression body (comma unless last).
    (@parse [$($cases:tt)*] [$($def:tt)*] [$id:ident $($ids:ident)*]
        recv($rx:expr) -> $res:pat => $body:block, $($rest:tt)*) => {
        $crate::__select_parse!(@parse [$($cases)* (recv $id ($rx) ($res) $body)] [$($def)*] [$($ids)*] $($rest)*)
    };
    (@parse [$($cases:tt)*] [$($def:tt)*] [$id:ident $($ids:ident)*]
        recv($rx:expr) -> $res:pat => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(@parse [$($cases)* (recv $id ($rx) ($res) $body)] [$($def)*] [$($ids)*] $($rest)*)
    };
    (@parse [$($cases:tt)*] [$($def:tt)*] [$id:ident $($ids:ident)*]
        recv($rx:expr) -> $res:pat => $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!(@parse [$($cases)* (recv $id ($rx) ($res) $body)] [$($def)*] [$($ids)*] $($rest)*)
    };
    (@parse [$($cases:tt)*] [$($def:tt)*] [$id:ident $($ids:ident)*]
        recv($rx:expr) -> $res:pat => $body:expr) => {
        $crate::__select_parse!(@parse [$($cases)* (recv $id ($rx) ($res) $body)] [$($def)*] [$($ids)*])
    };
    // send arms.
    (@parse [$($cases:tt)*] [$($def:tt)*] [$id:ident $($ids:ident)*]
        send($tx:expr, $val:expr) -> $res:pat => $body:block, $($rest:tt)*) => {
        $crate::__select_parse!(@parse [$($cases)* (send $id ($tx, $val) ($res) $body)] [$($def)*] [$($ids)*] $($rest)*)
    };
    (@parse [$($cases:tt)*] [$($def:tt)*] [$id:ident $($ids:ident)*]
        send($tx:expr, $val:expr) -> $res:pat => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(@parse [$($cases)* (send $id ($tx, $val) ($res) $body)] [$($def)*] [$($ids)*] $($rest)*)
    };
    (@parse [$($cases:tt)*] [$($def:tt)*] [$id:ident $($ids:ident)*]
        send($tx:expr, $val:expr) -> $res:pat => $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!(@parse [$($cases)* (send $id ($tx, $val) ($res) $body)] [$($def)*] [$($ids)*] $($rest)*)
    };
    (@parse [$($cases:tt)*] [$($def:tt)*] [$id:ident $($ids:ident)*]
        send($tx:expr, $val:expr) -> $res:pat => $body:expr) => {
        $crate::__select_parse!(@parse [$($cases)* (send $id ($tx, $val) ($res) $body)] [$($def)*] [$($ids)*])
    };
    // The default arm (at most one).
    (@parse [$($cases:tt)*] [] [$($ids:ident)*] default => $body:block, $($rest:tt)*) => {
        $crate::__select_parse!(@parse [$($cases)*] [$body] [$($ids)*] $($rest)*)
    };
    (@parse [$($cases:tt)*] [] [$($ids:ident)*] default => $body:block $($rest:tt)*) => {
        $crate::__select_parse!(@parse [$($cases)*] [$body] [$($ids)*] $($rest)*)
    };
    (@parse [$($cases:tt)*] [] [$($ids:ident)*] default => $body:expr, $($rest:tt)*) => {
        $crate::__select_parse!(@parse [$($cases)*] [$body] [$($ids)*] $($rest)*)
    };
    (@parse [$($cases:tt)*] [] [$($ids:ident)*] default => $body:expr) => {
        $crate::__select_parse!(@parse [$($cases)*] [$body] [$($ids)*])
    };
    (@parse [$($cases:tt)*] [$d:tt] [$($ids:ident)*] default $($rest:tt)*) => {
        compile_error!("goway::select!: more than one `default` arm")
    };
    (@parse [$($cases:tt)*] [$($def:tt)*] [] $($rest:tt)+) => {
        compile_error!("goway::select!: at most 32 arms")
    };
    (@parse [$($cases:tt)*] [$($def:tt)*] [$($ids:ident)*] $($rest:tt)+) => {
        compile_error!("goway::select!: expected `recv(rx) -> res => body`, `send(tx, value) -> res => body` or `default => body`")
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __select_emit {
    // Bind each channel (temporaries live to the end of the select) and build its case.
    (@emit [(recv $id:ident ($rx:expr) ($res:pat) $body:tt) $($rest:tt)*] [$($all:tt)*] [$($def:tt)*]) => {
        match $rx {
            ref __goway_rx => {
                let mut $id = $crate::select::RecvCase::new($crate::select::AsReceiver::as_receiver(__goway_rx));
                $crate::__select_emit!(@emit [$($rest)*] [$($all)*] [$($def)*])
            }
        }
    };
    (@emit [(send $id:ident ($tx:expr, $val:expr) ($res:pat) $body:tt) $($rest:tt)*] [$($all:tt)*] [$($def:tt)*]) => {
        match $tx {
            ref __goway_tx => {
                let mut $id = $crate::select::SendCase::new($crate::select::AsSender::as_sender(__goway_tx), $val);
                $crate::__select_emit!(@emit [$($rest)*] [$($all)*] [$($def)*])
            }
        }
    };
    // Run, then dispatch to the chosen arm.
    (@emit [] [$(($kind:ident $id:ident ($($x:tt)*) ($res:pat) $body:tt))*] []) => {{
        {
            let __goway_cases: &mut [&mut dyn $crate::select::Case] = &mut [$(&mut $id),*];
            $crate::select::run(__goway_cases, false, ::core::option::Option::None);
        }
        $( if $id.is_chosen() { let $res = $id.into_result(); $body } else )*
        { ::core::unreachable!("goway::select!: returned without a chosen arm") }
    }};
    (@emit [] [$(($kind:ident $id:ident ($($x:tt)*) ($res:pat) $body:tt))*] [$def:tt]) => {{
        {
            let __goway_cases: &mut [&mut dyn $crate::select::Case] = &mut [$(&mut $id),*];
            $crate::select::run(__goway_cases, true, ::core::option::Option::None);
        }
        $( if $id.is_chosen() { let $res = $id.into_result(); $body } else )*
        { $def }
    }};
}
