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
//! | `_handoff` | inbox | [`HandOff`] | sharded ([`TcpServer::into_shards`]): sockets and the finish from the acceptor (a shard); closes from the shards (the acceptor); `Resume` from an [`AcceptGate`] that has room again |
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
//!   closes, when a new client knocks, and every 200 ms while starved
//!   (the descriptors may free elsewhere in the process, and a backlog
//!   that stays full raises no new edge): never a busy loop.
//! - **Connection closed (T6).** On `socketShutdown` from a CSA:
//!   `removeReader` and `removeWriter` to the Selector (if the socket is
//!   still open: once closed, the Selector has let go of it already),
//!   `shutdownCSA(self, csa)` out of `protocolHandlerSignal`, and the
//!   child is dropped.
//! - **Stop (T7).** On any message in `control`: `removeReader(listener)` to
//!   the Selector, `shutdown` to its `control`, the listener closes, it ends.
//! - **Limits (T8).** With [`ServerOptions::max_connections`], at the limit
//!   it stops accepting (new clients wait in the kernel backlog) and resumes
//!   when a connection closes. It never accepts and then drops. An
//!   [`AcceptGate`] ([`ServerOptions::accept_gate`], a TLS handshake cap)
//!   pauses it the same way: a place is taken before each accept.
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
//! ## Wrapping connections
//!
//! Kamaelia let a subclass replace `TCPServer.CSA`, the class made for each
//! connection. Here [`TcpServer::with_csa`] takes a factory: it gets each
//! accepted connection's [`Csa`], configured and not yet a component, and
//! returns the component that stands for the connection: the CSA itself,
//! or a wrapper that has the CSA as a child and presents its boxes, those
//! this server and ServerCore link or reach by name: inboxes `inbox`,
//! `control`, `ReadReady`, `SendReady`; outboxes `outbox`, `readShutdown`,
//! `CreatorFeedback`. A [`Graphline`](axon::Graphline) makes them
//! passthroughs. The wrapper is what `newCSA` announces and `shutdownCSA`
//! names; the Selector's notices reach the CSA through its `ReadReady` and
//! `SendReady`. A component lacking one of those boxes is refused: the
//! connection is closed and logged (at `error`, with the peer), and the
//! server goes on.
//!
//! ```
//! use axon::{link, Endpoint, Graphline, Handle, Standard};
//! use tcpserver::{ConnectionInfo, Csa, ServerEvent, ServerOptions, TcpServer};
//!
//! /// A wrapper that adds nothing yet: every box the server and ServerCore
//! /// use passes through to the CSA. Put components between the CSA and
//! /// the wrapper's boxes to watch or change the bytes (the `chassis`
//! /// crate docs count them).
//! fn wrap(csa: Csa, info: &ConnectionInfo) -> Handle {
//!     println!("connection from {}", info.peer);
//!     let csa = Handle::new(csa);
//!     let through = |name| (("self", name), ("csa", name));
//!     let out = |name| (("csa", name), ("self", name));
//!     let wrapper = Graphline::new(
//!         vec![("csa", csa.clone())],
//!         &[
//!             through("inbox"), through("control"), through("ReadReady"), through("SendReady"),
//!             out("outbox"), out("readShutdown"), out("CreatorFeedback"),
//!         ],
//!     );
//!     // Cannot fail with a fresh CSA; if it did, the CSA alone serves.
//!     wrapper.map_or(csa, Handle::new)
//! }
//!
//! let server = TcpServer::bind("127.0.0.1:0".parse().unwrap(), ServerOptions::default())
//!     .unwrap()
//!     .with_csa(wrap);
//! let addr = server.local_addr();
//! let scheduler = selector::scheduler().unwrap();
//! let server = scheduler.activate(server).unwrap();
//! // Who takes newCSA (normally ServerCore, see `chassis::ServerCore::with_server`).
//! let taker = Endpoint::<Standard<ServerEvent, ()>>::new("taker");
//! link((&server, "protocolHandlerSignal"), (taker.handle(), "inbox")).unwrap();
//! let stop = scheduler.handle();
//! let running = std::thread::spawn(move || scheduler.run());
//!
//! let _client = std::net::TcpStream::connect(addr).unwrap();
//! let timeout = std::time::Duration::from_secs(20);
//! match taker.inbox.recv_timeout(timeout) {
//!     Some(ServerEvent::NewCsa(n)) => assert_eq!(n.csa.name(), "Graphline"),
//!     other => panic!("expected newCSA, got {other:?}"),
//! }
//! stop.stop();
//! running.join().unwrap();
//! ```
//!
//! Without a factory, each connection's component is its CSA, made as
//! always: nothing more is looked up or kept per connection.
//!
//! ## Shards
//!
//! [`TcpServer::into_shards`] splits a bound server into an acceptor and
//! n shard servers, for a server on many cores (`chassis::ServerCore::threads`
//! runs each shard on a thread of its own). The acceptor listens and
//! accepts (T4, T5) and hands each socket to the shard with the fewest
//! sockets waiting, then the fewest open; each shard server does the rest
//! of T4 (CSA, `newCSA`, registration with *its own* Selector) and T6, so
//! a connection never meets the acceptor's thread again. T8 counts every
//! shard's connections; T5 pauses the one acceptor until a shard's
//! connection closes or a client knocks. Stopping the acceptor (T7) first
//! cuts the listen backlog to its least and accepts and hands on every
//! connection already queued, so that closing the listener resets none of
//! them, then sends each shard [`HandOff::Finish`] after its last socket;
//! a shard server then ends and sends that message out of `signal`.
//!
//! ## Names
//!
//! Kamaelia `TCPServer` is [`TcpServer`]; `newCSA` is
//! [`ServerEvent::NewCsa`]; `shutdownCSA` is [`ServerEvent::ShutdownCsa`];
//! overriding `TCPServer.CSA` is [`TcpServer::with_csa`].

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

use rustc_hash::FxHashMap as HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axon::{
    boxes, BoxKey, Component, Control, Cx, Direction, Handle, Inbox, Outbox, Postbox, Step,
};
mod gate;

pub use csa::{Csa, SocketShutdown, TcpStream};
pub use gate::AcceptGate;
use mio::net::TcpListener;
use selector::{Ready, Request, Source};

/// Connections accepted per step before yielding (T5: bounded rounds).
const ACCEPT_BATCH: usize = 64;
/// Out of descriptors, how often accepting is tried again if no
/// connection of ours closes and no client knocks (T5): a few system calls
/// a second, never a busy loop.
const STARVED_RETRY: Duration = Duration::from_millis(200);

/// Options for [`TcpServer::bind`] (Kamaelia's `socketOptions`).
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// The listen backlog (Kamaelia used 5). Default 1024.
    pub backlog: i32,
    /// `SO_REUSEADDR`, so a restarted server can bind while old
    /// connections sit in TIME_WAIT. Default true.
    pub reuse_address: bool,
    /// `SO_REUSEPORT` (Linux and the BSDs): several listeners, one per
    /// shard, share the port and the kernel spreads new connections over
    /// them ([`TcpServer::reuse_port_shards`]). Default false; must be set
    /// when the first listener binds.
    pub reuse_port: bool,
    /// `TCP_NODELAY` on accepted sockets. Default true. Set on the
    /// listener too, from which Linux copies it to each accepted socket
    /// (no system call per connection).
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
    /// A gate asked before each accept ([`AcceptGate`]): while it has no
    /// room, accepting pauses as at T8's limit, and resumes when it says
    /// so. Shared by every shard (`ServerCore::threads`). Default `None`.
    pub accept_gate: Option<std::sync::Arc<dyn AcceptGate>>,
    /// A session layer for every accepted connection, from its first byte
    /// (TLS: the `tls` crate's `ServerSessions`): each CSA runs the
    /// session its factory makes ([`Csa::with_session`]), so the handler
    /// is given plaintext. Shared by every shard. Default `None`.
    pub session: Option<std::sync::Arc<dyn SessionFactory>>,
    /// STARTTLS for every accepted connection: its handler may switch it
    /// to a session this factory makes, with Kamaelia's `makessl` (its
    /// outbox, `()`) and `sslready` (its inbox, [`csa::SslReady`]), which
    /// ServerCore links to the CSA's (H2); see [`Csa::with_starttls`].
    /// Ignored where `session` is set (TLS from the first byte). Shared by
    /// every shard. Default `None`.
    pub starttls: Option<std::sync::Arc<dyn SessionFactory>>,
    /// Whether the server lists each CSA among its children (A7) until it
    /// closes, as Kamaelia's TCPServer does: that keeps a CSA alive that
    /// nobody activated. Default true. ServerCore turns it off
    /// ([`TcpServer::keep_csas`]): it keeps and activates each CSA itself,
    /// and is its parent, so the server need keep no record of it (one
    /// hash-set entry fewer per connection).
    pub keep_csas: bool,
}

/// Makes the session layer of a connection ([`ServerOptions::session`],
/// [`ServerOptions::starttls`]).
pub use csa::SessionFactory;

impl Default for ServerOptions {
    fn default() -> Self {
        let csa = csa::CsaOptions::default();
        ServerOptions {
            backlog: 1024,
            reuse_address: true,
            reuse_port: false,
            nodelay: true,
            max_connections: None,
            linger: csa.linger,
            idle_timeout: csa.idle_timeout,
            stall_timeout: csa.stall_timeout,
            request_timeout: csa.request_timeout,
            accept_gate: None,
            session: None,
            starttls: None,
            keep_csas: true,
        }
    }
}

/// What is known of a new connection when its component is made: told to
/// a [`TcpServer::with_csa`] factory, and (as `chassis::ConnectionInfo`)
/// to ServerCore's protocol factory (H2: Kamaelia's `peer=…, peerport=…,
/// localip=…, localport=…`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The client's address and port.
    pub peer: SocketAddr,
    /// Our address and port on this connection.
    pub local: SocketAddr,
}

/// Makes the component that stands for a connection, given its CSA
/// ([`TcpServer::with_csa`]); `fork` makes another for a shard.
trait CsaFactory: Send {
    fn make(&mut self, csa: Csa, info: &ConnectionInfo) -> Handle;
    fn fork(&self) -> Box<dyn CsaFactory>;
}

impl<F, H> CsaFactory for F
where
    F: FnMut(Csa, &ConnectionInfo) -> H + Clone + Send + 'static,
    H: Into<Handle>,
{
    fn make(&mut self, csa: Csa, info: &ConnectionInfo) -> Handle {
        self(csa, info).into()
    }

    fn fork(&self) -> Box<dyn CsaFactory> {
        Box::new(self.clone())
    }
}

/// The boxes of a connection's component that the TCPServer (T4, T6) and
/// ServerCore (H2, H3) link or reach by name: a component made by
/// [`TcpServer::with_csa`] in the CSA's place must have each, with the
/// CSA's direction and message type.
fn csa_face() -> [(&'static str, Direction, &'static str); 7] {
    use std::any::type_name;
    [
        ("inbox", Direction::Inbox, type_name::<Vec<u8>>()),
        ("control", Direction::Inbox, type_name::<Control>()),
        ("ReadReady", Direction::Inbox, type_name::<Ready>()),
        ("SendReady", Direction::Inbox, type_name::<Ready>()),
        ("outbox", Direction::Outbox, type_name::<Vec<u8>>()),
        ("readShutdown", Direction::Outbox, type_name::<Control>()),
        (
            "CreatorFeedback",
            Direction::Outbox,
            type_name::<SocketShutdown>(),
        ),
    ]
}

/// Checks that `made` presents the CSA's boxes ([`csa_face`]) and returns
/// postboxes to its `ReadReady` and `SendReady` (they follow passthroughs
/// to the CSA's own).
fn wrapped_ready(made: &Handle) -> Result<(Postbox<Ready>, Postbox<Ready>), String> {
    let boxes = made.boxes();
    for (name, direction, message_type) in csa_face() {
        let found = boxes
            .iter()
            .any(|b| b.name == name && b.direction == direction && b.message_type == message_type);
        if !found {
            return Err(format!(
                "{made:?} has no {direction:?} `{name}` carrying {message_type}"
            ));
        }
    }
    let ready = |name| made.postbox::<Ready>(name).map_err(|e| e.to_string());
    Ok((ready("ReadReady")?, ready("SendReady")?))
}

/// Kamaelia `newCSA(self, csa, sock)`: a new connection's CSA, not yet
/// activated.
#[derive(Debug)]
pub struct NewCsa {
    /// The TCPServer that accepted it.
    pub server: Handle,
    /// The connection's CSA (a child of the server; activate it), or the
    /// component that [`TcpServer::with_csa`] made in its place.
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
    /// The listener for the Selector; `None` once it has closed, and for a
    /// shard (which must not keep the acceptor's listener open).
    source: Option<Source>,
    local_addr: SocketAddr,
    options: ServerOptions,
    started: bool,
    /// There may be connections waiting to be accepted.
    accepting: bool,
    /// A `newReader` for the listener is outstanding.
    requested: bool,
    /// Out of descriptors: waiting for one to free.
    starved: bool,
    /// While starved, the next retry whatever happens meanwhile (T5): the
    /// descriptors that free may be none of this server's.
    retry_at: Option<Instant>,
    open: usize,
    /// Makes each connection's component from its CSA; `None`: the CSA
    /// itself (checked once per accept).
    wrap: Option<Box<dyn CsaFactory>>,
    /// Listener, acceptor for shards, or shard ([`TcpServer::into_shards`]).
    role: Role,
    /// The components made in place of their CSAs, by socket: a CSA's
    /// `socketShutdown` names the CSA, and T6 must name (and drop) what
    /// `newCSA` announced. Empty unless [`with_csa`](TcpServer::with_csa)
    /// made something other than a plain CSA.
    wrapped: HashMap<RawFd, (Source, Handle)>,
    /// The Selector's `notify`, once linked to it: each new CSA's
    /// `_selectorSignal` is linked straight to it (the CSA would otherwise
    /// look the Selector up in the CAT and link by name).
    notify: Option<Postbox<Request>>,
    /// The CSA's `CreatorFeedback` and our `_feedbackFromCSA`, found once
    /// (T4 links them for every connection): by name, each was a look-up
    /// through the box table's names per connection.
    feedback: Option<(BoxKey, BoxKey)>,
    /// Whether accepted sockets have `TCP_NODELAY` already, from the
    /// listener; `None` until the first connection says.
    nodelay_inherited: Option<bool>,
}

impl fmt::Debug for TcpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let role = match &self.role {
            Role::Listener => "",
            Role::Acceptor(_) => ", acceptor",
            Role::Shard(_) => ", shard",
        };
        write!(
            f,
            "TcpServer({}, {} open{role})",
            self.local_addr,
            self.open()
        )
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
    if options.reuse_port {
        set_reuse_port(&socket)?;
    }
    socket.set_nonblocking(true)?;
    if options.nodelay {
        // Accepted sockets inherit it on Linux (see `TcpServer::nodelay`).
        let _ = socket.set_tcp_nodelay(true);
    }
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
            source: Some(Source::new(listener.clone())),
            listener: Some(listener),
            local_addr,
            options,
            started: false,
            accepting: true,
            requested: false,
            starved: false,
            retry_at: None,
            open: 0,
            wrap: None,
            role: Role::Listener,
            wrapped: HashMap::default(),
            notify: None,
            feedback: None,
            nodelay_inherited: None,
        })
    }

    /// Kamaelia's `TCPServer.CSA` override (builder style): `wrap` gets
    /// each accepted connection's [`Csa`], fully configured (peer, options)
    /// and not yet a component, with the connection's addresses, and
    /// returns the component that takes its place: the CSA itself, or a
    /// wrapper around it (a [`Graphline`](axon::Graphline) with the CSA as
    /// a child, say) that presents the CSA's boxes as its own: inboxes
    /// `inbox`, `control`, `ReadReady`, `SendReady`; outboxes `outbox`,
    /// `readShutdown`, `CreatorFeedback`, each carrying what the CSA's
    /// does. That component is what `newCSA` announces, what is linked
    /// and told (T4, H2, H3) and what `shutdownCSA` names (T6).
    ///
    /// A component lacking one of those boxes is refused: the server logs
    /// an error with the peer's address and closes that connection, and
    /// goes on serving. See the crate docs for an example.
    ///
    /// Without it, each connection's component is its CSA, made exactly
    /// as before: nothing is looked up or kept per connection.
    ///
    /// `wrap` is `Clone` so that a server spread over several threads
    /// ([`into_shards`](Self::into_shards)) gives each its own copy.
    pub fn with_csa<F, H>(mut self, wrap: F) -> TcpServer
    where
        F: FnMut(Csa, &ConnectionInfo) -> H + Clone + Send + 'static,
        H: Into<Handle>,
    {
        self.wrap = Some(Box::new(wrap));
        self
    }

    /// Sets [`ServerOptions::keep_csas`] (builder style): false for a
    /// protocol handler that keeps each CSA it is told of (in
    /// `protocolHandlerSignal`'s `newCSA`) and activates it, as ServerCore
    /// does.
    pub fn keep_csas(mut self, keep: bool) -> TcpServer {
        self.options.keep_csas = keep;
        self
    }

    /// Splits this server over `n` shards (hand-off): the returned
    /// [`Shards::acceptor`] listens, accepts (T4, T5) and hands each
    /// connection to the shard with the fewest sockets waiting, then the
    /// fewest open ([`HandOff::Socket`]); each of [`Shards::shards`] is a
    /// TCPServer without a listener that serves what it is handed exactly
    /// as this one would have (CSA, `newCSA`, its own Selector, T6), with
    /// the same options and a copy of the [`with_csa`](Self::with_csa)
    /// factory. The connection limit (T8) counts every shard's
    /// connections. On stop (T7), the acceptor first accepts every
    /// connection already queued and hands it on, then tells each shard
    /// to finish ([`HandOff::Finish`]) after its last socket. `n` is at
    /// least 1.
    pub fn into_shards(mut self, n: usize) -> Shards {
        let common = Arc::new(Common::default());
        let mut inlets = Vec::new();
        let mut shards = Vec::new();
        for _ in 0..n.max(1) {
            let load = Arc::new(Load::default());
            let shard = TcpServer {
                listener: None,
                source: None,
                local_addr: self.local_addr,
                options: self.options.clone(),
                started: false,
                accepting: false,
                requested: false,
                starved: false,
                retry_at: None,
                open: 0,
                wrap: self.wrap.as_ref().map(|w| w.fork()),
                role: Role::Shard(Shard {
                    common: common.clone(),
                    load: load.clone(),
                }),
                wrapped: HashMap::default(),
                notify: None,
                feedback: None,
                nodelay_inherited: None,
            };
            let handle = Handle::new(shard);
            let inlet = handle
                .typed_boxes::<TcpServerBoxes>()
                .map(|b| b.handoff.postbox())
                .expect("a TcpServer has TcpServer boxes");
            inlets.push((inlet, load));
            shards.push(handle);
        }
        self.wrap = None;
        self.role = Role::Acceptor(Acceptor {
            common,
            shards: inlets,
            next: 0,
        });
        Shards {
            acceptor: self,
            shards,
        }
    }

    /// Splits this server into `n` listeners on one port, with
    /// `SO_REUSEPORT` ([`ServerOptions::reuse_port`], which must have been
    /// set when this one bound): this server and `n - 1` more bound to its
    /// address (its real port, when 0 was asked), with the same options
    /// and a copy of the [`with_csa`](Self::with_csa) factory. The kernel
    /// spreads new connections over them; each is an ordinary TCPServer
    /// (T1–T8), so its limits (T8) are its own, per shard. Errors: the
    /// option was not set, or a bind failed.
    pub fn reuse_port_shards(self, n: usize) -> Result<Vec<TcpServer>, BindError> {
        let addr = self.local_addr;
        if !self.options.reuse_port {
            return Err(BindError {
                addr,
                error: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "SO_REUSEPORT shards need ServerOptions::reuse_port set when the server binds",
                ),
            });
        }
        let mut servers = Vec::with_capacity(n.max(1));
        for _ in 1..n.max(1) {
            let mut more = TcpServer::bind(addr, self.options.clone())?;
            more.wrap = self.wrap.as_ref().map(|w| w.fork());
            servers.push(more);
        }
        servers.insert(0, self);
        Ok(servers)
    }

    /// The address actually listened on (the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    fn request_newconnection(&mut self, cx: &Cx<TcpServerBoxes>) {
        let Some(source) = &self.source else {
            return;
        };
        if self.requested {
            return;
        }
        self.requested = true;
        let _ = cx.selector_signal.send(Request::NewReader(
            cx.newconnection.postbox(),
            source.clone(),
        ));
    }

    /// Whether a connection's close should make this server accept again:
    /// only if it is paused for want of what a close frees (T5: out of
    /// descriptors, a backlog that stays full raising no new edge; T8 or
    /// an accept gate: no notice asked for while paused). While a notice
    /// is asked for, the Selector's `newconnection` comes with the next
    /// knock.
    fn a_close_may_lift_a_pause(&self) -> bool {
        self.starved || !self.requested
    }

    /// Connections open: ours, or (an acceptor) all its shards'.
    fn open(&self) -> usize {
        match &self.role {
            Role::Acceptor(a) => a.common.open.load(Ordering::SeqCst),
            _ => self.open,
        }
    }

    fn at_limit(&self) -> bool {
        self.options
            .max_connections
            .is_some_and(|max| self.open() >= max)
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
                // An acceptor hears of its shards' closes only when it asks;
                // one may have closed since the count was read.
                if self.hear_of_closes() && !self.at_limit() {
                    self.accepting = true;
                    return true;
                }
                return false;
            }
            // A gate outside (a TLS handshake cap): a place first, so that
            // a whole round cannot overshoot it.
            let gate = self.options.accept_gate.clone();
            if let Some(g) = &gate {
                if !g.try_enter(&cx.handoff.postbox()) {
                    self.accepting = false; // HandOff::Resume wakes us
                    return false;
                }
            }
            let accepted = listener.accept();
            if let (Some(g), Err(_)) = (&gate, &accepted) {
                g.leave();
            }
            match accepted {
                Ok((stream, peer)) => {
                    if self.starved {
                        log::info!("tcpserver {}: accepting again", self.local_addr);
                        self.starved = false;
                    }
                    match &mut self.role {
                        Role::Acceptor(a) => a.hand_off(stream, peer),
                        _ => self.new_connection(cx, stream, peer),
                    }
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
                    self.hear_of_closes();
                    // The knock that would wake us may have come already
                    // (a backlog that stays full raises no new edge), and
                    // the descriptors that free may be another part of the
                    // process's: a timer too, one at a time.
                    let now = Instant::now();
                    if self.retry_at.map_or(true, |at| at <= now) {
                        let at = now + STARVED_RETRY;
                        self.retry_at = Some(at);
                        cx.wake_at(at);
                    }
                    return false;
                }
            }
        }
        true
    }

    /// Gives back the [`AcceptGate`] place taken for a connection that
    /// will have no handler to give it back.
    fn gate_leave(&self) {
        if let Some(g) = &self.options.accept_gate {
            g.leave();
        }
    }

    fn new_connection(&mut self, cx: &Cx<TcpServerBoxes>, stream: TcpStream, peer: SocketAddr) {
        if !cx.protocol_handler_signal.is_linked() {
            log::warn!(
                "tcpserver {}: nothing handles new connections; closing {peer}",
                self.local_addr
            );
            self.gate_leave(); // no handler will take up its place
            return;
        }
        if self.options.nodelay {
            self.nodelay(&stream);
        }
        // Bound to one address, every connection has it as its own: only a
        // wildcard listener's needs a look-up (a system call per accept).
        let local = if self.local_addr.ip().is_unspecified() {
            stream.local_addr().unwrap_or(self.local_addr)
        } else {
            self.local_addr
        };
        log::debug!("tcpserver {}: connection from {peer}", self.local_addr);
        // T4: the newReader for it is sent below.
        let mut csa = Csa::new(stream)
            .with_reader_requested()
            .with_peer(peer)
            .with_options(csa::CsaOptions {
                linger: self.options.linger,
                idle_timeout: self.options.idle_timeout,
                stall_timeout: self.options.stall_timeout,
                request_timeout: self.options.request_timeout,
                ..csa::CsaOptions::default()
            });
        if let Some(sessions) = &self.options.session {
            csa = csa.with_session(sessions.session());
        } else if let Some(sessions) = &self.options.starttls {
            csa = csa.with_starttls(sessions.clone());
        }
        let source = csa.source();
        // `Some` only for a component made in the CSA's place (not a plain
        // CSA): its Selector postboxes, found by name.
        let mut ready = None;
        let csa = match self.wrap.as_mut() {
            None => Handle::new(csa),
            Some(wrap) => {
                let made = wrap.make(csa, &ConnectionInfo { peer, local });
                if made.typed_boxes::<csa::CsaBoxes>().is_none() {
                    match wrapped_ready(&made) {
                        Ok(postboxes) => ready = Some(postboxes),
                        Err(e) => {
                            // Never activated, it is dropped here, and the
                            // CSA and its socket with it.
                            log::error!("tcpserver {}: closing {peer}: {e}", self.local_addr);
                            return;
                        }
                    }
                }
                made
            }
        };
        let me = cx.me().clone();
        // Not kept in our linkage book: it leaves the CSA, and goes when the
        // CSA does (one record fewer per connection).
        let (from, to) = self.feedback.get_or_insert_with(|| {
            (
                csa.box_key("CreatorFeedback"),
                me.box_key("_feedbackFromCSA"),
            )
        });
        if !csa.fits(from) {
            *from = csa.box_key("CreatorFeedback"); // another kind of CSA
        }
        if let Err(e) = axon::link_boxes((&csa, &*from), (&me, &*to)) {
            // T6 could never come: close it rather than leak it.
            log::error!("tcpserver {}: closing {peer}: {e}", self.local_addr);
            if self.wrap.is_none() {
                self.gate_leave(); // no handler will be made for it
            }
            return;
        }
        if self.options.keep_csas {
            cx.add_child(&csa);
        }
        if ready.is_some() {
            self.wrapped
                .insert(source.fd(), (source.clone(), csa.clone()));
        }
        self.open += 1;
        let _ = cx.protocol_handler_signal.send(ServerEvent::NewCsa(NewCsa {
            server: me,
            csa: csa.clone(),
            source: source.clone(),
            peer,
            local,
        }));
        let ready = ready.or_else(|| {
            csa.typed_boxes::<csa::CsaBoxes>().map(|b| {
                // The Selector that serves its socket (registered below).
                if let Some(notify) = &self.notify {
                    if let Err(e) = b.selector_signal.link_to(notify) {
                        log::debug!("tcpserver: the CSA links itself: {e}");
                    }
                }
                (b.read_ready.postbox(), b.send_ready.postbox())
            })
        });
        if let Some((read_ready, send_ready)) = ready {
            let _ = cx
                .selector_signal
                .send(Request::NewReader(read_ready, source.clone()));
            let _ = cx
                .selector_signal
                .send(Request::NewWriter(send_ready, source));
        }
    }

    /// `TCP_NODELAY` on an accepted socket. Linux copies it from the
    /// listener, which [`listen`] set it on: the first connection is asked
    /// (one system call, once) and, if it has it, no later one needs the
    /// `setsockopt` (one system call per connection saved). Elsewhere, or
    /// for a listener made without it, each is set.
    fn nodelay(&mut self, stream: &TcpStream) {
        let inherited = *self
            .nodelay_inherited
            .get_or_insert_with(|| stream.nodelay().unwrap_or(false));
        if !inherited {
            let _ = stream.set_nodelay(true);
        }
    }

    /// T6.
    fn connection_closed(&mut self, cx: &Cx<TcpServerBoxes>, mut msg: SocketShutdown) {
        if !self.wrapped.is_empty() {
            // A wrapped connection's source is held here, so its number is
            // still its own; any other's may now be a newer socket's.
            if let Entry::Occupied(entry) = self.wrapped.entry(msg.source.fd()) {
                if msg.source.same(&entry.get().0) {
                    msg.csa = entry.remove().1;
                }
            }
        }
        // Once the socket is closed the Selector has let go of it already
        // (it holds a registered source open, S7): there is nothing to
        // remove.
        if let Some(source) = msg.source.upgrade() {
            let _ = cx
                .selector_signal
                .send(Request::RemoveReader(source.clone()));
            let _ = cx.selector_signal.send(Request::RemoveWriter(source));
        }
        let me = cx.me().clone();
        let _ = cx.protocol_handler_signal.send(ServerEvent::ShutdownCsa {
            server: me,
            csa: msg.csa.clone(),
        });
        if self.options.keep_csas {
            cx.remove_child(&msg.csa);
        }
        self.open = self.open.saturating_sub(1);
        // A descriptor and a slot have freed: T5, T8. Only a pause waits
        // for that. Otherwise the Selector's notice, asked for, tells of
        // the next knock, and an accept now finds the backlog empty
        // unless a client is knocking already: with nobody knocking, a
        // system call per close for nothing.
        if self.a_close_may_lift_a_pause() {
            self.accepting = true;
        }
        if let Role::Shard(shard) = &self.role {
            shard.closed();
        }
    }

    /// Before the listener closes (T7): every connection already in the
    /// backlog is accepted and served (or handed on), so that closing the
    /// listener resets none of them. The backlog is first cut to its
    /// least, so that clients still knocking are held off (their SYNs are
    /// not answered, and they are refused once the listener has closed)
    /// rather than queued behind the last accept. Bounded: the backlog
    /// holds no more than it was given.
    fn last_round(&mut self, cx: &Cx<TcpServerBoxes>) {
        let Some(listener) = self.listener.clone() else {
            return;
        };
        let _ = socket2::SockRef::from(&*listener).listen(0);
        let most = usize::try_from(self.options.backlog).unwrap_or(0) + ACCEPT_BATCH;
        let mut taken = 0usize;
        while taken < most {
            match listener.accept() {
                Ok((stream, peer)) => {
                    taken += 1;
                    match &mut self.role {
                        Role::Acceptor(a) => a.hand_off(stream, peer),
                        _ => self.new_connection(cx, stream, peer),
                    }
                }
                Err(e) if is_transient(&e) => {}
                Err(_) => break,
            }
        }
        if taken > 0 {
            log::info!(
                "tcpserver {}: {taken} queued connection(s) accepted while stopping",
                self.local_addr
            );
        }
    }

    /// An acceptor that has paused (T5, T8) asks its shards to tell it when
    /// one of their connections closes. True if the acceptor should try
    /// again now (not an acceptor: never).
    fn hear_of_closes(&mut self) -> bool {
        let Role::Acceptor(a) = &self.role else {
            return false;
        };
        a.common.waiting.store(true, Ordering::SeqCst);
        // Dekker's pattern with `Shard::closed`: a close after the count
        // was read either sees `waiting` and tells us, or is seen here.
        let _ = a.common.open.load(Ordering::SeqCst);
        true
    }

    /// T7. `why` is the message that stopped it: an acceptor passes it on
    /// to its shards, and a shard sends it out of `signal`.
    fn stop(&mut self, cx: &Cx<TcpServerBoxes>, why: Control) -> Step {
        log::info!("tcpserver {}: stopping", self.local_addr);
        let mut finished = Control::ProducerFinished;
        // Graceful (an acceptor always: its shards decide): what is queued
        // is accepted and served, not reset by the close.
        let graceful = why.is_producer_finished();
        if graceful || matches!(self.role, Role::Acceptor(_)) {
            self.last_round(cx);
        }
        match &mut self.role {
            Role::Listener => {}
            Role::Acceptor(a) => a.finish(&why),
            Role::Shard(_) => finished = why,
        }
        if let Some(source) = self.source.take() {
            let _ = cx.selector_signal.send(Request::RemoveReader(source));
        }
        let _ = cx.selector_shutdown_signal.send(Control::Shutdown);
        self.listener = None;
        let _ = cx.signal.send(finished);
        Step::Done
    }
}

/// What passes between an acceptor and its shards' TCPServers
/// ([`TcpServer::into_shards`]), through their `_handoff` inboxes, and
/// from an [`AcceptGate`] to the server it paused.
#[derive(Debug)]
pub enum HandOff {
    /// To a shard: a connection the acceptor accepted, to serve from T4 on
    /// (CSA, `newCSA`, registration with the shard's own Selector).
    Socket {
        /// The accepted socket.
        stream: TcpStream,
        /// The client's address.
        peer: SocketAddr,
    },
    /// To a shard: the acceptor has stopped (after every socket before
    /// this one); the shard's server stops too and sends this message out
    /// of `signal` (`producerFinished`: gracefully).
    Finish(Control),
    /// To the acceptor: a shard's connection has closed, and the acceptor
    /// had paused for one to (T5, T8).
    Closed,
    /// To a server paused by its [`AcceptGate`]: the gate has room again.
    Resume,
}

/// Listener (T1–T8 as Kamaelia's), acceptor or shard.
enum Role {
    Listener,
    Acceptor(Acceptor),
    Shard(Shard),
}

/// What an acceptor and all its shards share.
#[derive(Default)]
struct Common {
    /// Connections open on all shards together (T8 across them).
    open: AtomicUsize,
    /// The acceptor has paused (T5, T8) and wants [`HandOff::Closed`].
    waiting: AtomicBool,
    /// The acceptor's `_handoff`, known once it runs.
    acceptor: OnceLock<Postbox<HandOff>>,
}

/// One shard's counts, written by one side each.
#[derive(Default)]
struct Load {
    /// Sockets handed to it (by the acceptor).
    handed: AtomicUsize,
    /// Sockets it has taken from its inbox (by the shard).
    taken: AtomicUsize,
    /// Connections of its that have closed (by the shard).
    closed: AtomicUsize,
}

impl Load {
    /// Handed but not yet taken: a shard that is busy (or stalled) has
    /// some.
    fn pending(&self) -> usize {
        let handed = self.handed.load(Ordering::SeqCst);
        handed.saturating_sub(self.taken.load(Ordering::SeqCst))
    }

    fn open(&self) -> usize {
        let handed = self.handed.load(Ordering::SeqCst);
        handed.saturating_sub(self.closed.load(Ordering::SeqCst))
    }
}

/// The acceptor's side: where each shard's sockets go.
struct Acceptor {
    common: Arc<Common>,
    shards: Vec<(Postbox<HandOff>, Arc<Load>)>,
    /// Where the next search for the least loaded shard starts.
    next: usize,
}

impl Acceptor {
    /// The shard for the next connection: the one with the fewest sockets
    /// waiting in its inbox (a stalled shard gets no more), then the
    /// fewest open; ties go round in turn.
    fn pick(&mut self) -> usize {
        let n = self.shards.len();
        let key = |i: usize| {
            let load = &self.shards[i].1;
            (load.pending(), load.open())
        };
        let mut best = self.next % n;
        let mut best_key = key(best);
        for k in 1..n {
            let i = (self.next + k) % n;
            let candidate = key(i);
            if candidate < best_key {
                best = i;
                best_key = candidate;
            }
        }
        self.next = (best + 1) % n;
        best
    }

    fn hand_off(&mut self, stream: TcpStream, peer: SocketAddr) {
        let i = self.pick();
        let (inlet, load) = &self.shards[i];
        load.handed.fetch_add(1, Ordering::SeqCst);
        self.common.open.fetch_add(1, Ordering::SeqCst);
        if inlet.send(HandOff::Socket { stream, peer }).is_err() {
            // Its inbox is unbounded: only a shard that has ended refuses.
            load.closed.fetch_add(1, Ordering::SeqCst);
            self.common.open.fetch_sub(1, Ordering::SeqCst);
            log::warn!("tcpserver: shard {i} has ended; closing {peer}");
        } else {
            log::trace!("tcpserver: {peer} to shard {i}");
        }
    }

    /// After the last socket: each shard stops (`why` says how).
    fn finish(&mut self, why: &Control) {
        for (inlet, _) in &self.shards {
            let _ = inlet.send(HandOff::Finish(why.clone()));
        }
    }
}

/// A shard's side: its counts, and the acceptor to tell of a close.
struct Shard {
    common: Arc<Common>,
    load: Arc<Load>,
}

impl Shard {
    /// T6 on a shard: counted, and the acceptor told if it is waiting for a
    /// close (T5, T8).
    fn closed(&self) {
        self.load.closed.fetch_add(1, Ordering::SeqCst);
        self.common.open.fetch_sub(1, Ordering::SeqCst);
        if self.common.waiting.swap(false, Ordering::SeqCst) {
            if let Some(acceptor) = self.common.acceptor.get() {
                let _ = acceptor.send(HandOff::Closed);
            }
        }
    }
}

/// A server spread over shards: what [`TcpServer::into_shards`] returns.
#[derive(Debug)]
pub struct Shards {
    /// The server that listens and accepts, and hands each connection to a
    /// shard. Run it where the listener's Selector is (any one thread).
    pub acceptor: TcpServer,
    /// One server per shard, each to run on its own scheduler (with its
    /// own Selector), normally inside a `ServerCore`: it makes the CSAs of
    /// the connections handed to it (T4 on), and ends on
    /// [`HandOff::Finish`], sending its message out of `signal`.
    pub shards: Vec<Handle>,
}

#[cfg(all(
    unix,
    not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))
))]
fn set_reuse_port(socket: &socket2::Socket) -> io::Result<()> {
    socket.set_reuse_port(true)
}

#[cfg(not(all(
    unix,
    not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))
)))]
fn set_reuse_port(_: &socket2::Socket) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "SO_REUSEPORT is not available on this platform",
    ))
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
        /// sockets from an acceptor (a shard), closes from shards (an acceptor), resume from an accept gate
        #[name = "_handoff"]
        pub handoff: Inbox<HandOff>,
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

    fn created(&mut self, _me: &Handle, boxes: &TcpServerBoxes) {
        // Every connection's end comes here, in bursts under churn.
        boxes.feedback_from_csa.keep_queue();
    }

    fn main(&mut self, cx: &mut Cx<TcpServerBoxes>) -> Step {
        if !self.started {
            self.started = true;
            match selector::link_to_selector(cx, "_selectorSignal") {
                Ok(sel) => {
                    self.notify = sel.postbox("notify").ok();
                    let me = cx.me().clone();
                    if let Err(e) = cx.link((&me, "_selectorShutdownSignal"), (&sel, "control")) {
                        log::error!("tcpserver: {e}");
                    }
                    match &self.role {
                        Role::Shard(_) => self.accepting = false,
                        Role::Acceptor(a) => {
                            let _ = a.common.acceptor.set(cx.handoff.postbox());
                            self.request_newconnection(cx);
                        }
                        Role::Listener => self.request_newconnection(cx),
                    }
                }
                Err(e) => {
                    log::error!("tcpserver {}: {e}", self.local_addr);
                    return self.stop(cx, Control::ShutdownMicroprocess);
                }
            }
        }
        if let Some(why) = cx.control.recv() {
            return self.stop(cx, why);
        }
        while let Some(msg) = cx.feedback_from_csa.recv() {
            self.connection_closed(cx, msg);
        }
        // T5: the retry timer (see `accept_round`). A close retries at
        // once, but its descriptor may still be held (by the Selector
        // until it takes the removals just sent): the timer covers that.
        if self.starved && self.retry_at.is_some_and(|at| Instant::now() >= at) {
            self.retry_at = None;
            self.accepting = true;
        }
        while let Some(handed) = cx.handoff.recv() {
            match handed {
                HandOff::Socket { stream, peer } => {
                    if let Role::Shard(shard) = &self.role {
                        shard.load.taken.fetch_add(1, Ordering::SeqCst);
                    }
                    self.new_connection(cx, stream, peer);
                }
                HandOff::Finish(why) => return self.stop(cx, why),
                // A shard's connection closed: T5, T8.
                HandOff::Closed | HandOff::Resume => self.accepting = true,
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An accepted connection, waited for with a deadline (the listener
    /// does not block).
    fn accept(listener: &TcpListener) -> TcpStream {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match listener.accept() {
                Ok((stream, _)) => return stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::yield_now()
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
    }

    /// T5, T8: a close makes the server accept again only while it is
    /// paused for what a close frees. Waiting for the Selector's notice
    /// of the next knock, it does not try: that accept would find the
    /// backlog empty (one system call per connection, for nothing).
    #[test]
    fn t8_a_close_tries_an_accept_only_while_paused() {
        let mut server =
            TcpServer::bind("127.0.0.1:0".parse().unwrap(), ServerOptions::default()).unwrap();
        let cases = [
            // (a notice asked for, out of descriptors) -> accept again
            ((true, false), false), // serving: the next knock is told
            ((true, true), true),   // T5: the backlog may raise no edge
            ((false, false), true), // T8 or a gate paused it, unasked
            ((false, true), true),
        ];
        for ((requested, starved), accepts) in cases {
            (server.requested, server.starved) = (requested, starved);
            assert_eq!(
                server.a_close_may_lift_a_pause(),
                accepts,
                "requested {requested}, starved {starved}"
            );
        }
    }

    /// Every accepted socket has `TCP_NODELAY` when the option asks (its
    /// default), and none when it does not. On Linux it comes from the
    /// listener: the first connection is asked, and no `setsockopt` is
    /// made per connection.
    #[test]
    fn accepted_sockets_have_nodelay_when_asked_and_only_then() {
        for nodelay in [true, false] {
            let options = ServerOptions {
                nodelay,
                ..ServerOptions::default()
            };
            let mut server = TcpServer::bind("127.0.0.1:0".parse().unwrap(), options).unwrap();
            let listener = server.listener.clone().unwrap();
            for _ in 0..3 {
                let _client = std::net::TcpStream::connect(server.local_addr).unwrap();
                let stream = accept(&listener);
                if nodelay {
                    server.nodelay(&stream); // as `new_connection` does
                }
                assert_eq!(stream.nodelay().unwrap(), nodelay);
            }
            if nodelay && cfg!(target_os = "linux") {
                assert_eq!(server.nodelay_inherited, Some(true));
            }
        }
    }
}
