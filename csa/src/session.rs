//! A session layer inside the CSA: TLS on the connection's own socket.
//!
//! Kamaelia's CSA had a `makessl` inbox and did the handshake on a
//! blocking socket. Here a [`Session`] (the `tls` crate's
//! `TlsSession`, on rustls) sits between the CSA's socket and its
//! boxes: the CSA reads ciphertext from the socket straight into the
//! session and writes the session's records straight to the socket, and
//! its boxes carry plaintext, so the protocol handler linked to it (by
//! ServerCore, H2) is the same as over plain TCP. Nothing blocks and
//! nothing hops: the handshake advances on `ReadReady` and `SendReady` as
//! any read or write does, and there is no second component per
//! connection.
//!
//! What the CSA keeps over a session (the rules of its crate docs, in
//! their TLS form):
//!
//! - **C3.** Each socket read is one `readv`: what the session asks for
//!   (rustls: 4 to 18 KiB, what its record buffer has room for) goes
//!   straight into the session's buffer, and up to 64 KiB more into a
//!   buffer of the thread's, from which the session is then fed in the
//!   pieces it asks for: one system call serves many of its reads, and
//!   the first of them costs no copy. A read under 8 KiB drained the
//!   socket, as over plain TCP. Decrypted bytes go out of `outbox` in
//!   chunks of at most [`CHUNK`], each gathered from as many records of
//!   the bytes in hand as fill it (one message and one allocation per
//!   32 KiB, not per 16 KiB record); a full outbox keeps the chunk, and the
//!   ciphertext of that read not fed yet (at most one read's), and stops
//!   the reading, so the session's plaintext, and then the socket, fill.
//! - **C4, A5.** Chunks from `inbox` are given to the session, which
//!   takes only what its buffer limit allows (the high-water mark); the
//!   rest waits in the CSA's backlog, and `inbox` is left alone while that
//!   is over the high-water mark. Records are written after every
//!   processing of what was read (handshake messages, tickets, alerts) and
//!   every write, until `WouldBlock`.
//! - **C5, C7.** `producerFinished`: everything is encrypted and written,
//!   then close_notify, then the close. The peer's close_notify is a
//!   half-close (`socketShutdown` out of `readShutdown`; the reply is still
//!   delivered). A FIN without close_notify after the handshake ends input
//!   the same way, and the session's verdict (truncation) becomes the
//!   `how_died` of C6; during the handshake it ends the connection.
//! - **Deadline.** A handshake not over within the session's
//!   [`handshake_timeout`](Session::handshake_timeout) closes the
//!   connection, on the CSA's own timer (C9's way, no polling).
//! - **Errors.** A session error (a bad certificate, bytes that are not
//!   TLS) sends what the session queued (its alert) in one pass, then
//!   closes, with the error as `how_died`.

use std::cell::Cell;
use std::fmt;
use std::io::{self, Read, Write};
use std::time::Duration;

use crate::{Csa, CsaBoxes, TcpStream, CHUNK, DRAINED_BELOW, GOT, READS_PER_STEP, WROTE};

/// What [`Session::plaintext`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Plaintext {
    /// Decrypted bytes, appended to the caller's buffer.
    Data,
    /// Nothing decrypted is waiting.
    Empty,
    /// The peer closed the session in order (TLS: its close_notify), after
    /// its last byte.
    Closed,
}

/// A session layer the CSA runs between its socket and its boxes (see the
/// [module docs](self)): the `tls` crate's `TlsSession` is one. Every
/// call is non-blocking; the CSA makes them in the order the module docs
/// describe.
pub trait Session: Send + fmt::Debug {
    /// Called once, at the CSA's first step: an error (a session that
    /// cannot start, such as a bad config) closes the connection at once,
    /// with it as `how_died`, before any byte moves.
    fn start(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// Reads bytes from the peer out of `socket` into the session (one
    /// `read` on it). `Ok(0)`: the peer's FIN.
    fn read_from(&mut self, socket: &mut dyn Read) -> io::Result<usize>;
    /// Processes what was read. An error ends the session: what it queued
    /// (an alert) is written in one pass, then the connection closes with
    /// the error as `how_died`.
    fn process(&mut self) -> io::Result<()>;
    /// Appends decrypted bytes to `buf` until it holds `max` bytes (the
    /// CSA gathers a chunk from several records this way, in one
    /// allocation). A `buf` with no capacity gets exactly what its first
    /// piece needs; one the caller reserved is filled without moving, and
    /// past that it grows as a `Vec` does (amortized).
    fn plaintext(&mut self, buf: &mut Vec<u8>, max: usize) -> Plaintext;
    /// Takes as much of `data` to send as the session's buffer limit
    /// allows; returns how much (perhaps 0, until records are written).
    fn write_plaintext(&mut self, data: &[u8]) -> usize;
    /// Writes queued records to `socket` (one write, vectored if it likes).
    fn write_to(&mut self, socket: &mut dyn Write) -> io::Result<usize>;
    /// True while the session takes more bytes from the peer.
    fn wants_read(&self) -> bool;
    /// True while records are queued for the peer.
    fn wants_write(&self) -> bool;
    /// True until the handshake is over.
    fn is_handshaking(&self) -> bool;
    /// Queues the orderly close (TLS: close_notify).
    fn close(&mut self);
    /// The peer's input has ended (its FIN, after [`process`](Self::process)):
    /// `None` if the session had been closed in order before it, what went
    /// wrong otherwise (TLS: truncation, or an end during the handshake).
    fn input_ended(&mut self) -> Option<io::Error>;
    /// How long the handshake may take; `None`: for ever.
    fn handshake_timeout(&self) -> Option<Duration>;
    /// What the finished handshake agreed, for `sslready`. By default
    /// nothing in particular.
    fn summary(&self) -> SslReady {
        SslReady::default()
    }
    /// The `how_died` of a handshake past [`handshake_timeout`](Self::handshake_timeout).
    fn timed_out(&self) -> io::Error;
    /// The `how_died` of a stop (`shutdownMicroprocess`) now, if the
    /// session makes it one (TLS: a stop during the handshake). By
    /// default none: the socket's own, if any.
    fn stopped(&mut self) -> Option<io::Error> {
        None
    }
}

/// What `sslready` carries: the handshake finished, and what it agreed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SslReady {
    /// The protocol version, e.g. `TLSv1_3`.
    pub protocol: String,
    /// The cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher_suite: String,
    /// The ALPN protocol agreed, if any.
    pub alpn: Option<Vec<u8>>,
    /// On a server, the name the client asked for (SNI), if any.
    pub server_name: Option<String>,
    /// True on the server side.
    pub is_server: bool,
    /// True if this was a resumed handshake (a session ticket or ID from
    /// an earlier connection), false for a full one.
    pub resumed: bool,
}

/// Makes the session of each connection that will run one: from its first
/// byte (`ServerOptions::session`) or from `makessl` on
/// (`ServerOptions::starttls`, [`Csa::with_starttls`](crate::Csa::with_starttls)).
pub trait SessionFactory: Send + Sync + fmt::Debug {
    /// The session for one connection.
    fn session(&self) -> Box<dyn Session>;
}

/// A CSA's session and what the CSA keeps about it. Boxed, so that a CSA
/// without one pays a pointer.
pub(crate) struct SessionState {
    session: Box<dyn Session>,
    /// close_notify is queued.
    close_sent: bool,
    /// What the session said when the input ended, for C6.
    pub(crate) verdict: Option<io::Error>,
    /// When the connection started (ms, as the CSA's clocks): the
    /// handshake deadline counts from there.
    pub(crate) since: u32,
    /// The handshake deadline in ms (0: none).
    pub(crate) limit: u32,
    /// `since` has been set (at the CSA's first step in which the session
    /// runs: the connection's start, or its `makessl`).
    pub(crate) clock_started: bool,
    /// `sslready` has been sent.
    ready_sent: bool,
    /// Ciphertext read off the socket that the session has not taken yet
    /// (its outbox filled), from the offset given: fed to it before the
    /// socket is read again.
    pending: Option<(Box<[u8]>, usize)>,
    /// Decrypted bytes gathered into the next chunk for `outbox`, while
    /// more of the ciphertext in hand is being fed ([`Csa::deliver`]):
    /// one message and one allocation per [`CHUNK`] rather than per
    /// record. Empty, with no capacity, between steps.
    gathered: Vec<u8>,
}

impl SessionState {
    pub(crate) fn new(session: Box<dyn Session>) -> SessionState {
        let limit = session
            .handshake_timeout()
            .map_or(0, |t| crate::millis(t).max(1));
        SessionState {
            session,
            close_sent: false,
            verdict: None,
            since: 0,
            limit,
            clock_started: false,
            ready_sent: false,
            pending: None,
            gathered: Vec::new(),
        }
    }

    /// Keeps `bytes` from `at` (ciphertext not taken yet) for the next
    /// read: the buffer itself, not a copy of what is left of it.
    fn keep(&mut self, bytes: Box<[u8]>, at: usize) {
        self.pending = (at < bytes.len()).then_some((bytes, at));
    }

    /// The session's start (see [`Session::start`]).
    pub(crate) fn start(&mut self) -> io::Result<()> {
        self.session.start()
    }

    /// Whether the handshake deadline counts now.
    pub(crate) fn deadline_counts(&self) -> bool {
        self.limit != 0 && self.session.is_handshaking()
    }

    /// The `how_died` of the handshake deadline.
    pub(crate) fn timed_out(&self) -> io::Error {
        self.session.timed_out()
    }
}

/// What [`Csa::deliver`] did (in this order: `max` keeps the most).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Delivered {
    /// Nothing was waiting.
    Nothing,
    /// Decrypted bytes were gathered for a chunk not yet sent.
    Gathered,
    /// Everything waiting went out of `outbox`.
    Some,
    /// `outbox` is full: a chunk is kept.
    Full,
}

/// Plaintext queued for a session above which `inbox` is left alone (C4,
/// A5): the plain socket's [`HIGH_WATER`](crate::HIGH_WATER) is larger
/// so that one write takes a streaming step's chunks, but a session takes
/// plaintext only up to its own buffer limit (the TLS layer's 64 KiB)
/// before its records are written, so more queued here would only wait.
const SESSION_HIGH_WATER: usize = 64 * 1024;

/// Ciphertext taken off the socket per read over a session beyond what
/// the session takes straight into its own buffer ([`SplitRead`]). The
/// session takes it from memory a piece at a time (rustls: 4 KiB while
/// its record buffer grows, then what that buffer has room for, up to
/// about 18 KiB), so one system call serves several of its reads instead
/// of one each.
const CIPHER_READ: usize = 2 * CHUNK;

thread_local! {
    /// The ciphertext read buffer, one per scheduler thread (taken out
    /// while in use, so a nested use would make its own): an idle
    /// connection holds none.
    static CIPHER: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// The session's read of the socket: one `readv` putting what the session
/// asks for (rustls: its record buffer's room, up to about 18 KiB)
/// straight into its buffer, and up to `spare`'s length more into `spare`
/// (the thread's [`CIPHER`] buffer), fed to it from there: the bytes of a
/// 64 KiB read cost one system call, and the first of them no copy.
struct SplitRead<'a> {
    stream: &'a TcpStream,
    spare: &'a mut [u8],
    /// Bytes read into `spare`.
    spilled: usize,
}

impl Read for SplitRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (&*self.stream)
            .read_vectored(&mut [io::IoSliceMut::new(buf), io::IoSliceMut::new(self.spare)])?;
        let direct = n.min(buf.len());
        self.spilled = n - direct;
        Ok(direct)
    }
}

/// What [`Csa::feed`] did with the ciphertext it was given.
enum Fed {
    /// The session took all of it (or its input has ended, after which
    /// the rest means nothing).
    All,
    /// It stopped at offset `at`: the outbox is full (woken when space
    /// frees, A6).
    Stopped { at: usize },
}

impl Csa {
    /// `sslready` (once): the session's handshake is over.
    pub(crate) fn ssl_ready(&mut self, b: &CsaBoxes) {
        let Some(st) = self.session.as_deref_mut() else {
            return;
        };
        if st.ready_sent || st.session.is_handshaking() {
            return;
        }
        st.ready_sent = true;
        if b.sslready.is_linked() {
            let _ = b.sslready.send(st.session.summary());
        }
    }

    /// The session's start (see [`Session::start`]).
    pub(crate) fn session_start(&mut self) -> io::Result<()> {
        match self.session.as_deref_mut() {
            Some(st) => st.session.start(),
            None => Ok(()),
        }
    }

    /// C4 over a session: plaintext from `inbox` (and the backlog) into
    /// the session, then its records out, until neither moves (plaintext
    /// first: what is already queued leaves with the records for it, in
    /// one write).
    pub(crate) fn session_flush(&mut self, st: &mut SessionState, b: &CsaBoxes) -> io::Result<()> {
        loop {
            while self.backlog_bytes() < SESSION_HIGH_WATER {
                match b.inbox.recv() {
                    Some(chunk) if chunk.is_empty() => {}
                    Some(chunk) => self.queue(chunk),
                    None => break,
                }
            }
            let mut taken = 0;
            while let Some(backlog) = self.backlog.as_deref() {
                let Some(front) = backlog.chunks.front() else {
                    break;
                };
                let n = st.session.write_plaintext(&front[backlog.offset..]);
                if n == 0 {
                    break; // its buffer limit: write records first
                }
                taken += n;
                // Into the session, not yet to the socket: `bytes_out`
                // counts the records written.
                self.consume(n);
            }
            if !self.write_records(st, b)? {
                return Ok(()); // the socket is full: SendReady wakes us
            }
            if taken == 0 {
                return Ok(());
            }
        }
    }

    /// Writes the session's records until none is left (true) or the
    /// socket is full (false, `newWriter` sent).
    fn write_records(&mut self, st: &mut SessionState, b: &CsaBoxes) -> io::Result<bool> {
        while st.session.wants_write() {
            if !self.writable {
                return Ok(false);
            }
            match st.session.write_to(&mut &*self.stream) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.moved |= WROTE;
                    self.bytes_out += n as u64;
                    if let Some(backlog) = self.backlog.as_deref_mut() {
                        backlog.moved = true; // C10: the peer is taking it
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Records wait: C10 counts, as for any queued output
                    // (a backlog with no plaintext in it, if need be). Its
                    // clock starts when the backlog forms and restarts
                    // only when the peer takes bytes, never at a write
                    // that took none.
                    if self.backlog.is_none() {
                        self.backlog = Some(Box::new(crate::Backlog {
                            moved: true,
                            ..crate::Backlog::default()
                        }));
                    }
                    self.wait_writable(b);
                    return Ok(false);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.backlog.as_ref().is_some_and(|q| q.chunks.is_empty()) {
            self.backlog = None; // nothing waits: an idle connection keeps none
        }
        Ok(true)
    }

    /// C3 over a session: reads into it and passes what it decrypts on,
    /// respecting a full outbox. True if there is more to read right away.
    ///
    /// Each read of the socket puts what the session asks for into the
    /// session and up to [`CIPHER_READ`] bytes more into this thread's
    /// buffer ([`SplitRead`]), from which the session is fed next; what it
    /// has not taken when the outbox fills is kept (`pending`, bounded by
    /// one read) and fed first next time, before the socket is read
    /// again.
    pub(crate) fn session_read(&mut self, st: &mut SessionState, b: &CsaBoxes) -> io::Result<bool> {
        if self.deliver(st, b, 0) == Delivered::Full {
            return Ok(false); // woken when space frees (A6)
        }
        if let Some((pending, from)) = st.pending.take() {
            if let Fed::Stopped { at } = self.feed(st, b, false, &pending[from..])? {
                st.keep(pending, from + at);
                return Ok(false);
            }
        }
        let mut reads = 0;
        while self.readable && !self.read_closed && st.session.wants_read() {
            if reads == READS_PER_STEP {
                return Ok(true);
            }
            reads += 1;
            let mut buf = CIPHER.take();
            if buf.len() < CIPHER_READ {
                buf.resize(CIPHER_READ, 0);
            }
            let mut split = SplitRead {
                stream: &self.stream,
                spare: &mut buf[..CIPHER_READ],
                spilled: 0,
            };
            let read = st.session.read_from(&mut split);
            let spilled = split.spilled;
            let fed = match read {
                Ok(0) => None,
                Ok(took) => {
                    let n = took + spilled;
                    self.moved |= GOT;
                    self.bytes_in += n as u64;
                    // A short read drained the socket (C3), unless a FIN
                    // may sit behind it (`Source::read_closed_seen`).
                    if n < DRAINED_BELOW && !self.stream.read_closed_seen() {
                        self.wait_readable(b);
                    }
                    let fed = self.feed(st, b, true, &buf[..spilled]);
                    if let Ok(Fed::Stopped { at }) = fed {
                        st.keep(buf[at..spilled].into(), 0);
                    }
                    Some(fed)
                }
                Err(ref e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.wait_readable(b);
                    Some(Ok(Fed::All))
                }
                Err(ref e) if e.kind() == io::ErrorKind::Interrupted => Some(Ok(Fed::All)),
                Err(e) => Some(Err(e)),
            };
            CIPHER.set(buf);
            match fed {
                None => {
                    log::trace!("csa {self:?}: peer closed its write side");
                    self.session_eof(st, b)?;
                    return Ok(false);
                }
                Some(fed) => {
                    if let Fed::Stopped { .. } = fed? {
                        return Ok(false);
                    }
                }
            }
        }
        Ok(false)
    }

    /// Feeds `bytes` (ciphertext off the socket) to the session, a read
    /// of its at a time, passing on what each read decrypts; first, if
    /// `read`, what the session has just read itself.
    fn feed(
        &mut self,
        st: &mut SessionState,
        b: &CsaBoxes,
        read: bool,
        bytes: &[u8],
    ) -> io::Result<Fed> {
        let fed = self.feed_gathering(st, b, read, bytes);
        // What was gathered for a chunk goes now, however the feeding
        // ended (with a full outbox it is held already).
        if !st.gathered.is_empty() {
            self.deliver(st, b, 0);
        }
        if st.gathered.capacity() > 0 {
            // Room taken for plaintext that did not come (the records
            // were the handshake's): an idle connection keeps none, and
            // the thread keeps it for the next chunk.
            crate::recycle(std::mem::take(&mut st.gathered));
        }
        fed
    }

    /// [`feed`](Self::feed), which sends what this leaves gathered.
    fn feed_gathering(
        &mut self,
        st: &mut SessionState,
        b: &CsaBoxes,
        read: bool,
        bytes: &[u8],
    ) -> io::Result<Fed> {
        if read && self.after_read(st, b, bytes.len())? {
            return Ok(Fed::Stopped { at: 0 });
        }
        let mut rest = bytes;
        while !rest.is_empty() && !self.read_closed {
            let at = bytes.len() - rest.len();
            if !st.session.wants_read() {
                // Its plaintext waits (the outbox is full) or, in the
                // handshake, its records do (the socket is full):
                // `deliver` and `write_records` have asked to be woken.
                return Ok(Fed::Stopped { at });
            }
            let took = st.session.read_from(&mut rest)?;
            let at = bytes.len() - rest.len();
            if self.after_read(st, b, rest.len())? {
                return Ok(Fed::Stopped { at });
            }
            if took == 0 {
                break; // it takes no more (its input ended in order)
            }
        }
        Ok(Fed::All)
    }

    /// After the session has read (with `coming` bytes of ciphertext
    /// still in hand): processes it, passes on what it decrypted, and
    /// writes the records it made. True when feeding must stop here: the
    /// outbox is full.
    ///
    /// Records go out at once, those that came with plaintext too (the
    /// session tickets after a handshake, a key update), not held for the
    /// handler's reply to leave with them in one write: held, they waited
    /// behind every component the step woke (a Selector's round of
    /// handshakes), and at 64 connections resumed handshakes ran at 0.80×
    /// mio + rustls's rate, both ends idle 15-18% of the time, against
    /// 0.97× written at once (7 paired runs; CPU per handshake 1.07×
    /// against 1.10×), for one write more per handshake.
    fn after_read(
        &mut self,
        st: &mut SessionState,
        b: &CsaBoxes,
        coming: usize,
    ) -> io::Result<bool> {
        self.process(st, b)?;
        let delivered = self.deliver(st, b, coming);
        self.write_records(st, b)?;
        Ok(delivered == Delivered::Full)
    }

    /// Processes what was read; on a session error, sends what it queued
    /// (the alert) in one pass and returns the error. What it queued
    /// otherwise is the caller's to write.
    fn process(&mut self, st: &mut SessionState, b: &CsaBoxes) -> io::Result<()> {
        if let Err(e) = st.session.process() {
            let _ = self.write_records(st, b);
            return Err(e);
        }
        Ok(())
    }

    /// Decrypted bytes out of `outbox` in chunks of up to [`CHUNK`], while
    /// it has room (C3: a full one keeps the chunk). With `coming` bytes
    /// of ciphertext still in hand to be fed, a chunk not yet full is
    /// kept gathering (`Delivered::Gathered`; the caller sends it when
    /// the feeding ends): a whole chunk's buffer is taken then (one given
    /// back, `buffers::spare_chunk`), and otherwise exactly what the
    /// session gives.
    fn deliver(&mut self, st: &mut SessionState, b: &CsaBoxes, coming: usize) -> Delivered {
        let mut delivered = Delivered::Nothing;
        if self.held.is_some() {
            if !self.send_held(b) {
                return Delivered::Full;
            }
            delivered = Delivered::Some;
        }
        loop {
            if coming > 0 && st.gathered.capacity() == 0 {
                st.gathered = crate::buffers::spare_chunk();
            }
            let got = st.session.plaintext(&mut st.gathered, CHUNK);
            if got == Plaintext::Data {
                delivered = delivered.max(Delivered::Gathered);
            }
            if st.gathered.is_empty() {
                if got == Plaintext::Closed {
                    // The peer's close_notify: a half-close (C7).
                    log::trace!("csa {self:?}: the peer closed the session");
                    self.end_input(b, false);
                }
                return delivered;
            }
            // More of the chunk may come from the ciphertext in
            // hand (unless the session has closed).
            if coming > 0 && st.gathered.len() < CHUNK && got != Plaintext::Closed {
                return delivered;
            }
            let mut chunk = std::mem::take(&mut st.gathered);
            if chunk.len() < CHUNK / 4 {
                // Little came after all: a message holds no more
                // room than its bytes need (a copy of at most 8 KiB).
                chunk.shrink_to_fit();
            }
            if let Err(full) = b.outbox.send(chunk) {
                self.hold(Some(full.into_inner()));
                return Delivered::Full;
            }
            delivered = Delivered::Some;
        }
    }

    /// The peer's FIN: what the session decrypted before it goes on, then
    /// input ends (C7), with the session's verdict kept for C6; during the
    /// handshake the connection ends at once. With the outbox full, the
    /// FIN is read again once it has room (a FIN stays readable).
    fn session_eof(&mut self, st: &mut SessionState, b: &CsaBoxes) -> io::Result<()> {
        self.process(st, b)?;
        self.write_records(st, b)?;
        if st.session.is_handshaking() {
            return Err(st
                .session
                .input_ended()
                .unwrap_or_else(|| io::ErrorKind::UnexpectedEof.into()));
        }
        if self.deliver(st, b, 0) == Delivered::Full || self.read_closed {
            return Ok(());
        }
        st.verdict = st.session.input_ended();
        self.end_input(b, false);
        Ok(())
    }

    /// Closing (C5): once the handler's bytes are all in the session and
    /// the handshake is over, close_notify is queued and written. True
    /// when everything, close_notify included, has reached the socket.
    pub(crate) fn session_closed(
        &mut self,
        st: &mut SessionState,
        b: &CsaBoxes,
    ) -> io::Result<bool> {
        let plaintext_waits = self.backlog.as_ref().is_some_and(|q| !q.chunks.is_empty());
        if plaintext_waits || !b.inbox.is_empty() || st.session.is_handshaking() {
            return Ok(false);
        }
        if !st.close_sent {
            st.close_sent = true;
            st.session.close();
        }
        self.write_records(st, b)
    }

    /// `shutdownMicroprocess` (C5): one pass writing what is queued, with
    /// close_notify after it if the handshake is over.
    pub(crate) fn session_stop(&mut self, st: &mut SessionState, b: &CsaBoxes) -> io::Result<()> {
        self.session_flush(st, b)?;
        if !st.session.is_handshaking() && !st.close_sent {
            st.close_sent = true;
            st.session.close();
        }
        self.write_records(st, b)?;
        st.session.stopped().map_or(Ok(()), Err)
    }
}
