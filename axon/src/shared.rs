//! What a scheduler shares with its components and with other threads:
//! its run queue, the components activated but not yet taken in, its
//! timers and its CAT; and [`SchedulerHandle`], the handle on all that.

use crate::sync::Mutex;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use crate::cat::Cat;
use crate::error::ActivateError;
use crate::handle::Handle;
use crate::ready::ReadyQueue;
use crate::snapshot::SnapshotFn;
use crate::sync::lock;
use crate::timers::Timers;
use crate::unit::{CellRef, Claimed};

pub(crate) struct Shared {
    pub(crate) queue: Arc<ReadyQueue>,
    /// Activated, waiting for the scheduler's next round (their bodies are
    /// still in their handles).
    pub(crate) new: Mutex<Vec<Claimed>>,
    pub(crate) timers: Mutex<Timers>,
    pub(crate) cat: Cat,
    /// Callbacks waiting for the next snapshot (`RunQueue::snapshot` says
    /// there are some).
    pub(crate) snapshots: Mutex<Vec<SnapshotFn>>,
    /// A finished snapshot handed back for the next one to reuse its
    /// memory ([`SchedulerHandle::snapshot_then_reusing`]).
    pub(crate) recycled: Mutex<Option<Arc<crate::Snapshot>>>,
}

impl Shared {
    pub(crate) fn new() -> Shared {
        Shared {
            queue: Arc::new(ReadyQueue::default()),
            new: Mutex::new(Vec::new()),
            timers: Mutex::new(Timers::default()),
            cat: Cat::new(),
            snapshots: Mutex::new(Vec::new()),
            recycled: Mutex::new(None),
        }
    }

    /// Wakes `cell` at `at` (see [`Cx::wake_at`](crate::Cx::wake_at)).
    pub(crate) fn add_timer(&self, at: Instant, cell: CellRef) {
        let earliest = lock(&self.timers).add(at, cell);
        // A new earliest deadline must cut short a longer sleep.
        if earliest {
            self.queue.kick(self.queue.lock());
        }
    }

    /// Queues `component` to be taken in by the scheduler's next round.
    pub(crate) fn activate(&self, component: &Handle) -> Result<(), ActivateError> {
        let claimed = component.claim_activation()?;
        log::trace!("activate {component:?}");
        lock(&self.new).push(claimed);
        let mut q = self.queue.lock();
        q.activations += 1;
        self.queue.kick(q);
        Ok(())
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
    /// Activates a component on this scheduler (Kamaelia: `activate()`)
    /// and returns its handle. It runs its first step on the scheduler's
    /// next round; a threaded one
    /// ([`Component::THREADED`](crate::Component::THREADED)) starts on a
    /// thread of its own. Errors: it was activated before, or the OS
    /// refused a thread.
    pub fn activate(&self, component: impl Into<Handle>) -> Result<Handle, ActivateError> {
        let component = component.into();
        if component.0.wake().threaded() {
            return self.activate_threaded(component);
        }
        self.shared.activate(&component)?;
        Ok(component)
    }

    /// Asks the scheduler to return from [`Scheduler::run`](crate::Scheduler::run)
    /// after the current round, whatever is still active.
    pub fn stop(&self) {
        let mut q = self.shared.queue.lock();
        q.stop = true;
        self.shared.queue.kick(q);
    }

    /// The scheduler's Coordinating Assistant Tracker (A9).
    pub fn cat(&self) -> &Cat {
        &self.shared.cat
    }
}
