//! [`AcceptGate`]: something outside a TCPServer that decides whether it
//! may accept another connection now (a TLS server's cap on handshakes in
//! progress), so that above a limit accepting pauses as T8's does: the
//! listener stays open, new clients wait in the kernel's backlog, and no
//! CPU is spent until the gate says there is room again.

use std::fmt;

use axon::Postbox;

use crate::HandOff;

/// Decides, per connection about to be accepted, whether there is room
/// for it (see the module docs). Set one with
/// [`ServerOptions::accept_gate`](crate::ServerOptions::accept_gate); the
/// `tls` crate's `HandshakeLimit::accept_gate` is one.
///
/// A place is taken *before* the accept, so that a whole accept round
/// cannot overshoot the limit; one taken for an accept that found nobody
/// waiting is given back with [`leave`](Self::leave). Whoever serves the
/// connection gives its place back when done with it (for a handshake
/// cap: when the handshake ends, however it ends).
pub trait AcceptGate: Send + Sync + fmt::Debug {
    /// Takes a place for one more connection, if there is one. If not,
    /// keeps `resume` and sends it [`HandOff::Resume`] once a place frees
    /// (then the server tries again).
    fn try_enter(&self, resume: &Postbox<HandOff>) -> bool;

    /// Gives back a place [`try_enter`](Self::try_enter) took for an
    /// accept that found no connection.
    fn leave(&self);
}
