//! A scheduler running on its own thread, joined with a deadline.

use std::sync::mpsc;
use std::thread::JoinHandle;

use axon::{Scheduler, SchedulerHandle};

use crate::{CpuClock, DEADLINE};

/// A scheduler running on a background thread.
///
/// [`Running::join`] waits for it to return by itself (a lost wake-up then
/// shows as a failure at the deadline, never as a hung test). Dropping it
/// without joining stops it and waits for it, so a failing test does not
/// leave a scheduler thread behind.
pub struct Running {
    /// Stops or wakes the running scheduler from the test's thread.
    pub handle: SchedulerHandle,
    done: mpsc::Receiver<()>,
    thread: Option<JoinHandle<()>>,
    /// The scheduler thread's own CPU clock.
    clock: Option<CpuClock>,
}

impl Running {
    /// Starts `s` on a new thread.
    pub fn start(s: Scheduler) -> Running {
        let handle = s.handle();
        let (tx, done) = mpsc::channel();
        let (clock_tx, clock) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let _ = clock_tx.send(CpuClock::of_this_thread().ok());
            s.run();
            let _ = tx.send(());
        });
        Running {
            handle,
            done,
            thread: Some(thread),
            clock: clock.recv().ok().flatten(),
        }
    }

    /// CPU seconds the scheduler's thread has used so far: unlike the
    /// process's, not moved by the other tests running beside this one.
    #[track_caller]
    pub fn cpu_seconds(&mut self) -> f64 {
        self.clock
            .as_mut()
            .expect("the scheduler thread's /proc/thread-self/stat")
            .seconds()
    }

    /// Waits, at most [`DEADLINE`], for the scheduler to return by itself.
    #[track_caller]
    pub fn join(mut self) {
        self.done
            .recv_timeout(DEADLINE)
            .expect("scheduler did not finish before the deadline");
        if let Some(t) = self.thread.take() {
            t.join().expect("scheduler thread panicked");
        }
    }

    /// Stops the scheduler and waits, at most [`DEADLINE`], for it.
    #[track_caller]
    pub fn stop(mut self) {
        self.handle.stop();
        self.done
            .recv_timeout(DEADLINE)
            .expect("scheduler did not stop before the deadline");
        if let Some(t) = self.thread.take() {
            t.join().expect("scheduler thread panicked");
        }
    }

    /// Runs `s` on a thread and waits for it to return by itself.
    #[track_caller]
    pub fn to_completion(s: Scheduler) {
        Running::start(s).join();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.handle.stop();
            let _ = self.done.recv_timeout(DEADLINE);
            let _ = t.join();
        }
    }
}

/// Stops the server whose ServerCore is `core` gracefully, with
/// producerFinished (what SIGTERM sends): every one of `clients` must see
/// EOF, and the scheduler must return by itself once everything has
/// ended (not be stopped).
pub fn stop_gracefully(core: axon::Handle, running: Running, clients: &mut [std::net::TcpStream]) {
    core.postbox::<axon::Control>("control")
        .expect("a ServerCore has a control inbox")
        .send(axon::Control::ProducerFinished)
        .expect("the ServerCore takes producerFinished");
    for c in clients.iter_mut() {
        assert!(crate::sees_eof(c), "a client was left open");
    }
    running.join();
}
