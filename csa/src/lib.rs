//! # ConnectedSocketAdapter (CSA)
//!
//! Kamaelia's `Kamaelia.Internet.ConnectedSocketAdapter`: the component that
//! owns one connected TCP socket, turns what it reads into messages out of
//! `outbox` and writes what arrives in `inbox` (rules C1–C8 of
//! the project's `docs/PROTOCOL.md`). It learns readiness from the Selector service
//! ([`selector`]), asking again each time it meets `WouldBlock`.
//!
//! ## Boxes
//!
//! | box | direction | carries | meaning |
//! |---|---|---|---|
//! | `inbox` | inbox | `Vec<u8>` | bytes to write to the socket, in order (C4) |
//! | `control` | inbox | [`Control`] | `producerFinished`: write everything queued, then close; `shutdownMicroprocess`: one non-blocking pass writing what is queued, then close (C5); `socketShutdown`: stop reading, as if the peer had half-closed (C7; a graceful server stop) |
//! | `ReadReady` | inbox | [`Ready`] | the Selector's notice that the socket is readable |
//! | `SendReady` | inbox | [`Ready`] | the Selector's notice that the socket is writable |
//! | `outbox` | outbox | `Vec<u8>` | bytes read from the socket, in chunks of up to 32 KiB (C3) |
//! | `readShutdown` | outbox | [`Control`] | `socketShutdown` when the peer has shut down its write side (C7) |
//! | `CreatorFeedback` | outbox | [`SocketShutdown`] | `socketShutdown(self, [sock, how_died])` when the connection ends (C6) |
//! | `signal` | outbox | [`ShutdownCsa`] | `shutdownCSA(self, (self, sock))` when the connection ends (C6) |
//! | `_selectorSignal` | outbox | [`Request`] | `newReader` / `newWriter` / `removeReader` / `removeWriter` to the Selector |
//!
//! ## Behaviour
//!
//! - **Start (C2).** Finds the Selector through the CAT, links
//!   `_selectorSignal` to it, and assumes the socket readable and writable.
//! - **Reading (C3).** Reads until `WouldBlock`, sending each chunk out of
//!   `outbox`, then sends `newReader`. A short read (under 8 KiB) has
//!   drained the socket (edge-triggered: later data raises a new edge), so
//!   it sends `newReader` at once instead of making the `WouldBlock` read,
//!   except once the Selector has seen the read side closed
//!   ([`Source::read_closed_seen`]): then it reads on to 0 or `WouldBlock`
//!   so a FIN that came with the data is not missed. If `outbox` leads to a
//!   full inbox it keeps the chunk and stops reading until woken by space
//!   freeing, so a fast peer can never grow memory without bound. At most 16 chunks are
//!   read per step so one busy connection cannot starve the others.
//! - **Writing (C4).** Chunks from `inbox` are written in order (vectored
//!   when several are queued); a partial write keeps the rest; on
//!   `WouldBlock` it sends `newWriter` and waits. It takes from `inbox` only
//!   while under 64 KiB is queued, and its `inbox` is bounded (16
//!   messages), so a peer that never reads stalls the producer (A5) instead
//!   of growing memory.
//! - **Linger (C7).** Once closing, queued output has
//!   [`CsaOptions::linger`] (30 s by default) to reach the peer; after that
//!   the CSA closes anyway, with `TimedOut` as `how_died`, so a peer that
//!   never reads cannot hold a connection open forever.
//! - **Closing (C5, C6, C8).** On peer reset or any socket error, on
//!   `shutdownMicroprocess` (after one non-blocking pass writing what is
//!   queued, so that a reply sent just before it arrives, as in Kamaelia's
//!   cookbook servers), or once everything is written after
//!   `producerFinished`, it closes the socket, sends `socketShutdown` out of
//!   `CreatorFeedback`, `shutdownCSA` out of `signal`, and `removeReader` /
//!   `removeWriter` to the Selector, exactly once, and ends.
//!
//! ## Half-close (C7)
//!
//! When a read returns 0 bytes the peer has shut down its write side (or
//! closed). The CSA stops reading and, **if its `readShutdown` outbox is
//! linked**, sends [`Control::SocketShutdown`] out of it and keeps the
//! connection open for writing: the handler (linked there by `ServerCore`)
//! finishes its reply and sends `producerFinished`, upon which the CSA
//! writes everything queued and closes. If `readShutdown` leads nowhere it
//! behaves as Kamaelia: it writes what is already queued and closes.
//!
//! ## Names
//!
//! Kamaelia's `ConnectedSocketAdapter` is [`Csa`] (its boxes are the fields
//! of [`CsaBoxes`], with Kamaelia's names: `ReadReady` is `read_ready`);
//! `socketShutdown` (to the creator) is [`SocketShutdown`]; `shutdownCSA` is
//! [`ShutdownCsa`].
//!
//! ## Making one
//!
//! ```no_run
//! use axon::Handle;
//! use csa::{Csa, TcpStream};
//!
//! let stream = TcpStream::connect("127.0.0.1:1601".parse().unwrap()).unwrap();
//! let csa = Csa::new(stream);
//! let source = csa.source().clone(); // for Selector requests on its behalf
//! let handle = Handle::new(csa);
//! # let _ = (source, handle);
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axon::{boxes, Component, Control, Cx, Handle, Inbox, Outbox, Step};
/// The socket type a CSA owns (mio's, re-exported so that callers need no
/// mio dependency of their own).
pub use mio::net::TcpStream;
use selector::{Ready, Request, Source};

/// Largest chunk read at once (C3).
pub const CHUNK: usize = 32 * 1024;
/// Bytes queued for writing above which `inbox` is left alone (C4, A5).
pub const HIGH_WATER: usize = 64 * 1024;
/// The size limit of a CSA's `inbox`, in messages.
pub const INBOX_LIMIT: usize = 16;
/// A read shorter than this is taken to have drained the socket (C3): no
/// `WouldBlock` read follows it. Longer reads come from a peer that is
/// streaming, whose next bytes are usually already arriving: reading again
/// at once is cheaper than going back through the Selector for them.
const DRAINED_BELOW: usize = CHUNK / 4;
/// Reads per step before yielding to other components.
const READS_PER_STEP: usize = 16;
/// Most chunks handed to one vectored write.
const MAX_IOV: usize = 64;

/// How a CSA behaves; see [`Csa::with_options`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CsaOptions {
    /// C7: once the connection is closing (after `producerFinished`, or a
    /// half-close nobody handles), how long queued output may take to reach
    /// a peer that is not reading before the CSA gives up and closes.
    /// Default 30 s.
    pub linger: Duration,
    /// On `producerFinished`, once everything is written, shut down only
    /// the write side and read on until the peer closes (within `linger`),
    /// instead of closing at once: what a client wants, so that the replies
    /// to its last requests still arrive (TCPClient sets it). Default
    /// false: a server's handler says `producerFinished` after its last
    /// reply.
    pub half_close: bool,
}

impl Default for CsaOptions {
    fn default() -> Self {
        CsaOptions {
            linger: Duration::from_secs(30),
            half_close: false,
        }
    }
}

/// Kamaelia `socketShutdown(csa, [sock, how_died])`, sent out of
/// `CreatorFeedback` when the connection ends (C6).
#[derive(Debug)]
pub struct SocketShutdown {
    /// The CSA that ended.
    pub csa: Handle,
    /// Its socket (already shut down).
    pub source: Source,
    /// `None` for an orderly close; the socket error otherwise (C8).
    pub how_died: Option<io::Error>,
}

/// Kamaelia `shutdownCSA(csa, (csa, sock))`, sent out of `signal` when the
/// connection ends (C6).
#[derive(Clone, Debug)]
pub struct ShutdownCsa {
    /// The CSA that ended.
    pub csa: Handle,
    /// Its socket.
    pub source: Source,
}

/// Output waiting for the socket (C4). Made when a write falls short and
/// dropped when it is all written, so an idle connection keeps none.
#[derive(Default)]
struct Backlog {
    chunks: VecDeque<Vec<u8>>,
    /// Bytes of `chunks[0]` already written.
    offset: usize,
    /// Bytes queued, not yet written.
    bytes: usize,
}

boxes! {
    /// The CSA's boxes (see the crate docs for what each carries).
    pub struct CsaBoxes {
        /// bytes to write to the socket
        pub inbox: Inbox<Vec<u8>>,
        /// producerFinished: flush then close; shutdownMicroprocess: one write pass, then close
        pub control: Inbox<Control>,
        /// the Selector's notice: readable
        #[name = "ReadReady"]
        pub read_ready: Inbox<Ready>,
        /// the Selector's notice: writable
        #[name = "SendReady"]
        pub send_ready: Inbox<Ready>,
        /// bytes read from the socket
        pub outbox: Outbox<Vec<u8>>,
        /// socketShutdown when the peer shut down its write side
        #[name = "readShutdown"]
        pub read_shutdown: Outbox<Control>,
        /// socketShutdown(self, [sock, how_died]) when the connection ends
        #[name = "CreatorFeedback"]
        pub creator_feedback: Outbox<SocketShutdown>,
        /// shutdownCSA(self, (self, sock)) when it ends
        pub signal: Outbox<ShutdownCsa>,
        /// requests to the Selector
        #[name = "_selectorSignal"]
        pub selector_signal: Outbox<Request>,
    }
}

/// The ConnectedSocketAdapter component (see the crate docs).
pub struct Csa {
    stream: Arc<TcpStream>,
    source: Source,
    /// The peer, for logs; asked of the socket when first needed if the
    /// maker did not say.
    peer: Option<SocketAddr>,
    started: bool,
    readable: bool,
    writable: bool,
    /// A `newReader` / `newWriter` is outstanding.
    read_requested: bool,
    write_requested: bool,
    read_closed: bool,
    finishing: bool,
    /// The write side has been shut down (half-close after
    /// `producerFinished`, see [`CsaOptions::half_close`]).
    write_shut: bool,
    /// Output the socket has not taken yet; none while it keeps up.
    backlog: Option<Box<Backlog>>,
    /// A chunk the outbox refused (C3).
    /// Boxed on purpose: 8 bytes instead of 24 in every CSA, for a chunk
    /// held only while the handler is behind.
    #[allow(clippy::box_collection)]
    held: Option<Box<Vec<u8>>>,
    options: CsaOptions,
    /// When closing, the end of the linger time (C7).
    linger_until: Option<Instant>,
}

impl fmt::Debug for Csa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.peer {
            Some(peer) => write!(f, "Csa({peer})"),
            None => write!(f, "Csa({:?})", self.source),
        }
    }
}

impl Csa {
    /// The CSA for a connected, non-blocking socket (Kamaelia:
    /// `ConnectedSocketAdapter(sock)`). Its `inbox` is bounded to
    /// [`INBOX_LIMIT`]. Make it a component with `Handle::new` (or by
    /// activating it); take its [`source`](Self::source) first if you make
    /// Selector requests on its behalf, as TCPServer does (T4).
    pub fn new(stream: TcpStream) -> Csa {
        let stream = Arc::new(stream);
        let source = Source::new(stream.clone());
        Csa::shared(stream, source)
    }

    /// As [`new`](Self::new), for a socket already shared with the Selector
    /// as `source` (as TCPClient's is while it connects).
    pub fn shared(stream: Arc<TcpStream>, source: Source) -> Csa {
        Csa {
            stream,
            source,
            peer: None,
            started: false,
            readable: true,
            writable: true,
            read_requested: false,
            write_requested: false,
            read_closed: false,
            finishing: false,
            write_shut: false,
            backlog: None,
            held: None,
            options: CsaOptions::default(),
            linger_until: None,
        }
    }

    /// Sets the options (builder style).
    pub fn with_options(mut self, options: CsaOptions) -> Csa {
        self.options = options;
        self
    }

    /// Says who the peer is, for logs (builder style): TCPServer knows it
    /// from `accept`, which saves asking the socket.
    pub fn with_peer(mut self, peer: SocketAddr) -> Csa {
        self.peer = Some(peer);
        self
    }

    /// The socket as the Selector knows it.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The peer's address, if known (asked of the socket the first time).
    fn peer(&mut self) -> Option<SocketAddr> {
        if self.peer.is_none() {
            self.peer = self.stream.peer_addr().ok();
        }
        self.peer
    }

    /// `newReader((self, "ReadReady"), sock)` or `newWriter((self,
    /// "SendReady"), sock)`.
    fn request(&self, b: &CsaBoxes, kind: selector::Kind) {
        let request = match kind {
            selector::Kind::Reader => {
                Request::NewReader(b.read_ready.postbox(), self.source.clone())
            }
            _ => Request::NewWriter(b.send_ready.postbox(), self.source.clone()),
        };
        let _ = b.selector_signal.send(request);
    }

    /// C4: write what is queued, refilling from `inbox` under the high
    /// water mark.
    fn flush(&mut self, b: &CsaBoxes) -> io::Result<()> {
        loop {
            if self.backlog.is_none() && self.writable {
                // The common case (one reply at a time): write the message
                // straight from `inbox`, queueing only what the socket does
                // not take, so an idle connection keeps no write queue.
                let Some(chunk) = b.inbox.recv() else {
                    return Ok(());
                };
                if chunk.is_empty() {
                    continue;
                }
                if !b.inbox.is_empty() {
                    // Several waiting: one vectored write below.
                    self.queue(chunk);
                } else {
                    match (&*self.stream).write(&chunk) {
                        Ok(n) if n == chunk.len() => continue,
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(n) => {
                            self.queue(chunk);
                            self.consume(n);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            self.queue(chunk);
                            self.wait_writable(b);
                            return Ok(());
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => self.queue(chunk),
                        Err(e) => return Err(e),
                    }
                }
            }
            while self.backlog_bytes() < HIGH_WATER {
                match b.inbox.recv() {
                    Some(chunk) if chunk.is_empty() => {}
                    Some(chunk) => self.queue(chunk),
                    None => break,
                }
            }
            let Some(backlog) = self.backlog.as_deref().filter(|_| self.writable) else {
                return Ok(());
            };
            let (chunks, offset) = (&backlog.chunks, backlog.offset);
            let result = if chunks.len() == 1 {
                (&*self.stream).write(&chunks[0][offset..])
            } else {
                let mut slices = [IoSlice::new(&[]); MAX_IOV];
                slices[0] = IoSlice::new(&chunks[0][offset..]);
                let mut used = 1;
                for (slot, chunk) in slices[1..].iter_mut().zip(chunks.iter().skip(1)) {
                    *slot = IoSlice::new(chunk);
                    used += 1;
                }
                (&*self.stream).write_vectored(&slices[..used])
            };
            match result {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.consume(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.wait_writable(b);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// C4: the socket takes no more; ask the Selector for the next edge.
    fn wait_writable(&mut self, b: &CsaBoxes) {
        self.writable = false;
        if !self.write_requested {
            self.write_requested = true;
            self.request(b, selector::Kind::Writer);
        }
    }

    fn backlog_bytes(&self) -> usize {
        self.backlog.as_ref().map_or(0, |b| b.bytes)
    }

    fn queue(&mut self, chunk: Vec<u8>) {
        let backlog = self.backlog.get_or_insert_with(Box::default);
        backlog.bytes += chunk.len();
        backlog.chunks.push_back(chunk);
    }

    /// `n` bytes of the backlog were written.
    fn consume(&mut self, mut n: usize) {
        let Some(backlog) = self.backlog.as_deref_mut() else {
            return;
        };
        backlog.bytes -= n;
        while n > 0 {
            let Some(front) = backlog.chunks.front() else {
                break;
            };
            let left = front.len() - backlog.offset;
            if n >= left {
                n -= left;
                backlog.offset = 0;
                backlog.chunks.pop_front();
            } else {
                backlog.offset += n;
                n = 0;
            }
        }
        if backlog.chunks.is_empty() {
            self.backlog = None; // all written: an idle connection keeps none
        }
    }

    /// C3: read until WouldBlock (or the step's share), respecting a full
    /// outbox. Returns true if there is more to read right away.
    fn read(&mut self, b: &CsaBoxes) -> io::Result<bool> {
        if let Some(chunk) = self.held.take().map(|c| *c) {
            if let Err(full) = b.outbox.send(chunk) {
                self.held = Some(Box::new(full.into_inner()));
                return Ok(false); // woken when space frees (A6)
            }
        }
        let mut reads = 0;
        while self.readable && !self.read_closed {
            if reads == READS_PER_STEP {
                return Ok(true);
            }
            reads += 1;
            match read_chunk(&self.stream) {
                Ok(chunk) if chunk.is_empty() => {
                    log::trace!("csa {self:?}: peer closed its write side");
                    self.end_input(b);
                }
                Ok(chunk) => {
                    // A short read drained the socket: later data (or FIN)
                    // raises a new edge, so skip the WouldBlock read that
                    // would only confirm it, unless a FIN may already sit
                    // behind this data (see `Source::read_closed_seen`) or
                    // the peer is streaming (see `DRAINED_BELOW`).
                    let drained = chunk.len() < DRAINED_BELOW && !self.source.read_closed_seen();
                    let sent = b.outbox.send(chunk);
                    if drained {
                        self.wait_readable(b);
                    }
                    if let Err(full) = sent {
                        self.held = Some(Box::new(full.into_inner()));
                        return Ok(false);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wait_readable(b),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }

    /// C3: the socket is drained; ask the Selector for the next edge.
    fn wait_readable(&mut self, b: &CsaBoxes) {
        self.readable = false;
        if !self.read_requested {
            self.read_requested = true;
            self.request(b, selector::Kind::Reader);
        }
    }

    /// No more input (C7): stop reading and tell the handler with
    /// `socketShutdown` out of `readShutdown`.
    fn end_input(&mut self, b: &CsaBoxes) {
        if !self.read_closed {
            self.read_closed = true;
            let _ = b.read_shutdown.send(Control::SocketShutdown);
        }
    }

    /// C6: everything that happens exactly once when the connection ends.
    fn die(&mut self, cx: &Cx<CsaBoxes>, how_died: Option<io::Error>) -> Step {
        let peer = self.peer();
        let peer = peer.map_or_else(|| format!("{:?}", self.source), |p| p.to_string());
        match &how_died {
            Some(e) => log::debug!("csa: connection with {peer} closed: {e}"),
            None => log::debug!("csa: connection with {peer} closed"),
        }
        let _ = self.stream.shutdown(Shutdown::Both);
        self.backlog = None;
        self.held = None;
        let me = cx.me().clone();
        let _ = cx
            .selector_signal
            .send(Request::RemoveReader(self.source.clone()));
        let _ = cx
            .selector_signal
            .send(Request::RemoveWriter(self.source.clone()));
        let _ = cx.creator_feedback.send(SocketShutdown {
            csa: me.clone(),
            source: self.source.clone(),
            how_died,
        });
        let _ = cx.signal.send(ShutdownCsa {
            csa: me,
            source: self.source.clone(),
        });
        Step::Done
    }
}

thread_local! {
    /// The read buffer, one per scheduler thread: an idle connection holds
    /// none.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Reads one chunk. Small reads are copied out of the shared buffer; a
/// large one takes the buffer itself (no copy) and a new one is made next
/// time.
fn read_chunk(stream: &TcpStream) -> io::Result<Vec<u8>> {
    SCRATCH.with(|scratch| {
        let mut buf = scratch.borrow_mut();
        if buf.len() < CHUNK {
            buf.resize(CHUNK, 0);
        }
        let n = (&*stream).read(&mut buf[..])?;
        if n >= CHUNK / 4 {
            let mut chunk = std::mem::take(&mut *buf);
            chunk.truncate(n);
            Ok(chunk)
        } else {
            Ok(buf[..n].to_vec())
        }
    })
}

impl Component for Csa {
    type Boxes = CsaBoxes;

    fn name(&self) -> std::borrow::Cow<'static, str> {
        "ConnectedSocketAdapter".into()
    }

    fn created(&mut self, _me: &Handle, boxes: &CsaBoxes) {
        boxes.inbox.set_limit(Some(INBOX_LIMIT));
    }

    fn main(&mut self, cx: &mut Cx<CsaBoxes>) -> Step {
        if !self.started {
            self.started = true;
            if let Err(e) = selector::link_to_selector(cx, "_selectorSignal") {
                log::error!("csa: no Selector: {e}");
                return self.die(cx, Some(io::Error::other(e)));
            }
        }
        let b = cx.boxes();
        while b.read_ready.recv().is_some() {
            self.readable = true;
            self.read_requested = false;
        }
        while b.send_ready.recv().is_some() {
            self.writable = true;
            self.write_requested = false;
        }
        while let Some(msg) = b.control.recv() {
            match msg {
                // Stop taking input, as if the peer had half-closed (C7):
                // the handler hears of it and finishes in its own time.
                Control::SocketShutdown => self.end_input(b),
                m if m.is_producer_finished() => self.finishing = true,
                // shutdownMicroprocess (C5): one pass writing what is
                // queued, as far as the socket takes it now, then close.
                _ => {
                    let how_died = self.flush(b).err();
                    return self.die(cx, how_died);
                }
            }
        }
        if let Err(e) = self.flush(b) {
            return self.die(cx, Some(e));
        }
        let more = match self.read(b) {
            Ok(more) => more,
            Err(e) => return self.die(cx, Some(e)),
        };
        let closing = self.finishing || (self.read_closed && !b.read_shutdown.is_linked());
        if closing {
            if self.backlog.is_none() && b.inbox.is_empty() {
                if !(self.finishing && self.options.half_close && !self.read_closed) {
                    return self.die(cx, None);
                }
                // Everything is written: half-close and read on until the
                // peer closes, within the linger time.
                if !self.write_shut {
                    self.write_shut = true;
                    if let Err(e) = self.stream.shutdown(Shutdown::Write) {
                        return self.die(cx, Some(e));
                    }
                }
            }
            // C7: bounded linger for a peer that will not take its output.
            let now = Instant::now();
            match self.linger_until {
                None => {
                    let until = now + self.options.linger;
                    self.linger_until = Some(until);
                    cx.wake_at(until);
                }
                Some(until) if now >= until => {
                    let e = io::Error::new(
                        io::ErrorKind::TimedOut,
                        "linger time over with output undelivered",
                    );
                    return self.die(cx, Some(e));
                }
                Some(_) => {}
            }
        }
        if more {
            Step::Continue
        } else {
            Step::Pause
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csa_is_small() {
        // One per connection, idle or not (the issue's budget: 2 KiB per
        // idle connection for everything).
        assert!(
            std::mem::size_of::<Csa>() <= 120,
            "{}",
            std::mem::size_of::<Csa>()
        );
    }
}
