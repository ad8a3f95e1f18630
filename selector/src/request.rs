//! The messages of the Selector protocol (S2, S3) and the sources they name.

use std::fmt;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use axon::{BoxError, Handle, Postbox};

pub(crate) const UNREGISTERED: usize = usize::MAX;

struct SourceInner {
    io: Arc<dyn AsRawFd + Send + Sync>,
    /// The Selector's slot for this source while registered.
    slot: AtomicUsize,
    /// The poller has reported the read side closed.
    read_closed: AtomicBool,
}

/// Something the Selector can watch: a socket (or any descriptor), shared
/// between its owner and the Selector.
///
/// The Selector keeps a clone while the source is registered, so the
/// descriptor cannot be closed (and its number reused by a new socket)
/// before the Selector has deregistered it: that is what keeps a closed
/// source from disturbing anyone else (S7). Two `Source`s are the same
/// source when they are clones of one another.
#[derive(Clone)]
pub struct Source(Arc<SourceInner>);

impl Source {
    /// Wraps a shared socket.
    pub fn new<S: AsRawFd + Send + Sync + 'static>(io: Arc<S>) -> Source {
        Source(Arc::new(SourceInner {
            io,
            slot: AtomicUsize::new(UNREGISTERED),
            read_closed: AtomicBool::new(false),
        }))
    }

    /// The descriptor.
    pub fn fd(&self) -> RawFd {
        self.0.io.as_raw_fd()
    }

    /// True if both name the same source.
    pub fn same(&self, other: &Source) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// True once the poller has reported this source's read side closed
    /// (peer half-close or hang-up, or an error); it stays true.
    ///
    /// Edge-triggered readers use it to stop early: a read that returns
    /// less than the buffer has drained the socket, and any later data or
    /// FIN raises a new edge, so the `WouldBlock` read that would confirm
    /// it can be skipped (one system call per event), *unless* the read
    /// side is already closed: a FIN that arrived together with the data
    /// raised its edge already, so the reader must go on to 0 or
    /// `WouldBlock`.
    pub fn read_closed_seen(&self) -> bool {
        self.0.read_closed.load(Ordering::Acquire)
    }

    pub(crate) fn mark_read_closed(&self) {
        self.0.read_closed.store(true, Ordering::Release);
    }

    pub(crate) fn slot(&self) -> usize {
        self.0.slot.load(Ordering::Relaxed)
    }

    pub(crate) fn set_slot(&self, slot: usize) {
        self.0.slot.store(slot, Ordering::Relaxed);
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Source(fd {})", self.fd())
    }
}

/// The notice the Selector sends when a source is ready (S3): Kamaelia
/// sends the socket itself; here, the [`Source`].
#[derive(Clone, Debug)]
pub struct Ready(pub Source);

/// Which readiness a request is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Readable (Kamaelia `newReader` / `removeReader`).
    Reader,
    /// Writable (`newWriter` / `removeWriter`).
    Writer,
    /// An exceptional condition: error or priority data
    /// (`newExceptional` / `removeExceptional`).
    Exceptional,
}

/// Where a notice goes: Kamaelia's `(component, inbox)` pair.
pub type Notice = Postbox<Ready>;

/// Requests to the Selector's `notify` inbox (S2). Kamaelia's
/// `newReader((component, inbox), source)` is
/// `Request::NewReader(notice, source)`, made with [`Request::new_reader`].
#[derive(Clone, Debug)]
pub enum Request {
    /// Tell `Notice` once when the source is readable (`newReader`).
    NewReader(Notice, Source),
    /// … writable (`newWriter`).
    NewWriter(Notice, Source),
    /// … has an exceptional condition (`newExceptional`).
    NewExceptional(Notice, Source),
    /// Withdraw a reader request; idempotent (`removeReader`, S5).
    RemoveReader(Source),
    /// Withdraw a writer request (`removeWriter`).
    RemoveWriter(Source),
    /// Withdraw an exceptional request (`removeExceptional`).
    RemoveExceptional(Source),
}

impl Request {
    /// `newReader((component, inbox), source)`.
    pub fn new_reader(to: (&Handle, &str), source: &Source) -> Result<Request, BoxError> {
        Ok(Request::NewReader(to.0.postbox(to.1)?, source.clone()))
    }

    /// `newWriter((component, inbox), source)`.
    pub fn new_writer(to: (&Handle, &str), source: &Source) -> Result<Request, BoxError> {
        Ok(Request::NewWriter(to.0.postbox(to.1)?, source.clone()))
    }

    /// `newExceptional((component, inbox), source)`.
    pub fn new_exceptional(to: (&Handle, &str), source: &Source) -> Result<Request, BoxError> {
        Ok(Request::NewExceptional(to.0.postbox(to.1)?, source.clone()))
    }
}
