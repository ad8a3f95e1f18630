//! # Kamaelia, in Rust
//!
//! BBC Kamaelia's way of building network systems: small **components**
//! that talk only through **inboxes** and **outboxes**, wired together
//! with **linkages**, run by a cooperative **scheduler**; and its
//! `Kamaelia.Internet` stack (Selector, TCPServer, ConnectedSocketAdapter,
//! ServerCore, TCPClient) on top. This crate is the one dependency to add:
//! it re-exports the others and has a [`prelude`].
//!
//! ```toml
//! [dependencies]
//! kamaelia = "0.1"
//! ```
//!
//! ## An echo server, as a Kamaelia user knows it
//!
//! In Kamaelia:
//!
//! ```python
//! class Echo(Axon.Component.component):
//!     def main(self):
//!         while not self.dataReady("control"):
//!             while self.dataReady("inbox"):
//!                 self.send(self.recv("inbox"), "outbox")
//!             self.pause()
//!             yield 1
//!         self.send(producerFinished(), "signal")
//!
//! SimpleServer(protocol=Echo, port=1601).run()
//! ```
//!
//! Here:
//!
//! ```no_run
//! use kamaelia::prelude::*;
//!
//! #[derive(Default)]
//! struct Echo {
//!     held: Option<Vec<u8>>, // a chunk the connection had no room for yet
//! }
//!
//! impl Component for Echo {
//!     type Boxes = Standard<Vec<u8>, Vec<u8>>; // inbox, control, outbox, signal
//!
//!     fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
//!         while let Some(chunk) = self.held.take().or_else(|| cx.inbox.recv()) {
//!             if let Err(full) = cx.outbox.send(chunk) {
//!                 self.held = Some(full.into_inner()); // "no space in box": keep it
//!                 return Step::Pause; // woken when there is room
//!             }
//!         }
//!         if cx.control.recv().is_some() {
//!             let _ = cx.signal.send(Control::ProducerFinished);
//!             return Step::Done;
//!         }
//!         Step::Pause // self.pause(); yield 1
//!     }
//! }
//!
//! fn main() -> std::io::Result<()> {
//!     SimpleServer::new(Echo::default, "127.0.0.1:1601".parse().unwrap(), Default::default())?
//!         .run() // until SIGINT or SIGTERM, which stop it gracefully
//! }
//! ```
//!
//! What changed on the way, and why:
//!
//! - `main` is one *step* of a state machine, not a generator: it drains
//!   what is ready and says [`Step::Pause`](axon::Step::Pause) (`self.pause(); yield 1`),
//!   [`Step::Continue`](axon::Step::Continue) (`yield 1`) or [`Step::Done`](axon::Step::Done) (`return`). State a
//!   generator keeps in locals lives in the struct's fields.
//! - Boxes are typed fields: `self.recv("inbox")` is `cx.inbox.recv()`,
//!   `self.send(x, "outbox")` is `cx.outbox.send(x)`, and the compiler
//!   checks every message's type. [`Standard`](axon::Standard) is Kamaelia's default four;
//!   [`boxes!`](prelude::boxes) declares others. Linkages still name boxes
//!   by string: `link((&a, "outbox"), (&b, "inbox"))`.
//! - Inboxes can be bounded (a server's are), and a send into a full one
//!   gives the message back ([`NoSpace`](prelude::NoSpace)). Keeping it and
//!   pausing is what keeps a fast client from growing a slow server's
//!   memory; every example in these docs does it.
//!
//! ## A pipeline
//!
//! Kamaelia's `Pipeline(Producer(), Consumer()).run()`:
//!
//! ```
//! use kamaelia::prelude::*;
//!
//! struct Count(u32);
//! impl Component for Count {
//!     type Boxes = Standard<(), u32>;
//!     fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
//!         while self.0 > 0 {
//!             if cx.outbox.send(self.0).is_err() {
//!                 return Step::Pause; // self.0 is still to send: woken when there is room
//!             }
//!             self.0 -= 1;
//!         }
//!         let _ = cx.signal.send(Control::ProducerFinished);
//!         Step::Done
//!     }
//! }
//!
//! #[derive(Default)]
//! struct Sum(u32);
//! impl Component for Sum {
//!     type Boxes = Standard<u32, ()>;
//!     fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
//!         while let Some(n) = cx.inbox.recv() {
//!             self.0 += n;
//!         }
//!         match cx.control.recv() {
//!             Some(_) => {
//!                 assert_eq!(self.0, 55);
//!                 Step::Done
//!             }
//!             None => Step::Pause,
//!         }
//!     }
//! }
//!
//! kamaelia::run(Pipeline::new(vec![Count(10).into(), Sum::default().into()]).unwrap()).unwrap();
//! ```
//!
//! ## Composing a server from parts
//!
//! Kamaelia users rarely wrote a byte handler: they composed one. An
//! upper-casing *line* server is `Pipeline(LineSplit, PureTransformer)`,
//! each part honouring backpressure and bounding what a client can make
//! it hold:
//!
//! ```no_run
//! use kamaelia::prelude::*;
//!
//! fn upper() -> Pipeline {
//!     let shout = |line: Vec<u8>| Some([line.to_ascii_uppercase(), b"\n".to_vec()].concat());
//!     Pipeline::new(vec![LineSplit::new().into(), PureTransformer::new(shout).into()]).unwrap()
//! }
//!
//! fn main() -> std::io::Result<()> {
//!     SimpleServer::new(upper, "127.0.0.1:1601".parse().unwrap(), Default::default())?.run()
//! }
//! ```
//!
//! ## A client
//!
//! Kamaelia's `Pipeline(ConsoleReader(), TCPClient("127.0.0.1", 1601),
//! ConsoleEchoer()).run()`:
//!
//! ```no_run
//! use kamaelia::prelude::*;
//!
//! fn main() -> std::io::Result<()> {
//!     let client = TcpClient::new("127.0.0.1:1601".parse().unwrap());
//!     let parts = vec![ConsoleReader::new().into(), client.into(), ConsoleEchoer::new().into()];
//!     kamaelia::run(Pipeline::new(parts).map_err(std::io::Error::other)?)
//! }
//! ```
//!
//! ## Where things are
//!
//! | Kamaelia | here |
//! |---|---|
//! | `Axon` (components, boxes, linkages, scheduler, CAT) | [`axon`] |
//! | `Kamaelia.Internet.Selector` | [`selector`] |
//! | `Kamaelia.Internet.ConnectedSocketAdapter` | [`csa`] |
//! | `Kamaelia.Internet.TCPServer` | [`tcpserver`] |
//! | `Kamaelia.Chassis.ConnectedServer` (ServerCore, SimpleServer) | [`chassis`] |
//! | `Kamaelia.Internet.TCPClient` | [`tcpclient`] |
//! | framing (lines, frames) | [`framing`] |
//! | `Kamaelia.Util` (PureTransformer, ConsoleReader, ConsoleEchoer) | [`util`] |
//!
//! The rules these crates follow (A1–A11, S1–S8, T1–T8, C1–C8, H1–H7) are
//! in the project's `docs/PROTOCOL.md`; tests and docs cite them by id.

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

pub use axon;
pub use chassis;
pub use csa;
pub use framing;
pub use selector;
pub use tcpclient;
pub use tcpserver;
pub use util;

use std::io;

/// What most programs need, in one `use kamaelia::prelude::*`.
pub mod prelude {
    pub use axon::{
        boxes, link, pipeline, unlink, Component, Control, Cx, Endpoint, Graphline, Handle, Inbox,
        NoSpace, Outbox, Pipeline, Postbox, Scheduler, Standard, Step,
    };
    pub use chassis::{ConnectionInfo, ServerCore, ServerOptions, SimpleServer};
    pub use framing::{Chunkifier, DeFramer, Framer, LineSplit};
    pub use tcpclient::TcpClient;
    pub use util::{ConsoleEchoer, ConsoleReader, PureTransformer};
}

/// Kamaelia's `component.run()`: activates `component` on a new scheduler
/// that also serves sockets ([`selector::scheduler`]) and runs it on this
/// thread until everything has ended (a Selector with nothing left to
/// watch does not keep it running).
pub fn run(component: impl Into<axon::Handle>) -> io::Result<()> {
    let scheduler = selector::scheduler()?;
    scheduler.activate(component).map_err(io::Error::other)?;
    scheduler.run();
    Ok(())
}
