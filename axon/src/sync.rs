//! Locks and signals: the two synchronisation tools every other module
//! uses. Nothing here knows about components.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// Locks a mutex, ignoring poisoning: every structure we guard stays
/// consistent across a panic (each critical section is a single push, pop or
/// swap), and a component that panicked is already contained by its runner.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A flag with a condition variable, for waiters that may be any thread
/// (an [`Endpoint`](crate::Endpoint) waited on outside any scheduler).
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
    pub(crate) fn wait_until(&self, deadline: Instant) -> bool {
        let mut raised = lock(&self.raised);
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
