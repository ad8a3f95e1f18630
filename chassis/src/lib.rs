//! # ServerCore and SimpleServer
//!
//! New here? The [`guide`] walks through an echo server step by step.
//!
//! Kamaelia's `Kamaelia.Chassis.ConnectedServer` (rules H1–H6 of
//! `PROTOCOL.md`): a [`TcpServer`] child plus, for every connection, a
//! *protocol handler* component made by a factory and wired to the
//! connection's CSA.
//!
//! ```no_run
//! use axon::{Boxes, Component, Control, Cx, Handle, Step};
//! use chassis::SimpleServer;
//!
//! /// Upper-cases everything a client sends.
//! struct Shout;
//! impl Component for Shout {
//!     fn boxes(&self) -> Boxes { Boxes::standard::<Vec<u8>, Vec<u8>>() }
//!     fn main(&mut self, cx: &mut Cx<'_>) -> Step {
//!         while let Some(bytes) = cx.recv::<Vec<u8>>("inbox") {
//!             let _ = cx.send(bytes.to_ascii_uppercase(), "outbox");
//!         }
//!         match cx.recv::<Control>("control") {
//!             Some(_) => { let _ = cx.send(Control::ProducerFinished, "signal"); Step::Done }
//!             None => Step::Pause,
//!         }
//!     }
//! }
//!
//! let scheduler = selector::scheduler().unwrap();
//! let server = SimpleServer::new(|| Handle::new(Shout), "127.0.0.1:1601".parse().unwrap(),
//!                                Default::default()).unwrap();
//! println!("listening on {}", server.local_addr());
//! scheduler.activate(&Handle::new(server)).unwrap();
//! scheduler.run();
//! ```
//!
//! ## The protocol handler contract (H6)
//!
//! A handler has at least the standard boxes, with `Vec<u8>` in `inbox` and
//! `outbox` and [`Control`] in `control` and `signal`:
//!
//! - bytes from the client arrive in `inbox`; bytes sent out of `outbox` go
//!   to the client;
//! - [`Control::SocketShutdown`] in `control` means the client will send no
//!   more: either it shut down its write side (C7) or the connection is
//!   gone (H3). Finish the reply, then send `producerFinished` out of
//!   `signal`, and end;
//! - sending `producerFinished` out of `signal` closes the connection once
//!   everything sent has been written; `shutdownMicroprocess` closes it at
//!   once;
//! - an optional `serversignal` outbox (carrying [`Control`]) reaches the
//!   ServerCore's `control`: a handler can stop the whole server.
//!
//! Handlers should honour "no space in box" (A5) on `outbox`: keep the
//! message and pause. Their `inbox` is bounded (16 messages), which is what
//! stops the CSA reading from a client faster than the handler works (C3).
//!
//! ## ServerCore boxes
//!
//! | box | direction | carries | meaning |
//! |---|---|---|---|
//! | `control` | inbox | [`Control`] | `shutdownMicroprocess` / `serverShutdown`: close every connection now, stop the server (H4); `producerFinished`: stop the server gracefully: each connection stops reading, its handler is told (`socketShutdown`, as on a client's half-close) and finishes, and everything it sent is written before the close |
//! | `_socketactivity` | inbox | [`ServerEvent`] | `newCSA` / `shutdownCSA` from the TCPServer |
//! | `_serversignal` | outbox | [`Control`] | `serverShutdown` to the TCPServer's `control` |
//! | `signal` | outbox | [`Control`] | `producerFinished` when everything has ended |
//!
//! Kamaelia gives ServerCore two new outboxes per connection, linked to the
//! handler's and the CSA's `control`. Here a [`Postbox`](axon::Postbox) to
//! the component's `control` is made when there is something to say (H3,
//! H4): the same typed, direct delivery without adding boxes at run time or
//! keeping anything per connection.

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

pub mod guide;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;

use axon::{Boxes, Component, Control, Cx, Handle, Step};
pub use tcpserver::{BindError, ServerEvent, ServerOptions, TcpServer};

/// The size limit of a handler's `inbox`, in messages (C3 backpressure).
pub const HANDLER_INBOX_LIMIT: usize = 16;

/// What a protocol factory learns about a new connection (H2: Kamaelia's
/// `protocol(peer=…, peerport=…, localip=…, localport=…)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The client's address and port.
    pub peer: SocketAddr,
    /// Our address and port on this connection.
    pub local: SocketAddr,
}

/// Makes one protocol handler per connection.
pub type Protocol = Box<dyn FnMut(&ConnectionInfo) -> Handle + Send>;

struct Connection {
    handler: Handle,
    csa: Handle,
}

/// Sends `msg` to a component's `control` inbox. Kamaelia's ServerCore adds
/// an outbox per destination; a postbox made when needed does the same
/// without keeping one per connection. A full or missing `control` (a
/// handler that declared none) loses the message, as an unlinked outbox
/// would.
fn tell(component: &Handle, msg: Control) {
    match component.postbox::<Control>("control") {
        Ok(p) => {
            if p.send(msg).is_err() {
                log::debug!("servercore: {component:?}'s control inbox is full");
            }
        }
        Err(e) => log::debug!("servercore: {e}"),
    }
}

/// H2's linkages between a connection's CSA and handler (and, if the handler
/// has a `serversignal` outbox, from it to the ServerCore `me`).
type Ends<'a> = (&'a Handle, &'static str);

fn wiring<'a>(csa: &'a Handle, handler: &'a Handle, me: &'a Handle) -> Vec<(Ends<'a>, Ends<'a>)> {
    let mut pairs = vec![
        ((csa, "outbox"), (handler, "inbox")),
        ((handler, "outbox"), (csa, "inbox")),
        ((handler, "signal"), (csa, "control")),
        ((csa, "readShutdown"), (handler, "control")),
    ];
    if handler.has_box("serversignal") {
        pairs.push(((handler, "serversignal"), (me, "control")));
    }
    pairs
}

/// Kamaelia's `ServerCore(protocol, port, socketOptions)` (H1–H4).
pub struct ServerCore {
    server: Handle,
    local_addr: SocketAddr,
    protocol: Protocol,
    connections: HashMap<u64, Connection>,
    started: bool,
    stopping: bool,
}

impl fmt::Debug for ServerCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ServerCore({}, {} connections)",
            self.local_addr,
            self.connections.len()
        )
    }
}

impl ServerCore {
    /// Binds now (so a port in use is an error here, T2) and returns the
    /// component; activate `Handle::new(core)` on a scheduler made by
    /// [`selector::scheduler`].
    pub fn new<F>(
        protocol: F,
        addr: SocketAddr,
        options: ServerOptions,
    ) -> Result<ServerCore, BindError>
    where
        F: FnMut(&ConnectionInfo) -> Handle + Send + 'static,
    {
        let server = TcpServer::bind(addr, options)?;
        let local_addr = server.local_addr();
        Ok(ServerCore {
            server: Handle::new(server),
            local_addr,
            protocol: Box::new(protocol),
            connections: HashMap::new(),
            started: false,
            stopping: false,
        })
    }

    /// The address listened on (the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// H2.
    fn new_connection(&mut self, cx: &mut Cx<'_>, n: tcpserver::NewCsa) {
        let info = ConnectionInfo {
            peer: n.peer,
            local: n.local,
        };
        let handler = (self.protocol)(&info);
        let _ = handler.set_inbox_size("inbox", Some(HANDLER_INBOX_LIMIT));
        let me = cx.me().clone();
        let csa = n.csa;
        // H2's linkages. None is recorded: H3 removes them by their ends
        // (`axon::unlink_boxes`), so a connection costs no linkage records.
        let mut wired = Ok(());
        for (src, dst) in wiring(&csa, &handler, &me) {
            if let Err(e) = axon::link(src, dst) {
                wired = Err(e);
                break;
            }
        }
        cx.add_child(&handler);
        cx.add_child(&csa);
        let conn = Connection {
            handler: handler.clone(),
            csa: csa.clone(),
        };
        if let Err(e) = wired {
            log::error!("servercore: cannot wire a handler for {}: {e}", info.peer);
            tell(&conn.csa, Control::ShutdownMicroprocess);
        } else if self.stopping {
            tell(&conn.csa, Control::ShutdownMicroprocess);
        }
        self.connections.insert(csa.id(), conn);
        for c in [&handler, &csa] {
            if let Err(e) = cx.activate(c) {
                log::error!("servercore: {e}");
            }
        }
    }

    /// H3.
    fn connection_closed(&mut self, cx: &mut Cx<'_>, csa: Handle) {
        let Some(conn) = self.connections.remove(&csa.id()) else {
            return;
        };
        tell(&conn.handler, Control::SocketShutdown);
        tell(&csa, Control::ShutdownMicroprocess);
        let me = cx.me().clone();
        for (src, dst) in wiring(&csa, &conn.handler, &me) {
            axon::unlink_boxes(src, dst);
        }
        cx.remove_child(&conn.handler);
        cx.remove_child(&csa);
    }

    /// H4: close every connection (gracefully for producerFinished) and
    /// stop the server.
    fn stop(&mut self, cx: &mut Cx<'_>, msg: &Control) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        log::info!("servercore {}: stopping ({msg:?})", self.local_addr);
        // Graceful: each CSA stops reading and tells its handler, exactly
        // as when a client half-closes (C7); the handler finishes its
        // reply and says producerFinished; the CSA writes it all and
        // closes (within its linger time). So every byte taken from a
        // client is answered. Otherwise: close now.
        let close = if msg.is_producer_finished() {
            Control::SocketShutdown
        } else {
            Control::ShutdownMicroprocess
        };
        for conn in self.connections.values() {
            tell(&conn.csa, close.clone());
        }
        let _ = cx.send(Control::ServerShutdown, "_serversignal");
    }
}

impl Component for ServerCore {
    fn boxes(&self) -> Boxes {
        Boxes::new()
            .inbox::<Control>("control", "shutdown: close every connection and stop")
            .inbox::<ServerEvent>("_socketactivity", "newCSA / shutdownCSA from the TCPServer")
            .outbox::<Control>("_serversignal", "serverShutdown to the TCPServer")
            .outbox::<Control>("signal", "producerFinished when everything has ended")
    }

    fn name(&self) -> std::borrow::Cow<'static, str> {
        "ServerCore".into()
    }

    fn main(&mut self, cx: &mut Cx<'_>) -> Step {
        if !self.started {
            self.started = true;
            let me = cx.me().clone();
            let server = self.server.clone();
            cx.add_child(&server);
            let linked = cx
                .link((&server, "protocolHandlerSignal"), (&me, "_socketactivity"))
                .and_then(|_| cx.link((&me, "_serversignal"), (&server, "control")));
            if let Err(e) = linked {
                log::error!("servercore: {e}");
                return Step::Done;
            }
            if let Err(e) = cx.activate(&server) {
                log::error!("servercore: {e}");
                return Step::Done;
            }
        }
        while let Some(event) = cx.recv::<ServerEvent>("_socketactivity") {
            match event {
                ServerEvent::NewCsa(n) => self.new_connection(cx, n),
                ServerEvent::ShutdownCsa { csa, .. } => self.connection_closed(cx, csa),
            }
        }
        while let Some(msg) = cx.recv::<Control>("control") {
            self.stop(cx, &msg);
        }
        if self.stopping {
            // The TCPServer has gone, and with it the feedback linkage: a
            // CSA's end is seen here, as the end of a child (A7).
            let ended: Vec<Handle> = self
                .connections
                .values()
                .filter(|c| c.csa.is_done())
                .map(|c| c.csa.clone())
                .collect();
            for csa in ended {
                self.connection_closed(cx, csa);
            }
        }
        if self.stopping && self.connections.is_empty() && self.server.is_done() {
            let _ = cx.send(Control::ProducerFinished, "signal");
            log::info!("servercore {}: stopped", self.local_addr);
            return Step::Done;
        }
        Step::Pause
    }
}

/// Kamaelia's `SimpleServer(protocol, port)` (H5): a [`ServerCore`] whose
/// factory takes no connection details.
#[derive(Debug)]
pub struct SimpleServer;

impl SimpleServer {
    /// A ServerCore calling `protocol()` for each connection.
    #[allow(clippy::new_ret_no_self)]
    pub fn new<F>(
        mut protocol: F,
        addr: SocketAddr,
        options: ServerOptions,
    ) -> Result<ServerCore, BindError>
    where
        F: FnMut() -> Handle + Send + 'static,
    {
        ServerCore::new(move |_: &ConnectionInfo| protocol(), addr, options)
    }
}
