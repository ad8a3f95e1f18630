//! The pause/wake state machine behind rule A6.
//!
//! Every component owns one [`WakeCell`]. Whoever makes work for the
//! component (a message arriving, space freeing in an inbox it feeds, a child
//! ending) calls [`WakeCell::wake`]. The cell's state decides what that costs:
//!
//! | state       | meaning                          | `wake()` does                      |
//! |-------------|----------------------------------|------------------------------------|
//! | `INACTIVE`  | created, not yet activated       | nothing (activation runs it anyway)|
//! | `IDLE`      | paused                           | → `SCHEDULED`, queue it to its runner |
//! | `SCHEDULED` | queued to run                    | nothing (one load, no write)       |
//! | `RUNNING`   | inside `main` right now          | → `NOTIFIED`                       |
//! | `NOTIFIED`  | woken while running              | nothing                            |
//! | `DONE`      | finished                         | nothing                            |
//!
//! A component that returns [`Step::Pause`](crate::Step::Pause) goes
//! `RUNNING → IDLE` with one compare-and-swap; if that fails the component was
//! woken while it ran (`NOTIFIED`) and is run again, so a wake-up can never be
//! lost between "my inbox is empty" and "pause".

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::Thread;

use crate::boxes::Boxes;
use crate::scheduler::Shared;

pub(crate) const INACTIVE: u8 = 0;
pub(crate) const IDLE: u8 = 1;
pub(crate) const SCHEDULED: u8 = 2;
pub(crate) const RUNNING: u8 = 3;
pub(crate) const NOTIFIED: u8 = 4;
pub(crate) const DONE: u8 = 5;

/// Who runs the component, and so who must hear its wake-ups.
pub(crate) enum Target {
    /// A component on a cooperative scheduler, at `key` in its table (32
    /// bits: this cell is made for every component, so it is kept small).
    Scheduler { key: u32, shared: Arc<Shared> },
    /// A threaded component (A8): unpark its OS thread.
    Thread(Thread),
    /// An [`Endpoint`](crate::Endpoint) waited on by code outside any
    /// scheduler.
    External(Arc<Signal>),
}

/// A flag with a condition variable, for waiters that may be any thread.
#[derive(Default)]
pub(crate) struct Signal {
    raised: Mutex<bool>,
    cond: Condvar,
}

impl Signal {
    pub(crate) fn raise(&self) {
        *lock(&self.raised) = true;
        self.cond.notify_all();
    }

    /// Waits until raised or `deadline` passes; clears the flag. Returns
    /// whether it was raised.
    pub(crate) fn wait_until(&self, deadline: std::time::Instant) -> bool {
        let mut raised = lock(&self.raised);
        while !*raised {
            let now = std::time::Instant::now();
            if now >= deadline {
                return false;
            }
            raised = match self.cond.wait_timeout(raised, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        *raised = false;
        true
    }
}

/// Locks a mutex, ignoring poisoning: every structure we guard stays
/// consistent across a panic (each critical section is a single push, pop or
/// swap), and a component that panicked is already contained by its runner.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The wake state of one component (see the module docs).
///
/// Every box of the component points here (to wake its owner), so the cell
/// also keeps the component's box declaration: that is where a box finds
/// its own name without storing it.
pub(crate) struct WakeCell {
    state: AtomicU8,
    target: OnceLock<Target>,
    /// The component's body has been taken by a runner (it fits in the
    /// padding beside `state`).
    activated: AtomicBool,
    boxes: Boxes,
}

impl WakeCell {
    pub(crate) fn new(boxes: Boxes) -> Self {
        WakeCell {
            state: AtomicU8::new(INACTIVE),
            target: OnceLock::new(),
            activated: AtomicBool::new(false),
            boxes,
        }
    }

    pub(crate) fn is_activated(&self) -> bool {
        self.activated.load(Ordering::Acquire)
    }

    pub(crate) fn set_activated(&self) {
        self.activated.store(true, Ordering::Release);
    }

    /// The owner's box declaration.
    pub(crate) fn boxes(&self) -> &Boxes {
        &self.boxes
    }

    pub(crate) fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }

    /// Binds the cell to its runner. Returns false if it was already bound
    /// (a handle may be activated only once).
    pub(crate) fn bind(&self, target: Target) -> bool {
        self.target.set(target).is_ok()
    }

    /// Rule A6: there is work for this component.
    pub(crate) fn wake(&self) {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            let next = match s {
                IDLE => SCHEDULED,
                RUNNING => NOTIFIED,
                _ => return,
            };
            match self
                .state
                .compare_exchange(s, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) if next == SCHEDULED => return self.dispatch(),
                Ok(_) => return,
                Err(actual) => s = actual,
            }
        }
    }

    fn dispatch(&self) {
        match self.target.get() {
            Some(Target::Scheduler { key, shared }) => shared.push_ready(*key as usize),
            Some(Target::Thread(thread)) => thread.unpark(),
            Some(Target::External(signal)) => signal.raise(),
            None => {}
        }
    }

    /// The runner moves a `SCHEDULED` (or freshly activated) cell to
    /// `RUNNING` just before calling `main`.
    pub(crate) fn set_running(&self) {
        self.state.store(RUNNING, Ordering::Release);
    }

    /// After `main` returned `Continue`: stays queued, wake-ups are no-ops.
    pub(crate) fn set_scheduled(&self) {
        self.state.store(SCHEDULED, Ordering::Release);
    }

    /// After `main` returned `Pause`. Returns true if the component was woken
    /// while it ran and must run again (it is then `SCHEDULED`).
    pub(crate) fn pause(&self) -> bool {
        match self
            .state
            .compare_exchange(RUNNING, IDLE, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => false,
            Err(_) => {
                self.state.store(SCHEDULED, Ordering::Release);
                true
            }
        }
    }

    /// Marks an endpoint as waiting (idle) so that a delivery raises its
    /// signal.
    pub(crate) fn set_idle(&self) {
        self.state.store(IDLE, Ordering::Release);
    }

    pub(crate) fn set_done(&self) {
        self.state.store(DONE, Ordering::Release);
    }
}
