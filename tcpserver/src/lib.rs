//! # TCPServer
//!
//! Kamaelia's `Kamaelia.Internet.TCPServer` (rules T1–T8 of the project's `docs/PROTOCOL.md`):
//! a component that listens on a port, accepts connections, makes a
//! [`Csa`] child for each, and announces it with `newCSA` out of
//! `protocolHandlerSignal` for someone (normally `ServerCore`) to wire up
//! and activate.
//!
//! ## Boxes
//!
//! | box | direction | carries | meaning |
//! |---|---|---|---|
//! | `control` | inbox | [`Control`] | `serverShutdown` (or any shutdown): stop listening and end (T7) |
//! | `newconnection` | inbox | [`Ready`] | the Selector's notice that the listener is readable (T4) |
//! | `_feedbackFromCSA` | inbox | [`SocketShutdown`] | `socketShutdown` from its CSAs (T6) |
//! | `protocolHandlerSignal` | outbox | [`ServerEvent`] | `newCSA` and `shutdownCSA` |
//! | `signal` | outbox | [`Control`] | `producerFinished` when it ends |
//! | `_selectorSignal` | outbox | [`Request`] | requests to the Selector's `notify` |
//! | `_selectorShutdownSignal` | outbox | [`Control`] | `shutdown` to the Selector's `control` |
//!
//! ## Sequences
//!
//! - **Start (T3).** Finds the Selector (S1), links `_selectorSignal` and
//!   `_selectorShutdownSignal` to it, sends `newReader((self,
//!   "newconnection"), listener)`.
//! - **New connection (T4).** Accepts up to 64 connections per step, then
//!   yields; for each: a [`Csa`] child, its `CreatorFeedback` linked to
//!   `_feedbackFromCSA`, `newCSA` out of `protocolHandlerSignal`, and
//!   `newReader((csa, "ReadReady"), sock)` / `newWriter((csa, "SendReady"),
//!   sock)` to the Selector. On `WouldBlock` it asks for `newconnection`
//!   again (S3).
//! - **Accept errors (T5).** A connection aborted or reset before it was
//!   accepted is skipped. Out of descriptors (`EMFILE`/`ENFILE`): it logs a
//!   warning, keeps serving, and tries again when one of its connections
//!   closes or a new client knocks: never a busy loop.
//! - **Connection closed (T6).** On `socketShutdown` from a CSA:
//!   `removeReader` and `removeWriter` to the Selector, `shutdownCSA(self,
//!   csa)` out of `protocolHandlerSignal`, and the child is dropped.
//! - **Stop (T7).** On any message in `control`: `removeReader(listener)` to
//!   the Selector, `shutdown` to its `control`, the listener closes, it ends.
//! - **Limits (T8).** With [`ServerOptions::max_connections`], at the limit
//!   it stops accepting (new clients wait in the kernel backlog) and resumes
//!   when a connection closes. It never accepts and then drops.
//! - **Timeouts (C9–C11).** Each CSA it makes keeps the connection
//!   timeouts of its [`ServerOptions`]: [`idle_timeout`](ServerOptions::idle_timeout)
//!   (off by default), [`stall_timeout`](ServerOptions::stall_timeout) (60 s)
//!   and [`request_timeout`](ServerOptions::request_timeout) (off), on
//!   timers, with no polling (see the `csa` crate docs). A connection they
//!   close ends through T6 like any other.
//!
//! If nothing is linked to `protocolHandlerSignal`, nobody could activate a
//! new CSA, so the connection is closed at once (with a warning) rather than
//! leaked.
//!
//! ## Names
//!
//! Kamaelia `TCPServer` is [`TcpServer`]; `newCSA` is
//! [`ServerEvent::NewCsa`]; `shutdownCSA` is [`ServerEvent::ShutdownCsa`].

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axon::{boxes, Component, Control, Cx, Handle, Inbox, Outbox, Step};
pub use csa::{Csa, SocketShutdown, TcpStream};
use mio::net::TcpListener;
use selector::{Ready, Request, Source};

/// Connections accepted per step before yielding (T5: bounded rounds).
const ACCEPT_BATCH: usize = 64;

/// Options for [`TcpServer::bind`] (Kamaelia's `socketOptions`).
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// The listen backlog (Kamaelia used 5). Default 1024.
    pub backlog: i32,
    /// `SO_REUSEADDR`, so a restarted server can bind while old
    /// connections sit in TIME_WAIT. Default true.
    pub reuse_address: bool,
    /// `TCP_NODELAY` on accepted sockets. Default true.
    pub nodelay: bool,
    /// T8: the most connections open at once; `None` is unlimited.
    pub max_connections: Option<usize>,
    /// C7: how long a closing connection's queued output may wait for a
    /// peer that is not reading (see [`csa::CsaOptions::linger`]).
    pub linger: Duration,
    /// C9: close a connection on which no byte has moved, either way, for
    /// this long (see [`csa::CsaOptions::idle_timeout`]). Default `None`
    /// (off): a chat client may be silent for hours; a server whose clients
    /// should not hold a connection idle sets it.
    pub idle_timeout: Option<Duration>,
    /// C10: close a connection whose queued output the peer has not taken
    /// for this long, even while its reading is paused: frees a peer that
    /// sent a large request, shut down its write side and never reads
    /// (see [`csa::CsaOptions::stall_timeout`]). Default 60 s (as nginx's
    /// `send_timeout`); `None` turns it off.
    pub stall_timeout: Option<Duration>,
    /// C11, a slowloris guard: close a connection once this long has
    /// passed since the first byte of a request (the first byte read after
    /// our last write) without a byte written back, however slowly the
    /// request trickles in (see [`csa::CsaOptions::request_timeout`]).
    /// Default `None` (off): it suits request–response protocols only; a
    /// client that may send without being answered (chat) would be closed.
    pub request_timeout: Option<Duration>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        let csa = csa::CsaOptions::default();
        ServerOptions {
            backlog: 1024,
            reuse_address: true,
            nodelay: true,
            max_connections: None,
            linger: csa.linger,
            idle_timeout: csa.idle_timeout,
            stall_timeout: csa.stall_timeout,
            request_timeout: csa.request_timeout,
        }
    }
}

/// Kamaelia `newCSA(self, csa, sock)`: a new connection's CSA, not yet
/// activated.
#[derive(Debug)]
pub struct NewCsa {
    /// The TCPServer that accepted it.
    pub server: Handle,
    /// The connection's CSA (a child of the server; activate it).
    pub csa: Handle,
    /// The socket.
    pub source: Source,
    /// The client's address.
    pub peer: SocketAddr,
    /// Our address on this connection.
    pub local: SocketAddr,
}

/// What comes out of `protocolHandlerSignal`.
#[derive(Debug)]
pub enum ServerEvent {
    /// Kamaelia `newCSA`.
    NewCsa(NewCsa),
    /// Kamaelia `shutdownCSA(self, csa)`: the connection has ended.
    ShutdownCsa {
        /// The TCPServer.
        server: Handle,
        /// The CSA that ended.
        csa: Handle,
    },
}

/// The TCPServer component (see the crate docs).
pub struct TcpServer {
    listener: Option<Arc<TcpListener>>,
    source: Source,
    local_addr: SocketAddr,
    options: ServerOptions,
    started: bool,
    /// There may be connections waiting to be accepted.
    accepting: bool,
    /// A `newReader` for the listener is outstanding.
    requested: bool,
    /// Out of descriptors: waiting for one to free.
    starved: bool,
    open: usize,
}

impl fmt::Debug for TcpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TcpServer({}, {} open)", self.local_addr, self.open)
    }
}

/// Why [`TcpServer::bind`] failed: the address and the OS error.
#[derive(Debug)]
pub struct BindError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// What the OS said.
    pub error: io::Error,
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot listen on {}: {}", self.addr, self.error)
    }
}

impl std::error::Error for BindError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl From<BindError> for io::Error {
    fn from(e: BindError) -> io::Error {
        io::Error::new(e.error.kind(), e)
    }
}

fn listen(addr: SocketAddr, options: &ServerOptions) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(options.reuse_address)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(options.backlog)?;
    Ok(socket.into())
}

impl TcpServer {
    /// Kamaelia `TCPServer(listenport)`: listens on all interfaces.
    pub fn new(port: u16, options: ServerOptions) -> Result<TcpServer, BindError> {
        TcpServer::bind(SocketAddr::from(([0, 0, 0, 0], port)), options)
    }

    /// Binds and listens on `addr` now (T2), so the caller hears of a port
    /// in use or a missing permission at once. Port 0 picks a free port:
    /// read it with [`local_addr`](Self::local_addr).
    pub fn bind(addr: SocketAddr, options: ServerOptions) -> Result<TcpServer, BindError> {
        let bound = listen(addr, &options).and_then(|l| {
            let local = l.local_addr()?;
            Ok((l, local))
        });
        let (listener, local_addr) = bound.map_err(|error| BindError { addr, error })?;
        let listener = Arc::new(TcpListener::from_std(listener));
        log::info!("tcpserver: listening on {local_addr}");
        Ok(TcpServer {
            source: Source::new(listener.clone()),
            listener: Some(listener),
            local_addr,
            options,
            started: false,
            accepting: true,
            requested: false,
            starved: false,
            open: 0,
        })
    }

    /// The address actually listened on (the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    fn request_newconnection(&mut self, cx: &Cx<TcpServerBoxes>) {
        if self.requested {
            return;
        }
        self.requested = true;
        let _ = cx.selector_signal.send(Request::NewReader(
            cx.newconnection.postbox(),
            self.source.clone(),
        ));
    }

    fn at_limit(&self) -> bool {
        self.options
            .max_connections
            .is_some_and(|max| self.open >= max)
    }

    /// One bounded accept round (T4, T5, T8). True if more may be waiting.
    fn accept_round(&mut self, cx: &Cx<TcpServerBoxes>) -> bool {
        let Some(listener) = self.listener.clone() else {
            return false;
        };
        for _ in 0..ACCEPT_BATCH {
            if self.at_limit() {
                // T8: leave the rest in the backlog until one closes.
                self.accepting = false;
                return false;
            }
            match listener.accept() {
                Ok((stream, peer)) => {
                    if self.starved {
                        log::info!("tcpserver {}: accepting again", self.local_addr);
                        self.starved = false;
                    }
                    self.new_connection(cx, stream, peer);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.accepting = false;
                    self.request_newconnection(cx);
                    return false;
                }
                Err(e) if is_transient(&e) => {
                    log::debug!("tcpserver {}: accept skipped: {e}", self.local_addr);
                }
                Err(e) => {
                    // EMFILE, ENFILE, ENOBUFS, ENOMEM…: keep what we have,
                    // try again on the next knock or the next close.
                    if !self.starved {
                        log::warn!(
                            "tcpserver {}: cannot accept ({e}); serving open connections, retrying when one closes",
                            self.local_addr
                        );
                    }
                    self.starved = true;
                    self.accepting = false;
                    self.request_newconnection(cx);
                    return false;
                }
            }
        }
        true
    }

    fn new_connection(&mut self, cx: &Cx<TcpServerBoxes>, stream: TcpStream, peer: SocketAddr) {
        if !cx.protocol_handler_signal.is_linked() {
            log::warn!(
                "tcpserver {}: nothing handles new connections; closing {peer}",
                self.local_addr
            );
            return;
        }
        if self.options.nodelay {
            let _ = stream.set_nodelay(true);
        }
        let local = stream.local_addr().unwrap_or(self.local_addr);
        log::debug!("tcpserver {}: connection from {peer}", self.local_addr);
        let csa = Csa::new(stream)
            .with_peer(peer)
            .with_options(csa::CsaOptions {
                linger: self.options.linger,
                idle_timeout: self.options.idle_timeout,
                stall_timeout: self.options.stall_timeout,
                request_timeout: self.options.request_timeout,
                ..csa::CsaOptions::default()
            });
        let source = csa.source().clone();
        let csa = Handle::new(csa);
        let me = cx.me().clone();
        cx.add_child(&csa);
        // Not kept in our linkage book: it leaves the CSA, and goes when the
        // CSA does (one record fewer per connection).
        if let Err(e) = axon::link((&csa, "CreatorFeedback"), (&me, "_feedbackFromCSA")) {
            log::error!("tcpserver: {e}");
        }
        self.open += 1;
        let _ = cx.protocol_handler_signal.send(ServerEvent::NewCsa(NewCsa {
            server: me,
            csa: csa.clone(),
            source: source.clone(),
            peer,
            local,
        }));
        if let Some(b) = csa.typed_boxes::<csa::CsaBoxes>() {
            let _ = cx
                .selector_signal
                .send(Request::NewReader(b.read_ready.postbox(), source.clone()));
            let _ = cx
                .selector_signal
                .send(Request::NewWriter(b.send_ready.postbox(), source));
        }
    }

    /// T6.
    fn connection_closed(&mut self, cx: &Cx<TcpServerBoxes>, msg: SocketShutdown) {
        let _ = cx
            .selector_signal
            .send(Request::RemoveReader(msg.source.clone()));
        let _ = cx.selector_signal.send(Request::RemoveWriter(msg.source));
        let me = cx.me().clone();
        let _ = cx.protocol_handler_signal.send(ServerEvent::ShutdownCsa {
            server: me,
            csa: msg.csa.clone(),
        });
        cx.remove_child(&msg.csa);
        self.open = self.open.saturating_sub(1);
        // A descriptor and a slot have freed: T5, T8.
        self.accepting = true;
    }

    /// T7.
    fn stop(&mut self, cx: &Cx<TcpServerBoxes>) -> Step {
        log::info!("tcpserver {}: stopping", self.local_addr);
        let _ = cx
            .selector_signal
            .send(Request::RemoveReader(self.source.clone()));
        let _ = cx.selector_shutdown_signal.send(Control::Shutdown);
        self.listener = None;
        let _ = cx.signal.send(Control::ProducerFinished);
        Step::Done
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::PermissionDenied
    ) || matches!(e.raw_os_error(), Some(71 /* EPROTO */))
}

boxes! {
    /// The TCPServer's boxes (see the crate docs).
    pub struct TcpServerBoxes {
        /// serverShutdown: stop listening and end
        pub control: Inbox<Control>,
        /// the Selector's notice: connections are waiting
        pub newconnection: Inbox<Ready>,
        /// socketShutdown from our CSAs
        #[name = "_feedbackFromCSA"]
        pub feedback_from_csa: Inbox<SocketShutdown>,
        /// newCSA / shutdownCSA
        #[name = "protocolHandlerSignal"]
        pub protocol_handler_signal: Outbox<ServerEvent>,
        /// producerFinished when the server ends
        pub signal: Outbox<Control>,
        /// requests to the Selector's notify
        #[name = "_selectorSignal"]
        pub selector_signal: Outbox<Request>,
        /// shutdown to the Selector's control
        #[name = "_selectorShutdownSignal"]
        pub selector_shutdown_signal: Outbox<Control>,
    }
}

impl Component for TcpServer {
    type Boxes = TcpServerBoxes;

    fn name(&self) -> std::borrow::Cow<'static, str> {
        "TCPServer".into()
    }

    fn main(&mut self, cx: &mut Cx<TcpServerBoxes>) -> Step {
        if !self.started {
            self.started = true;
            match selector::link_to_selector(cx, "_selectorSignal") {
                Ok(sel) => {
                    let me = cx.me().clone();
                    if let Err(e) = cx.link((&me, "_selectorShutdownSignal"), (&sel, "control")) {
                        log::error!("tcpserver: {e}");
                    }
                    self.request_newconnection(cx);
                }
                Err(e) => {
                    log::error!("tcpserver {}: {e}", self.local_addr);
                    return self.stop(cx);
                }
            }
        }
        if cx.control.recv().is_some() {
            return self.stop(cx);
        }
        while let Some(msg) = cx.feedback_from_csa.recv() {
            self.connection_closed(cx, msg);
        }
        while cx.newconnection.recv().is_some() {
            self.requested = false;
            self.accepting = true;
        }
        if self.accepting && self.accept_round(cx) {
            return Step::Continue;
        }
        Step::Pause
    }
}
