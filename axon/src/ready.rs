//! A scheduler's run queue: which components are runnable, and how to wake
//! the scheduler when it sleeps (A6).
//!
//! A wake-up made on the scheduler's own thread (a component sending to
//! another, a Selector notice, a timer: nearly all of them) goes on that
//! thread's own list, with no lock and no system call; one from another
//! thread takes the queue's lock and unparks the scheduler only if it
//! sleeps.

use crate::sync::{Mutex, MutexGuard};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};

use crate::sync::lock;

/// Ends a blocking [`Reactor::park`](crate::Reactor::park) from any thread.
pub trait Unpark: Send + Sync + 'static {
    /// Makes the current or the next `park(None)` return promptly.
    fn unpark(&self);
}

/// What the scheduler running on a thread shares with that thread alone.
struct ThisThread {
    /// The running scheduler's queue (compared, never dereferenced); null
    /// when none runs here.
    running: Cell<*const ReadyQueue>,
    /// Components woken on this thread since its scheduler last looked.
    ready: RefCell<Vec<u32>>,
}

thread_local! {
    static ON_THIS_THREAD: ThisThread = const {
        ThisThread {
            running: Cell::new(std::ptr::null()),
            ready: RefCell::new(Vec::new()),
        }
    };
}

/// Marks a queue's scheduler as running on this thread until dropped
/// (restoring what was there, for a scheduler run inside another's
/// component).
pub(crate) struct RunningHere {
    previous: *const ReadyQueue,
    previous_ready: Vec<u32>,
}

impl RunningHere {
    pub(crate) fn enter(queue: &Arc<ReadyQueue>) -> RunningHere {
        ON_THIS_THREAD.with(|t| RunningHere {
            previous: t.running.replace(Arc::as_ptr(queue)),
            previous_ready: std::mem::take(&mut *t.ready.borrow_mut()),
        })
    }

    /// Puts `key` on this thread's list, after the wake-ups made so far
    /// (a component that yields runs after those it has just woken).
    pub(crate) fn push_local(&self, key: u32) {
        ON_THIS_THREAD.with(|t| t.ready.borrow_mut().push(key));
    }

    /// Moves the wake-ups made on this thread into `into`.
    pub(crate) fn take_local(&self, into: &mut VecDeque<u32>) {
        ON_THIS_THREAD.with(|t| into.extend(t.ready.borrow_mut().drain(..)));
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

/// What the queue's lock guards.
#[derive(Default)]
pub(crate) struct RunQueue {
    /// Woken from other threads.
    pub(crate) ready: VecDeque<u32>,
    /// Components activated and not yet taken in (they wait in the
    /// scheduler's list of new components).
    pub(crate) activations: usize,
    /// The scheduler is (about to be) parked: a push must unpark it.
    pub(crate) sleeping: bool,
    /// Threaded components still running (they keep the scheduler alive).
    pub(crate) threaded: usize,
    pub(crate) stop: bool,
    /// Someone asked for a snapshot (its callbacks wait in
    /// `Shared::snapshots`): taken at the start of the next round.
    pub(crate) snapshot: bool,
    /// The scheduler has been dropped: nobody will take a snapshot.
    pub(crate) gone: bool,
}

/// The run queue (see the module docs). Every wake cell bound to the
/// scheduler holds it, and nothing else of the scheduler.
#[derive(Default)]
pub(crate) struct ReadyQueue {
    run: Mutex<RunQueue>,
    unpark: OnceLock<Arc<dyn Unpark>>,
}

impl ReadyQueue {
    pub(crate) fn lock(&self) -> MutexGuard<'_, RunQueue> {
        lock(&self.run)
    }

    /// Sets how the sleeping scheduler is woken (once, when it starts).
    pub(crate) fn set_unpark(&self, unpark: Arc<dyn Unpark>) {
        let _ = self.unpark.set(unpark);
    }

    /// True if this queue's scheduler is running on this thread.
    pub(crate) fn is_running_here(&self) -> bool {
        ON_THIS_THREAD.with(|t| std::ptr::eq(t.running.get(), self))
    }

    /// A6: queue a woken component (see the module docs).
    pub(crate) fn push_ready(&self, key: u32) {
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
        let mut q = self.lock();
        q.ready.push_back(key);
        self.kick(q);
    }

    /// Releases the lock and unparks the scheduler if it sleeps.
    pub(crate) fn kick(&self, mut q: MutexGuard<'_, RunQueue>) {
        let sleeping = std::mem::replace(&mut q.sleeping, false);
        drop(q);
        if sleeping {
            if let Some(u) = self.unpark.get() {
                u.unpark();
            }
        }
    }
}
