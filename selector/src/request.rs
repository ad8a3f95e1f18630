//! The messages of the Selector protocol (S2, S3) and the sources they name.

use std::fmt;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use axon::{BoxError, Handle, Postbox};

pub(crate) const UNREGISTERED: usize = usize::MAX;

/// What the Selector keeps of a source, with the descriptor's owner
/// itself (`io`), in one allocation.
struct SourceInner<S: ?Sized> {
    /// The Selector's slot for this source while registered.
    slot: AtomicUsize,
    /// The poller has reported the read side closed.
    read_closed: AtomicBool,
    /// Dropping `io` closes the descriptor (a [`Watched`] socket's, not a
    /// shared `Arc`'s): the last `Source` of it closes it.
    owned: bool,
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
            owned: false,
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

    /// True if dropping this `Source` closes the descriptor: it is the
    /// last of a [`Watched`] socket's (no other `Source`, no `Watched`).
    pub(crate) fn closes_when_dropped(&self) -> bool {
        self.0.owned && Arc::strong_count(&self.0) == 1
    }

    pub(crate) fn slot(&self) -> usize {
        self.0.slot.load(Ordering::Relaxed)
    }

    pub(crate) fn set_slot(&self, slot: usize) {
        self.0.slot.store(slot, Ordering::Relaxed);
    }
}

impl Source {
    /// A name for this source that does not keep its descriptor open: see
    /// [`SourceRef`].
    pub fn downgrade(&self) -> SourceRef {
        SourceRef {
            inner: Arc::downgrade(&self.0),
            fd: self.fd(),
        }
    }
}

/// A source named without being held: what a CSA's end-of-connection
/// messages (C6's `socketShutdown` and `shutdownCSA`) carry, where
/// Kamaelia's carry the socket itself.
///
/// A [`Source`] in a message keeps the descriptor open for as long as the
/// message exists, so a message left in an inbox nobody reads would keep
/// the connection open (no FIN for the peer, a descriptor lost to the
/// server). A `SourceRef` names the same source ([`same`](Self::same)
/// stays exact: the name keeps the source's memory, not its descriptor),
/// and [`upgrade`](Self::upgrade) gives the source back while someone
/// still holds it (the Selector, while it is registered).
///
/// ```
/// use selector::Watched;
///
/// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let watched = Watched::new(listener);
/// let name = watched.source().downgrade();
/// assert!(name.same(&watched.source()));
/// assert!(name.upgrade().is_some());
/// drop(watched); // the socket closes: the name does not hold it
/// assert!(name.upgrade().is_none());
/// ```
#[derive(Clone)]
pub struct SourceRef {
    inner: Weak<SourceInner<Io>>,
    /// The descriptor's number when the name was made.
    fd: RawFd,
}

impl SourceRef {
    /// The source, if its descriptor is still open (someone holds it).
    pub fn upgrade(&self) -> Option<Source> {
        self.inner.upgrade().map(Source)
    }

    /// True if this names `source`.
    pub fn same(&self, source: &Source) -> bool {
        std::ptr::eq(
            self.inner.as_ptr() as *const u8,
            Arc::as_ptr(&source.0) as *const u8,
        )
    }

    /// The descriptor's number when the name was made. Once the source is
    /// closed the number may belong to another socket: look a source up
    /// by it only where something holds the source (and check with
    /// [`same`](Self::same)).
    pub fn fd(&self) -> RawFd {
        self.fd
    }
}

impl fmt::Debug for SourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let open = if self.inner.strong_count() > 0 {
            ""
        } else {
            ", closed"
        };
        write!(f, "SourceRef(fd {}{open})", self.fd)
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
            owned: true,
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

    /// C6's name for a source: the same source's, not another's, and it
    /// does not keep the socket open (the peer reads its end once the last
    /// `Source` goes, with the name still alive).
    #[test]
    fn a_source_ref_names_its_source_without_holding_it_open() {
        use std::io::Read;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let watched = Watched::new(listener.accept().unwrap().0);
        let fd = watched.as_raw_fd();
        let name = watched.source().downgrade();
        let other = Source::new(Arc::new(listener));
        assert!(name.same(&watched.source()) && !name.same(&other));
        assert_eq!(name.fd(), fd);
        assert!(name.upgrade().is_some_and(|s| s.same(&watched.source())));
        assert_eq!(format!("{name:?}"), format!("SourceRef(fd {fd})"));
        drop(watched);
        peer.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        assert_eq!(peer.read(&mut [0; 1]).unwrap(), 0, "closed, the name alive");
        assert!(name.upgrade().is_none());
        assert_eq!(format!("{name:?}"), format!("SourceRef(fd {fd}, closed)"));
        assert_eq!(name.fd(), fd, "the number it had");
    }
}
