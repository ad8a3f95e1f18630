//! The Selector's protocol state, independent of mio (S3–S7).
//!
//! Kamaelia's Selector is one-shot over a level-triggered `select()`. Here
//! each source is registered with the poller once, for every direction,
//! edge-triggered, and this module turns edges into Kamaelia's one-shot
//! notices. Per source and direction it keeps:
//!
//! - `armed`: the notice waiting for the next readiness (a request);
//! - `seen`: readiness arrived while nobody was armed.
//!
//! A request with `seen` set is answered at once (S6: the kernel will not
//! repeat the edge, so the Selector remembers it); otherwise it arms. An
//! edge fires the armed notice and disarms (S3), or sets `seen`. A second
//! request while armed is ignored (S4). Removal disarms and is idempotent
//! (S5); when nothing is armed any more the source's slot is freed, and it
//! is deregistered at the end of the batch of requests (or, if the
//! Selector held its last reference, closed, which deregisters it).
//! Tokens carry a generation, so an event for a freed slot that was reused
//! is recognised as stale and ignored (S7).
//!
//! The poller is a trait so that this state machine can be driven by tests
//! with no sockets at all.

use std::io;
use std::os::fd::RawFd;

use slab::Slab;

use crate::request::{Kind, Notice, Ready, Request, Source, UNREGISTERED};

/// What the state machine needs from the operating system's poller.
pub trait Poller: Send + 'static {
    /// Registers `fd` for readable and writable readiness, edge-triggered,
    /// reporting `token`.
    fn register(&mut self, fd: RawFd, token: usize) -> io::Result<()>;
    /// Deregisters `fd`.
    fn deregister(&mut self, fd: RawFd) -> io::Result<()>;
    /// Makes `fd`, registered already, report `token` instead.
    fn reregister(&mut self, fd: RawFd, token: usize) -> io::Result<()> {
        self.deregister(fd)?;
        self.register(fd, token)
    }
}

/// Readiness reported by the poller for one token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    /// Readable, or read side closed, or error.
    pub readable: bool,
    /// Writable, or write side closed, or error.
    pub writable: bool,
    /// Error or priority data.
    pub exceptional: bool,
    /// The read side is closed (the peer shut down its write side, hung up,
    /// or the socket failed): recorded on the [`Source`] (see
    /// [`Source::read_closed_seen`]), because no later edge will announce
    /// the end of a stream whose FIN arrived together with data.
    pub read_closed: bool,
}

/// One registered source: per direction (reader, writer, exceptional) the
/// notice armed for the next readiness, and whether readiness was seen while
/// none was armed (a bit each in `seen`). 40 bytes: one per connection.
struct Entry {
    source: Source,
    generation: u32,
    seen: u8,
    armed: [Option<Notice>; 3],
}

impl Entry {
    fn seen(&self, i: usize) -> bool {
        self.seen & (1 << i) != 0
    }

    fn set_seen(&mut self, i: usize, seen: bool) {
        if seen {
            self.seen |= 1 << i;
        } else {
            self.seen &= !(1 << i);
        }
    }
}

fn index(kind: Kind) -> usize {
    match kind {
        Kind::Reader => 0,
        Kind::Writer => 1,
        Kind::Exceptional => 2,
    }
}

const SLOT_BITS: u32 = 32;
const SLOT_MASK: usize = (1 << SLOT_BITS) - 1;

/// The Selector's registrations (see the module docs).
pub struct State<P> {
    entries: Slab<Entry>,
    poller: P,
    generation: u32,
    /// Told (with `shutdown`) when the last registration goes: Selectors
    /// that are shutting down (S8), since removals may reach the shared
    /// state through another Selector component.
    on_empty: Vec<axon::Postbox<axon::Control>>,
    /// Sources removed by the requests of this batch, still registered
    /// with the poller (see [`settle`](Self::settle)).
    removed: Vec<Source>,
}

impl<P> std::fmt::Debug for State<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "State({} sources)", self.entries.len())
    }
}

impl<P: Poller> State<P> {
    /// An empty state over `poller`.
    pub fn new(poller: P) -> Self {
        State {
            entries: Slab::new(),
            poller,
            generation: 0,
            on_empty: Vec::new(),
            removed: Vec::new(),
        }
    }

    /// The number of registered sources.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no source is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sends `shutdown` to `to` once no source is registered (at once if
    /// none is now).
    pub fn notify_when_empty(&mut self, to: axon::Postbox<axon::Control>) {
        if self.entries.is_empty() {
            let _ = to.send(axon::Control::Shutdown);
        } else {
            self.on_empty.push(to);
        }
    }

    /// The poller (for tests that inspect it).
    pub fn poller(&self) -> &P {
        &self.poller
    }

    /// Applies one request (S2–S6).
    pub fn request(&mut self, request: Request) {
        self.apply(request);
        self.settle();
    }

    /// Applies one request of a batch, which [`settle`](Self::settle)
    /// ends.
    pub(crate) fn apply(&mut self, request: Request) {
        match request {
            Request::NewReader(n, s) => self.arm(Kind::Reader, n, s),
            Request::NewWriter(n, s) => self.arm(Kind::Writer, n, s),
            Request::NewExceptional(n, s) => self.arm(Kind::Exceptional, n, s),
            Request::RemoveReader(s) => self.remove(Kind::Reader, &s),
            Request::RemoveWriter(s) => self.remove(Kind::Writer, &s),
            Request::RemoveExceptional(s) => self.remove(Kind::Exceptional, &s),
        }
    }

    /// Ends a batch of requests: each source whose last registration went
    /// is deregistered from the poller now, or, where this is the last
    /// `Source` of its socket, dropped, and its descriptor's close takes
    /// it out of the poller (one system call fewer per connection: the
    /// CSA that owned it has ended, and its end-of-connection messages
    /// name it without holding it, C6). After the batch, not at each
    /// removal: a CSA's `removeReader` and `removeWriter` come together,
    /// and the second holds the socket while the first is handled.
    pub(crate) fn settle(&mut self) {
        for source in self.removed.drain(..) {
            if source.closes_when_dropped() {
                log::trace!("selector: {source:?} closes with its removal");
            } else if let Err(e) = self.poller.deregister(source.fd()) {
                log::trace!("selector: deregister {source:?}: {e}");
            }
        }
    }

    fn find(&self, source: &Source) -> Option<usize> {
        let slot = source.slot();
        match self.entries.get(slot) {
            Some(e) if e.source.same(source) => Some(slot),
            _ => None,
        }
    }

    fn arm(&mut self, kind: Kind, notice: Notice, source: Source) {
        let slot = match self.find(&source) {
            Some(slot) => slot,
            None => {
                self.generation = self.generation.wrapping_add(1);
                let generation = self.generation;
                let entry = self.entries.vacant_entry();
                let slot = entry.key();
                let token = (generation as usize) << SLOT_BITS | slot;
                // Removed earlier in this batch, it is registered still.
                let again = self.removed.iter().position(|s| s.same(&source));
                let registered = match again {
                    Some(at) => {
                        self.removed.swap_remove(at);
                        let done = self.poller.reregister(source.fd(), token);
                        if done.is_err() {
                            // Not left registered under its old token.
                            let _ = self.poller.deregister(source.fd());
                        }
                        done
                    }
                    None => self.poller.register(source.fd(), token),
                };
                if let Err(e) = registered {
                    // Tell the requester now: its own I/O call will report
                    // the real error. Never a silent loss.
                    log::warn!("selector: cannot register {source:?}: {e}");
                    fire(&notice, &source);
                    return;
                }
                log::trace!("selector: registered {source:?} as slot {slot}");
                source.set_slot(slot);
                entry.insert(Entry {
                    source: source.clone(),
                    generation,
                    seen: 0,
                    armed: Default::default(),
                });
                slot
            }
        };
        let (entry, i) = (&mut self.entries[slot], index(kind));
        if entry.armed[i].is_some() {
            return; // S4: first wins
        }
        if entry.seen(i) {
            entry.set_seen(i, false);
            fire(&notice, &source);
        } else {
            entry.armed[i] = Some(notice);
        }
    }

    fn remove(&mut self, kind: Kind, source: &Source) {
        let Some(slot) = self.find(source) else {
            return; // S5: not an error
        };
        let entry = &mut self.entries[slot];
        // `seen` is kept: a later request must still hear of readiness that
        // came before it (S6).
        entry.armed[index(kind)] = None;
        if entry.armed.iter().all(Option::is_none) {
            let entry = self.entries.remove(slot);
            entry.source.set_slot(UNREGISTERED);
            log::trace!("selector: removed {:?}", entry.source);
            self.removed.push(entry.source);
            if self.entries.is_empty() {
                for to in self.on_empty.drain(..) {
                    let _ = to.send(axon::Control::Shutdown);
                }
            }
        }
    }

    /// Applies the readiness the poller reported for `token` (S3, S6, S7).
    pub fn event(&mut self, token: usize, readiness: Readiness) {
        let slot = token & SLOT_MASK;
        let generation = (token >> SLOT_BITS) as u32;
        let Some(entry) = self.entries.get_mut(slot) else {
            return; // S7: stale
        };
        if entry.generation != generation {
            return; // S7: the slot now belongs to another source
        }
        if readiness.read_closed {
            entry.source.mark_read_closed();
        }
        for (kind, ready) in [
            (Kind::Reader, readiness.readable),
            (Kind::Writer, readiness.writable),
            (Kind::Exceptional, readiness.exceptional),
        ] {
            if !ready {
                continue;
            }
            let i = index(kind);
            match entry.armed[i].take() {
                Some(notice) => fire(&notice, &entry.source),
                None => entry.set_seen(i, true),
            }
        }
    }
}

fn fire(notice: &Notice, source: &Source) {
    log::trace!("selector: notify {source:?}");
    if notice.send(Ready(source.clone())).is_err() {
        // Only a size-limited notice inbox can refuse; its owner already
        // has a notice waiting there, which is all a one-shot promises.
        log::debug!("selector: notice inbox for {source:?} is full");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axon::{boxes, Endpoint, Inbox};
    use proptest::prelude::*;
    use std::os::fd::AsRawFd;
    use std::sync::Arc;

    struct Fd(RawFd);
    impl AsRawFd for Fd {
        fn as_raw_fd(&self) -> RawFd {
            self.0
        }
    }

    #[derive(Default)]
    struct FakePoller {
        registered: Vec<(RawFd, usize)>,
        fail: bool,
        deregistrations: usize,
        reregistrations: usize,
    }

    impl Poller for FakePoller {
        fn register(&mut self, fd: RawFd, token: usize) -> io::Result<()> {
            if self.fail {
                return Err(io::Error::from_raw_os_error(9));
            }
            self.registered.push((fd, token));
            Ok(())
        }
        fn deregister(&mut self, fd: RawFd) -> io::Result<()> {
            self.deregistrations += 1;
            self.registered.retain(|(f, _)| *f != fd);
            Ok(())
        }
        fn reregister(&mut self, fd: RawFd, token: usize) -> io::Result<()> {
            if self.fail {
                return Err(io::Error::from_raw_os_error(9));
            }
            self.reregistrations += 1;
            let entry = self.registered.iter_mut().find(|(f, _)| *f == fd);
            entry.expect("reregistered while registered").1 = token;
            Ok(())
        }
    }

    boxes! {
        struct Client {
            /// readable notices
            #[name = "ReadReady"]
            read_ready: Inbox<Ready>,
            /// writable notices
            #[name = "SendReady"]
            send_ready: Inbox<Ready>,
        }
    }

    fn client() -> Endpoint<Client> {
        Endpoint::new("client")
    }

    fn notices(e: &Endpoint<Client>, inbox: &str) -> usize {
        let inbox = match inbox {
            "ReadReady" => &e.read_ready,
            _ => &e.send_ready,
        };
        let mut n = 0;
        while inbox.recv().is_some() {
            n += 1;
        }
        n
    }

    /// A state with one client waiting to hear that fd 7 is readable.
    fn reading_fd_7() -> (State<FakePoller>, Endpoint<Client>, Source) {
        let mut s = State::new(FakePoller::default());
        let c = client();
        let src = Source::new(Arc::new(Fd(7)));
        s.request(Request::new_reader((c.handle(), "ReadReady"), &src).unwrap());
        (s, c, src)
    }

    fn token(s: &State<FakePoller>, fd: RawFd) -> usize {
        s.poller
            .registered
            .iter()
            .find(|(f, _)| *f == fd)
            .unwrap()
            .1
    }

    const READ: Readiness = Readiness {
        readable: true,
        writable: false,
        exceptional: false,
        read_closed: false,
    };

    #[test]
    fn read_closed_readiness_marks_the_source() {
        let (mut s, _c, src) = reading_fd_7();
        let t = token(&s, 7);
        s.event(t, READ);
        assert!(!src.read_closed_seen());
        s.event(
            t,
            Readiness {
                read_closed: true,
                ..READ
            },
        );
        assert!(src.read_closed_seen(), "a FIN may sit behind the data");
        s.event(t, READ);
        assert!(src.read_closed_seen(), "it stays set");
    }

    #[test]
    fn s3_notice_is_one_shot() {
        let (mut s, c, src) = reading_fd_7();
        let t = token(&s, 7);
        s.event(t, READ);
        s.event(t, READ);
        assert_eq!(notices(&c, "ReadReady"), 1, "one notice per request");
        // The second edge was remembered (S6): asking again is answered.
        s.request(Request::new_reader((c.handle(), "ReadReady"), &src).unwrap());
        assert_eq!(notices(&c, "ReadReady"), 1);
    }

    #[test]
    fn s4_second_request_while_armed_is_ignored() {
        let mut s = State::new(FakePoller::default());
        let c = client();
        let other = client();
        let src = Source::new(Arc::new(Fd(7)));
        s.request(Request::new_reader((c.handle(), "ReadReady"), &src).unwrap());
        s.request(Request::new_reader((other.handle(), "ReadReady"), &src).unwrap());
        s.event(token(&s, 7), READ);
        assert_eq!(notices(&c, "ReadReady"), 1);
        assert_eq!(notices(&other, "ReadReady"), 0, "first wins");
    }

    #[test]
    fn s5_removing_what_is_not_there_is_fine() {
        let mut s = State::new(FakePoller::default());
        let src = Source::new(Arc::new(Fd(7)));
        s.request(Request::RemoveReader(src.clone()));
        s.request(Request::RemoveWriter(src));
        assert!(s.is_empty());
    }

    #[test]
    fn s6_readiness_seen_while_unarmed_answers_the_next_request() {
        let mut s = State::new(FakePoller::default());
        let c = client();
        let src = Source::new(Arc::new(Fd(7)));
        s.request(Request::new_writer((c.handle(), "SendReady"), &src).unwrap());
        // A read edge arrives while nobody asked for reads.
        s.event(token(&s, 7), READ);
        assert_eq!(notices(&c, "ReadReady"), 0);
        s.request(Request::new_reader((c.handle(), "ReadReady"), &src).unwrap());
        assert_eq!(notices(&c, "ReadReady"), 1, "the remembered edge answers");
        // Consumed: the next request waits for a new edge.
        s.request(Request::new_reader((c.handle(), "ReadReady"), &src).unwrap());
        assert_eq!(notices(&c, "ReadReady"), 0);
    }

    #[test]
    fn s6_removal_keeps_readiness_for_a_later_request() {
        let mut s = State::new(FakePoller::default());
        let c = client();
        let src = Source::new(Arc::new(Fd(7)));
        s.request(Request::new_writer((c.handle(), "SendReady"), &src).unwrap());
        s.request(Request::new_reader((c.handle(), "ReadReady"), &src).unwrap());
        s.request(Request::RemoveReader(src.clone()));
        let t = token(&s, 7);
        s.event(t, READ);
        s.request(Request::new_reader((c.handle(), "ReadReady"), &src).unwrap());
        assert_eq!(notices(&c, "ReadReady"), 1);
    }

    #[test]
    fn s7_events_for_a_removed_source_are_ignored_even_if_its_slot_is_reused() {
        let mut s = State::new(FakePoller::default());
        let c = client();
        let old = Source::new(Arc::new(Fd(7)));
        s.request(Request::new_reader((c.handle(), "ReadReady"), &old).unwrap());
        let stale = token(&s, 7);
        s.request(Request::RemoveReader(old));
        assert!(s.is_empty());
        // Same descriptor number, same slot, new source.
        let new = Source::new(Arc::new(Fd(7)));
        s.request(Request::new_reader((c.handle(), "ReadReady"), &new).unwrap());
        assert_ne!(token(&s, 7), stale);
        s.event(stale, READ);
        assert_eq!(notices(&c, "ReadReady"), 0, "stale event delivered");
        s.event(token(&s, 7), READ);
        assert_eq!(notices(&c, "ReadReady"), 1);
    }

    #[test]
    fn s7_a_failed_registration_answers_at_once_and_leaves_nothing_behind() {
        let mut s = State::new(FakePoller {
            fail: true,
            ..Default::default()
        });
        let c = client();
        let src = Source::new(Arc::new(Fd(-1)));
        s.request(Request::new_reader((c.handle(), "ReadReady"), &src).unwrap());
        assert_eq!(notices(&c, "ReadReady"), 1);
        assert!(s.is_empty());
    }

    #[test]
    fn s2_last_removal_deregisters_the_source() {
        let mut s = State::new(FakePoller::default());
        let c = client();
        let src = Source::new(Arc::new(Fd(9)));
        s.request(Request::new_reader((c.handle(), "ReadReady"), &src).unwrap());
        s.request(Request::new_writer((c.handle(), "SendReady"), &src).unwrap());
        assert_eq!(s.poller().registered.len(), 1, "registered once for both");
        s.request(Request::RemoveReader(src.clone()));
        assert_eq!(s.len(), 1);
        s.request(Request::RemoveWriter(src));
        assert!(s.is_empty());
        assert!(s.poller().registered.is_empty());
    }

    /// A connected pair: a watched server end, and its peer.
    fn watched_pair() -> (crate::Watched<std::net::TcpStream>, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        peer.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        (crate::Watched::new(listener.accept().unwrap().0), peer)
    }

    /// S2, S7: the last removal of a socket nobody else holds (its CSA has
    /// ended) makes no deregistration: the Selector's source was the last,
    /// and the close takes it out of the poller. A removal in the same
    /// batch as the other's (a CSA sends both) counts as let go.
    #[test]
    fn s2_the_last_holders_removal_closes_the_socket_with_no_deregistration() {
        use std::io::Read;
        let mut s = State::new(FakePoller::default());
        let c = client();
        let (watched, mut peer) = watched_pair();
        let src = watched.source();
        s.request(Request::new_reader((c.handle(), "ReadReady"), &src).unwrap());
        drop(watched); // its owner ends
        s.apply(Request::RemoveReader(src.clone()));
        s.apply(Request::RemoveWriter(src));
        s.settle();
        assert!(s.is_empty());
        assert_eq!(s.poller().deregistrations, 0);
        assert_eq!(peer.read(&mut [0; 1]).unwrap(), 0, "closed by the removal");
    }

    /// A watched socket registered for reading, then removed in a batch
    /// not yet settled: the state, its client, the socket (still held)
    /// and its peer, and its source.
    fn removed_in_an_open_batch() -> (
        State<FakePoller>,
        Endpoint<Client>,
        crate::Watched<std::net::TcpStream>,
        std::net::TcpStream,
        Source,
    ) {
        let mut s = State::new(FakePoller::default());
        let c = client();
        let (watched, peer) = watched_pair();
        let src = watched.source();
        s.request(Request::new_reader((c.handle(), "ReadReady"), &src).unwrap());
        s.apply(Request::RemoveReader(src.clone()));
        (s, c, watched, peer, src)
    }

    /// … but a socket someone still holds is deregistered, at the end of
    /// the batch, and one registered again in the same batch is
    /// reregistered (it never left the poller).
    #[test]
    fn s2_a_socket_still_held_is_deregistered_and_one_asked_for_again_reregistered() {
        let (mut s, c, watched, _peer, src) = removed_in_an_open_batch();
        assert_eq!(s.poller().deregistrations, 0, "not before the batch ends");
        s.apply(Request::new_reader((c.handle(), "ReadReady"), &src).unwrap());
        s.settle();
        assert_eq!(
            (s.poller().deregistrations, s.poller().reregistrations),
            (0, 1)
        );
        assert_eq!(s.poller().registered.len(), 1);
        let token = s.poller().registered[0].1;
        s.event(token, READ);
        assert_eq!(notices(&c, "ReadReady"), 1, "the new token is served");
        s.request(Request::RemoveReader(src));
        assert_eq!(s.poller().deregistrations, 1, "`watched` holds it");
        assert!(s.poller().registered.is_empty());
        drop(watched);
    }

    /// S7: a source removed and asked for again in one batch whose
    /// reregistration fails is answered at once (as any failed
    /// registration is) and not left registered under its old token.
    #[test]
    fn s7_a_failed_reregistration_answers_at_once_and_leaves_nothing_registered() {
        let (mut s, c, _watched, _peer, src) = removed_in_an_open_batch();
        s.poller.fail = true;
        s.apply(Request::new_reader((c.handle(), "ReadReady"), &src).unwrap());
        s.settle();
        assert_eq!(notices(&c, "ReadReady"), 1);
        assert!(s.is_empty());
        assert!(s.poller().registered.is_empty());
        assert_eq!(s.poller().deregistrations, 1);
    }

    /// Issue-5 scenario 8: random interleavings of requests, removals,
    /// readiness events (fresh and stale) and closes, checked after every
    /// step against a simple model of S3–S7: every notice the model owes
    /// arrives (none lost), none arrives after removal, at most one per
    /// request.
    /// One step of the model test below.
    #[derive(Clone, Copy, Debug)]
    enum Op {
        /// `newReader` (kind 0) or `newWriter` (kind 1) from requester `who`.
        Request { src: usize, kind: usize, who: usize },
        /// `removeReader` / `removeWriter`.
        Remove { src: usize, kind: usize },
        /// The poller reports readiness.
        Event {
            src: usize,
            readable: bool,
            writable: bool,
        },
        /// A late event for the source's last removed registration.
        Stale { src: usize },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            2 => (0..3usize, 0..2usize, 0..2usize)
                .prop_map(|(src, kind, who)| Op::Request { src, kind, who }),
            1 => (0..3usize, 0..2usize).prop_map(|(src, kind)| Op::Remove { src, kind }),
            1 => (0..3usize, any::<bool>(), any::<bool>())
                .prop_map(|(src, readable, writable)| Op::Event { src, readable, writable }),
            1 => (0..3usize).prop_map(|src| Op::Stale { src }),
        ]
    }

    /// Runs `ops` against the state machine and against a model of S3–S7
    /// (one-shot, first wins, no lost wake-up, stale events ignored),
    /// comparing the notices each requester gets after every step.
    fn matches_the_model(ops: &[Op]) -> Result<(), TestCaseError> {
        #[derive(Clone, Copy, Default)]
        struct Dir {
            armed: Option<usize>, // which requester
            seen: bool,
        }
        struct Src {
            source: Source,
            fd: RawFd,
            dirs: [Dir; 2],
            registered: bool,
            stale_tokens: Vec<usize>,
        }
        let mut state = State::new(FakePoller::default());
        let requesters = [client(), client()];
        let inbox = |k: usize| if k == 0 { "ReadReady" } else { "SendReady" };
        let mut owed = [[0usize; 2]; 2]; // [requester][kind]
        let mut srcs: Vec<Src> = (0..3)
            .map(|i| Src {
                source: Source::new(Arc::new(Fd(10 + i))),
                fd: 10 + i,
                dirs: Default::default(),
                registered: false,
                stale_tokens: Vec::new(),
            })
            .collect();
        for (step, &op) in ops.iter().enumerate() {
            match op {
                Op::Request { src, kind, who } => {
                    let to = (requesters[who].handle(), inbox(kind));
                    let req = if kind == 0 {
                        Request::new_reader(to, &srcs[src].source)
                    } else {
                        Request::new_writer(to, &srcs[src].source)
                    };
                    state.request(req.unwrap());
                    let s = &mut srcs[src];
                    s.registered = true;
                    let d = &mut s.dirs[kind];
                    if d.armed.is_none() {
                        if d.seen {
                            d.seen = false;
                            owed[who][kind] += 1;
                        } else {
                            d.armed = Some(who);
                        }
                    }
                }
                Op::Remove { src, kind } => {
                    let s = &mut srcs[src];
                    let tok = s.registered.then(|| token(&state, s.fd));
                    state.request(if kind == 0 {
                        Request::RemoveReader(s.source.clone())
                    } else {
                        Request::RemoveWriter(s.source.clone())
                    });
                    if s.registered {
                        s.dirs[kind].armed = None;
                        if s.dirs.iter().all(|d| d.armed.is_none()) {
                            s.stale_tokens.extend(tok);
                            s.registered = false;
                            s.dirs = Default::default();
                        }
                    }
                }
                Op::Event {
                    src,
                    readable,
                    writable,
                } => {
                    let s = &mut srcs[src];
                    if s.registered {
                        let r = Readiness {
                            readable,
                            writable,
                            exceptional: false,
                            read_closed: false,
                        };
                        state.event(token(&state, s.fd), r);
                        for (k, ready) in [readable, writable].into_iter().enumerate() {
                            if ready {
                                match s.dirs[k].armed.take() {
                                    Some(who) => owed[who][k] += 1,
                                    None => s.dirs[k].seen = true,
                                }
                            }
                        }
                    }
                }
                Op::Stale { src } => {
                    // S7: a stale event for a removed registration is ignored.
                    if let Some(&t) = srcs[src].stale_tokens.last() {
                        state.event(
                            t,
                            Readiness {
                                readable: true,
                                writable: true,
                                exceptional: true,
                                read_closed: true,
                            },
                        );
                    }
                }
            }
            for (who, r) in requesters.iter().enumerate() {
                for (k, owed) in owed[who].iter_mut().enumerate() {
                    let got = notices(r, inbox(k));
                    prop_assert_eq!(
                        got,
                        *owed,
                        "after step {} ({:?}): requester {}, kind {}: notices differ from the model",
                        step,
                        op,
                        who,
                        k
                    );
                    *owed = 0;
                }
            }
        }
        Ok(())
    }

    proptest! {
        // A failing sequence is shrunk to a shortest one and printed.
        #![proptest_config(ProptestConfig {
            cases: 256,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn s3_s7_random_interleavings_match_the_model(ops in proptest::collection::vec(op(), 1..300)) {
            matches_the_model(&ops)?;
        }
    }
}
