//! # Framing: turning byte streams into messages
//!
//! A TCP connection delivers bytes in whatever chunks the network made;
//! a protocol wants lines or frames. These components sit between a
//! connection and a handler in a [`Pipeline`](axon::Pipeline), as
//! Kamaelia's framing components do:
//!
//! - [`LineSplit`]: bytes in, one message per line out.
//!
//! Every one of them is linear in its input, holds a bounded amount of
//! memory whatever a peer sends (a line longer than the limit is cut, or
//! ends the connection, by option: it is never buffered whole), and
//! honours backpressure both ways (A5): when its outbox is full it stops
//! taking input, so a full consumer stalls the connection rather than
//! growing memory.
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

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

mod line_split;

pub use line_split::{LineSplit, TooLong, MAX_LINE};
