//! # Guide: an echo server with ServerCore, step by step
//!
//! Documentation only. Each step is a compiled, tested example; together
//! they build the server that `selector-demo --protocol echo` runs.
//!
//! ## 1. A protocol handler
//!
//! A handler is an ordinary [`Component`](axon::Component) with the
//! standard boxes, `Vec<u8>` in `inbox` and `outbox` (H6): its box set is
//! [`Standard`](axon::Standard), and each box is a field of `cx`. It drains
//! what is ready, answers with [`Step::Pause`](axon::Step::Pause) to sleep
//! until the next message, and honours "no space in box" (A5) by keeping
//! the chunk it could not send: it is woken when there is room (A6).
//!
//! ```
//! use axon::{Component, Control, Cx, Standard, Step};
//!
//! #[derive(Default)]
//! struct Echo {
//!     held: Option<Vec<u8>>,
//! }
//!
//! impl Component for Echo {
//!     type Boxes = Standard<Vec<u8>, Vec<u8>>;
//!
//!     fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
//!         while let Some(chunk) = self.held.take().or_else(|| cx.inbox.recv()) {
//!             if let Err(full) = cx.outbox.send(chunk) {
//!                 self.held = Some(full.into_inner()); // woken when space frees
//!                 return Step::Pause;
//!             }
//!         }
//!         // socketShutdown: the client will send no more (or is gone).
//!         if cx.control.recv().is_some() {
//!             let _ = cx.signal.send(Control::ProducerFinished); // close when written
//!             return Step::Done;
//!         }
//!         Step::Pause
//!     }
//! }
//! ```
//!
//! The message types are the compiler's business: `cx.outbox.send("text")`
//! would not compile, and nothing is looked up by name while the handler
//! runs.
//!
//! ## 2. A scheduler whose sleep is the Selector's poll
//!
//! [`selector::scheduler`] makes an [`axon::Scheduler`] that waits in
//! `epoll_wait` when nothing is runnable, so sockets and components are
//! served by one thread and an idle server uses no CPU.
//!
//! ```
//! let scheduler = selector::scheduler().expect("a poller");
//! # drop(scheduler);
//! ```
//!
//! ## 3. The server, bound now
//!
//! [`SimpleServer::new`](crate::SimpleServer::new) binds immediately, so a
//! port in use is an error here (T2), naming the address; port 0 picks a
//! free port, readable before anything runs. The factory makes one handler
//! per connection: any function returning a component (`Echo::default`).
//!
//! ```
//! use chassis::{ServerOptions, SimpleServer};
//! # use axon::{Component, Cx, Standard, Step};
//! # #[derive(Default)] struct Echo;
//! # impl Component for Echo {
//! #     type Boxes = Standard<Vec<u8>, Vec<u8>>;
//! #     fn main(&mut self, _: &mut Cx<Self::Boxes>) -> Step { Step::Done }
//! # }
//!
//! let server = SimpleServer::new(Echo::default, "127.0.0.1:0".parse().unwrap(),
//!                                ServerOptions::default()).unwrap();
//! assert_ne!(server.local_addr().port(), 0);
//!
//! // The same port twice: a clear error.
//! let taken = server.local_addr();
//! let err = SimpleServer::new(Echo::default, taken, ServerOptions::default()).unwrap_err();
//! assert!(err.to_string().contains(&taken.to_string()));
//! ```
//!
//! ## 4. Run it, talk to it, stop it gracefully
//!
//! Activate the server on the scheduler and run the scheduler (here on a
//! thread of its own). `producerFinished` in the ServerCore's `control`
//! stops it gracefully: each connection's input ends, its handler finishes,
//! everything is written, then the connections, the server and the
//! Selector end, and so does `run`.
//!
//! ```
//! use std::io::{Read, Write};
//! use axon::Control;
//! use chassis::{ServerOptions, SimpleServer};
//! # use axon::{Component, Cx, Standard, Step};
//! # #[derive(Default)] struct Echo;
//! # impl Component for Echo {
//! #     type Boxes = Standard<Vec<u8>, Vec<u8>>;
//! #     fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
//! #         while let Some(b) = cx.inbox.recv() { let _ = cx.outbox.send(b); }
//! #         if cx.control.recv().is_some() {
//! #             let _ = cx.signal.send(Control::ProducerFinished); return Step::Done;
//! #         }
//! #         Step::Pause
//! #     }
//! # }
//!
//! let scheduler = selector::scheduler().unwrap();
//! let server = SimpleServer::new(Echo::default, "127.0.0.1:0".parse().unwrap(),
//!                                ServerOptions::default()).unwrap();
//! let addr = server.local_addr();
//! let server = scheduler.activate(server).unwrap(); // its Handle
//! let running = std::thread::spawn(move || scheduler.run());
//!
//! let mut client = std::net::TcpStream::connect(addr).unwrap();
//! client.write_all(b"hello").unwrap();
//! let mut reply = [0u8; 5];
//! client.read_exact(&mut reply).unwrap();
//! assert_eq!(&reply, b"hello");
//!
//! server.postbox::<Control>("control").unwrap().send(Control::ProducerFinished).unwrap();
//! let mut rest = Vec::new();
//! client.read_to_end(&mut rest).unwrap(); // EOF: the connection closed
//! running.join().unwrap();                // and everything ended
//! ```
//!
//! ## 5. As a program
//!
//! [`ServerCore::run`](crate::ServerCore::run) does steps 2 and 4 at once,
//! on the calling thread, and turns SIGINT and SIGTERM into the graceful
//! stop ([`SignalStop`](crate::SignalStop)):
//!
//! ```no_run
//! # use axon::{Component, Cx, Standard, Step};
//! # #[derive(Default)] struct Echo;
//! # impl Component for Echo {
//! #     type Boxes = Standard<Vec<u8>, Vec<u8>>;
//! #     fn main(&mut self, _: &mut Cx<Self::Boxes>) -> Step { Step::Done }
//! # }
//! fn main() -> std::io::Result<()> {
//!     chassis::SimpleServer::new(Echo::default, "127.0.0.1:1601".parse().unwrap(),
//!                                Default::default())?
//!         .run()
//! }
//! ```
//!
//! ## 6. Knowing who connected: ServerCore
//!
//! [`ServerCore`](crate::ServerCore) hands the factory each connection's
//! addresses (H2), for logging, access control or per-client state.
//!
//! ```
//! use chassis::{ConnectionInfo, ServerCore, ServerOptions};
//! # use axon::{Component, Cx, Standard, Step};
//! # struct Echo;
//! # impl Component for Echo {
//! #     type Boxes = Standard<Vec<u8>, Vec<u8>>;
//! #     fn main(&mut self, _: &mut Cx<Self::Boxes>) -> Step { Step::Done }
//! # }
//!
//! let core = ServerCore::new(
//!     |info: &ConnectionInfo| {
//!         println!("{} connected to {}", info.peer, info.local);
//!         Echo
//!     },
//!     "127.0.0.1:0".parse().unwrap(),
//!     ServerOptions { max_connections: Some(1000), ..ServerOptions::default() },
//! )
//! .unwrap();
//! # drop(core);
//! ```
//!
//! Connection timeouts are [`ServerOptions`](crate::ServerOptions) too,
//! kept by each connection's CSA on timers (no polling, so thousands of
//! idle connections still cost no CPU): `idle_timeout` closes a connection
//! on which no byte has moved for that long (C9, off by default),
//! `stall_timeout` one whose peer has stopped taking its output (C10, 60 s
//! by default) and `request_timeout` one whose peer trickles a request
//! that is never answered, a slowloris (C11, off by default: for
//! request–response protocols only).
//!
//! ```
//! use std::time::Duration;
//! use chassis::ServerOptions;
//!
//! let options = ServerOptions {
//!     idle_timeout: Some(Duration::from_secs(300)),
//!     request_timeout: Some(Duration::from_secs(30)),
//!     ..ServerOptions::default()
//! };
//! assert_eq!(options.stall_timeout, Some(Duration::from_secs(60)));
//! ```
//!
//! ## 7. Boxes of your own
//!
//! A handler that needs more than the standard four declares its box set
//! with [`axon::boxes!`]: one field per box, the doc comment its one-line
//! description. The H6 names (`inbox`, `control`, `outbox`, `signal`) are
//! what ServerCore links by; an extra `serversignal` outbox reaches the
//! ServerCore's `control`, so this handler stops the whole server when a
//! client says `quit`.
//!
//! ```
//! use axon::{boxes, Component, Control, Cx, Inbox, Outbox, Step};
//!
//! boxes! {
//!     /// A handler that can stop its server.
//!     pub struct QuitterBoxes {
//!         /// bytes from the client
//!         pub inbox: Inbox<Vec<u8>>,
//!         /// socketShutdown when the client is done
//!         pub control: Inbox<Control>,
//!         /// bytes to the client
//!         pub outbox: Outbox<Vec<u8>>,
//!         /// producerFinished: close this connection
//!         pub signal: Outbox<Control>,
//!         /// shutdownMicroprocess: stop the server
//!         pub serversignal: Outbox<Control>,
//!     }
//! }
//!
//! struct Quitter;
//!
//! impl Component for Quitter {
//!     type Boxes = QuitterBoxes;
//!
//!     fn main(&mut self, cx: &mut Cx<QuitterBoxes>) -> Step {
//!         while let Some(bytes) = cx.inbox.recv() {
//!             if bytes.starts_with(b"quit") {
//!                 let _ = cx.serversignal.send(Control::ShutdownMicroprocess);
//!             }
//!         }
//!         if cx.control.recv().is_some() {
//!             let _ = cx.signal.send(Control::ProducerFinished);
//!             return Step::Done;
//!         }
//!         Step::Pause
//!     }
//! }
//! # let server = chassis::SimpleServer::new(|| Quitter, "127.0.0.1:0".parse().unwrap(),
//! #     Default::default()).unwrap();
//! # drop(server);
//! ```
//!
//! ## Where next
//!
//! - Backpressure, half-close, linger and timeouts: the `csa` crate docs
//!   (C3–C11).
//! - The Selector's one-shot contract: the `selector` crate docs (S3–S7).
//! - A client: `tcpclient::TcpClient` in a [`Pipeline`](axon::Pipeline).
