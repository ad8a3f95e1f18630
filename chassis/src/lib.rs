//! # ServerCore and SimpleServer
//!
//! New here? The [`guide`] walks through an echo server step by step.
//! For one connection at a time whose bytes are a component's own boxes,
//! see [`SingleServer`] (Kamaelia's `Kamaelia.Internet.SingleServer`).
//!
//! Kamaelia's `Kamaelia.Chassis.ConnectedServer` (rules H1–H6 of the
//! project's `docs/PROTOCOL.md`): a [`TcpServer`] child plus, for every
//! connection, a *protocol handler* component made by a factory and wired
//! to the connection's CSA.
//!
//! ```
//! use axon::{Component, Control, Cx, Standard, Step};
//! use chassis::{ServerOptions, SimpleServer};
//!
//! /// Upper-cases everything a client sends.
//! #[derive(Default)]
//! struct Shout {
//!     /// A reply the connection had no room for yet (A5).
//!     held: Option<Vec<u8>>,
//! }
//!
//! impl Component for Shout {
//!     type Boxes = Standard<Vec<u8>, Vec<u8>>;
//!
//!     fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
//!         let next = |cx: &Cx<Self::Boxes>| cx.inbox.recv().map(|b| b.to_ascii_uppercase());
//!         while let Some(reply) = self.held.take().or_else(|| next(cx)) {
//!             if let Err(full) = cx.outbox.send(reply) {
//!                 self.held = Some(full.into_inner()); // woken when there is room
//!                 return Step::Pause;
//!             }
//!         }
//!         // socketShutdown: the client will send no more. Close once written
//!         // (a control inbox is unbounded: this send cannot fail).
//!         if cx.control.recv().is_some() {
//!             let _ = cx.signal.send(Control::ProducerFinished);
//!             return Step::Done;
//!         }
//!         Step::Pause
//!     }
//! }
//!
//! let server = SimpleServer::new(Shout::default, "127.0.0.1:0".parse().unwrap(),
//!                                ServerOptions::default()).unwrap();
//! println!("listening on {}", server.local_addr());
//! # let addr = server.local_addr();
//! # let scheduler = selector::scheduler().unwrap();
//! # let core = scheduler.activate(server).unwrap();
//! # let stop = scheduler.handle();
//! # let running = std::thread::spawn(move || scheduler.run());
//! # // A slow reader: every byte comes back, upper-cased, in order.
//! # use std::io::{Read, Write};
//! # let sent: Vec<u8> = (0..16u32 << 20).map(|i| b'a' + (i % 26) as u8).collect();
//! # let mut client = std::net::TcpStream::connect(addr).unwrap();
//! # client.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
//! # let writer = { let mut w = client.try_clone().unwrap(); let sent = sent.clone();
//! #     std::thread::spawn(move || { w.write_all(&sent).unwrap();
//! #         w.shutdown(std::net::Shutdown::Write).unwrap(); }) };
//! # let mut got = Vec::new();
//! # let mut buf = vec![0u8; 64 * 1024];
//! # loop {
//! #     let n = client.read(&mut buf).unwrap();
//! #     if n == 0 { break; }
//! #     got.extend_from_slice(&buf[..n]);
//! #     std::thread::sleep(std::time::Duration::from_millis(1)); // a slow reader
//! # }
//! # writer.join().unwrap();
//! # assert_eq!(got.len(), sent.len(), "bytes lost");
//! # assert!(got == sent.to_ascii_uppercase(), "bytes changed");
//! # stop.stop();
//! # running.join().unwrap();
//! # drop(core);
//! ```
//!
//! To run it as a program, [`ServerCore::run`] does the rest: a Selector
//! scheduler, and SIGINT/SIGTERM as a graceful stop.
//!
//! ```no_run
//! # use axon::{Component, Cx, Standard, Step};
//! # #[derive(Default)] struct Shout;
//! # impl Component for Shout {
//! #     type Boxes = Standard<Vec<u8>, Vec<u8>>;
//! #     fn main(&mut self, _: &mut Cx<Self::Boxes>) -> Step { Step::Done }
//! # }
//! use chassis::SimpleServer;
//!
//! fn main() -> std::io::Result<()> {
//!     SimpleServer::new(Shout::default, "127.0.0.1:1601".parse().unwrap(), Default::default())?
//!         .run()
//! }
//! ```
//!
//! ## The protocol handler contract (H6)
//!
//! A handler has at least the standard boxes ([`axon::Standard`]), with
//! `Vec<u8>` in `inbox` and `outbox` and [`Control`] in `control` and
//! `signal`:
//!
//! - bytes from the client arrive in `inbox`; bytes sent out of `outbox` go
//!   to the client;
//! - [`Control::SocketShutdown`] in `control` means the client will send no
//!   more: either it shut down its write side (C7) or the connection is
//!   gone (H3). Finish the reply, then send `producerFinished` out of
//!   `signal`, and end;
//! - sending `producerFinished` out of `signal` closes the connection once
//!   everything sent has been written; `shutdownMicroprocess` closes it
//!   after one pass writing what is queued (C5);
//! - a handler that ends any other way (returns without
//!   `producerFinished`, or panics) has its connection closed for it, and
//!   what it sent is still written: the client is never left waiting;
//! - an optional `serversignal` outbox (carrying [`Control`]) reaches the
//!   ServerCore's `control`: a handler can stop the whole server;
//! - an optional `makessl` outbox (carrying `()`) reaches the CSA's, and the
//!   CSA's `sslready` (carrying `csa::SslReady`) reaches an optional
//!   `sslready` inbox: STARTTLS in the CSA, on a server whose
//!   `ServerOptions::starttls` says which sessions (see `csa::Csa::with_starttls`).
//!
//! Handlers must honour "no space in box" (A5) on `outbox`: keep the
//! message and pause, as `Shout` does. Their `inbox` is bounded (16
//! messages), which is what stops the CSA reading from a client faster
//! than the handler works (C3).
//!
//! ## Wrapping connections
//!
//! Kamaelia let a subclass replace `ServerCore.TCPS` (the TCPServer class)
//! and `TCPServer.CSA` (the class made per connection), to put something
//! around every connection. Here: build the [`TcpServer`] yourself (bind,
//! options), give it a factory with [`TcpServer::with_csa`] that wraps
//! each connection's [`Csa`], and hand it to [`ServerCore::with_server`]
//! (or [`SimpleServer::with_server`]). The wrapper stands for the
//! connection: ServerCore wires the handler to it and tells it what it
//! would tell the CSA, so it must present the CSA's boxes (`inbox`,
//! `control`, `ReadReady`, `SendReady`, `outbox`, `readShutdown`,
//! `CreatorFeedback`; see the `tcpserver` crate docs). A
//! [`Graphline`](axon::Graphline) with the CSA as a child does it.
//!
//! Here a tap counts the bytes clients send. It sits between the CSA and
//! the handler, and carries the CSA's `readShutdown` too, after the bytes
//! it has passed on: the handler hears that the client will send no more
//! only once it has every byte (C7), as it would from the CSA itself.
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//! use axon::{boxes, Component, Control, Cx, Graphline, Handle, Inbox, Outbox, Step};
//! use chassis::{ConnectionInfo, Csa, ServerOptions, SimpleServer, TcpServer};
//!
//! boxes! {
//!     /// The tap's boxes.
//!     pub struct TapBoxes {
//!         /// bytes from the CSA
//!         pub inbox: Inbox<Vec<u8>>,
//!         /// the CSA's readShutdown
//!         pub control: Inbox<Control>,
//!         /// the CSA's shutdownCSA: the connection is over
//!         #[name = "csaSignal"]
//!         pub csa_signal: Inbox<csa::ShutdownCsa>,
//!         /// the bytes, on to the handler
//!         pub outbox: Outbox<Vec<u8>>,
//!         /// readShutdown, on to the handler after the bytes
//!         pub signal: Outbox<Control>,
//!     }
//! }
//!
//! /// Counts the bytes a client sends.
//! struct Tap {
//!     count: Arc<AtomicUsize>,
//!     held: Option<Vec<u8>>,
//! }
//!
//! impl Component for Tap {
//!     type Boxes = TapBoxes;
//!
//!     fn main(&mut self, cx: &mut Cx<TapBoxes>) -> Step {
//!         let over = cx.csa_signal.recv().is_some();
//!         let next = |cx: &Cx<TapBoxes>| cx.inbox.recv().inspect(|b| {
//!             self.count.fetch_add(b.len(), Ordering::Relaxed);
//!         });
//!         while let Some(chunk) = self.held.take().or_else(|| next(cx)) {
//!             if let Err(full) = cx.outbox.send(chunk) {
//!                 if over {
//!                     return Step::Done; // the socket is gone
//!                 }
//!                 self.held = Some(full.into_inner()); // woken when there is room (A5)
//!                 return Step::Pause;
//!             }
//!         }
//!         while let Some(c) = cx.control.recv() {
//!             let _ = cx.signal.send(c);
//!         }
//!         if over { Step::Done } else { Step::Pause }
//!     }
//! }
//!
//! /// The wrapper: the CSA and a tap, presenting the CSA's boxes.
//! fn counted(csa: Csa, count: &Arc<AtomicUsize>) -> Handle {
//!     let csa = Handle::new(csa);
//!     let tap = Handle::new(Tap { count: count.clone(), held: None });
//!     // The CSA stops reading while the tap is full (C3).
//!     let _ = tap.set_inbox_size("inbox", Some(chassis::HANDLER_INBOX_LIMIT));
//!     let wrapper = Graphline::new(
//!         vec![("csa", csa.clone()), ("tap", tap)],
//!         &[
//!             (("self", "inbox"), ("csa", "inbox")),
//!             (("self", "control"), ("csa", "control")),
//!             (("self", "ReadReady"), ("csa", "ReadReady")),
//!             (("self", "SendReady"), ("csa", "SendReady")),
//!             (("csa", "CreatorFeedback"), ("self", "CreatorFeedback")),
//!             (("csa", "outbox"), ("tap", "inbox")),
//!             (("csa", "readShutdown"), ("tap", "control")),
//!             (("csa", "signal"), ("tap", "csaSignal")),
//!             (("tap", "outbox"), ("self", "outbox")),
//!             (("tap", "signal"), ("self", "readShutdown")),
//!         ],
//!     );
//!     wrapper.map_or(csa, Handle::new) // cannot fail with fresh children
//! }
//!
//! let count = Arc::new(AtomicUsize::new(0));
//! let counter = count.clone();
//! let server = TcpServer::bind("127.0.0.1:0".parse().unwrap(), ServerOptions::default())
//!     .unwrap()
//!     .with_csa(move |csa, _: &ConnectionInfo| counted(csa, &counter));
//! let server = SimpleServer::with_server(examples_echo::Echo::default, server);
//! # let addr = server.local_addr();
//! # let scheduler = selector::scheduler().unwrap();
//! # let _core = scheduler.activate(server).unwrap();
//! # let stop = scheduler.handle();
//! # let running = std::thread::spawn(move || scheduler.run());
//! # use std::io::{Read, Write};
//! # let mut client = std::net::TcpStream::connect(addr).unwrap();
//! # client.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
//! # client.write_all(b"hello").unwrap();
//! # client.shutdown(std::net::Shutdown::Write).unwrap();
//! # let mut reply = Vec::new();
//! # client.read_to_end(&mut reply).unwrap();
//! # assert_eq!(reply, b"hello");
//! # assert_eq!(count.load(Ordering::Relaxed), 5);
//! # stop.stop();
//! # running.join().unwrap();
//! # mod examples_echo {
//! #     use axon::{Component, Control, Cx, Standard, Step};
//! #     #[derive(Default)]
//! #     pub struct Echo { held: Option<Vec<u8>> }
//! #     impl Component for Echo {
//! #         type Boxes = Standard<Vec<u8>, Vec<u8>>;
//! #         fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
//! #             while let Some(b) = self.held.take().or_else(|| cx.inbox.recv()) {
//! #                 if let Err(full) = cx.outbox.send(b) {
//! #                     self.held = Some(full.into_inner());
//! #                     return Step::Pause;
//! #                 }
//! #             }
//! #             if cx.control.recv().is_some() {
//! #                 let _ = cx.signal.send(Control::ProducerFinished);
//! #                 return Step::Done;
//! #             }
//! #             Step::Pause
//! #         }
//! #     }
//! # }
//! ```
//!
//! [`ServerCore::new`] is `with_server` around `TcpServer::bind`: without
//! `with_csa`, each connection is its CSA, at no extra cost.
//!
//! ## Many cores
//!
//! [`ServerCore::threads`] spreads the connections over shards, each a
//! thread with a scheduler, Selector, TCPServer and ServerCore of its own;
//! one acceptor hands each new socket to the least busy shard
//! ([`TcpServer::into_shards`]). The protocol factory is `Clone`: each
//! shard makes its handlers with its own copy, on its own thread. Services
//! registered on the scheduler the ServerCore runs on (a Backplane) are
//! found from every shard.
//!
//! ```
//! # use axon::{Component, Control, Cx, Standard, Step};
//! # #[derive(Default, Clone)] struct Shout;
//! # impl Component for Shout {
//! #     type Boxes = Standard<Vec<u8>, Vec<u8>>;
//! #     fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
//! #         while let Some(b) = cx.inbox.recv() { let _ = cx.outbox.send(b.to_ascii_uppercase()); }
//! #         if cx.control.recv().is_some() { let _ = cx.signal.send(Control::ProducerFinished); return Step::Done; }
//! #         Step::Pause
//! #     }
//! # }
//! use chassis::{ServerOptions, SimpleServer};
//! use std::io::{Read, Write};
//!
//! let server = SimpleServer::new(Shout::default, "127.0.0.1:0".parse().unwrap(),
//!                                ServerOptions::default())?
//!     .threads(2)?;
//! let addr = server.local_addr();
//! let scheduler = selector::scheduler()?;
//! let core = scheduler.activate(server).unwrap();
//! let running = std::thread::spawn(move || scheduler.run());
//! let mut client = std::net::TcpStream::connect(addr)?;
//! client.write_all(b"hi")?;
//! let mut back = [0u8; 2];
//! client.read_exact(&mut back)?;
//! assert_eq!(&back, b"HI");
//! // A graceful stop: every shard finishes, then the scheduler returns.
//! core.postbox::<Control>("control").unwrap().send(Control::ProducerFinished).unwrap();
//! running.join().unwrap();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! ## ServerCore boxes
//!
//! | box | direction | carries | meaning |
//! |---|---|---|---|
//! | `control` | inbox | [`Control`] | `shutdownMicroprocess` / `serverShutdown`: close every connection now, stop the server (H4); `producerFinished`: stop the server gracefully: each connection reads what its client has already sent, stops reading, its handler is told (`socketShutdown`, as on a client's half-close) and finishes, and everything it sent is written before the close |
//! | `_socketactivity` | inbox | [`ServerEvent`] | `newCSA` / `shutdownCSA` from the TCPServer |
//! | `_shardsignal` | inbox | [`Control`] | with [`threads`](ServerCore::threads): `producerFinished` from each shard's ServerCore as it ends |
//! | `_serversignal` | outbox | [`Control`] | `serverShutdown` to the TCPServer's `control` (sharded: the stop message itself, which the acceptor passes on to the shards) |
//! | `signal` | outbox | [`Control`] | `producerFinished` when everything has ended (sharded: every shard too) |
//!
//! Kamaelia gives ServerCore two new outboxes per connection, linked to the
//! handler's and the CSA's `control`. Here a [`Postbox`](axon::Postbox) to
//! the component's `control` is made when there is something to say (H3,
//! H4): the same typed, direct delivery without adding boxes at run time or
//! keeping anything per connection.

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

pub mod guide;
mod shards;
mod signals;
mod single;

use rustc_hash::FxHashMap as HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;

use axon::{boxes, BoxKey, BoxName, Component, Control, Cx, Handle, Inbox, Outbox, Step};
pub use signals::{SignalStop, DRAIN};
pub use single::{BridgeEvent, SingleServer, SingleServerBoxes};
pub use tcpserver::{
    BindError, ConnectionInfo, Csa, NewCsa, ServerEvent, ServerOptions, TcpServer,
};

/// The size limit of a handler's `inbox`, in messages (C3 backpressure).
pub const HANDLER_INBOX_LIMIT: usize = 16;

/// Makes one protocol handler per connection; `fork` makes another for a
/// shard ([`ServerCore::threads`]).
trait Protocol: Send {
    fn make(&mut self, info: &ConnectionInfo) -> Handle;
    fn fork(&self) -> Box<dyn Protocol>;
}

impl<F, H> Protocol for F
where
    F: FnMut(&ConnectionInfo) -> H + Clone + Send + 'static,
    H: Into<Handle>,
{
    fn make(&mut self, info: &ConnectionInfo) -> Handle {
        self(info).into()
    }

    fn fork(&self) -> Box<dyn Protocol> {
        Box::new(self.clone())
    }
}

struct Connection {
    handler: Handle,
    csa: Handle,
    /// For the logs (16 bytes where a `SocketAddr` is 32).
    peer: csa::Peer,
    /// The handler's optional boxes, looked up once.
    extras: Extras,
}

/// Which of H2's optional boxes a handler has (one pass over its boxes).
#[derive(Clone, Copy, Default)]
struct Extras {
    /// `serversignal` (to the ServerCore's `control`).
    serversignal: bool,
    /// A `makessl` outbox (to the CSA's, STARTTLS).
    makessl: bool,
    /// An `sslready` inbox (from the CSA's).
    sslready: bool,
}

impl Extras {
    fn of(handler: &Handle) -> Extras {
        let mut extras = Extras::default();
        for (name, direction) in handler.box_names() {
            match (name, direction) {
                ("serversignal", _) => extras.serversignal = true,
                ("makessl", axon::Direction::Outbox) => extras.makessl = true,
                ("sslready", axon::Direction::Inbox) => extras.sslready = true,
                _ => {}
            }
        }
        extras
    }
}

/// Sends `msg` to a component's `control` inbox. Kamaelia's ServerCore adds
/// an outbox per destination; a postbox made when needed does the same
/// without keeping one per connection. A full or missing `control` (a
/// handler that declared none) loses the message, as an unlinked outbox
/// would.
fn tell(component: &Handle, control: impl BoxName, msg: Control) {
    match component.postbox::<Control>(control) {
        Ok(p) => {
            if p.send(msg).is_err() {
                log::debug!("servercore: {component:?}'s control inbox is full");
            }
        }
        Err(e) => log::debug!("servercore: {e}"),
    }
}

/// H2's boxes as [`BoxKey`]s: found by name once, then by their places
/// in every CSA and every handler of the same type, so that wiring a
/// connection (and unwiring it) compares no names.
struct Keys {
    csa: CsaKeys,
    handler: HandlerKeys,
    /// The `control` of the ServerCore a `serversignal` reaches.
    me_control: BoxKey,
}

/// The CSA's ends of H2's linkages.
struct CsaKeys {
    outbox: BoxKey,
    inbox: BoxKey,
    control: BoxKey,
    read_shutdown: BoxKey,
    makessl: BoxKey,
    sslready: BoxKey,
}

impl CsaKeys {
    fn of(csa: &Handle) -> CsaKeys {
        CsaKeys {
            outbox: csa.box_key("outbox"),
            inbox: csa.box_key("inbox"),
            control: csa.box_key("control"),
            read_shutdown: csa.box_key("readShutdown"),
            makessl: csa.box_key("makessl"),
            sslready: csa.box_key("sslready"),
        }
    }
}

/// The handler's ends, and which optional boxes its type has.
struct HandlerKeys {
    inbox: BoxKey,
    outbox: BoxKey,
    signal: BoxKey,
    control: BoxKey,
    serversignal: BoxKey,
    makessl: BoxKey,
    sslready: BoxKey,
    extras: Extras,
}

impl HandlerKeys {
    fn of(handler: &Handle) -> HandlerKeys {
        HandlerKeys {
            inbox: handler.box_key("inbox"),
            outbox: handler.box_key("outbox"),
            signal: handler.box_key("signal"),
            control: handler.box_key("control"),
            serversignal: handler.box_key("serversignal"),
            makessl: handler.box_key("makessl"),
            sslready: handler.box_key("sslready"),
            extras: Extras::of(handler),
        }
    }
}

impl Keys {
    /// The keys for this connection's components: the last ones if they
    /// are of the same types (the usual case), found anew if not.
    fn fit<'k>(
        keys: &'k mut Option<Box<Keys>>,
        csa: &Handle,
        handler: &Handle,
        me: &Handle,
    ) -> &'k Keys {
        let k = keys.get_or_insert_with(|| {
            Box::new(Keys {
                csa: CsaKeys::of(csa),
                handler: HandlerKeys::of(handler),
                me_control: me.box_key("control"),
            })
        });
        if !csa.fits(&k.csa.outbox) {
            k.csa = CsaKeys::of(csa);
        }
        if !handler.fits(&k.handler.inbox) {
            k.handler = HandlerKeys::of(handler);
        }
        if !me.fits(&k.me_control) {
            k.me_control = me.box_key("control");
        }
        k
    }
}

/// H2's linkages between a connection's CSA and handler (and, if the handler
/// has a `serversignal` outbox, from it to the ServerCore `me`).
type Ends<'a> = (&'a Handle, &'a BoxKey);

/// `me` is the ServerCore a handler's `serversignal` reaches: on a shard,
/// the one that stands for the whole server. `keys` name the boxes (by
/// name where they do not fit these components).
fn wiring<'a>(
    keys: &'a Keys,
    csa: &'a Handle,
    handler: &'a Handle,
    me: &'a Handle,
    extras: Extras,
) -> [Option<(Ends<'a>, Ends<'a>)>; 7] {
    let (c, h) = (&keys.csa, &keys.handler);
    // An array, not a Vec: this runs twice per connection.
    [
        Some(((csa, &c.outbox), (handler, &h.inbox))),
        Some(((handler, &h.outbox), (csa, &c.inbox))),
        Some(((handler, &h.signal), (csa, &c.control))),
        Some(((csa, &c.read_shutdown), (handler, &h.control))),
        extras
            .serversignal
            .then_some(((handler, &h.serversignal), (me, &keys.me_control))),
        // STARTTLS in the CSA (`ServerOptions::starttls`), Kamaelia's boxes.
        extras
            .makessl
            .then_some(((handler, &h.makessl), (csa, &c.makessl))),
        extras
            .sslready
            .then_some(((csa, &c.sslready), (handler, &h.sslready))),
    ]
}

boxes! {
    /// The ServerCore's boxes (see the crate docs).
    pub struct ServerCoreBoxes {
        /// shutdown: close every connection and stop (producerFinished: gracefully)
        pub control: Inbox<Control>,
        /// newCSA / shutdownCSA from the TCPServer
        #[name = "_socketactivity"]
        pub socket_activity: Inbox<ServerEvent>,
        /// serverShutdown to the TCPServer
        #[name = "_serversignal"]
        pub server_signal: Outbox<Control>,
        /// producerFinished from each shard's ServerCore (with threads(n))
        #[name = "_shardsignal"]
        pub shard_signal: Inbox<Control>,
        /// producerFinished when everything has ended
        pub signal: Outbox<Control>,
    }
}

/// Kamaelia's `ServerCore(protocol, port, socketOptions)` (H1–H4).
pub struct ServerCore {
    /// The TCPServer until it starts (so [`threads`](Self::threads) can
    /// split it), then its handle.
    server: Server,
    local_addr: SocketAddr,
    protocol: Box<dyn Protocol>,
    /// The shards to spread connections over (none: today's code path),
    /// made by [`threads`](Self::threads), run once this starts.
    shards: shards::Shards,
    /// How the shards get their connections.
    accept: Accept,
    /// On a shard: the ServerCore that stands for the whole server (its
    /// handlers' `serversignal` goes there).
    top: Option<Handle>,
    /// Keyed by the CSA's id. (A handler's connection is found through
    /// its `signal`, linked to its CSA: no second map.)
    connections: HashMap<u64, Connection>,
    /// H2's boxes, found by name at the first connection (and again for
    /// a handler of another type).
    keys: Option<Box<Keys>>,
    /// The children that ended since the last step, taken from `Cx` into
    /// this list (empty between steps, its memory kept).
    ended: Vec<Handle>,
    started: bool,
    /// What each connection is told once the server stops (H4):
    /// `socketShutdown` (graceful) or `shutdownMicroprocess`.
    stopping: Option<Control>,
}

/// A ServerCore's TCPServer: a value until the ServerCore starts.
enum Server {
    Unstarted(Option<Box<TcpServer>>),
    Started(Handle),
    /// `SO_REUSEPORT` shards: each has its own listener, none is here.
    InShards,
}

/// How a server spread over shards ([`ServerCore::threads`]) gets its
/// connections to them ([`ServerCore::accept`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Accept {
    /// One acceptor hands each socket to the least busy shard
    /// ([`TcpServer::into_shards`]); limits stay global. Every platform.
    #[default]
    HandOff,
    /// A `SO_REUSEPORT` listener per shard, the kernel spreading new
    /// connections over them ([`TcpServer::reuse_port_shards`]): no
    /// acceptor thread, but the limits (T8, T5) are per shard, the spread
    /// is by hash (uneven for few clients), and a stalled shard still gets
    /// its share. Needs [`ServerOptions::reuse_port`] set when the server
    /// binds (`ServerCore::new` does not set it for you). Linux and the
    /// BSDs.
    ReusePort,
}

impl fmt::Debug for ServerCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ServerCore({}, {} connections",
            self.local_addr,
            self.connections.len()
        )?;
        if !self.shards.is_empty() {
            write!(f, ", {} shards", self.shards.count())?;
        }
        f.write_str(")")
    }
}

impl ServerCore {
    /// Binds now (so a port in use is an error here, T2) and returns the
    /// component: run it with [`run`](Self::run), or activate it on a
    /// scheduler made by [`selector::scheduler`]. `protocol` makes one
    /// handler per connection (a component body or a [`Handle`]).
    ///
    /// `protocol` is `Clone` so that [`threads`](Self::threads) can give
    /// each shard its own copy (a closure is `Clone` when what it captures
    /// is: share state between copies through an `Arc`).
    pub fn new<F, H>(
        protocol: F,
        addr: SocketAddr,
        options: ServerOptions,
    ) -> Result<ServerCore, BindError>
    where
        F: FnMut(&ConnectionInfo) -> H + Clone + Send + 'static,
        H: Into<Handle>,
    {
        let server = TcpServer::bind(addr, options)?;
        Ok(ServerCore::with_server(protocol, server))
    }

    /// Kamaelia's `ServerCore.TCPS` override: a ServerCore around a
    /// [`TcpServer`] the caller made and configured (bound, with its
    /// options, perhaps with [`TcpServer::with_csa`] wrapping each
    /// connection; see [Wrapping connections](crate#wrapping-connections)).
    /// `protocol` is as for [`new`](Self::new).
    pub fn with_server<F, H>(protocol: F, server: TcpServer) -> ServerCore
    where
        F: FnMut(&ConnectionInfo) -> H + Clone + Send + 'static,
        H: Into<Handle>,
    {
        let local_addr = server.local_addr();
        ServerCore {
            server: Server::Unstarted(Some(Box::new(server))),
            local_addr,
            protocol: Box::new(protocol),
            accept: Accept::HandOff,
            shards: shards::Shards::default(),
            top: None,
            connections: HashMap::default(),
            keys: None,
            ended: Vec::new(),
            started: false,
            stopping: None,
        }
    }

    /// How the shards of [`threads`](Self::threads) get their connections
    /// (builder style): [`Accept::HandOff`] (the default) or
    /// [`Accept::ReusePort`]. No effect on a single-threaded ServerCore.
    pub fn accept(mut self, how: Accept) -> ServerCore {
        self.accept = how;
        self
    }

    /// Spreads the connections over `n` shards, each a thread with a
    /// scheduler, a Selector, a TCPServer and a ServerCore of its own, so
    /// that a connection's CSA, handler and Selector registration all live
    /// on one thread and nothing on its hot path changes thread. One
    /// acceptor (this ServerCore's TCPServer, on the scheduler this
    /// ServerCore runs on) hands each new connection to the shard with the
    /// fewest connections waiting to be taken (a busy or stalled shard gets
    /// no more), then the fewest open
    /// ([`TcpServer::into_shards`]). Limits stay global: the connection
    /// limit (T8) counts every shard's connections, and running out of
    /// descriptors (T5) pauses the one acceptor. A handler's
    /// `serversignal` stops the whole server; a graceful stop first
    /// accepts what is queued, so closing the listener resets nobody, then
    /// every shard finishes its connections.
    ///
    /// Services registered on the scheduler this ServerCore runs on (a
    /// Backplane) are found from every shard
    /// ([`Cat::consult_after`](axon::Cat::consult_after)), and messages
    /// to them cross threads through the usual boxes.
    ///
    /// `threads(1)` (the default) is the single-threaded ServerCore: no
    /// acceptor, no extra thread. `0` is taken as 1. The shards' pollers
    /// are made here, so that running out of descriptors is an error now,
    /// as binding is (T2); their threads start with the ServerCore.
    ///
    /// ```
    /// # use axon::{Component, Cx, Standard, Step};
    /// # #[derive(Default, Clone)] struct Shout;
    /// # impl Component for Shout {
    /// #     type Boxes = Standard<Vec<u8>, Vec<u8>>;
    /// #     fn main(&mut self, _: &mut Cx<Self::Boxes>) -> Step { Step::Done }
    /// # }
    /// let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    /// let server = chassis::SimpleServer::new(Shout::default, "127.0.0.1:0".parse().unwrap(),
    ///                                         Default::default())?
    ///     .threads(cores)?;
    /// # let _ = server;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn threads(mut self, n: usize) -> io::Result<ServerCore> {
        let n = n.max(1);
        self.shards = if n > 1 {
            shards::Shards::new(n)?
        } else {
            shards::Shards::default()
        };
        Ok(self)
    }

    /// The address listened on (the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Runs the server on a Selector scheduler of its own, on this thread,
    /// until it ends: a handler's `serversignal` stops it, and so do
    /// SIGINT and SIGTERM, gracefully ([`SignalStop`]: every connection
    /// gets its reply, for at most [`DRAIN`]). Errors: no poller, or the
    /// signals cannot be watched.
    pub fn run(self) -> io::Result<()> {
        self.run_with(|_| {})
    }

    /// As [`run`](Self::run), calling `announce` with the address once
    /// SIGINT and SIGTERM are watched and before anything is served. Print
    /// the address there, not before `run`: a script that stops the server
    /// as soon as it reads the line then always gets the graceful stop,
    /// never the default action of a signal that came too early.
    ///
    /// ```no_run
    /// # use axon::{Component, Cx, Standard, Step};
    /// # #[derive(Default)] struct Shout;
    /// # impl Component for Shout {
    /// #     type Boxes = Standard<Vec<u8>, Vec<u8>>;
    /// #     fn main(&mut self, _: &mut Cx<Self::Boxes>) -> Step { Step::Done }
    /// # }
    /// chassis::SimpleServer::new(Shout::default, "127.0.0.1:0".parse().unwrap(), Default::default())?
    ///     .run_with(|addr| println!("listening on {addr}"))
    /// # ; Ok::<(), std::io::Error>(())
    /// ```
    pub fn run_with(self, announce: impl FnOnce(SocketAddr)) -> io::Result<()> {
        let addr = self.local_addr;
        let scheduler = selector::scheduler()?;
        let core = scheduler.activate(self).map_err(io::Error::other)?;
        let _signals = SignalStop::install(&core, &scheduler.handle(), DRAIN)?;
        announce(addr);
        scheduler.run();
        Ok(())
    }

    /// H2.
    fn new_connection(&mut self, cx: &Cx<ServerCoreBoxes>, n: NewCsa) {
        let info = ConnectionInfo {
            peer: n.peer,
            local: n.local,
        };
        let handler = self.protocol.make(&info);
        let me = self.top.clone().unwrap_or_else(|| cx.me().clone());
        let csa = n.csa;
        let keys = Keys::fit(&mut self.keys, &csa, &handler, &me);
        let extras = keys.handler.extras;
        let _ = handler.set_inbox_size(&keys.handler.inbox, Some(HANDLER_INBOX_LIMIT));
        // H2's linkages. None is recorded: H3 removes them by their ends
        // (`axon::unlink_boxes`), so a connection costs no linkage records.
        let mut wired = Ok(());
        for (src, dst) in wiring(keys, &csa, &handler, &me, extras)
            .into_iter()
            .flatten()
        {
            if let Err(e) = axon::link_boxes(src, dst) {
                wired = Err(e);
                break;
            }
        }
        // Both tell us when they end (A7); `connections` keeps them, so
        // they are not listed among our children as well.
        cx.adopt(&handler);
        cx.adopt(&csa);
        if let Err(e) = wired {
            log::error!("servercore: cannot wire a handler for {}: {e}", info.peer);
            tell(&csa, &keys.csa.control, Control::ShutdownMicroprocess);
        } else if let Some(stop) = &self.stopping {
            // Accepted as the server stops (T7 takes what was queued):
            // stopped as the others were, gracefully or not.
            tell(&csa, &keys.csa.control, stop.clone());
        }
        self.connections.insert(
            csa.id(),
            Connection {
                handler: handler.clone(),
                csa: csa.clone(),
                peer: info.peer.into(),
                extras,
            },
        );
        for c in [&handler, &csa] {
            if let Err(e) = cx.activate(c) {
                log::error!("servercore: {e}");
            }
        }
    }

    /// H3.
    fn connection_closed(&mut self, cx: &Cx<ServerCoreBoxes>, csa: &Handle) {
        let Some(conn) = self.connections.remove(&csa.id()) else {
            return;
        };
        let me = self.top.clone().unwrap_or_else(|| cx.me().clone());
        // Every connection was wired with keys made for its types (or
        // made now); where they no longer fit, they go by name.
        let keys = Keys::fit(&mut self.keys, csa, &conn.handler, &me);
        // Usually both have ended already (the CSA's socketShutdown is
        // how we heard, and it came after the handler's producerFinished):
        // one that has takes no message (it would be dropped), and the
        // linkages out of its boxes go with it (it sends nothing more).
        let (csa_done, handler_done) = (csa.is_done(), conn.handler.is_done());
        if !handler_done {
            tell(
                &conn.handler,
                &keys.handler.control,
                Control::SocketShutdown,
            );
        }
        if !csa_done {
            tell(csa, &keys.csa.control, Control::ShutdownMicroprocess);
        }
        for (src, dst) in wiring(keys, csa, &conn.handler, &me, conn.extras)
            .into_iter()
            .flatten()
        {
            // Every linkage leaves the CSA or the handler.
            let ended = if src.0 == csa { csa_done } else { handler_done };
            if !ended {
                axon::unlink_boxes(src, dst);
            }
        }
        // No linkage of ours to unlink (H2's are not recorded, and went
        // above): only the A7 tie.
        cx.disown(&conn.handler);
        cx.disown(csa);
    }

    /// A handler ended while its connection lives (it panicked, or
    /// returned without `producerFinished`): close the connection, so the
    /// client is not left waiting and the socket does not linger in
    /// CLOSE-WAIT. What the handler sent is still written: after a
    /// normal end within the linger time, after a panic in one pass (C5).
    fn handler_ended(&mut self, handler: &Handle) {
        // H2 linked its `signal` to its CSA's `control` (or to the
        // component made in the CSA's place), and the linkage outlives
        // its end: the connection is that CSA's, if it is still open.
        // By the key H2 used, when it fits (a name is a look-up through
        // the box table's names, and every end of a child comes here).
        let signal = match self.keys.as_deref() {
            Some(k) if handler.fits(&k.handler.signal) => handler.linked_to(&k.handler.signal),
            // A CSA whose connection has closed (no connection has it):
            // its end comes here too, and there is nothing to do.
            Some(k) if handler.fits(&k.csa.outbox) => return,
            _ => handler.linked_to("signal"),
        };
        let Some(conn) = signal
            .and_then(|csa| self.connections.get(&csa.id()))
            .filter(|conn| conn.handler == *handler)
        else {
            return;
        };
        let control = self
            .keys
            .as_deref()
            .map(|k| &k.csa.control)
            .filter(|key| conn.csa.fits(key));
        let close = |msg| match control {
            Some(key) => tell(&conn.csa, key, msg),
            None => tell(&conn.csa, "control", msg),
        };
        if handler.panicked() {
            log::warn!(
                "servercore: the handler for {} panicked; closing the connection",
                conn.peer
            );
            close(Control::ShutdownMicroprocess);
        } else if !conn.csa.is_done() {
            // (Usually the CSA has ended already, on the handler's own
            // producerFinished: a message to it would be dropped.)
            log::debug!(
                "servercore: the handler for {} ended; closing the connection",
                conn.peer
            );
            close(Control::ProducerFinished);
        }
    }

    /// H4: close every connection (gracefully for producerFinished) and
    /// stop the server.
    fn stop(&mut self, cx: &Cx<ServerCoreBoxes>, msg: &Control) {
        if self.stopping.is_some() {
            return;
        }
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
            tell(&conn.csa, "control", close.clone());
        }
        self.stopping = Some(close);
        if matches!(self.server, Server::InShards) {
            // Each shard's ServerCore stops its own listener and
            // connections; all are told at once, so every listener stops
            // queueing before any closes.
            self.shards.tell_all(msg);
            return;
        }
        // The TCPServer is told how (T7): gracefully, it first takes what
        // is queued so that closing the listener resets nobody; an
        // acceptor passes the message on to its shards, after the last
        // connection it hands them.
        let to_server = if msg.is_producer_finished() {
            Control::ProducerFinished
        } else {
            Control::ServerShutdown
        };
        let _ = cx.server_signal.send(to_server);
    }

    /// Starts the TCPServer (and, with [`threads`](Self::threads), the
    /// shards). False if it cannot.
    fn start(&mut self, cx: &Cx<ServerCoreBoxes>) -> bool {
        let me = cx.me().clone();
        // We keep and activate each CSA, and are its parent (H2): the
        // server need not list them too.
        let server = match std::mem::replace(&mut self.server, Server::Unstarted(None)) {
            Server::Started(handle) => handle,
            Server::Unstarted(None) | Server::InShards => return false,
            Server::Unstarted(Some(server)) if !self.shards.is_empty() => {
                let server = server.keep_csas(false);
                let n = self.shards.count();
                let (acceptor, servers) = match self.accept {
                    Accept::HandOff => {
                        let split = server.into_shards(n);
                        (Some(split.acceptor), split.shards)
                    }
                    Accept::ReusePort => match server.reuse_port_shards(n) {
                        Ok(servers) => (None, servers.into_iter().map(Handle::new).collect()),
                        Err(e) => {
                            log::error!("servercore {}: {e}", self.local_addr);
                            return false;
                        }
                    },
                };
                let started =
                    self.shards
                        .start(servers, self.local_addr, &*self.protocol, &me, cx.cat());
                if let Err(e) = started {
                    log::error!("servercore {}: cannot start shards: {e}", self.local_addr);
                    return false;
                }
                match acceptor {
                    Some(acceptor) => Handle::new(acceptor),
                    None => {
                        // Each shard listens for itself.
                        self.server = Server::InShards;
                        return true;
                    }
                }
            }
            Server::Unstarted(Some(server)) => Handle::new(server.keep_csas(false)),
        };
        self.server = Server::Started(server.clone());
        cx.add_child(&server);
        let mut linked = cx
            .link((&server, "protocolHandlerSignal"), (&me, "_socketactivity"))
            .and_then(|_| cx.link((&me, "_serversignal"), (&server, "control")));
        if self.top.is_some() {
            // A shard's server ends when the acceptor tells it to; this
            // ServerCore then stops as it was told.
            linked = linked.and_then(|_| cx.link((&server, "signal"), (&me, "control")));
        }
        if let Err(e) = linked {
            log::error!("servercore: {e}");
            return false;
        }
        if let Err(e) = cx.activate(&server) {
            log::error!("servercore: {e}");
            return false;
        }
        true
    }

    /// A shard's ServerCore: serves what `server` (a shard of
    /// [`TcpServer::into_shards`]) is handed, with `protocol`; `top` is
    /// the ServerCore standing for the whole server.
    fn shard(
        server: Handle,
        local_addr: SocketAddr,
        protocol: Box<dyn Protocol>,
        top: Handle,
    ) -> ServerCore {
        ServerCore {
            server: Server::Started(server),
            local_addr,
            protocol,
            accept: Accept::HandOff,
            shards: shards::Shards::default(),
            top: Some(top),
            connections: HashMap::default(),
            keys: None,
            ended: Vec::new(),
            started: false,
            stopping: None,
        }
    }
}

impl Component for ServerCore {
    type Boxes = ServerCoreBoxes;

    fn name(&self) -> std::borrow::Cow<'static, str> {
        "ServerCore".into()
    }

    fn created(&mut self, _me: &Handle, boxes: &ServerCoreBoxes) {
        // Every connection's news comes here, in bursts under churn.
        boxes.socket_activity.keep_queue();
    }

    fn main(&mut self, cx: &mut Cx<ServerCoreBoxes>) -> Step {
        if !self.started {
            self.started = true;
            if !self.start(cx) {
                self.shards.stop();
                return Step::Done;
            }
        }
        while let Some(event) = cx.socket_activity.recv() {
            match event {
                ServerEvent::NewCsa(n) => self.new_connection(cx, n),
                ServerEvent::ShutdownCsa { csa, .. } => self.connection_closed(cx, &csa),
            }
        }
        while let Some(msg) = cx.control.recv() {
            self.stop(cx, &msg);
        }
        while cx.shard_signal.recv().is_some() {
            self.shards.one_ended();
        }
        // A list kept between steps: ends come with every connection.
        let mut ended = std::mem::take(&mut self.ended);
        cx.ended_children_into(&mut ended);
        for child in ended.drain(..) {
            if self.connections.contains_key(&child.id()) {
                // A CSA ended without the TCPServer telling us: it has
                // stopped (H4), and the feedback linkage with it.
                self.connection_closed(cx, &child);
            } else {
                self.handler_ended(&child);
            }
        }
        self.ended = ended;
        let server_done = match &self.server {
            Server::Started(server) => server.is_done(),
            Server::Unstarted(_) | Server::InShards => true,
        };
        if self.stopping.is_some()
            && self.connections.is_empty()
            && server_done
            && self.shards.all_ended()
        {
            let _ = cx.signal.send(Control::ProducerFinished);
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
    pub fn new<F, H>(
        mut protocol: F,
        addr: SocketAddr,
        options: ServerOptions,
    ) -> Result<ServerCore, BindError>
    where
        F: FnMut() -> H + Clone + Send + 'static,
        H: Into<Handle>,
    {
        ServerCore::new(move |_: &ConnectionInfo| protocol(), addr, options)
    }

    /// A ServerCore calling `protocol()` for each connection, around a
    /// [`TcpServer`] the caller made ([`ServerCore::with_server`]).
    pub fn with_server<F, H>(mut protocol: F, server: TcpServer) -> ServerCore
    where
        F: FnMut() -> H + Clone + Send + 'static,
        H: Into<Handle>,
    {
        ServerCore::with_server(move |_: &ConnectionInfo| protocol(), server)
    }
}
