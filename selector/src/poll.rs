//! Everything that touches mio: the poller the state machine registers
//! with, and the scheduler reactor that waits in `epoll_wait`.
//!
//! The reactor is how the Selector avoids a thread hop: the scheduler calls
//! [`Reactor::park`] every few rounds (zero timeout) and when it has nothing to
//! run (no timeout), so socket readiness and component wake-ups are served
//! by one thread, and an idle server blocks in the kernel.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axon::{Reactor, Unpark};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token, Waker};

use crate::state::{Poller, Readiness, State};

/// The token of the waker that other threads use to end a blocking poll.
const WAKER: Token = Token(usize::MAX);

/// [`Poller`] over a mio registry: edge-triggered, both directions.
#[derive(Debug)]
pub struct MioPoller(Registry);

impl Poller for MioPoller {
    fn register(&mut self, fd: RawFd, token: usize) -> io::Result<()> {
        self.0.register(
            &mut SourceFd(&fd),
            Token(token),
            Interest::READABLE | Interest::WRITABLE,
        )
    }

    fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
        self.0.deregister(&mut SourceFd(&fd))
    }

    fn reregister(&mut self, fd: RawFd, token: usize) -> io::Result<()> {
        self.0.reregister(
            &mut SourceFd(&fd),
            Token(token),
            Interest::READABLE | Interest::WRITABLE,
        )
    }
}

/// The Selector state shared by the Selector component (requests) and the
/// reactor (events). Both run on the scheduler's thread, so the lock is
/// never contended.
pub(crate) type Shared = Arc<Mutex<State<MioPoller>>>;

pub(crate) fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, State<MioPoller>> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// The scheduler reactor that polls for the Selector (see the module docs).
pub struct SelectorReactor {
    poll: Poll,
    events: Events,
    shared: Shared,
    waker: Arc<Waker>,
    /// True while `park` hands out the events of a poll that has already
    /// returned: a wake-up then needs no eventfd write (see
    /// [`WakerUnpark`]).
    dispatching: Arc<AtomicBool>,
}

impl std::fmt::Debug for SelectorReactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SelectorReactor")
    }
}

impl SelectorReactor {
    pub(crate) fn new() -> io::Result<(SelectorReactor, Shared)> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let registry = poll.registry().try_clone()?;
        let shared = Arc::new(Mutex::new(State::new(MioPoller(registry))));
        Ok((
            SelectorReactor {
                poll,
                events: Events::with_capacity(1024),
                shared: shared.clone(),
                waker,
                dispatching: Arc::new(AtomicBool::new(false)),
            },
            shared,
        ))
    }
}

/// Ends a blocking poll by writing the waker's eventfd, unless the poll has
/// already returned and its events are being handed out (`dispatching`).
///
/// The scheduler marks itself sleeping before it parks and clears the mark
/// only in its next round, so every wake-up made while the reactor hands out
/// a poll's events (the Selector's notices, on the scheduler's own thread)
/// would otherwise write the eventfd and make the next poll return at once
/// for nothing: one wasted system call, and one wasted poll, per blocking
/// wait. Skipping it is safe: `dispatching` is cleared before `park`
/// returns, and the scheduler's next round takes the run queue's lock after
/// that, so it sees every component queued by a wake-up that saw
/// `dispatching` set.
struct WakerUnpark {
    waker: Arc<Waker>,
    dispatching: Arc<AtomicBool>,
}

impl Unpark for WakerUnpark {
    fn unpark(&self) {
        if self.dispatching.load(Ordering::SeqCst) {
            return;
        }
        if let Err(e) = self.waker.wake() {
            log::error!("selector: cannot wake the poller: {e}");
        }
    }
}

impl Reactor for SelectorReactor {
    fn unparker(&mut self) -> Arc<dyn Unpark> {
        Arc::new(WakerUnpark {
            waker: self.waker.clone(),
            dispatching: self.dispatching.clone(),
        })
    }

    fn park(&mut self, timeout: Option<Duration>) {
        if let Err(e) = self.poll.poll(&mut self.events, timeout) {
            if e.kind() != io::ErrorKind::Interrupted {
                log::error!("selector: poll failed: {e}");
            }
            return;
        }
        if self.events.is_empty() {
            return;
        }
        let flag = self.dispatching.clone();
        flag.store(true, Ordering::SeqCst);
        let _clear = ClearOnDrop(&flag); // even if a notice's send panics
        self.dispatch();
    }
}

/// Clears the `dispatching` flag when `park` returns, however it returns.
struct ClearOnDrop<'a>(&'a AtomicBool);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl SelectorReactor {
    /// Turns the events of the last poll into the Selector's notices.
    fn dispatch(&mut self) {
        let mut state = lock(&self.shared);
        for event in self.events.iter() {
            if event.token() == WAKER {
                continue;
            }
            let error = event.is_error();
            state.event(
                event.token().0,
                Readiness {
                    readable: event.is_readable() || event.is_read_closed() || error,
                    writable: event.is_writable() || event.is_write_closed() || error,
                    exceptional: error || event.is_priority(),
                    read_closed: error || event.is_read_closed(),
                },
            );
        }
    }
}
