//! # Guide: an echo server with ServerCore, step by step
//!
//! Documentation only. Each step is a compiled, tested example; together
//! they build the server that `selector-demo --protocol echo` runs.
//!
//! ## 1. A protocol handler
//!
//! A handler is an ordinary [`Component`](axon::Component) with the
//! standard boxes, `Vec<u8>` in `inbox` and `outbox` (H6). It drains what is
//! ready, answers with [`Step::Pause`](axon::Step::Pause) to sleep until the
//! next message, and honours "no space in box" (A5) by keeping the chunk it
//! could not send.
//!
//! ```
//! use axon::{Boxes, Component, Control, Cx, Step};
//!
//! #[derive(Default)]
//! struct Echo {
//!     held: Option<Vec<u8>>,
//! }
//!
//! impl Component for Echo {
//!     fn boxes(&self) -> Boxes {
//!         Boxes::standard::<Vec<u8>, Vec<u8>>()
//!     }
//!     fn main(&mut self, cx: &mut Cx<'_>) -> Step {
//!         while let Some(chunk) = self.held.take().or_else(|| cx.recv::<Vec<u8>>("inbox")) {
//!             if let Err(full) = cx.send(chunk, "outbox") {
//!                 self.held = Some(full.into_inner()); // woken when space frees
//!                 return Step::Pause;
//!             }
//!         }
//!         // socketShutdown: the client will send no more (or is gone).
//!         if cx.recv::<Control>("control").is_some() {
//!             let _ = cx.send(Control::ProducerFinished, "signal"); // close when written
//!             return Step::Done;
//!         }
//!         Step::Pause
//!     }
//! }
//! ```
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
//! free port, readable before anything runs.
//!
//! ```
//! use axon::Handle;
//! use chassis::{ServerOptions, SimpleServer};
//! # use axon::{Boxes, Component, Cx, Step};
//! # struct Echo;
//! # impl Component for Echo {
//! #     fn boxes(&self) -> Boxes { Boxes::standard::<Vec<u8>, Vec<u8>>() }
//! #     fn main(&mut self, _: &mut Cx<'_>) -> Step { Step::Done }
//! # }
//!
//! let server = SimpleServer::new(|| Handle::new(Echo), "127.0.0.1:0".parse().unwrap(),
//!                                ServerOptions::default()).unwrap();
//! assert_ne!(server.local_addr().port(), 0);
//!
//! // The same port twice: a clear error.
//! let taken = server.local_addr();
//! let err = SimpleServer::new(|| Handle::new(Echo), taken, ServerOptions::default()).unwrap_err();
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
//! use axon::{Control, Handle};
//! use chassis::{ServerOptions, SimpleServer};
//! # use axon::{Boxes, Component, Cx, Step};
//! # #[derive(Default)] struct Echo;
//! # impl Component for Echo {
//! #     fn boxes(&self) -> Boxes { Boxes::standard::<Vec<u8>, Vec<u8>>() }
//! #     fn main(&mut self, cx: &mut Cx<'_>) -> Step {
//! #         while let Some(b) = cx.recv::<Vec<u8>>("inbox") { let _ = cx.send(b, "outbox"); }
//! #         if cx.recv::<Control>("control").is_some() {
//! #             let _ = cx.send(Control::ProducerFinished, "signal"); return Step::Done;
//! #         }
//! #         Step::Pause
//! #     }
//! # }
//!
//! let scheduler = selector::scheduler().unwrap();
//! let server = SimpleServer::new(|| Handle::new(Echo), "127.0.0.1:0".parse().unwrap(),
//!                                ServerOptions::default()).unwrap();
//! let addr = server.local_addr();
//! let server = Handle::new(server);
//! scheduler.activate(&server).unwrap();
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
//! ## 5. Knowing who connected: ServerCore
//!
//! [`ServerCore`](crate::ServerCore) hands the factory each connection's
//! addresses (H2), for logging, access control or per-client state.
//!
//! ```
//! use axon::Handle;
//! use chassis::{ConnectionInfo, ServerCore, ServerOptions};
//! # use axon::{Boxes, Component, Cx, Step};
//! # struct Echo;
//! # impl Component for Echo {
//! #     fn boxes(&self) -> Boxes { Boxes::standard::<Vec<u8>, Vec<u8>>() }
//! #     fn main(&mut self, _: &mut Cx<'_>) -> Step { Step::Done }
//! # }
//!
//! let core = ServerCore::new(
//!     |info: &ConnectionInfo| {
//!         println!("{} connected to {}", info.peer, info.local);
//!         Handle::new(Echo)
//!     },
//!     "127.0.0.1:0".parse().unwrap(),
//!     ServerOptions { max_connections: Some(1000), ..ServerOptions::default() },
//! )
//! .unwrap();
//! # drop(core);
//! ```
//!
//! ## 6. When every microsecond counts: box handles
//!
//! `cx.recv("inbox")` and `cx.send(msg, "outbox")` find the box by name on
//! every call, as Kamaelia's `self.recv` does. A handler that runs once per
//! message on every connection can find its busy boxes once, as
//! [`Inbox`](axon::Inbox) and [`Outbox`](axon::Outbox), and keep them
//! (`examples::Echo`, the demo's handler, does): the message hop then costs
//! about what a bounded channel's does. Its declaration is shared by every
//! instance when it comes from `Boxes::standard` (or a `static`), so a
//! handler made per connection pays only for its boxes' state.
//!
//! ```
//! use axon::{Boxes, Component, Control, Cx, Inbox, Outbox, Step};
//!
//! #[derive(Default)]
//! struct FastEcho {
//!     boxes: Option<(Inbox<Vec<u8>>, Outbox<Vec<u8>>)>,
//!     held: Option<Vec<u8>>,
//! }
//!
//! impl Component for FastEcho {
//!     fn boxes(&self) -> Boxes {
//!         Boxes::standard::<Vec<u8>, Vec<u8>>()
//!     }
//!     fn main(&mut self, cx: &mut Cx<'_>) -> Step {
//!         if self.boxes.is_none() {
//!             let me = cx.me();
//!             match (me.inbox("inbox"), me.outbox("outbox")) {
//!                 (Ok(i), Ok(o)) => self.boxes = Some((i, o)),
//!                 _ => return Step::Done, // not our declaration: cannot happen
//!             }
//!         }
//!         let Some((inbox, outbox)) = &self.boxes else { return Step::Done };
//!         while let Some(chunk) = self.held.take().or_else(|| inbox.recv()) {
//!             if let Err(full) = outbox.send(chunk) {
//!                 self.held = Some(full.into_inner());
//!                 return Step::Pause;
//!             }
//!         }
//!         if cx.recv::<Control>("control").is_some() {
//!             let _ = cx.send(Control::ProducerFinished, "signal");
//!             return Step::Done;
//!         }
//!         Step::Pause
//!     }
//! }
//! ```
//!
//! ## Where next
//!
//! - Backpressure, half-close and linger: the `csa` crate docs (C3–C7).
//! - The Selector's one-shot contract: the `selector` crate docs (S3–S7).
//! - A client: `tcpclient::TcpClient` in a [`Pipeline`](axon::Pipeline).
