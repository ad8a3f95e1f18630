//! SIGINT and SIGTERM as a graceful stop: [`SignalStop`].

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use axon::{Control, Handle, Postbox, SchedulerHandle};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::{Handle as SignalsHandle, Signals};

/// How long [`ServerCore::run`](crate::ServerCore::run) lets queued output
/// drain after SIGINT or SIGTERM before it stops anyway.
pub const DRAIN: Duration = Duration::from_secs(5);

/// Turns SIGINT and SIGTERM into a graceful stop of a server (the
/// selector demo's behaviour, reusable).
///
/// The first signal sends `producerFinished` to the server's `control`
/// (a [`ServerCore`](crate::ServerCore): it stops accepting, every
/// connection's handler finishes its reply, everything is written, and it
/// ends); if that has not finished within `drain`, or a second signal
/// comes, the scheduler is stopped. Dropping the `SignalStop` stops
/// watching (its thread ends; the signals' default actions are not
/// restored while the process lives).
///
/// ```no_run
/// use chassis::{ServerOptions, SignalStop, SimpleServer, DRAIN};
/// # use axon::{Component, Cx, Standard, Step};
/// # struct Echo;
/// # impl Component for Echo {
/// #     type Boxes = Standard<Vec<u8>, Vec<u8>>;
/// #     fn main(&mut self, _: &mut Cx<Self::Boxes>) -> Step { Step::Done }
/// # }
///
/// let server = SimpleServer::new(|| Echo, "127.0.0.1:1601".parse().unwrap(),
///                                ServerOptions::default()).unwrap();
/// let scheduler = selector::scheduler().unwrap();
/// let core = scheduler.activate(server).unwrap();
/// let _signals = SignalStop::install(&core, &scheduler.handle(), DRAIN).unwrap();
/// scheduler.run(); // returns once the server has stopped
/// ```
pub struct SignalStop {
    signals: SignalsHandle,
    thread: Option<JoinHandle<()>>,
    done: Arc<AtomicBool>,
}

impl fmt::Debug for SignalStop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SignalStop")
    }
}

impl SignalStop {
    /// Starts watching for SIGINT and SIGTERM on a thread of its own (not
    /// a component: it never keeps the scheduler running). `server` is the
    /// component told `producerFinished` (through its `control` inbox).
    /// Errors: `server` has no `control` inbox carrying `Control`, or the
    /// signals cannot be watched.
    pub fn install(
        server: &Handle,
        scheduler: &SchedulerHandle,
        drain: Duration,
    ) -> io::Result<SignalStop> {
        let control = server
            .postbox::<Control>("control")
            .map_err(io::Error::other)?;
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        let handle = signals.handle();
        let done = Arc::new(AtomicBool::new(false));
        let watching = Watch {
            control,
            scheduler: scheduler.clone(),
            drain,
            done: done.clone(),
        };
        let thread = thread::Builder::new()
            .name("signal-stop".into())
            .spawn(move || watching.run(&mut signals))?;
        Ok(SignalStop {
            signals: handle,
            thread: Some(thread),
            done,
        })
    }
}

impl Drop for SignalStop {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Release);
        self.signals.close();
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

struct Watch {
    control: Postbox<Control>,
    scheduler: SchedulerHandle,
    drain: Duration,
    done: Arc<AtomicBool>,
}

impl Watch {
    fn run(self, signals: &mut Signals) {
        let mut deadline: Option<Instant> = None;
        loop {
            // Before a signal: block until one comes (or we are dropped).
            // After: look for a second one while the drain time runs.
            let next = match deadline {
                None => signals.forever().next(),
                Some(at) => {
                    let now = Instant::now();
                    if now >= at || self.done.load(Ordering::Acquire) {
                        break;
                    }
                    let pending = signals.pending().next();
                    if pending.is_none() {
                        thread::park_timeout((at - now).min(Duration::from_millis(100)));
                        continue;
                    }
                    pending
                }
            };
            let Some(sig) = next else {
                return; // closed: the SignalStop was dropped
            };
            if deadline.is_some() {
                log::warn!("signal {sig} again: stopping now");
                break;
            }
            log::info!(
                "signal {sig}: stopping; draining queued output for at most {:?}",
                self.drain
            );
            let _ = self.control.send(Control::ProducerFinished);
            deadline = Some(Instant::now() + self.drain);
        }
        if !self.done.load(Ordering::Acquire) {
            log::warn!("stopping with output undelivered");
        }
        self.scheduler.stop();
    }
}
