//! The cooperative scheduler and threaded components (A6, A8).
//!
//! One thread runs many thousands of components. Each round it takes the
//! components that were woken, calls each one's `main` once, and puts back
//! those that answered [`Step::Continue`]. When nothing is runnable it parks
//! in its [`Reactor`] (by default the thread simply parks): an idle
//! scheduler uses no CPU and no timer. A wake-up from any thread pushes the
//! component's key onto the run queue and, only if the scheduler is parked,
//! unparks it.
//!
//! The reactor is the hook the network stack uses to make the Selector's
//! `poll` the scheduler's way of sleeping, so that socket readiness and
//! component wake-ups are served by the same thread with no thread hop.

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use slab::Slab;

use crate::cat::Cat;
use crate::component::{Component, Cx, Handle, Step};
use crate::error::ActivateError;
use crate::wake::{lock, Target, WakeCell, SCHEDULED};

/// What the scheduler running on a thread shares with that thread alone.
struct ThisThread {
    /// The running scheduler's [`Shared`] (compared, never dereferenced);
    /// null when none runs here.
    running: Cell<*const Shared>,
    /// Components woken on this thread since its scheduler last looked.
    ready: RefCell<Vec<usize>>,
}

thread_local! {
    static ON_THIS_THREAD: ThisThread = const {
        ThisThread {
            running: Cell::new(std::ptr::null()),
            ready: RefCell::new(Vec::new()),
        }
    };
}

/// Marks `shared`'s scheduler as running on this thread until dropped
/// (restoring what was there, for a scheduler run inside another's
/// component).
struct RunningHere {
    previous: *const Shared,
    previous_ready: Vec<usize>,
}

impl RunningHere {
    fn enter(shared: &Arc<Shared>) -> RunningHere {
        ON_THIS_THREAD.with(|t| RunningHere {
            previous: t.running.replace(Arc::as_ptr(shared)),
            previous_ready: std::mem::take(&mut *t.ready.borrow_mut()),
        })
    }
}

impl Drop for RunningHere {
    fn drop(&mut self) {
        ON_THIS_THREAD.with(|t| {
            t.running.set(self.previous);
            *t.ready.borrow_mut() = std::mem::take(&mut self.previous_ready);
        });
    }
}

/// Ends a blocking [`Reactor::park`] from any thread.
pub trait Unpark: Send + Sync + 'static {
    /// Makes the current or the next `park(None)` return promptly.
    fn unpark(&self);
}

/// How a scheduler sleeps when nothing is runnable, and what else it serves
/// between rounds (I/O readiness, for the network stack's Selector).
pub trait Reactor: Send + 'static {
    /// Called once on the scheduler's thread before the first `park`: the
    /// handle other threads use to wake it.
    fn unparker(&mut self) -> Arc<dyn Unpark>;

    /// `None`: block until [`Unpark::unpark`] is called (an unpark that came
    /// before the call counts) or the reactor has events of its own.
    /// `Some(d)`: wait at most `d` (the scheduler passes zero every few rounds
    /// so that I/O is never starved by busy components).
    ///
    /// Components woken inside `park` on the scheduler's thread (by the
    /// reactor handing out its events) are run after `park` returns, so it
    /// must return once it has handed out a batch of events rather than
    /// block again.
    fn park(&mut self, timeout: Option<Duration>);
}

/// The default reactor: parks the scheduler's thread.
#[derive(Debug, Default)]
pub struct ThreadReactor;

struct ThreadUnpark(Thread);

impl Unpark for ThreadUnpark {
    fn unpark(&self) {
        self.0.unpark();
    }
}

impl Reactor for ThreadReactor {
    fn unparker(&mut self) -> Arc<dyn Unpark> {
        Arc::new(ThreadUnpark(thread::current()))
    }

    fn park(&mut self, timeout: Option<Duration>) {
        match timeout {
            None => thread::park(),
            Some(d) if d.is_zero() => {}
            Some(d) => thread::park_timeout(d),
        }
    }
}

struct RunQueue {
    ready: VecDeque<usize>,
    new: Vec<(Handle, Box<dyn Component>)>,
    /// The scheduler is (about to be) parked: a push must unpark it.
    sleeping: bool,
    /// Threaded components still running (they keep the scheduler alive).
    threaded: usize,
    stop: bool,
}

/// What every component of one scheduler, and every thread that wakes one,
/// shares.
pub(crate) struct Shared {
    run: Mutex<RunQueue>,
    unpark: OnceLock<Arc<dyn Unpark>>,
    timers: Mutex<Timers>,
    pub(crate) cat: Cat,
}

/// One `wake_at` request: wake `cell` at `at` (`seq` orders equal times).
struct Timer {
    at: Instant,
    seq: u64,
    cell: Arc<WakeCell>,
}

impl PartialEq for Timer {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Timer {}

impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Timer {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

#[derive(Default)]
struct Timers {
    heap: BinaryHeap<Reverse<Timer>>,
    seq: u64,
}

impl Shared {
    /// Wakes `cell` at `at` (see [`Cx::wake_at`]).
    pub(crate) fn add_timer(&self, at: Instant, cell: Arc<WakeCell>) {
        let earliest = {
            let mut t = lock(&self.timers);
            t.seq += 1;
            let seq = t.seq;
            t.heap.push(Reverse(Timer { at, seq, cell }));
            t.heap.peek().is_some_and(|Reverse(first)| first.seq == seq)
        };
        // A new earliest deadline must cut short a longer sleep.
        if earliest {
            self.kick(lock(&self.run));
        }
    }

    /// Wakes every component whose time has come; returns the next
    /// deadline.
    fn fire_timers(&self, now: Instant, due: &mut Vec<Arc<WakeCell>>) -> Option<Instant> {
        let next = {
            let mut t = lock(&self.timers);
            while t.heap.peek().is_some_and(|Reverse(first)| first.at <= now) {
                if let Some(Reverse(timer)) = t.heap.pop() {
                    due.push(timer.cell);
                }
            }
            t.heap.peek().map(|Reverse(first)| first.at)
        };
        for cell in due.drain(..) {
            cell.wake();
        }
        next
    }

    /// A6: queue a woken component. A wake-up made on the scheduler's own
    /// thread (a component sending to another, a Selector notice, a timer:
    /// nearly all of them) goes on that thread's own list, with no lock and
    /// no system call; one from another thread takes the run queue's lock
    /// and unparks the scheduler only if it sleeps.
    pub(crate) fn push_ready(&self, key: usize) {
        let here = ON_THIS_THREAD.with(|t| {
            if std::ptr::eq(t.running.get(), self) {
                t.ready.borrow_mut().push(key);
                true
            } else {
                false
            }
        });
        if here {
            return;
        }
        let mut q = lock(&self.run);
        q.ready.push_back(key);
        self.kick(q);
    }

    fn kick(&self, mut q: std::sync::MutexGuard<'_, RunQueue>) {
        let sleeping = std::mem::replace(&mut q.sleeping, false);
        drop(q);
        if sleeping {
            if let Some(u) = self.unpark.get() {
                u.unpark();
            }
        }
    }
}

/// A cloneable, thread-safe handle on a scheduler: activate components on
/// it, stop it, reach its CAT.
#[derive(Clone)]
pub struct SchedulerHandle {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for SchedulerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SchedulerHandle")
    }
}

impl SchedulerHandle {
    /// Activates `component` on this scheduler (Kamaelia: `activate()`).
    /// It runs its first step on the scheduler's next round.
    pub fn activate(&self, component: &Handle) -> Result<(), ActivateError> {
        let body = component.take_body()?;
        log::trace!("activate {component:?}");
        let mut q = lock(&self.shared.run);
        q.new.push((component.clone(), body));
        self.shared.kick(q);
        Ok(())
    }

    /// Activates `component` on an OS thread of its own (A8): its `main`
    /// may block. It talks through the same boxes, and the scheduler stays
    /// alive until it ends.
    pub fn activate_threaded(&self, component: &Handle) -> Result<(), ActivateError> {
        let body = component.take_body()?;
        lock(&self.shared.run).threaded += 1;
        let handle = component.clone();
        let shared = self.shared.clone();
        let spawned = thread::Builder::new()
            .name(component.name().to_owned())
            .spawn(move || run_threaded(handle, body, shared));
        if let Err(e) = spawned {
            let mut q = lock(&self.shared.run);
            q.threaded -= 1;
            self.shared.kick(q);
            return Err(ActivateError::Spawn(e.to_string()));
        }
        Ok(())
    }

    /// Asks the scheduler to return from [`Scheduler::run`] after the
    /// current round, whatever is still active.
    pub fn stop(&self) {
        let mut q = lock(&self.shared.run);
        q.stop = true;
        self.shared.kick(q);
    }

    /// The scheduler's Coordinating Assistant Tracker (A9).
    pub fn cat(&self) -> &Cat {
        &self.shared.cat
    }
}

fn run_threaded(handle: Handle, mut body: Box<dyn Component>, shared: Arc<Shared>) {
    let wake = handle.0.wake.clone();
    wake.bind(Target::Thread(thread::current()));
    wake.set_scheduled();
    loop {
        wake.set_running();
        let step = step_once(&handle, &mut body, &shared);
        match step {
            Step::Continue => wake.set_scheduled(),
            Step::Pause => {
                if !wake.pause() {
                    while wake.state() != SCHEDULED {
                        thread::park();
                    }
                }
            }
            Step::Done => break,
        }
    }
    drop(body);
    handle.0.finish();
    log::trace!("threaded {handle:?} done");
    let mut q = lock(&shared.run);
    q.threaded -= 1;
    shared.kick(q);
}

/// Runs one step, containing a panic to this component (see [`Cx`]).
fn step_once(handle: &Handle, body: &mut Box<dyn Component>, shared: &Arc<Shared>) -> Step {
    let mut cx = Cx { me: handle, shared };
    match catch_unwind(AssertUnwindSafe(|| body.main(&mut cx))) {
        Ok(step) => step,
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(non-string panic)");
            log::error!("component {handle:?} panicked and was ended: {what}");
            Step::Done
        }
    }
}

struct Entry {
    handle: Handle,
    body: Box<dyn Component>,
}

/// Runs activated components cooperatively on the calling thread (A8).
///
/// ```
/// use axon::{Boxes, Component, Cx, Handle, Scheduler, Step};
///
/// struct Hello;
/// impl Component for Hello {
///     fn boxes(&self) -> Boxes { Boxes::new() }
///     fn main(&mut self, _cx: &mut Cx<'_>) -> Step {
///         println!("hello from a component");
///         Step::Done
///     }
/// }
///
/// let scheduler = Scheduler::new();
/// scheduler.activate(&Handle::new(Hello)).unwrap();
/// scheduler.run(); // returns once no component is left
/// ```
pub struct Scheduler {
    shared: Arc<Shared>,
    table: Slab<Entry>,
    /// This round's and the next round's runnable keys.
    local: VecDeque<usize>,
    new: Vec<(Handle, Box<dyn Component>)>,
    reactor: Box<dyn Reactor>,
    /// Rounds run since the reactor last looked for outside events.
    rounds_since_park: u32,
    /// Timers found due, woken outside the timer lock.
    due: Vec<Arc<WakeCell>>,
}

/// While components stay runnable, the reactor is asked (with a zero
/// timeout) for outside events once every this many rounds: often enough
/// that I/O is never starved, rarely enough that a short burst of work (a
/// message passing through three components) costs no extra system call.
const ROUNDS_PER_POLL: u32 = 4;

impl fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheduler")
            .field("components", &self.table.len())
            .finish()
    }
}

impl Default for Scheduler {
    fn default() -> Self {
        Scheduler::new()
    }
}

impl Scheduler {
    /// A scheduler that parks its thread when idle.
    pub fn new() -> Self {
        Scheduler::with_reactor(ThreadReactor)
    }

    /// A scheduler that sleeps (and serves I/O) in `reactor`.
    pub fn with_reactor(reactor: impl Reactor) -> Self {
        Scheduler {
            shared: Arc::new(Shared {
                run: Mutex::new(RunQueue {
                    ready: VecDeque::new(),
                    new: Vec::new(),
                    sleeping: false,
                    threaded: 0,
                    stop: false,
                }),
                unpark: OnceLock::new(),
                timers: Mutex::new(Timers::default()),
                cat: Cat::new(),
            }),
            table: Slab::new(),
            local: VecDeque::new(),
            new: Vec::new(),
            reactor: Box::new(reactor),
            rounds_since_park: 0,
            due: Vec::new(),
        }
    }

    /// A handle for activating and stopping from anywhere.
    pub fn handle(&self) -> SchedulerHandle {
        SchedulerHandle {
            shared: self.shared.clone(),
        }
    }

    /// Activates a component ([`SchedulerHandle::activate`]).
    pub fn activate(&self, component: &Handle) -> Result<(), ActivateError> {
        self.handle().activate(component)
    }

    /// Activates a threaded component ([`SchedulerHandle::activate_threaded`]).
    pub fn activate_threaded(&self, component: &Handle) -> Result<(), ActivateError> {
        self.handle().activate_threaded(component)
    }

    /// The Coordinating Assistant Tracker (A9).
    pub fn cat(&self) -> &Cat {
        &self.shared.cat
    }

    /// Runs until no component is left (none on this thread, none threaded)
    /// or [`SchedulerHandle::stop`] is called (A8).
    pub fn run(mut self) {
        let unpark = self.reactor.unparker();
        let _ = self.shared.unpark.set(unpark);
        log::debug!("scheduler running");
        let _here = RunningHere::enter(&self.shared);
        while self.round() {}
        log::debug!(
            "scheduler stopped with {} component(s) left",
            self.table.len()
        );
    }

    /// One round; false when the scheduler should return.
    fn round(&mut self) -> bool {
        let next_timer = self.shared.fire_timers(Instant::now(), &mut self.due);
        // Wake-ups made on this thread (by the last round's components, by
        // the reactor's events, by the timers just fired).
        ON_THIS_THREAD.with(|t| self.local.extend(t.ready.borrow_mut().drain(..)));
        {
            let mut q = lock(&self.shared.run);
            q.sleeping = false;
            if q.stop {
                return false;
            }
            if q.ready.is_empty() && q.new.is_empty() && self.local.is_empty() {
                if self.table.is_empty() && q.threaded == 0 {
                    return false;
                }
                // A6: nothing to do, so block until a wake-up unparks us
                // or the next timer is due.
                q.sleeping = true;
                drop(q);
                let timeout = next_timer.map(|at| at.saturating_duration_since(Instant::now()));
                self.reactor.park(timeout);
                self.rounds_since_park = 0;
                return true;
            }
            self.local.extend(q.ready.drain(..));
            std::mem::swap(&mut self.new, &mut q.new);
        }
        for (handle, body) in self.new.drain(..) {
            let key = self.table.insert(Entry {
                handle: handle.clone(),
                body,
            });
            let Ok(key32) = u32::try_from(key) else {
                // Four billion live components: memory ran out long before.
                log::error!("scheduler: too many components; {handle:?} not run");
                self.table.remove(key);
                handle.0.finish();
                continue;
            };
            handle.0.wake.bind(Target::Scheduler {
                key: key32,
                shared: self.shared.clone(),
            });
            handle.0.wake.set_scheduled();
            self.local.push_back(key);
        }
        for _ in 0..self.local.len() {
            let Some(key) = self.local.pop_front() else {
                break;
            };
            self.run_one(key);
        }
        self.rounds_since_park += 1;
        if self.rounds_since_park >= ROUNDS_PER_POLL {
            self.reactor.park(Some(Duration::ZERO));
            self.rounds_since_park = 0;
        }
        true
    }

    fn run_one(&mut self, key: usize) {
        let Some(entry) = self.table.get_mut(key) else {
            return;
        };
        let wake = &entry.handle.0.wake;
        wake.set_running();
        match step_once(&entry.handle, &mut entry.body, &self.shared) {
            Step::Continue => {
                wake.set_scheduled();
                self.local.push_back(key);
            }
            Step::Pause => {
                if wake.pause() {
                    self.local.push_back(key);
                }
            }
            Step::Done => {
                let entry = self.table.remove(key);
                drop(entry.body);
                entry.handle.0.finish();
                log::trace!("{:?} done", entry.handle);
            }
        }
    }
}
