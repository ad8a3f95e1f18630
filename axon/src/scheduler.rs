//! The cooperative scheduler and threaded components (A6, A8).
//!
//! One thread runs many thousands of components. Each round it takes the
//! components that were woken, calls each one's `main` once, and puts back
//! those that answered [`Step::Continue`], to run next round after the
//! components their step woke (a yield lets the components it has just
//! sent messages to run first). When nothing is runnable it parks
//! in its [`Reactor`] (by default the thread simply parks): an idle
//! scheduler uses no CPU and no timer. A wake-up from any thread pushes the
//! component's key onto the run queue and, only if the scheduler is parked,
//! unparks it.
//!
//! The reactor is the hook the network stack uses to make the Selector's
//! `poll` the scheduler's way of sleeping, so that socket readiness and
//! component wake-ups are served by the same thread with no thread hop.

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use slab::Slab;

use crate::cat::Cat;
use crate::component::Step;
use crate::error::ActivateError;
use crate::handle::Handle;
use crate::ready::{RunningHere, Unpark};
use crate::shared::{SchedulerHandle, Shared};
use crate::sync::lock;
use crate::unit::{CellRef, Claimed};
use crate::wake::{Target, SCHEDULED};

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

impl SchedulerHandle {
    /// Activates a component on an OS thread of its own (A8): its `main`
    /// may block. It talks through the same boxes, and the scheduler stays
    /// alive until it ends. Errors: it was activated before, or the OS
    /// refused a thread.
    pub fn activate_threaded(&self, component: impl Into<Handle>) -> Result<Handle, ActivateError> {
        let component = component.into();
        let claimed = component.claim_activation()?;
        self.shared.queue.lock().threaded += 1;
        let shared = self.shared.clone();
        // A failed spawn drops the closure, and with it the claim and the
        // body.
        let spawned = thread::Builder::new()
            .name(component.name().to_owned())
            .spawn(move || run_threaded(claimed, shared));
        if let Err(e) = spawned {
            let mut q = self.shared.queue.lock();
            q.threaded -= 1;
            self.shared.queue.kick(q);
            component.finish();
            return Err(ActivateError::Spawn {
                component: component.name().to_owned(),
                error: e,
            });
        }
        Ok(component)
    }
}

/// Runs a threaded component's body (its activation was claimed for this
/// thread) until it ends.
fn run_threaded(mut claimed: Claimed, shared: Arc<Shared>) {
    claimed.0.wake().bind(Target::Thread(thread::current()));
    claimed.0.wake().set_scheduled();
    let ignored = Cell::new(false);
    loop {
        claimed.0.wake().set_running();
        let step = step_once(&mut claimed, &shared, &ignored);
        let wake = claimed.0.wake();
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
    let handle = claimed.end();
    handle.finish();
    log::trace!("threaded {handle:?} done");
    let mut q = shared.queue.lock();
    q.threaded -= 1;
    shared.queue.kick(q);
}

/// Runs one step, containing a panic to this component: it is logged at
/// `error`, the component is ended ([`Handle::panicked`] says so) and
/// every other component goes on.
fn step_once(claimed: &mut Claimed, shared: &Arc<Shared>, idle_service: &Cell<bool>) -> Step {
    match catch_unwind(AssertUnwindSafe(|| claimed.step(shared, idle_service))) {
        Ok(step) => step,
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(non-string panic)");
            log::error!("component {:?} panicked and was ended: {what}", **claimed);
            claimed.0.wake().set_panicked();
            Step::Done
        }
    }
}

/// A component the scheduler runs: its body is in its unit
/// ([`crate::unit`]), reached through its handle.
struct Entry {
    handle: Claimed,
    /// What the component last said with `Cx::set_idle_service`.
    idle_service: Cell<bool>,
    /// Whether it is counted in `Scheduler::idle_services`.
    counted_idle: bool,
}

/// Runs activated components cooperatively on the calling thread (A8).
///
/// ```
/// use axon::{Component, Cx, Scheduler, Standard, Step};
///
/// struct Hello;
/// impl Component for Hello {
///     type Boxes = Standard<(), ()>;
///     fn main(&mut self, _cx: &mut Cx<Self::Boxes>) -> Step {
///         println!("hello from a component");
///         Step::Done
///     }
/// }
///
/// let scheduler = Scheduler::new();
/// scheduler.activate(Hello).unwrap();
/// scheduler.run(); // returns once no component is left
/// ```
///
/// When `run` returns (every component ended, only idle services left,
/// or [`SchedulerHandle::stop`]), the scheduler lets go of everything it
/// held: components still there are ended, its timers are cancelled and
/// its CAT is emptied, so that nothing it ran (a Selector, its sockets)
/// outlives it.
pub struct Scheduler {
    shared: Arc<Shared>,
    table: Slab<Entry>,
    /// This round's and the next round's runnable keys.
    local: VecDeque<u32>,
    new: Vec<Claimed>,
    reactor: Box<dyn Reactor>,
    /// Rounds run since the reactor last looked for outside events.
    rounds_since_park: u32,
    /// Timers found due, woken outside the timer lock.
    due: Vec<CellRef>,
    /// Components that said they are services with nothing to serve.
    idle_services: usize,
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

impl From<&Scheduler> for SchedulerHandle {
    fn from(s: &Scheduler) -> SchedulerHandle {
        s.handle()
    }
}

impl From<&SchedulerHandle> for SchedulerHandle {
    fn from(s: &SchedulerHandle) -> SchedulerHandle {
        s.clone()
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
            shared: Arc::new(Shared::new()),
            table: Slab::new(),
            local: VecDeque::new(),
            new: Vec::new(),
            reactor: Box::new(reactor),
            rounds_since_park: 0,
            due: Vec::new(),
            idle_services: 0,
        }
    }

    /// A handle for activating and stopping from anywhere.
    pub fn handle(&self) -> SchedulerHandle {
        SchedulerHandle {
            shared: self.shared.clone(),
        }
    }

    /// Activates a component ([`SchedulerHandle::activate`]).
    pub fn activate(&self, component: impl Into<Handle>) -> Result<Handle, ActivateError> {
        self.handle().activate(component)
    }

    /// Activates a threaded component ([`SchedulerHandle::activate_threaded`]).
    pub fn activate_threaded(&self, component: impl Into<Handle>) -> Result<Handle, ActivateError> {
        self.handle().activate_threaded(component)
    }

    /// The Coordinating Assistant Tracker (A9).
    pub fn cat(&self) -> &Cat {
        &self.shared.cat
    }

    /// Runs until no component is left (none on this thread, none threaded),
    /// or only idle services are (a Selector with no socket registered,
    /// see [`Cx::set_idle_service`](crate::Cx::set_idle_service)), or
    /// [`SchedulerHandle::stop`] is called (A8). Then lets go of
    /// everything (see the type's docs).
    pub fn run(mut self) {
        self.shared.queue.set_unpark(self.reactor.unparker());
        log::debug!("scheduler running");
        let here = RunningHere::enter(&self.shared.queue);
        while self.round(&here) {}
        drop(here);
        log::debug!(
            "scheduler stopped with {} component(s) left",
            self.table.len()
        );
    }

    /// One round; false when the scheduler should return.
    fn round(&mut self, here: &RunningHere) -> bool {
        let next_timer = {
            let next = lock(&self.shared.timers).take_due(Instant::now(), &mut self.due);
            for cell in self.due.drain(..) {
                cell.wake();
            }
            next
        };
        // Wake-ups made on this thread (by the last round's components, by
        // the reactor's events, by the timers just fired).
        here.take_local(&mut self.local);
        let (take_new, snapshot) = {
            let mut q = self.shared.queue.lock();
            q.sleeping = false;
            if q.stop {
                return false;
            }
            // A snapshot asked for: taken this round, after the new
            // components are in and before anything runs.
            let snapshot = std::mem::take(&mut q.snapshot).then_some(q.threaded);
            if snapshot.is_none()
                && q.ready.is_empty()
                && q.activations == 0
                && self.local.is_empty()
            {
                if self.table.len() == self.idle_services && q.threaded == 0 {
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
            (std::mem::replace(&mut q.activations, 0) > 0, snapshot)
        };
        if take_new {
            std::mem::swap(&mut self.new, &mut *lock(&self.shared.new));
            self.take_in_new();
        }
        if let Some(threaded) = snapshot {
            self.serve_snapshots(threaded);
        }
        for _ in 0..self.local.len() {
            let Some(key) = self.local.pop_front() else {
                break;
            };
            self.run_one(key as usize, here);
        }
        self.rounds_since_park += 1;
        if self.rounds_since_park >= ROUNDS_PER_POLL {
            self.reactor.park(Some(Duration::ZERO));
            self.rounds_since_park = 0;
        }
        true
    }

    /// Takes a snapshot and hands it to everyone who asked.
    fn serve_snapshots(&mut self, threaded: usize) {
        let asked = std::mem::take(&mut *lock(&self.shared.snapshots));
        if asked.is_empty() {
            return;
        }
        // Memory handed back by whoever had the last one, if nobody else
        // still holds it.
        let old = lock(&self.shared.recycled)
            .take()
            .and_then(|old| Arc::try_unwrap(old).ok());
        let entries = self
            .table
            .iter()
            .map(|(_, e)| (&*e.handle, e.handle.body_ref()));
        let snapshot = Arc::new(crate::snapshot::take(entries, threaded, old));
        log::trace!(
            "snapshot of {} components in {:?}",
            snapshot.components.len(),
            snapshot.took
        );
        for f in asked {
            f(snapshot.clone());
        }
    }

    /// Puts newly activated components in the table, runnable.
    fn take_in_new(&mut self) {
        for handle in self.new.drain(..) {
            let entry = self.table.vacant_entry();
            let Ok(key) = u32::try_from(entry.key()) else {
                // Four billion live components: memory ran out long before.
                log::error!("scheduler: too many components; {:?} not run", *handle);
                handle.end().finish();
                continue;
            };
            handle.0.wake().bind(Target::Scheduler {
                key,
                queue: self.shared.queue.clone(),
            });
            handle.0.wake().set_scheduled();
            entry.insert(Entry {
                handle,
                idle_service: Cell::new(false),
                counted_idle: false,
            });
            self.local.push_back(key);
        }
    }

    fn run_one(&mut self, key: usize, here: &RunningHere) {
        let Some(entry) = self.table.get_mut(key) else {
            return;
        };
        entry.handle.0.wake().set_running();
        let step = step_once(&mut entry.handle, &self.shared, &entry.idle_service);
        let wake = entry.handle.0.wake();
        let idle = entry.idle_service.get() && step != Step::Done;
        if idle != entry.counted_idle {
            entry.counted_idle = idle;
            if idle {
                self.idle_services += 1;
            } else {
                self.idle_services -= 1;
            }
        }
        match step {
            Step::Continue => {
                // Next round, after the components this step woke: a
                // component that yields lets those it has just sent to run
                // first (a CSA's handler, then the CSA with its reply).
                wake.set_scheduled();
                here.push_local(key as u32);
            }
            Step::Pause => {
                if wake.pause() {
                    self.local.push_back(key as u32);
                }
            }
            Step::Done => {
                let handle = self.table.remove(key).handle.end();
                handle.finish();
                log::trace!("{handle:?} done");
            }
        }
    }
}

impl Drop for Scheduler {
    /// Lets go of everything (see the type's docs): what was left is
    /// ended, timers and CAT are emptied.
    fn drop(&mut self) {
        let pending = std::mem::take(&mut *lock(&self.shared.new));
        for handle in pending.into_iter().chain(self.new.drain(..)) {
            handle.end().finish();
        }
        for entry in self.table.drain() {
            entry.handle.end().finish();
        }
        lock(&self.shared.timers).clear();
        self.shared.cat.clear();
        // Nobody will take a snapshot now: waiters see the end at once,
        // and later askers are refused (`SchedulerHandle::snapshot_then`).
        self.shared.queue.lock().gone = true;
        lock(&self.shared.snapshots).clear();
        lock(&self.shared.recycled).take();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn per_component_records_stay_small() {
        // Two components per connection: their records are idle memory.
        // The cell heads each component's one allocation, the core in it
        // (an `Arc` of each, 104 and 80 bytes, before they were one), and
        // the body after the boxes (a `Box` of it was in the core, and
        // another in the scheduler's entry).
        assert_eq!(std::mem::size_of::<crate::handle::Core>(), 48);
        assert_eq!(std::mem::size_of::<crate::wake::WakeCell>(), 96);
        assert_eq!(std::mem::size_of::<super::Entry>(), 16);
    }
}
