//! Components shared by the Axon rule tests. The deadline, the scheduler on
//! a thread and the `/proc` readers are the workspace's, in `testkit`.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axon::{boxes, Component, Control, Cx, Standard, Step};

boxes! {
    /// No boxes at all: for components that only manage others.
    pub struct NoBoxes {}
}

/// Sends its items out of `outbox` in order, keeping any item refused with
/// "no space in box" and pausing until woken (A5/A6); then producerFinished.
pub struct Producer {
    pub items: VecDeque<u64>,
    pub no_space_seen: Arc<AtomicUsize>,
}

impl Producer {
    pub fn new(n: u64) -> Self {
        Producer {
            items: (0..n).collect(),
            no_space_seen: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl Component for Producer {
    type Boxes = Standard<(), u64>;

    fn main(&mut self, cx: &mut Cx<'_, Self::Boxes>) -> Step {
        while let Some(item) = self.items.pop_front() {
            if let Err(full) = cx.outbox.send(item) {
                self.items.push_front(full.into_inner());
                self.no_space_seen.fetch_add(1, Ordering::Relaxed);
                return Step::Pause;
            }
        }
        let _ = cx.signal.send(Control::ProducerFinished);
        Step::Done
    }
}

/// Passes `inbox` to `outbox`; passes a control message on to `signal` and
/// ends. Counts its steps. Holds a message the next inbox has no room for
/// and pauses (A5), woken when room frees (A6): the scheduler promises no
/// order between components, so the next one may not have run yet.
pub struct Forwarder {
    pub steps: Arc<AtomicUsize>,
    held: Option<u64>,
}

impl Forwarder {
    pub fn new() -> Self {
        Forwarder {
            steps: Arc::new(AtomicUsize::new(0)),
            held: None,
        }
    }
}

impl Component for Forwarder {
    type Boxes = Standard<u64, u64>;

    fn main(&mut self, cx: &mut Cx<'_, Self::Boxes>) -> Step {
        self.steps.fetch_add(1, Ordering::Relaxed);
        while let Some(m) = self.held.take().or_else(|| cx.inbox.recv()) {
            if let Err(full) = cx.outbox.send(m) {
                self.held = Some(full.into_inner());
                return Step::Pause;
            }
        }
        if let Some(c) = cx.control.recv() {
            let _ = cx.signal.send(c);
            return Step::Done;
        }
        Step::Pause
    }
}

/// A component that does nothing but pause until told to stop; counts steps.
pub struct Sleeper {
    pub steps: Arc<AtomicUsize>,
}

impl Component for Sleeper {
    type Boxes = Standard<u64, u64>;

    fn main(&mut self, cx: &mut Cx<'_, Self::Boxes>) -> Step {
        self.steps.fetch_add(1, Ordering::Relaxed);
        while cx.inbox.recv().is_some() {}
        if cx.control.recv().is_some() {
            return Step::Done;
        }
        Step::Pause
    }
}
