//! Protocol handlers for the demos: [`Echo`] and the chat server
//! ([`chat`]: a backplane, and `Pipeline(LineSplit, ChatMember)` per
//! connection). Each follows the handler contract of `chassis` (H6).

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

pub mod chat;

use axon::{Component, Control, Cx, Standard, Step};

/// Sends every byte it receives straight back (the chunk itself: no copy).
///
/// Boxes: [`Standard`], `Vec<u8>` in `inbox` and `outbox`. On
/// `socketShutdown` (the client finished sending, C7) it writes what it
/// still holds, sends `producerFinished` out of `signal` and ends. A chunk
/// the connection has no room for is kept until it has (A5).
#[derive(Debug, Default)]
pub struct Echo {
    held: Option<Vec<u8>>,
    closing: bool,
}

impl Echo {
    /// A new echo handler.
    pub fn new() -> Self {
        Echo::default()
    }
}

impl Component for Echo {
    type Boxes = Standard<Vec<u8>, Vec<u8>>;

    fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
        while let Some(chunk) = self.held.take().or_else(|| cx.inbox.recv()) {
            if let Err(full) = cx.outbox.send(chunk) {
                // A5: keep it; woken when the CSA takes from its inbox.
                self.held = Some(full.into_inner());
                return Step::Pause;
            }
        }
        while let Some(msg) = cx.control.recv() {
            if msg.is_producer_finished() {
                self.closing = true;
            } else {
                return Step::Done;
            }
        }
        if self.closing && cx.inbox.is_empty() {
            let _ = cx.signal.send(Control::ProducerFinished);
            return Step::Done;
        }
        Step::Pause
    }
}
