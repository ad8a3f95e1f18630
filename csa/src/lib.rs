//! # ConnectedSocketAdapter (CSA)
//!
//! Kamaelia's `Kamaelia.Internet.ConnectedSocketAdapter`: the component that
//! owns one connected TCP socket, turns what it reads into messages out of
//! `outbox` and writes what arrives in `inbox` (rules C1–C8 of
//! `PROTOCOL.md`). It learns readiness from the Selector service
//! ([`selector`]), asking again each time it meets `WouldBlock`.
//!
//! ## Boxes
//!
//! | box | direction | carries | meaning |
//! |---|---|---|---|
//! | `inbox` | inbox | `Vec<u8>` | bytes to write to the socket, in order (C4) |
//! | `control` | inbox | [`Control`] | `producerFinished`: write everything queued, then close; `shutdownMicroprocess`: close now (C5); `socketShutdown`: stop reading, as if the peer had half-closed (C7; a graceful server stop) |
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
//!   `outbox`, then sends `newReader`. A read shorter than the buffer has
//!   drained the socket (edge-triggered: later data raises a new edge), so
//!   it sends `newReader` at once instead of making the `WouldBlock` read,
//!   except once the Selector has seen the read side closed
//!   ([`Source::read_closed_seen`]): then it reads on to 0 or `WouldBlock`
//!   so a FIN that came with the data is not missed. If `outbox` leads to a full inbox it
//!   keeps the chunk and stops reading until woken by space freeing, so a
//!   fast peer can never grow memory without bound. At most 16 chunks are
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
//!   `shutdownMicroprocess`, or once everything is written after
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
//! Kamaelia's `ConnectedSocketAdapter` is [`Csa`]; `socketShutdown` (to the
//! creator) is [`SocketShutdown`]; `shutdownCSA` is [`ShutdownCsa`].

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axon::{Boxes, Component, Control, Cx, Handle, Postbox, Step};
use mio::net::TcpStream;
use selector::{Ready, Request, Source};

/// Largest chunk read at once (C3).
pub const CHUNK: usize = 32 * 1024;
/// Bytes queued for writing above which `inbox` is left alone (C4, A5).
pub const HIGH_WATER: usize = 64 * 1024;
/// The size limit of a CSA's `inbox`, in messages.
pub const INBOX_LIMIT: usize = 16;
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
}

impl Default for CsaOptions {
    fn default() -> Self {
        CsaOptions {
            linger: Duration::from_secs(30),
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

/// The ConnectedSocketAdapter component (see the crate docs).
pub struct Csa {
    stream: Arc<TcpStream>,
    source: Source,
    started: bool,
    readable: bool,
    writable: bool,
    /// A `newReader` / `newWriter` is outstanding.
    read_requested: bool,
    write_requested: bool,
    read_closed: bool,
    finishing: bool,
    pending: VecDeque<Vec<u8>>,
    /// Bytes of `pending[0]` already written.
    offset: usize,
    pending_bytes: usize,
    /// A chunk the outbox refused (C3).
    held: Option<Vec<u8>>,
    options: CsaOptions,
    /// When closing, the end of the linger time (C7).
    linger_until: Option<Instant>,
    /// Where the Selector's notices go: `ReadReady`, `SendReady`.
    notices: Option<(Postbox<Ready>, Postbox<Ready>)>,
}

impl fmt::Debug for Csa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Csa({:?})", self.source)
    }
}

impl Csa {
    /// Makes the CSA component for a connected, non-blocking socket, with
    /// its `inbox` bounded to [`INBOX_LIMIT`]. Returns the handle and the
    /// socket's [`Source`] (for Selector requests made on its behalf).
    #[allow(clippy::new_ret_no_self)]
    pub fn new(stream: TcpStream) -> (Handle, Source) {
        let stream = Arc::new(stream);
        let source = Source::new(stream.clone());
        (Csa::with_source(stream, source.clone()), source)
    }

    /// As [`new`](Self::new), for a socket already shared with the Selector
    /// as `source` (as `TCPClient` does while connecting).
    pub fn with_source(stream: Arc<TcpStream>, source: Source) -> Handle {
        Csa::with_options(stream, source, CsaOptions::default())
    }

    /// As [`with_source`](Self::with_source), with options.
    pub fn with_options(stream: Arc<TcpStream>, source: Source, options: CsaOptions) -> Handle {
        let handle = Handle::new(Csa {
            stream,
            source,
            started: false,
            readable: true,
            writable: true,
            read_requested: false,
            write_requested: false,
            read_closed: false,
            finishing: false,
            pending: VecDeque::new(),
            offset: 0,
            pending_bytes: 0,
            held: None,
            options,
            linger_until: None,
            notices: None,
        });
        // The CSA is the only declarer of this box: it exists.
        let _ = handle.set_inbox_size("inbox", Some(INBOX_LIMIT));
        handle
    }

    /// `newReader((self, "ReadReady"), sock)` or `newWriter((self,
    /// "SendReady"), sock)`. The two notice postboxes are made once, on the
    /// first request, and cloned after.
    fn request(&mut self, cx: &mut Cx<'_>, kind: selector::Kind) {
        if self.notices.is_none() {
            let me = cx.me();
            match (me.postbox("ReadReady"), me.postbox("SendReady")) {
                (Ok(r), Ok(w)) => self.notices = Some((r, w)),
                _ => return log::error!("csa: its notice inboxes are missing"),
            }
        }
        let Some((read, write)) = &self.notices else {
            return;
        };
        let request = match kind {
            selector::Kind::Reader => Request::NewReader(read.clone(), self.source.clone()),
            _ => Request::NewWriter(write.clone(), self.source.clone()),
        };
        let _ = cx.send(request, "_selectorSignal");
    }

    /// C4: write what is queued, refilling from `inbox` under the high
    /// water mark.
    fn flush(&mut self, cx: &mut Cx<'_>) -> io::Result<()> {
        loop {
            while self.pending_bytes < HIGH_WATER {
                match cx.recv::<Vec<u8>>("inbox") {
                    Some(chunk) if chunk.is_empty() => {}
                    Some(chunk) => {
                        self.pending_bytes += chunk.len();
                        self.pending.push_back(chunk);
                    }
                    None => break,
                }
            }
            if self.pending.is_empty() || !self.writable {
                return Ok(());
            }
            let result = if self.pending.len() == 1 {
                (&*self.stream).write(&self.pending[0][self.offset..])
            } else {
                let mut slices = Vec::with_capacity(self.pending.len().min(MAX_IOV));
                slices.push(IoSlice::new(&self.pending[0][self.offset..]));
                for chunk in self.pending.iter().skip(1).take(MAX_IOV - 1) {
                    slices.push(IoSlice::new(chunk));
                }
                (&*self.stream).write_vectored(&slices)
            };
            match result {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.consume(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.writable = false;
                    if !self.write_requested {
                        self.write_requested = true;
                        self.request(cx, selector::Kind::Writer);
                    }
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn consume(&mut self, mut n: usize) {
        self.pending_bytes -= n;
        while n > 0 {
            let left = self.pending[0].len() - self.offset;
            if n >= left {
                n -= left;
                self.offset = 0;
                self.pending.pop_front();
            } else {
                self.offset += n;
                n = 0;
            }
        }
    }

    /// C3: read until WouldBlock (or the step's share), respecting a full
    /// outbox. Returns true if there is more to read right away.
    fn read(&mut self, cx: &mut Cx<'_>) -> io::Result<bool> {
        if let Some(chunk) = self.held.take() {
            if let Err(full) = cx.send(chunk, "outbox") {
                self.held = Some(full.into_inner());
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
                    log::trace!("csa {:?}: peer closed its write side", self.source);
                    self.end_input(cx);
                }
                Ok(chunk) => {
                    // A short read drained the socket: later data (or FIN)
                    // raises a new edge, so skip the WouldBlock read that
                    // would only confirm it, unless a FIN may already sit
                    // behind this data (see `Source::read_closed_seen`).
                    let drained = chunk.len() < CHUNK && !self.source.read_closed_seen();
                    if let Err(full) = cx.send(chunk, "outbox") {
                        self.held = Some(full.into_inner());
                        if drained {
                            self.wait_readable(cx);
                        }
                        return Ok(false);
                    }
                    if drained {
                        self.wait_readable(cx);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wait_readable(cx),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }

    /// C3: the socket is drained; ask the Selector for the next edge.
    fn wait_readable(&mut self, cx: &mut Cx<'_>) {
        self.readable = false;
        if !self.read_requested {
            self.read_requested = true;
            self.request(cx, selector::Kind::Reader);
        }
    }

    /// No more input (C7): stop reading and tell the handler with
    /// `socketShutdown` out of `readShutdown`.
    fn end_input(&mut self, cx: &mut Cx<'_>) {
        if !self.read_closed {
            self.read_closed = true;
            let _ = cx.send(Control::SocketShutdown, "readShutdown");
        }
    }

    /// C6: everything that happens exactly once when the connection ends.
    fn die(&mut self, cx: &mut Cx<'_>, how_died: Option<io::Error>) -> Step {
        match &how_died {
            Some(e) => log::debug!("csa {:?}: closed by error: {e}", self.source),
            None => log::trace!("csa {:?}: closed", self.source),
        }
        let _ = self.stream.shutdown(Shutdown::Both);
        self.pending.clear();
        self.held = None;
        let me = cx.me().clone();
        let _ = cx.send(
            Request::RemoveReader(self.source.clone()),
            "_selectorSignal",
        );
        let _ = cx.send(
            Request::RemoveWriter(self.source.clone()),
            "_selectorSignal",
        );
        let _ = cx.send(
            SocketShutdown {
                csa: me.clone(),
                source: self.source.clone(),
                how_died,
            },
            "CreatorFeedback",
        );
        let _ = cx.send(
            ShutdownCsa {
                csa: me,
                source: self.source.clone(),
            },
            "signal",
        );
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
    fn boxes(&self) -> Boxes {
        Boxes::new()
            .inbox::<Vec<u8>>("inbox", "bytes to write to the socket")
            .inbox::<Control>(
                "control",
                "producerFinished: flush then close; shutdownMicroprocess: close now",
            )
            .inbox::<Ready>("ReadReady", "the Selector's notice: readable")
            .inbox::<Ready>("SendReady", "the Selector's notice: writable")
            .outbox::<Vec<u8>>("outbox", "bytes read from the socket")
            .outbox::<Control>(
                "readShutdown",
                "socketShutdown when the peer shut down its write side",
            )
            .outbox::<SocketShutdown>(
                "CreatorFeedback",
                "socketShutdown(self, [sock, how_died]) when the connection ends",
            )
            .outbox::<ShutdownCsa>("signal", "shutdownCSA(self, (self, sock)) when it ends")
            .outbox::<Request>("_selectorSignal", "requests to the Selector")
    }

    fn name(&self) -> std::borrow::Cow<'static, str> {
        "ConnectedSocketAdapter".into()
    }

    fn main(&mut self, cx: &mut Cx<'_>) -> Step {
        if !self.started {
            self.started = true;
            if let Err(e) = selector::link_to_selector(cx, "_selectorSignal") {
                log::error!("csa: no Selector: {e}");
                return self.die(cx, Some(io::Error::other(e.to_string())));
            }
        }
        while cx.recv::<Ready>("ReadReady").is_some() {
            self.readable = true;
            self.read_requested = false;
        }
        while cx.recv::<Ready>("SendReady").is_some() {
            self.writable = true;
            self.write_requested = false;
        }
        while let Some(msg) = cx.recv::<Control>("control") {
            match msg {
                // Stop taking input, as if the peer had half-closed (C7):
                // the handler hears of it and finishes in its own time.
                Control::SocketShutdown => self.end_input(cx),
                m if m.is_producer_finished() => self.finishing = true,
                _ => return self.die(cx, None), // shutdownMicroprocess: at once
            }
        }
        if let Err(e) = self.flush(cx) {
            return self.die(cx, Some(e));
        }
        let more = match self.read(cx) {
            Ok(more) => more,
            Err(e) => return self.die(cx, Some(e)),
        };
        let closing = self.finishing || (self.read_closed && !cx.is_linked("readShutdown"));
        if closing {
            if self.pending.is_empty() && !cx.data_ready("inbox") {
                return self.die(cx, None);
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
