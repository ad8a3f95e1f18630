//! `wake_at` timers: a heap of (instant, component) the scheduler fires
//! between rounds. Not in Kamaelia's Axon; here it bounds waits such as the
//! CSA's linger time without a polling loop.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use crate::unit::CellRef;

/// One `wake_at` request: wake `cell` at `at` (`seq` orders equal times).
struct Timer {
    at: Instant,
    seq: u64,
    cell: CellRef,
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

/// The pending timers of one scheduler.
#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<Timer>>,
    seq: u64,
}

impl Timers {
    /// Adds a timer; true if it is now the earliest (a sleeping scheduler
    /// must wake to shorten its sleep).
    pub(crate) fn add(&mut self, at: Instant, cell: CellRef) -> bool {
        self.seq += 1;
        let seq = self.seq;
        self.heap.push(Reverse(Timer { at, seq, cell }));
        self.heap
            .peek()
            .is_some_and(|Reverse(first)| first.seq == seq)
    }

    /// Moves every cell whose time has come into `due`; returns the next
    /// deadline.
    pub(crate) fn take_due(&mut self, now: Instant, due: &mut Vec<CellRef>) -> Option<Instant> {
        while self
            .heap
            .peek()
            .is_some_and(|Reverse(first)| first.at <= now)
        {
            if let Some(Reverse(timer)) = self.heap.pop() {
                due.push(timer.cell);
            }
        }
        self.heap.peek().map(|Reverse(first)| first.at)
    }

    /// Cancels every timer.
    pub(crate) fn clear(&mut self) {
        self.heap.clear();
    }
}
