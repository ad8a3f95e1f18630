//! The messages of the Selector protocol (S2, S3) and the sources they name.

use std::fmt;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use axon::{BoxError, Handle, Postbox};

pub(crate) const UNREGISTERED: usize = usize::MAX;

/// What the Selector keeps of a source, with the descriptor's owner
/// itself (`io`), in one allocation.
struct SourceInner<S: ?Sized> {
    /// The Selector's slot for this source while registered.
    slot: AtomicUsize,
    /// The poller has reported the read side closed.
    read_closed: AtomicBool,
    io: S,
}

/// What a [`Source`] holds: any descriptor's owner.
type Io = dyn AsRawFd + Send + Sync;

/// Something the Selector can watch: a socket (or any descriptor), shared
/// between its owner and the Selector.
///
/// The Selector keeps a clone while the source is registered, so the
/// descriptor cannot be closed (and its number reused by a new socket)
/// before the Selector has deregistered it: that is what keeps a closed
/// source from disturbing anyone else (S7). Two `Source`s are the same
/// source when they are clones of one another.
///
/// A socket used by one owner (a CSA's) is best made a [`Watched`]: the
/// socket and what the Selector keeps of it in one allocation.
#[derive(Clone)]
pub struct Source(Arc<SourceInner<Io>>);

impl Source {
    /// Wraps a shared socket.
    pub fn new<S: AsRawFd + Send + Sync + 'static>(io: Arc<S>) -> Source {
        Source(Arc::new(SourceInner {
            slot: AtomicUsize::new(UNREGISTERED),
            read_closed: AtomicBool::new(false),
            io,
        }))
    }

    /// The descriptor.
    pub fn fd(&self) -> RawFd {
        self.0.io.as_raw_fd()
    }

    /// True if both name the same source.
    pub fn same(&self, other: &Source) -> bool {
        // The addresses alone: the same source has one.
        std::ptr::eq(
            Arc::as_ptr(&self.0) as *const u8,
            Arc::as_ptr(&other.0) as *const u8,
        )
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

/// A socket (any descriptor's owner) in one allocation with what the
/// Selector keeps of it: it dereferences to the socket, and
/// [`source`](Watched::source) names it in Selector requests. Clones share
/// the one socket.
///
/// ```
/// use selector::Watched;
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let watched = Watched::new(listener);
/// let source = watched.source(); // for `newReader` and the rest
/// assert!(source.same(&watched.source()));
/// assert!(watched.local_addr().is_ok()); // the socket itself
/// ```
pub struct Watched<S>(Arc<SourceInner<S>>);

impl<S: AsRawFd + Send + Sync + 'static> Watched<S> {
    /// Wraps a socket.
    pub fn new(io: S) -> Watched<S> {
        Watched(Arc::new(SourceInner {
            slot: AtomicUsize::new(UNREGISTERED),
            read_closed: AtomicBool::new(false),
            io,
        }))
    }

    /// The source to name this socket by in requests (the same one each
    /// time: a clone of one reference).
    pub fn source(&self) -> Source {
        Source(self.0.clone())
    }

    /// As [`Source::read_closed_seen`].
    pub fn read_closed_seen(&self) -> bool {
        self.0.read_closed.load(Ordering::Acquire)
    }
}

impl<S> Clone for Watched<S> {
    fn clone(&self) -> Self {
        Watched(self.0.clone())
    }
}

impl<S> std::ops::Deref for Watched<S> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.0.io
    }
}

impl<S: AsRawFd> fmt::Debug for Watched<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Watched(fd {})", self.0.io.as_raw_fd())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A watched socket and its sources are one: the Selector's marks on a
    /// source show on the socket, and the socket closes with the last of
    /// them (S7: not before the Selector lets go).
    #[test]
    fn a_watched_socket_is_its_sources_and_closes_with_the_last() {
        use std::io::Read;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let watched = Watched::new(listener.accept().unwrap().0);
        let (a, b) = (watched.source(), watched.source());
        assert!(a.same(&b) && a.fd() == watched.as_raw_fd());
        assert!(!a.same(&Source::new(Arc::new(listener))));
        a.mark_read_closed();
        assert!(watched.read_closed_seen() && b.read_closed_seen());
        drop((watched, a));
        peer.set_nonblocking(true).unwrap();
        let open = peer.read(&mut [0; 1]).unwrap_err();
        assert_eq!(
            open.kind(),
            std::io::ErrorKind::WouldBlock,
            "a source still holds it"
        );
        drop(b);
        peer.set_nonblocking(false).unwrap();
        peer.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        assert_eq!(peer.read(&mut [0; 1]).unwrap(), 0, "closed with the last");
    }
}
