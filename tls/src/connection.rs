//! TLS as the connection itself (Kamaelia's `TCPServer.CSA` override):
//! a Graphline of the CSA, the layer and a relay that puts how the TLS
//! session ended into the `how_died` of the `socketShutdown` the creator
//! gets (C6).
//!
//! ```text
//!                     ┌──────────────────────── TlsConnection (Graphline) ────────────────────────┐
//!  ReadReady/SendReady ──▶ csa ──outbox──▶ tls.inbox                tls.plainOutbox ──▶ outbox       │
//!  inbox ─────────────────────────────────────────────────────────▶ tls.plainInbox                  │
//!  control ───────────────────────────────────────────────────────▶ tls.plainControl                │
//!                          csa ◀─inbox── tls.outbox                 tls.plainSignal ──▶ readShutdown │
//!                          csa ◀─control─ tls.signal                                                 │
//!                          csa ─readShutdown─▶ tls.control                                           │
//!                          csa ─CreatorFeedback─▶ relay ◀─tlsClosed── tls                            │
//!                                                 relay ──▶ CreatorFeedback                          │
//!                     └───────────────────────────────────────────────────────────────────────────┘
//! ```

use std::io;

use axon::{boxes, Component, Cx, Graphline, Handle, Inbox, LinkError, Outbox, Step};
use csa::SocketShutdown;

use crate::TlsClosed;

boxes! {
    /// The relay's boxes.
    pub struct RelayBoxes {
        /// the CSA's socketShutdown (C6)
        #[name = "_csaFeedback"]
        pub feedback: Inbox<SocketShutdown>,
        /// the layer's tlsClosed
        #[name = "_tlsClosed"]
        pub tls_closed: Inbox<TlsClosed>,
        /// socketShutdown on to the creator, how_died filled in
        #[name = "CreatorFeedback"]
        pub creator_feedback: Outbox<SocketShutdown>,
    }
}

/// Passes the CSA's `socketShutdown` on; when the socket closed in order
/// (`how_died` `None`) but the TLS session did not, the session's error
/// becomes `how_died`. The layer says `tlsClosed` in the step in which it
/// tells the CSA to close, so it is here first whenever the close was the
/// layer's; a CSA that dies by itself (a reset, a timeout) has its own
/// error, which stands.
#[derive(Debug)]
struct Relay;

impl Component for Relay {
    type Boxes = RelayBoxes;

    fn name(&self) -> std::borrow::Cow<'static, str> {
        "TlsFeedback".into()
    }

    fn main(&mut self, cx: &mut Cx<RelayBoxes>) -> Step {
        let Some(mut msg) = cx.feedback.recv() else {
            return Step::Pause;
        };
        let closed = cx.tls_closed.recv();
        if msg.how_died.is_none() {
            msg.how_died = closed.and_then(|c| c.how_died).map(io::Error::from);
        }
        let _ = cx.creator_feedback.send(msg);
        Step::Done
    }
}

/// The Graphline of `csa`, `layer` and the relay, presenting the CSA's
/// boxes (see the module docs).
pub(crate) fn over_csa(layer: Handle, csa: Handle) -> Result<Graphline, LinkError> {
    let through = |a, b| (("self", a), b);
    Graphline::new(
        vec![("csa", csa), ("tls", layer), ("relay", Handle::new(Relay))],
        &[
            through("ReadReady", ("csa", "ReadReady")),
            through("SendReady", ("csa", "SendReady")),
            through("inbox", ("tls", "plainInbox")),
            through("control", ("tls", "plainControl")),
            (("tls", "plainOutbox"), ("self", "outbox")),
            (("tls", "plainSignal"), ("self", "readShutdown")),
            (("csa", "outbox"), ("tls", "inbox")),
            (("tls", "outbox"), ("csa", "inbox")),
            (("tls", "signal"), ("csa", "control")),
            (("csa", "readShutdown"), ("tls", "control")),
            (("csa", "CreatorFeedback"), ("relay", "_csaFeedback")),
            (("tls", "tlsClosed"), ("relay", "_tlsClosed")),
            (("relay", "CreatorFeedback"), ("self", "CreatorFeedback")),
        ],
    )
}
