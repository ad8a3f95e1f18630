//! # TCPClient
//!
//! Kamaelia's `Kamaelia.Internet.TCPClient` (rule H7 of the project's `docs/PROTOCOL.md`):
//! connects to a server without blocking, then talks through a
//! [`Csa`] child. Put it in a [`Pipeline`](axon::Pipeline) like any other
//! component: what arrives in its `inbox` is sent to the server, what the
//! server sends comes out of its `outbox`.
//!
//! | Kamaelia | here |
//! |---|---|
//! | `TCPClient(host, port)` | [`TcpClient::to_host`]`(host, port)`, or [`TcpClient::new`]`(addr)` for an address |
//! | `delay=d` | [`TcpClient::delayed`]`(d)` (or [`TcpClient::with_delay`]`(addr, d)`) |
//! | `connect_timeout=60` | [`TcpClient::with_connect_timeout`]`(d)`, 60 s by default |
//! | `wait_for_serverclose=False` | [`TcpClient::with_wait_for_serverclose`]`(bool)`, false by default (see below for what each means here) |
//!
//! ## Boxes
//!
//! | box | direction | carries | meaning |
//! |---|---|---|---|
//! | `inbox` | inbox | `Vec<u8>` | bytes to send (passed through to the CSA's `inbox` once connected) |
//! | `control` | inbox | [`Control`] | `producerFinished`: see [below](#producerfinished-and-wait_for_serverclose); `shutdownMicroprocess`: forwarded to the CSA (or, before the connection exists, ends the client); the client ends when the CSA has |
//! | `_socketFeedback` | inbox | [`SocketShutdown`] | the CSA's `CreatorFeedback` |
//! | `_connectReady` | inbox | [`Ready`] | the Selector's notice that the connect finished |
//! | `_resolved` | inbox | [`Resolved`] | the addresses of the host name, from the resolver thread |
//! | `makessl` | inbox | `()` | STARTTLS: switch the connection to the session of [`TcpClient::with_starttls`] (passed through to the CSA's `makessl`); without one, the connection closes |
//! | `outbox` | outbox | `Vec<u8>` | bytes received (the CSA's `outbox`, passed through) |
//! | `signal` | outbox | [`Control`] | `producerFinished` when the connection has ended; `shutdownMicroprocess` if it could not be made (or was stopped before it was), or, over a [session](#tls), ended out of order |
//! | `_selectorSignal` | outbox | [`Request`] | requests to the Selector |
//! | `sslready` | outbox | [`SslReady`] | once, when the session's handshake is over (the CSA's `sslready`, passed through) |
//!
//! ## Connecting
//!
//! - **Host names.** [`TcpClient::to_host`] takes a name and a port, as
//!   Kamaelia does. A name is resolved on a short-lived thread of its own
//!   (std's [`ToSocketAddrs`], that is `getaddrinfo`), never on the
//!   scheduler's thread, which goes on running every other component
//!   meanwhile; the thread delivers the addresses into `_resolved`, which
//!   wakes the client. An IP address given as the host (`"127.0.0.1"`,
//!   `"::1"`, `"[::1]"`) is used as it is, with no thread.
//!   [`TcpClient::with_resolver`] replaces the system's resolver (a fixed
//!   table, a cache, a test).
//! - **Several addresses.** They are tried one after the other, **in the
//!   order the resolver returns them** (for `getaddrinfo`, RFC 6724's
//!   order, which `/etc/gai.conf` can change; this is also what std's
//!   `TcpStream::connect` does). A connect that is refused, fails or times
//!   out gives way to the next address; only when the last one fails does
//!   the client give up.
//! - **Timeout.** Kamaelia's `connect_timeout` (60 s by default,
//!   [`TcpClient::with_connect_timeout`]) bounds each wait: the resolution,
//!   and each address's connect. A connect still unfinished then is
//!   withdrawn from the Selector and counts as failed. The waits are timers
//!   ([`Cx::wake_at`]), never a polling loop.
//! - **Failure.** A name that does not resolve, or a connection that
//!   cannot be made (refused, unreachable, timed out, on every address), is
//!   logged at `warn` and reported as `shutdownMicroprocess` out of
//!   `signal`; the client ends. Nothing panics. (Kamaelia's client sends
//!   `producerFinished(self, howDied)` then, `howDied` being `"timeout"`
//!   for a timeout, the same message as for a connection that ended; here
//!   the two are told apart by the message itself.)
//! - **Delay.** Kamaelia's `delay` (seconds to wait before connecting) is
//!   [`TcpClient::delayed`]; the wait is a timer, so a waiting client costs
//!   no CPU.
//!
//! Whatever arrives, in whatever phase, is acted on: bytes sent to `inbox`
//! before the connection is made wait there and are sent once it is;
//! `producerFinished` before then is kept and acted on once connected (so
//! a producer that sends its request and finishes at once still gets its
//! reply); `shutdownMicroprocess` before then (while waiting, resolving or
//! connecting) ends the client at once, reported on `signal`. A resolver
//! thread still running then is not waited for: its late answer lands in
//! the ended client's `_resolved` and is dropped with it.
//!
//! ## TLS
//!
//! [`TcpClient::with_session`] runs a [`Session`] in the connection's CSA
//! from its first byte: with the `tls` crate's `TlsSession::client`, the
//! client speaks TLS, verifying the server's certificate against the
//! roots it is given and the server's name, and `inbox` and `outbox`
//! carry plaintext. Everything below holds over it: `producerFinished`
//! sends close_notify after the last byte (and, by default, reads the
//! reply on); the server's close_notify ends the connection in order. An
//! end out of order (a failed handshake, truncation, a reset) ends the
//! client with `shutdownMicroprocess`, logged at `warn` with the
//! `how_died` (for TLS, a `tls::TlsError` inside the `io::Error`).
//!
//! STARTTLS is [`TcpClient::with_starttls`]: the connection starts in the
//! clear, and `()` into `makessl` (typically once the server has answered
//! the STARTTLS command) switches the same CSA to the session; `sslready`
//! says when the handshake is over, after which what goes into `inbox` is
//! encrypted. Link the protocol component's `makessl` outbox to the
//! client's `makessl`, and the client's `sslready` to its `sslready`
//! inbox, beside the usual four linkages.
//!
//! ## `producerFinished` and `wait_for_serverclose`
//!
//! In Kamaelia, with `wait_for_serverclose=False` (the default) a
//! `producerFinished` in `control` ends the connection: before it is made
//! the client passes the message on out of `signal` and ends without
//! connecting; once it is made the message reaches the CSA, which stops
//! reading and writing at once ("half close == close"), so a reply still
//! on its way is lost. With `wait_for_serverclose=True` (added in 2010 for
//! "allowing the TCP Connection closure to cause the TCPClient to close,
//! not the sending components disappearance": one component writes an HTTP
//! request, another parses the response), `producerFinished` is swallowed: only
//! `shutdownMicroprocess` stops the client, the connection stays open
//! until the server closes it, and then the client sends `producerFinished`
//! out of `signal`.
//!
//! Here, on top of the CSA's half-close ([`csa::CsaOptions::half_close`]):
//!
//! - **`false` (the default): `producerFinished` half-closes.** Everything
//!   sent is written, the write side is shut down (the server reads EOF:
//!   the request is complete), and the server's replies are still read and
//!   come out of `outbox` until it closes, within the CSA's linger time
//!   (30 s); then `producerFinished` out of `signal`. As in Kamaelia the
//!   producer's end ends the client's side of the conversation; unlike
//!   Kamaelia the reply is not lost, and a `producerFinished` that comes
//!   before the connection is kept for it instead of abandoning it. So
//!   `Pipeline(Request(), TCPClient(…), Print())` prints the reply to a
//!   request that was followed at once by `producerFinished`.
//! - **`true`: `producerFinished` is swallowed, as in Kamaelia.** It is not
//!   passed to the connection, in any phase: nothing is shut down (no FIN
//!   reaches the server, for servers that take a client's half-close for
//!   a hang-up), everything sent is still written, and the client ends when
//!   the server closes the connection (or on `shutdownMicroprocess`), with
//!   no time limit; then `producerFinished` out of `signal`.
//!
//! ```no_run
//! use axon::{Pipeline, Scheduler};
//! use tcpclient::TcpClient;
//! # use axon::{Component, Control, Cx, Standard, Step};
//! # struct Request; struct Print;
//! # impl Component for Request { type Boxes = Standard<(), Vec<u8>>;
//! #     fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
//! #         let _ = cx.outbox.send(b"hello\n".to_vec());
//! #         let _ = cx.signal.send(Control::ProducerFinished); Step::Done } }
//! # impl Component for Print { type Boxes = Standard<Vec<u8>, ()>;
//! #     fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
//! #         while let Some(b) = cx.inbox.recv() { print!("{}", String::from_utf8_lossy(&b)); }
//! #         if cx.control.recv().is_some() { Step::Done } else { Step::Pause } } }
//!
//! // Kamaelia: Pipeline(Request(), TCPClient("localhost", 1601), Print()).run()
//! let client = TcpClient::to_host("localhost", 1601);
//! let pipeline = Pipeline::new(vec![Request.into(), client.into(), Print.into()]).unwrap();
//! let scheduler = selector::scheduler().unwrap();
//! scheduler.activate(pipeline).unwrap();
//! scheduler.run(); // returns once the connection has closed
//! ```
//!
//! The options chain; Kamaelia's `TCPClient("example.org", 80, delay=1,
//! connect_timeout=5, wait_for_serverclose=True)` is:
//!
//! ```
//! use std::time::Duration;
//! use tcpclient::TcpClient;
//!
//! let client = TcpClient::to_host("example.org", 80)
//!     .delayed(Duration::from_secs(1))
//!     .with_connect_timeout(Duration::from_secs(5))
//!     .with_wait_for_serverclose(true);
//! # let _ = client;
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::panic::{self, AssertUnwindSafe};
use std::thread;
use std::time::{Duration, Instant};

use axon::{boxes, Component, Control, Cx, Handle, Inbox, Outbox, Postbox, Step};
pub use csa::{Csa, Session, SocketShutdown, SslReady, TcpStream};
use selector::{Ready, Request, Watched};

/// Kamaelia's default `connect_timeout`: 60 seconds.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// What resolving a host name gives: the addresses to try, in order, or
/// why there are none. Delivered into the client's `_resolved` inbox.
pub type Resolved = io::Result<Vec<SocketAddr>>;

/// A resolver, run once on the resolver thread.
type Resolver = Box<dyn FnOnce(&str, u16) -> Resolved + Send>;

/// Where to connect.
enum Target {
    Addr(SocketAddr),
    Host { host: String, port: u16 },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Addr(addr) => write!(f, "{addr}"),
            Target::Host { host, port } if host.contains(':') && !host.starts_with('[') => {
                write!(f, "[{host}]:{port}")
            }
            Target::Host { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

enum Phase {
    /// Kamaelia's `delay`, counted from the first step.
    Delay(Duration),
    /// Connect at this instant (`None`: a delay too long to represent).
    Waiting(Option<Instant>),
    Start,
    /// The resolver thread is at work; give up at `until`.
    Resolving {
        until: Option<Instant>,
    },
    /// Connect to the next address in `addrs`.
    Next,
    Connecting {
        stream: Watched<TcpStream>,
        addr: SocketAddr,
        until: Option<Instant>,
    },
    Connected {
        csa: Handle,
        control: Option<Postbox<Control>>,
    },
    Done,
}

boxes! {
    /// The TCPClient's boxes (see the crate docs).
    pub struct TcpClientBoxes {
        /// bytes to send to the server
        pub inbox: Inbox<Vec<u8>>,
        /// producerFinished / shutdownMicroprocess
        pub control: Inbox<Control>,
        /// the CSA's CreatorFeedback
        #[name = "_socketFeedback"]
        pub socket_feedback: Inbox<SocketShutdown>,
        /// the Selector's notice: connect finished
        #[name = "_connectReady"]
        pub connect_ready: Inbox<Ready>,
        /// the host name's addresses, from the resolver thread
        #[name = "_resolved"]
        pub resolved: Inbox<Resolved>,
        /// STARTTLS: switch the connection to the session of `with_starttls`
        pub makessl: Inbox<()>,
        /// bytes from the server
        pub outbox: Outbox<Vec<u8>>,
        /// producerFinished at the end; shutdownMicroprocess if the connect failed
        pub signal: Outbox<Control>,
        /// requests to the Selector
        #[name = "_selectorSignal"]
        pub selector_signal: Outbox<Request>,
        /// the session's handshake is over
        pub sslready: Outbox<SslReady>,
    }
}

/// The TCPClient component (see the crate docs).
pub struct TcpClient {
    target: Target,
    phase: Phase,
    connect_timeout: Duration,
    /// Kamaelia's `wait_for_serverclose`: `producerFinished` is swallowed.
    wait_for_serverclose: bool,
    /// `None`: the system's (`ToSocketAddrs`).
    resolver: Option<Resolver>,
    /// Addresses not tried yet.
    addrs: VecDeque<SocketAddr>,
    /// Why the last address tried failed, for the final warning.
    last_error: Option<(SocketAddr, io::Error)>,
    /// `producerFinished` that came before the connection: passed on once
    /// it is made.
    finished_early: Option<Control>,
    /// Run by the connection's CSA from its first byte (TLS).
    session: Option<Box<dyn Session>>,
    /// Run by the connection's CSA from `makessl` on (STARTTLS).
    starttls: Option<Box<dyn Session>>,
    /// A session was given: an end out of order is `shutdownMicroprocess`.
    secure: bool,
}

impl fmt::Debug for TcpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TcpClient({})", self.target)
    }
}

/// `until` has come (never, for `None`).
fn expired(until: Option<Instant>) -> bool {
    until.is_some_and(|until| Instant::now() >= until)
}

/// `now + d`, or `None` if that is too far away to represent.
fn after(d: Duration) -> Option<Instant> {
    Instant::now().checked_add(d)
}

/// The host as an IP address literal (`"::1"` and `"[::1]"` both count).
fn literal(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

/// The system's resolver: std's `ToSocketAddrs` (`getaddrinfo`).
fn system_resolve(host: &str, port: u16) -> Resolved {
    Ok((host, port).to_socket_addrs()?.collect())
}

impl TcpClient {
    fn aimed_at(target: Target) -> TcpClient {
        TcpClient {
            target,
            phase: Phase::Start,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            wait_for_serverclose: false,
            resolver: None,
            addrs: VecDeque::new(),
            last_error: None,
            finished_early: None,
            session: None,
            starttls: None,
            secure: false,
        }
    }

    /// Kamaelia `TCPClient(host, port)` for an address: connects when
    /// activated.
    pub fn new(addr: SocketAddr) -> TcpClient {
        TcpClient::aimed_at(Target::Addr(addr))
    }

    /// Kamaelia `TCPClient(host, port)`: resolves `host` (off the
    /// scheduler's thread, see the crate docs) and connects to its
    /// addresses in turn when activated. `host` may also be an IP address.
    pub fn to_host(host: impl Into<String>, port: u16) -> TcpClient {
        TcpClient::aimed_at(Target::Host {
            host: host.into(),
            port,
        })
    }

    /// Kamaelia `TCPClient(host, port, delay)`: waits `delay` after
    /// activation, then connects. Bytes that arrive in `inbox` meanwhile
    /// wait there and are sent once connected. The same as
    /// `TcpClient::new(addr).delayed(delay)`.
    pub fn with_delay(addr: SocketAddr, delay: Duration) -> TcpClient {
        TcpClient::new(addr).delayed(delay)
    }

    /// Kamaelia's `delay` (builder style): waits `delay` after activation
    /// before resolving and connecting.
    pub fn delayed(mut self, delay: Duration) -> TcpClient {
        self.phase = Phase::Delay(delay);
        self
    }

    /// Kamaelia's `connect_timeout` (builder style; [60 s by
    /// default](DEFAULT_CONNECT_TIMEOUT)): how long the resolution, and
    /// then the connect to each address, may take before it counts as
    /// failed.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> TcpClient {
        self.connect_timeout = timeout;
        self
    }

    /// Kamaelia's `wait_for_serverclose` (builder style; false by
    /// default): when true, `producerFinished` in `control` is swallowed
    /// and the connection stays open, both ways, until the server closes
    /// it; when false it half-closes the connection. See the crate docs.
    pub fn with_wait_for_serverclose(mut self, wait: bool) -> TcpClient {
        self.wait_for_serverclose = wait;
        self
    }

    /// Runs `session` in the connection's CSA from its first byte (builder
    /// style): TLS, with the `tls` crate's `TlsSession::client`, which
    /// verifies the server's certificate against the roots and the name
    /// it was given. `inbox` and `outbox` then carry plaintext; bytes sent
    /// before the handshake ends wait and go out right after it.
    ///
    /// An end out of order ends the client with `shutdownMicroprocess`
    /// out of `signal` (instead of `producerFinished`), its `how_died`
    /// logged at `warn`: a handshake that fails (an unknown CA, a wrong
    /// name, an expired certificate, no answer within its deadline), a
    /// FIN without close_notify (truncation: what came may not be all), or
    /// a reset. The server's close_notify is an orderly end.
    pub fn with_session(mut self, session: Box<dyn Session>) -> TcpClient {
        self.session = Some(session);
        self.secure = true;
        self
    }

    /// STARTTLS (builder style): the connection starts in the clear, and
    /// `()` into `makessl` switches it to `session` (the `tls` crate's
    /// `TlsSession::client`), Kamaelia's way. Bytes in `inbox` when the
    /// CSA takes `makessl` (the STARTTLS command, if it was sent just
    /// before) go in the clear; the handshake starts once they are
    /// written, and `SslReady` comes out of `sslready` when it is over.
    /// Send what must be encrypted after `sslready`: bytes sent between
    /// `makessl` and the CSA's taking it would go in the clear too. The
    /// handshake deadline counts from the switch.
    ///
    /// As with [`with_session`](Self::with_session), an end out of order
    /// (before or after the switch) ends the client with
    /// `shutdownMicroprocess`.
    pub fn with_starttls(mut self, session: Box<dyn Session>) -> TcpClient {
        self.starttls = Some(session);
        self.secure = true;
        self
    }

    /// Resolves the host name with `resolver` instead of the system's
    /// (builder style). It is called once, with the host and port, on the
    /// resolver thread, so it may block; the addresses it returns are tried
    /// in its order. Not called for an address, or a host that is an IP
    /// address. A resolver that panics counts as a name that does not
    /// resolve.
    pub fn with_resolver(
        mut self,
        resolver: impl FnOnce(&str, u16) -> Resolved + Send + 'static,
    ) -> TcpClient {
        self.resolver = Some(Box::new(resolver));
        self
    }

    /// Ends the client because the connection could not be made.
    fn fail(&mut self, cx: &Cx<TcpClientBoxes>, e: &dyn fmt::Display) -> Step {
        log::warn!("tcpclient: cannot connect to {}: {e}", self.target);
        self.end_unconnected(cx)
    }

    /// Ends the client because `control` said so before it was connected.
    fn stop(&mut self, cx: &Cx<TcpClientBoxes>, when: &str) -> Step {
        log::debug!("tcpclient: stopped {when} to {}", self.target);
        self.end_unconnected(cx)
    }

    fn end_unconnected(&mut self, cx: &Cx<TcpClientBoxes>) -> Step {
        if let Phase::Connecting { stream, .. } = &self.phase {
            let _ = cx
                .selector_signal
                .send(Request::RemoveWriter(stream.source()));
        }
        self.phase = Phase::Done;
        let _ = cx.signal.send(Control::ShutdownMicroprocess);
        Step::Done
    }

    /// Control messages before the connection is made: `producerFinished`
    /// is kept for the connection (or, waiting for the server to close,
    /// swallowed); anything else stops the client. Returns false if it
    /// must stop.
    fn early_control(&mut self, cx: &Cx<TcpClientBoxes>) -> bool {
        while let Some(msg) = cx.control.recv() {
            if !msg.is_producer_finished() {
                return false;
            }
            if !self.wait_for_serverclose {
                self.finished_early = Some(msg);
            }
        }
        true
    }

    /// Starts resolving, or, for an address, goes straight to connecting.
    fn resolve(&mut self, cx: &Cx<TcpClientBoxes>) -> Option<Step> {
        let (host, port) = match &self.target {
            Target::Addr(addr) => {
                self.addrs.push_back(*addr);
                self.phase = Phase::Next;
                return None;
            }
            Target::Host { host, port } => match literal(host) {
                Some(ip) => {
                    self.addrs.push_back(SocketAddr::new(ip, *port));
                    self.phase = Phase::Next;
                    return None;
                }
                None => (host.clone(), *port),
            },
        };
        let resolver = self
            .resolver
            .take()
            .unwrap_or_else(|| Box::new(system_resolve));
        // The thread owns only a postbox into `_resolved`: if the client
        // has ended by the time it answers, the answer waits in an inbox
        // nobody reads and is dropped with it.
        let to = cx.resolved.postbox();
        let spawned = thread::Builder::new()
            .name("tcpclient-resolver".into())
            .spawn(move || {
                let resolved = panic::catch_unwind(AssertUnwindSafe(|| resolver(&host, port)))
                    .unwrap_or_else(|_| Err(io::Error::other("the resolver panicked")));
                let _ = to.send(resolved);
            });
        if let Err(e) = spawned {
            return Some(self.fail(cx, &format_args!("cannot start a resolver thread: {e}")));
        }
        log::trace!("tcpclient: resolving {}", self.target);
        let until = after(self.connect_timeout);
        if let Some(until) = until {
            cx.wake_at(until);
        }
        self.phase = Phase::Resolving { until };
        Some(Step::Pause)
    }

    /// Starts connecting to the next address that accepts a connect, or
    /// gives up once none is left.
    fn connect_next(&mut self, cx: &Cx<TcpClientBoxes>) -> Step {
        while let Some(addr) = self.addrs.pop_front() {
            let stream = match TcpStream::connect(addr) {
                Ok(s) => Watched::new(s),
                Err(e) => {
                    self.failed(addr, e);
                    continue;
                }
            };
            log::trace!("tcpclient: connecting to {addr}");
            let _ = cx.selector_signal.send(Request::NewWriter(
                cx.connect_ready.postbox(),
                stream.source(),
            ));
            let until = after(self.connect_timeout);
            if let Some(until) = until {
                cx.wake_at(until);
            }
            self.phase = Phase::Connecting {
                stream,
                addr,
                until,
            };
            return Step::Pause;
        }
        match self.last_error.take() {
            Some((addr, e)) if matches!(self.target, Target::Host { .. }) => {
                self.fail(cx, &format_args!("{addr}: {e}"))
            }
            Some((_, e)) => self.fail(cx, &e),
            None => self.fail(cx, &"no address to connect to"),
        }
    }

    /// The connect to `addr` failed: remember why, and say so if another
    /// address is to be tried.
    fn failed(&mut self, addr: SocketAddr, e: io::Error) {
        if let Some(next) = self.addrs.front() {
            log::debug!("tcpclient: connect to {addr} failed: {e}; trying {next}");
        }
        self.last_error = Some((addr, e));
    }

    fn connected(
        &mut self,
        cx: &Cx<TcpClientBoxes>,
        stream: Watched<TcpStream>,
        addr: SocketAddr,
    ) -> Result<(), Box<dyn std::error::Error>> {
        log::debug!("tcpclient: connected to {} ({addr})", self.target);
        let _ = stream.set_nodelay(true);
        // Half-close on producerFinished: the server's replies to what was
        // sent last still arrive.
        let options = csa::CsaOptions {
            half_close: true,
            ..csa::CsaOptions::default()
        };
        let mut csa = Csa::shared(stream).with_peer(addr).with_options(options);
        if let Some(session) = self.session.take() {
            csa = csa.with_session(session);
        }
        if let Some(session) = self.starttls.take() {
            csa = csa.with_starttls_session(session);
        }
        let csa = Handle::new(csa);
        let me = cx.me().clone();
        // `inbox` before `makessl`: what waits in both moves on in that
        // order, so a STARTTLS command sent before the connection was made
        // is still written in the clear.
        cx.link((&me, "inbox"), (&csa, "inbox"))
            .and_then(|_| cx.link((&me, "makessl"), (&csa, "makessl")))
            .and_then(|_| cx.link((&csa, "outbox"), (&me, "outbox")))
            .and_then(|_| cx.link((&csa, "sslready"), (&me, "sslready")))
            .and_then(|_| cx.link((&csa, "CreatorFeedback"), (&me, "_socketFeedback")))?;
        cx.add_child(&csa);
        cx.activate(&csa)?;
        let control = csa.postbox("control").ok();
        if let (Some(p), Some(msg)) = (&control, self.finished_early.take()) {
            let _ = p.send(msg);
        }
        self.phase = Phase::Connected { csa, control };
        Ok(())
    }

    /// One phase's work; `None` to go straight on to the next phase in the
    /// same step.
    fn advance(&mut self, cx: &Cx<TcpClientBoxes>) -> Option<Step> {
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Delay(delay) => {
                self.phase = Phase::Waiting(after(delay));
                None
            }
            Phase::Waiting(at) => {
                self.phase = Phase::Waiting(at);
                if !self.early_control(cx) {
                    return Some(self.stop(cx, "before connecting"));
                }
                match at {
                    Some(at) if Instant::now() >= at => {
                        self.phase = Phase::Start;
                        None
                    }
                    Some(at) => {
                        cx.wake_at(at);
                        Some(Step::Pause)
                    }
                    None => Some(Step::Pause),
                }
            }
            Phase::Start => {
                if !self.early_control(cx) {
                    return Some(self.stop(cx, "before connecting"));
                }
                if let Err(e) = selector::link_to_selector(cx, "_selectorSignal") {
                    return Some(self.fail(cx, &e));
                }
                self.resolve(cx)
            }
            Phase::Resolving { until } => {
                self.phase = Phase::Resolving { until };
                if !self.early_control(cx) {
                    return Some(self.stop(cx, "while resolving"));
                }
                match cx.resolved.recv() {
                    Some(Ok(addrs)) if addrs.is_empty() => {
                        Some(self.fail(cx, &"the name has no addresses"))
                    }
                    Some(Ok(addrs)) => {
                        log::debug!("tcpclient: {} is {addrs:?}", self.target);
                        self.addrs.extend(addrs);
                        self.phase = Phase::Next;
                        None
                    }
                    Some(Err(e)) => Some(self.fail(cx, &format_args!("cannot resolve: {e}"))),
                    None if expired(until) => {
                        let timeout = self.connect_timeout;
                        Some(self.fail(cx, &format_args!("resolving timed out after {timeout:?}")))
                    }
                    None => Some(Step::Pause),
                }
            }
            Phase::Next => {
                if !self.early_control(cx) {
                    return Some(self.stop(cx, "before connecting"));
                }
                Some(self.connect_next(cx))
            }
            Phase::Connecting {
                stream,
                addr,
                until,
            } => {
                self.phase = Phase::Connecting {
                    stream: stream.clone(),
                    addr,
                    until,
                };
                if !self.early_control(cx) {
                    return Some(self.stop(cx, "while connecting"));
                }
                // Only a notice for this socket counts: one for an address
                // given up on may still arrive.
                let source = stream.source();
                let mut ready = false;
                while let Some(Ready(s)) = cx.connect_ready.recv() {
                    ready |= s.same(&source);
                }
                if !ready && !expired(until) {
                    return Some(Step::Pause);
                }
                // Writable (or out of time): has the connect finished?
                let outcome = match stream.take_error() {
                    Ok(Some(e)) | Err(e) => Err(e),
                    Ok(None) => stream.peer_addr().map(drop),
                };
                let outcome = match outcome {
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                        if !expired(until) {
                            // Spurious notice: still connecting; ask again.
                            let _ = cx
                                .selector_signal
                                .send(Request::NewWriter(cx.connect_ready.postbox(), source));
                            return Some(Step::Pause);
                        }
                        let timeout = self.connect_timeout;
                        Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("connect timed out after {timeout:?}"),
                        ))
                    }
                    other => other,
                };
                match outcome {
                    Ok(()) => {
                        self.phase = Phase::Done;
                        let registered = source.clone();
                        match self.connected(cx, stream, addr) {
                            Ok(()) => None,
                            Err(e) => {
                                let _ = cx.selector_signal.send(Request::RemoveWriter(registered));
                                Some(self.fail(cx, &e))
                            }
                        }
                    }
                    Err(e) => {
                        // Withdrawn from the Selector; the socket closes
                        // once the Selector lets go of it.
                        let _ = cx.selector_signal.send(Request::RemoveWriter(source));
                        drop(stream);
                        self.failed(addr, e);
                        self.phase = Phase::Next;
                        None
                    }
                }
            }
            Phase::Connected { csa, control } => {
                while let Some(msg) = cx.control.recv() {
                    if self.wait_for_serverclose && msg.is_producer_finished() {
                        // Kamaelia's wait_for_serverclose: the server's
                        // close ends the connection, not the producer's.
                        log::trace!("tcpclient: {msg:?} kept back until the server closes");
                        continue;
                    }
                    if let Some(p) = &control {
                        let _ = p.send(msg);
                    }
                }
                let feedback = cx.socket_feedback.recv();
                if feedback.is_some() || csa.is_done() {
                    cx.remove_child(&csa);
                    let how_died = feedback.and_then(|f| f.how_died);
                    let end = match &how_died {
                        // Over a session (TLS) an end out of order (a
                        // failed handshake, truncation, a reset) means what
                        // came may not be all: not an orderly finish.
                        Some(e) if self.secure => {
                            log::warn!("tcpclient: connection to {} ended: {e}", self.target);
                            Control::ShutdownMicroprocess
                        }
                        Some(e) => {
                            log::debug!("tcpclient: connection to {} ended: {e}", self.target);
                            Control::ProducerFinished
                        }
                        None => {
                            log::debug!("tcpclient: connection to {} ended", self.target);
                            Control::ProducerFinished
                        }
                    };
                    let _ = cx.signal.send(end);
                    return Some(Step::Done);
                }
                self.phase = Phase::Connected { csa, control };
                Some(Step::Pause)
            }
            Phase::Done => Some(Step::Done),
        }
    }
}

impl Component for TcpClient {
    type Boxes = TcpClientBoxes;

    fn name(&self) -> std::borrow::Cow<'static, str> {
        "TCPClient".into()
    }

    fn main(&mut self, cx: &mut Cx<TcpClientBoxes>) -> Step {
        loop {
            if let Some(step) = self.advance(cx) {
                return step;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_literals_need_no_resolver() {
        assert_eq!(literal("127.0.0.1"), Some(IpAddr::from([127, 0, 0, 1])));
        assert_eq!(literal("::1"), "::1".parse().ok());
        assert_eq!(literal("[::1]"), "::1".parse().ok());
        assert_eq!(literal("localhost"), None);
        assert_eq!(literal("[localhost]"), None);
    }

    #[test]
    fn targets_print_as_host_and_port() {
        assert_eq!(
            TcpClient::to_host("localhost", 80).target.to_string(),
            "localhost:80"
        );
        assert_eq!(TcpClient::to_host("::1", 80).target.to_string(), "[::1]:80");
        assert_eq!(
            TcpClient::to_host("[::1]", 80).target.to_string(),
            "[::1]:80"
        );
        let addr: SocketAddr = "127.0.0.1:7".parse().unwrap();
        assert_eq!(
            format!("{:?}", TcpClient::new(addr)),
            "TcpClient(127.0.0.1:7)"
        );
    }

    #[test]
    fn a_huge_delay_or_timeout_does_not_overflow() {
        assert_eq!(after(Duration::MAX), None);
        assert!(!expired(None));
        let _ = TcpClient::to_host("localhost", 1)
            .delayed(Duration::MAX)
            .with_connect_timeout(Duration::MAX);
    }
}
