//! Components and helpers shared by the Axon rule tests.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axon::{Boxes, Component, Control, Cx, Scheduler, SchedulerHandle, Step};

/// How long any test waits for an event before failing.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// A scheduler running on a background thread.
pub struct Running {
    done: std::sync::mpsc::Receiver<()>,
    thread: JoinHandle<()>,
}

impl Running {
    /// Waits (with the test deadline) for the scheduler to return: a lost
    /// wake-up shows up as a failure here, never as a hung test.
    pub fn join(self) {
        self.done
            .recv_timeout(DEADLINE)
            .expect("scheduler did not finish before the deadline");
        self.thread.join().unwrap();
    }
}

/// Runs a scheduler on a background thread.
pub fn spawn(s: Scheduler) -> (SchedulerHandle, Running) {
    let h = s.handle();
    let (tx, done) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        s.run();
        let _ = tx.send(());
    });
    (h, Running { done, thread })
}

/// Runs a scheduler to completion on a background thread, with the deadline.
pub fn run(s: Scheduler) {
    spawn(s).1.join();
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
    fn boxes(&self) -> Boxes {
        Boxes::standard::<(), u64>()
    }
    fn main(&mut self, cx: &mut Cx<'_>) -> Step {
        while let Some(item) = self.items.pop_front() {
            if let Err(full) = cx.send(item, "outbox") {
                self.items.push_front(full.into_inner());
                self.no_space_seen.fetch_add(1, Ordering::Relaxed);
                return Step::Pause;
            }
        }
        let _ = cx.send(Control::ProducerFinished, "signal");
        Step::Done
    }
}

/// Passes `inbox` to `outbox`; passes a control message on to `signal` and
/// ends. Counts its steps.
pub struct Forwarder {
    pub steps: Arc<AtomicUsize>,
}

impl Forwarder {
    pub fn new() -> Self {
        Forwarder {
            steps: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl Component for Forwarder {
    fn boxes(&self) -> Boxes {
        Boxes::standard::<u64, u64>()
    }
    fn main(&mut self, cx: &mut Cx<'_>) -> Step {
        self.steps.fetch_add(1, Ordering::Relaxed);
        while let Some(m) = cx.recv::<u64>("inbox") {
            if let Err(full) = cx.send(m, "outbox") {
                panic!("forwarder met a full box with {}", full.into_inner());
            }
        }
        if let Some(c) = cx.recv::<Control>("control") {
            let _ = cx.send(c, "signal");
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
    fn boxes(&self) -> Boxes {
        Boxes::standard::<u64, u64>()
    }
    fn main(&mut self, cx: &mut Cx<'_>) -> Step {
        self.steps.fetch_add(1, Ordering::Relaxed);
        while cx.recv::<u64>("inbox").is_some() {}
        if cx.recv::<Control>("control").is_some() {
            return Step::Done;
        }
        Step::Pause
    }
}

/// User + system CPU time of this process, in seconds (from /proc).
pub fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> f64 {
    // getconf is everywhere Linux is; 100 is the universal default.
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}
