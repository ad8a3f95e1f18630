//! Locks and signals: the two synchronisation tools every other module
//! uses. Nothing here knows about components.

use std::sync::Condvar;
use std::time::Instant;

pub(crate) use parking_lot::{Mutex, MutexGuard};

/// Locks a mutex. No poisoning: every structure we guard stays consistent
/// across a panic (each critical section is a single push, pop or swap),
/// and a component that panicked is already contained by its runner.
pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock()
}

/// A flag with a condition variable, for waiters that may be any thread
/// (an [`Endpoint`](crate::Endpoint) waited on outside any scheduler).
#[derive(Default)]
pub(crate) struct Signal {
    raised: std::sync::Mutex<bool>,
    cond: Condvar,
}

impl Signal {
    pub(crate) fn raise(&self) {
        *self.raised.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cond.notify_all();
    }

    /// Waits until raised or `deadline` passes; clears the flag. Returns
    /// whether it was raised.
    pub(crate) fn wait_until(&self, deadline: Instant) -> bool {
        let mut raised = self.raised.lock().unwrap_or_else(|p| p.into_inner());
        while !*raised {
            let now = Instant::now();
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
