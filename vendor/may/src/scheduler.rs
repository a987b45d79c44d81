use std::cell::Cell;
#[cfg(feature = "work_steal")]
use std::cell::UnsafeCell;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::thread;
use std::time::Duration;
#[cfg(feature = "work_steal")]
use std::time::Instant;

use crate::config::config;
use crate::coroutine_impl::{run_coroutine, CoroutineImpl};
use crate::io::{EventLoop, Selector};
use crate::likely::likely;
use crate::pool::CoroutinePool;
use crate::sync::AtomicOption;
use crate::timeout_list;
use crate::yield_now::set_co_para;
use may_queue::mpsc::Queue;

cfg_if::cfg_if! {
    if #[cfg(feature = "crossbeam_queue_steal")] {
        use crate::crossbeam_queue_shim::{self as spmc, Local, Steal};
    } else if #[cfg(feature = "work_steal")] {
        use may_queue::spmc::{self, Local, Steal};
    } else {
        use may_queue::spsc::Queue as Local;
    }
}

/// goway patch: a worker running its local queue looks at its global queue once every this
/// many coroutines it ran (Go: 61)
#[cfg(feature = "work_steal")]
const GLOBAL_CHECK_INTERVAL: u32 = 61;

/// goway patch: a worker whose local queue does not run dry still goes back to its event loop
/// (socket readiness, socket timeouts) once this long after its first global-queue check;
/// before, a worker polled its sockets only when it had no coroutine left to run, so two
/// coroutines that keep waking each other held up every socket of the worker for as long as
/// they went on. Go's `sysmon` polls the network after 10 ms without a poll; this check costs
/// the worker one clock read every `GLOBAL_CHECK_INTERVAL` runs, so it can afford 1 ms.
#[cfg(feature = "work_steal")]
const POLL_INTERVAL: Duration = Duration::from_millis(1);

// thread id, only workers are normal ones
thread_local! { pub static WORKER_ID: Cell<usize> = const { Cell::new(usize::MAX) }; }

// here we use Arc<AtomicOption<>> for that in the select implementation
// other event may try to consume the coroutine while timer thread consume it
type TimerData = Arc<AtomicOption<CoroutineImpl>>;
type TimerThread = timeout_list::TimerThread<TimerData>;

static mut SCHED: *const Scheduler = std::ptr::null();

#[cold]
fn init_scheduler() {
    let workers = config().get_workers();
    let b: Box<Scheduler> = Scheduler::new(workers);
    unsafe { SCHED = Box::into_raw(b) };

    // timer thread
    thread::spawn(move || {
        // timer function
        let timer_event_handler = |c: Arc<AtomicOption<CoroutineImpl>>| {
            // just re-push the co to the visit list
            if let Some(mut co) = c.take() {
                // set the timeout result for the coroutine
                set_co_para(&mut co, io::Error::new(io::ErrorKind::TimedOut, "timeout"));
                // goway patch: hand it to a worker rather than run it here. Run here, it went
                // on with its work on this thread until its next park, holding up every other
                // timer and running beside the workers (its wake-ups, made off any worker,
                // each cost a global push and an eventfd write)
                // SAFETY: `SCHED` was set to a leaked `Box` (never freed) before this thread
                // was spawned, and is never written again
                unsafe { &*SCHED }.schedule_global(co);
            }
        };

        let s = unsafe { &*SCHED };
        s.timer_thread.run(&timer_event_handler);
    });

    let core_ids = core_affinity::get_core_ids().unwrap();
    let pin_cores = config().get_worker_pin();
    // io event loop thread
    for (id, core) in (0..workers).zip(core_ids.into_iter().cycle()) {
        thread::spawn(move || {
            if pin_cores {
                core_affinity::set_for_current(core);
            }
            let s = unsafe { &*SCHED };
            s.event_loop.run(id);
        });
    }
}

#[inline]
pub fn get_scheduler() -> &'static Scheduler {
    unsafe {
        if likely(!SCHED.is_null()) {
            return &*SCHED;
        }
    }
    static ONCE: Once = Once::new();
    ONCE.call_once(init_scheduler);
    unsafe { &*SCHED }
}

#[repr(align(128))]
pub struct Scheduler {
    #[cfg(not(feature = "work_steal"))]
    local_queues: Vec<Local<CoroutineImpl>>,
    #[cfg(feature = "work_steal")]
    local_queues: Vec<UnsafeCell<Local<CoroutineImpl>>>,
    #[cfg(feature = "work_steal")]
    stealers: Vec<Steal<CoroutineImpl>>,
    global_queues: Vec<Queue<CoroutineImpl>>,
    event_loop: EventLoop,
    timer_thread: TimerThread,
    pub pool: CoroutinePool,
    pub workers: usize,
}

impl Scheduler {
    pub fn new(workers: usize) -> Box<Self> {
        #[cfg(not(feature = "work_steal"))]
        let local_queues = Vec::from_iter((0..workers).map(|_| Local::new()));

        #[cfg(feature = "work_steal")]
        let queues = Vec::from_iter((0..workers).map(|_| spmc::local()));
        #[cfg(feature = "work_steal")]
        let stealers = Vec::from_iter(queues.iter().map(|(s, _l)| s.clone()));
        #[cfg(feature = "work_steal")]
        let local_queues = Vec::from_iter(queues.into_iter().map(|(_s, l)| UnsafeCell::new(l)));

        let global_queues = Vec::from_iter((0..workers).map(|_| Queue::new()));

        Box::new(Scheduler {
            pool: CoroutinePool::new(),
            event_loop: EventLoop::new(workers).expect("can't create event_loop"),
            local_queues,
            #[cfg(feature = "work_steal")]
            stealers,
            global_queues,
            timer_thread: TimerThread::new(),
            workers,
        })
    }

    /// Runs this worker's queued coroutines. goway patch: returns `false`, as it runs the
    /// queue to the end (the early stop of fix 11 is in the `work_steal` variant).
    #[inline]
    #[cfg(not(feature = "work_steal"))]
    pub fn run_queued_tasks(&self, id: usize) -> bool {
        let local = unsafe { self.local_queues.get_unchecked(id) };
        while let Some(co) = local.pop() {
            run_coroutine(co);
        }
        false
    }

    /// Runs this worker's queued coroutines. goway patch: returns `true` when it stopped with
    /// coroutines still queued (see `POLL_INTERVAL`), so that the event loop polls without
    /// waiting and comes back.
    #[inline]
    #[cfg(feature = "work_steal")]
    pub fn run_queued_tasks(&self, id: usize) -> bool {
        let local = unsafe { &mut *self.local_queues.get_unchecked(id).get() };

        let max_steal: usize = std::cmp::min(3, self.workers - 1);

        #[cfg(feature = "rand_work_steal")]
        let mut rng = fastrand::Rng::new();

        // goway patch: how many coroutines this call ran from the local queue since it last
        // looked at the global one
        let mut since_global = 0u32;
        // goway patch: when the first of those checks ran (read only then: most calls run
        // fewer coroutines than that and never read the clock)
        let mut first_check: Option<Instant> = None;

        'work: loop {
            // goway patch: after every GLOBAL_CHECK_INTERVAL-th run, look at the global queue
            // (as Go's scheduler does every 61 schedules), so coroutines woken by other threads
            // (timers, plain threads) and new ones are not held up for as long as the local
            // queue never runs dry, as it does under coroutines that keep waking each other
            match local.pop() {
                Some(co) => {
                    run_coroutine(co);
                    since_global += 1;
                    if since_global >= GLOBAL_CHECK_INTERVAL {
                        since_global = 0;
                        if self.periodic_check(id, local, &mut first_check) {
                            return true;
                        }
                    }
                    continue 'work;
                }
                None => {
                    self.collect_global_into(id, local);
                    if local.has_tasks() {
                        continue 'work;
                    }
                }
            }

            // The i variable is unused if rand_work_steal is enabled since it selects the steal target randomly instead.
            for _i in 0..max_steal {
                cfg_if::cfg_if! {
                    if #[cfg(feature = "rand_work_steal")] {
                        let target = rng.usize(0..self.workers);
                    } else {
                        let target = (id + _i + 1) % self.workers;
                    }
                };
                let stealer = self.stealers.get(target).unwrap();
                if let Some(co) = stealer.steal_into(local) {
                    run_coroutine(co);
                    continue 'work;
                }
            }
            return false;
        }
    }

    /// goway patch: `run_queued_tasks`' check every `GLOBAL_CHECK_INTERVAL` runs, out of its
    /// loop. `true`: stop, so that the event loop polls the sockets (and their timeouts, which
    /// are run only between two calls); else the global queue has been taken in.
    #[cold]
    #[inline(never)]
    #[cfg(feature = "work_steal")]
    fn periodic_check(
        &self,
        id: usize,
        local: &mut Local<CoroutineImpl>,
        first_check: &mut Option<Instant>,
    ) -> bool {
        // only the epoll selector polls again at once when told to (`select` returns a zero
        // timeout); the kqueue and IOCP ones would wait for their next event instead
        if cfg!(any(target_os = "linux", target_os = "android")) {
            let now = Instant::now();
            let since = *first_check.get_or_insert(now);
            if now.duration_since(since) >= POLL_INTERVAL && local.has_tasks() {
                return true;
            }
        }
        self.collect_global_into(id, local);
        false
    }

    /// goway patch: `collect_global` into the local queue the caller already holds (a second
    /// `&mut` to it, made from the cell while the caller's is live, would alias it)
    #[cfg(feature = "work_steal")]
    fn collect_global_into(&self, id: usize, local: &mut Local<CoroutineImpl>) {
        // SAFETY: `id` is the calling worker's index, below `workers`, the length of
        // `global_queues` (as in `collect_global`)
        let global = unsafe { self.global_queues.get_unchecked(id) };
        let mut v = global.bulk_pop();
        while !v.is_empty() {
            for co in v {
                local.push_back(co);
            }
            v = global.bulk_pop();
        }
    }

    /// put the coroutine to correct queue so that next time it can be scheduled
    #[inline]
    pub fn schedule(&self, co: CoroutineImpl) {
        let id = WORKER_ID.get();

        if id != usize::MAX {
            self.schedule_with_id(co, id);
        } else {
            self.schedule_global(co);
        }
    }

    /// called by selector with known id
    #[inline]
    #[cfg(feature = "work_steal")]
    pub fn schedule_with_id(&self, co: CoroutineImpl, id: usize) {
        let local = unsafe { &mut *self.local_queues.get_unchecked(id).get() };
        local.push_back(co);
    }

    #[inline]
    #[cfg(not(feature = "work_steal"))]
    pub fn schedule_with_id(&self, co: CoroutineImpl, id: usize) {
        let local = unsafe { self.local_queues.get_unchecked(id) };
        local.push(co);
    }

    /// put the coroutine to global queue so that next time it can be scheduled
    #[inline]
    pub fn schedule_global(&self, co: CoroutineImpl) {
        static NEXT_THREAD_ID: AtomicUsize = AtomicUsize::new(0);
        let thread_id = NEXT_THREAD_ID
            .fetch_add(1, Ordering::Relaxed)
            .rem_euclid(self.workers);
        let global = unsafe { self.global_queues.get_unchecked(thread_id) };
        global.push(co);
        // signal one waiting thread if any
        self.get_selector().wakeup(thread_id);
    }

    /// put the coroutine to global queue so that next time it can be scheduled
    #[inline]
    pub fn schedule_global_with_id(&self, co: CoroutineImpl, id: usize) {
        let thread_id = id.rem_euclid(self.workers);
        // println!("Scheduling to {thread_id}");
        let global = unsafe { self.global_queues.get_unchecked(thread_id) };
        global.push(co);
        // signal one waiting thread if any
        self.get_selector().wakeup(thread_id);
    }

    #[inline]
    pub fn collect_global(&self, id: usize) {
        #[cfg(feature = "work_steal")]
        let local = unsafe { &mut *self.local_queues.get_unchecked(id).get() };
        #[cfg(not(feature = "work_steal"))]
        let local = unsafe { self.local_queues.get_unchecked(id) };
        let global = unsafe { self.global_queues.get_unchecked(id) };
        let mut v = global.bulk_pop();
        while !v.is_empty() {
            for co in v {
                #[cfg(feature = "work_steal")]
                local.push_back(co);
                #[cfg(not(feature = "work_steal"))]
                local.push(co);
            }
            v = global.bulk_pop();
        }
    }

    #[inline]
    pub fn add_timer(
        &self,
        dur: Duration,
        co: Arc<AtomicOption<CoroutineImpl>>,
    ) -> timeout_list::TimeoutHandle<TimerData> {
        self.timer_thread.add_timer(dur, co)
    }

    #[inline]
    pub fn del_timer(&self, handle: timeout_list::TimeoutHandle<TimerData>) {
        self.timer_thread.del_timer(handle);
    }

    #[inline]
    pub fn get_selector(&self) -> &Selector {
        self.event_loop.get_selector()
    }
}
