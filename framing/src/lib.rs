//! # Framing: turning byte streams into messages
//!
//! A TCP connection delivers bytes in whatever chunks the network made;
//! a protocol wants lines or frames. These components sit between a
//! connection and a handler in a [`Pipeline`](axon::Pipeline), as
//! Kamaelia's framing components do:
//!
//! - [`LineSplit`]: bytes in, one message per line out.
//! - [`DeFramer`]: bytes in, one message per length-prefixed frame out.
//! - [`Framer`]: messages in, one length-prefixed frame per message out
//!   (what [`DeFramer`] undoes).
//! - [`Chunkifier`]: bytes in, chunks of one fixed size out.
//!
//! Every one of them is linear in its input, holds a bounded amount of
//! memory whatever a peer sends (a line longer than the limit is cut, or
//! ends the connection, by option: it is never buffered whole; a frame
//! longer than the maximum ends the connection, and a claimed length is
//! never allocated ahead of its bytes), and honours backpressure both ways
//! (A5): when its outbox is full it stops taking input, so a full consumer
//! stalls the connection rather than growing memory.
//!
//! ```
//! use axon::{Component, Cx, Pipeline, Standard, Step};
//! use framing::LineSplit;
//!
//! // An upper-casing line server's handler: LineSplit, then a transformer.
//! # struct Upper;
//! # impl Component for Upper {
//! #     type Boxes = Standard<Vec<u8>, Vec<u8>>;
//! #     fn main(&mut self, _: &mut Cx<Self::Boxes>) -> Step { Step::Done }
//! # }
//! let handler = Pipeline::new(vec![LineSplit::new().into(), Upper.into()]).unwrap();
//! # drop(handler);
//! ```
//!
//! ## Kamaelia's names
//!
//! | Kamaelia | here | |
//! |---|---|---|
//! | `Kamaelia.Protocol.Framing.Framer` | [`Framer`] | Kamaelia's framed `(tag, data)` pairs as text (`SimpleFrame`); ours frames bytes with a binary length prefix |
//! | `Kamaelia.Protocol.Framing.DeFramer` | [`DeFramer`] | its inverse, as in Kamaelia; ours also bounds the message size |
//! | `Kamaelia.Util.Chunkifier` | [`Chunkifier`] | the same, with its memory bounded |
//!
//! ## Frames
//!
//! A frame is the message's length in bytes, as 4 bytes, big-endian, then
//! the message: `hi` is `00 00 00 02 68 69`, the empty message
//! `00 00 00 00`. Both ends have a maximum message size, [`MAX_MESSAGE`]
//! (16 MiB) unless configured: a [`Framer`] asked to send more, or a
//! [`DeFramer`] told to expect more, logs it at `warn` and ends the
//! stream with `shutdownMicroprocess` (which, in a server's handler,
//! closes the connection). Nothing is dropped or cut without a word.
//!
//! ## How their input ends
//!
//! All four take Kamaelia's messages on `control` the same way:
//! `producerFinished`, and `socketShutdown` (what ServerCore sends when a
//! client half-closes, C7), mean "no more input": everything that came is
//! passed on (still waiting for room, A5), then `producerFinished` goes
//! out of `signal` and the component ends. `shutdownMicroprocess` means
//! "stop now": it is passed on out of `signal` and the component ends;
//! [`Framer`], [`DeFramer`] and [`Chunkifier`] first pass on what has
//! come as far as their `outbox` has room at once, so a reply sent just
//! before it is not lost (as the CSA does, C5).
//!
//! ## A framed server's handler
//!
//! A server for a framed protocol: each message a client sends comes back
//! reversed. Its handler is composed of parts, as in Kamaelia; here it is
//! driven from an endpoint instead of a socket (`framing/tests/` serves it
//! with a real `SimpleServer` on loopback).
//!
//! ```
//! use axon::{link, pipeline, Control, Endpoint, Handle, Scheduler, Standard};
//! use framing::{DeFramer, Framer};
//! use util::PureTransformer;
//!
//! let reverse = |mut msg: Vec<u8>| {
//!     msg.reverse();
//!     Some(msg)
//! };
//! let handler = pipeline![DeFramer::new(), PureTransformer::new(reverse), Framer::new()];
//! let handler = Handle::new(handler.unwrap());
//!
//! // The connection's side: bytes in, bytes out.
//! let socket = Endpoint::<Standard<Vec<u8>, Vec<u8>>>::new("socket");
//! link((socket.handle(), "outbox"), (&handler, "inbox")).unwrap();
//! link((socket.handle(), "signal"), (&handler, "control")).unwrap();
//! link((&handler, "outbox"), (socket.handle(), "inbox")).unwrap();
//! link((&handler, "signal"), (socket.handle(), "control")).unwrap();
//! socket.outbox.send(b"\0\0\0\x05hel".to_vec()).unwrap(); // a frame in two pieces
//! socket.outbox.send(b"lo".to_vec()).unwrap();
//! socket.signal.send(Control::SocketShutdown).unwrap(); // the client half-closed
//!
//! let scheduler = Scheduler::new();
//! scheduler.activate(&handler).unwrap();
//! scheduler.run();
//! assert_eq!(socket.inbox.recv(), Some(b"\0\0\0\x05olleh".to_vec()));
//! assert_eq!(socket.control.recv(), Some(Control::ProducerFinished));
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

mod chunkifier;
mod deframer;
mod framer;
mod line_split;
mod shared;
#[cfg(test)]
mod testing;

pub use chunkifier::Chunkifier;
pub use deframer::DeFramer;
pub use framer::{Framer, MAX_MESSAGE};
pub use line_split::{LineSplit, TooLong, MAX_LINE};
