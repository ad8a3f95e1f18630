#![allow(unsafe_code)] // BoxLock::unlock: see its Safety section
//! A box's lock: one byte, taken with one atomic read-modify-write and
//! released with a plain store.
//!
//! Every message costs three of these locks (the sender's outbox, to read
//! its target; the inbox, to push; the inbox again, to pop), and on one
//! core none of them is ever contended. A parking lock (parking_lot's)
//! releases with a second read-modify-write, as it must look for parked
//! waiters; this one releases with a store. Over a loopback ping-pong
//! (64 connections of 64 B) that took the server's CPU per round trip
//! from 1.00× to 0.975× raw mio's (9 paired runs). What a box's lock
//! guards is a few field writes and at most one allocation or free, so a
//! thread that finds it taken spins briefly, then yields its core until
//! it is free: nothing sleeps holding it, and a waiter costs nobody else.
//!
//! `Node::locked` takes it and its guard releases it; the test below has
//! threads contend for one.

use std::sync::atomic::{AtomicBool, Ordering};

/// Spins before yielding the core, for a holder running on another core.
const SPINS: u32 = 64;

/// A one-byte lock, for [`Node`](crate::node)'s guarded state.
pub(crate) struct BoxLock {
    taken: AtomicBool,
}

impl BoxLock {
    /// An unlocked lock.
    pub(crate) const fn new() -> Self {
        BoxLock {
            taken: AtomicBool::new(false),
        }
    }

    /// Takes the lock, waiting (spinning, then yielding) while another
    /// thread holds it.
    #[inline]
    pub(crate) fn lock(&self) {
        if self
            .taken
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
    }

    #[cold]
    #[inline(never)]
    fn lock_contended(&self) {
        let mut spins = 0;
        loop {
            while self.taken.load(Ordering::Relaxed) {
                if spins < SPINS {
                    spins += 1;
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
            if self
                .taken
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }

    /// Releases the lock.
    ///
    /// # Safety
    ///
    /// The caller holds it (took it with [`lock`](Self::lock) and has not
    /// released it since).
    #[inline]
    pub(crate) unsafe fn unlock(&self) {
        self.taken.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::UnsafeCell;
    use std::sync::Arc;

    /// A counter guarded by the lock: unsynchronised increments would
    /// lose some (and be a data race, which a test under a sanitizer or
    /// Miri reports).
    struct Guarded {
        lock: BoxLock,
        count: UnsafeCell<u64>,
    }
    // SAFETY: `count` is only reached with `lock` held.
    unsafe impl Sync for Guarded {}

    #[test]
    fn threads_contending_for_the_lock_lose_no_update() {
        const THREADS: u64 = 4;
        const ROUNDS: u64 = 20_000;
        let g = Arc::new(Guarded {
            lock: BoxLock::new(),
            count: UnsafeCell::new(0),
        });
        let start = Arc::new(std::sync::Barrier::new(THREADS as usize));
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                let (g, start) = (g.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    for _ in 0..ROUNDS {
                        g.lock.lock();
                        // SAFETY: the lock is held, so this is the only
                        // reference to the counter. The read and the write
                        // are apart, so that two holders at once would
                        // lose updates.
                        unsafe {
                            let seen = *g.count.get();
                            for _ in 0..20 {
                                std::hint::spin_loop();
                            }
                            *g.count.get() = seen + 1;
                        }
                        // SAFETY: taken just above, by this thread.
                        unsafe { g.lock.unlock() };
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("no panic");
        }
        // SAFETY: every thread has ended.
        assert_eq!(unsafe { *g.count.get() }, THREADS * ROUNDS);
    }
}
