//! # TCPClient
//!
//! Kamaelia's `Kamaelia.Internet.TCPClient` (rule H7 of `PROTOCOL.md`):
//! connects to a server without blocking, then talks through a
//! [`Csa`] child. Put it in a [`Pipeline`](axon::Pipeline) like any other
//! component: what arrives in its `inbox` is sent to the server, what the
//! server sends comes out of its `outbox`.
//!
//! ## Boxes
//!
//! | box | direction | carries | meaning |
//! |---|---|---|---|
//! | `inbox` | inbox | `Vec<u8>` | bytes to send (passed through to the CSA's `inbox` once connected) |
//! | `control` | inbox | [`Control`] | `producerFinished` / `shutdownMicroprocess`: forwarded to the CSA; the client ends when it has |
//! | `_socketFeedback` | inbox | [`SocketShutdown`] | the CSA's `CreatorFeedback` |
//! | `_connectReady` | inbox | [`Ready`] | the Selector's notice that the connect finished |
//! | `outbox` | outbox | `Vec<u8>` | bytes received (the CSA's `outbox`, passed through) |
//! | `signal` | outbox | [`Control`] | `producerFinished` when the connection has ended; `shutdownMicroprocess` if it could not be made |
//! | `_selectorSignal` | outbox | [`Request`] | requests to the Selector |
//!
//! A refused or failed connection is logged at `warn` and reported as
//! `shutdownMicroprocess` out of `signal` (as Kamaelia does). Kamaelia's
//! `delay` (seconds to wait before connecting) is
//! [`TcpClient::with_delay`]; the wait is a timer ([`Cx::wake_at`]), so a
//! waiting client costs no CPU, and `producerFinished` or
//! `shutdownMicroprocess` in `control` ends it before it connects.

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axon::{Boxes, Component, Control, Cx, Handle, Postbox, Step};
pub use csa::{Csa, SocketShutdown};
use mio::net::TcpStream;
use selector::{Ready, Request, Source};

enum Phase {
    /// Kamaelia's `delay`, counted from the first step.
    Delay(Duration),
    /// Connect at this instant.
    Waiting(Instant),
    Start,
    Connecting(Arc<TcpStream>, Source),
    Connected {
        csa: Handle,
        control: Option<Postbox<Control>>,
    },
    Done,
}

/// The TCPClient component (see the crate docs).
pub struct TcpClient {
    addr: SocketAddr,
    phase: Phase,
}

impl fmt::Debug for TcpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TcpClient({})", self.addr)
    }
}

impl TcpClient {
    /// Kamaelia `TCPClient(host, port)`: connects when activated.
    pub fn new(addr: SocketAddr) -> TcpClient {
        TcpClient {
            addr,
            phase: Phase::Start,
        }
    }

    /// Kamaelia `TCPClient(host, port, delay)`: waits `delay` after
    /// activation, then connects. Bytes that arrive in `inbox` meanwhile
    /// wait there and are sent once connected.
    pub fn with_delay(addr: SocketAddr, delay: Duration) -> TcpClient {
        TcpClient {
            addr,
            phase: Phase::Delay(delay),
        }
    }

    fn fail(&mut self, cx: &mut Cx<'_>, e: &dyn fmt::Display) -> Step {
        log::warn!("tcpclient: cannot connect to {}: {e}", self.addr);
        if let Phase::Connecting(_, source) = &self.phase {
            let _ = cx.send(Request::RemoveWriter(source.clone()), "_selectorSignal");
        }
        self.phase = Phase::Done;
        let _ = cx.send(Control::ShutdownMicroprocess, "signal");
        Step::Done
    }

    fn connected(&mut self, cx: &mut Cx<'_>, stream: Arc<TcpStream>, source: Source) -> Step {
        log::debug!("tcpclient: connected to {}", self.addr);
        let _ = stream.set_nodelay(true);
        let csa = Csa::with_source(stream, source);
        let me = cx.me().clone();
        let wired = cx
            .link((&me, "inbox"), (&csa, "inbox"))
            .and_then(|_| cx.link((&csa, "outbox"), (&me, "outbox")))
            .and_then(|_| cx.link((&csa, "CreatorFeedback"), (&me, "_socketFeedback")));
        if let Err(e) = wired {
            return self.fail(cx, &e);
        }
        cx.add_child(&csa);
        if let Err(e) = cx.activate(&csa) {
            return self.fail(cx, &e);
        }
        self.phase = Phase::Connected {
            control: csa.postbox("control").ok(),
            csa,
        };
        Step::Pause
    }
}

impl Component for TcpClient {
    fn boxes(&self) -> Boxes {
        Boxes::new()
            .inbox::<Vec<u8>>("inbox", "bytes to send to the server")
            .inbox::<Control>("control", "producerFinished / shutdownMicroprocess")
            .inbox::<SocketShutdown>("_socketFeedback", "the CSA's CreatorFeedback")
            .inbox::<Ready>("_connectReady", "the Selector's notice: connect finished")
            .outbox::<Vec<u8>>("outbox", "bytes from the server")
            .outbox::<Control>(
                "signal",
                "producerFinished at the end; shutdownMicroprocess if the connect failed",
            )
            .outbox::<Request>("_selectorSignal", "requests to the Selector")
    }

    fn name(&self) -> std::borrow::Cow<'static, str> {
        "TCPClient".into()
    }

    fn main(&mut self, cx: &mut Cx<'_>) -> Step {
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Delay(delay) => {
                self.phase = Phase::Waiting(Instant::now() + delay);
                Step::Continue
            }
            Phase::Waiting(at) => {
                if cx.recv::<Control>("control").is_some() {
                    return self.fail(cx, &"stopped before connecting");
                }
                if Instant::now() < at {
                    cx.wake_at(at);
                    self.phase = Phase::Waiting(at);
                    return Step::Pause;
                }
                self.phase = Phase::Start;
                Step::Continue
            }
            Phase::Start => {
                if let Err(e) = selector::link_to_selector(cx, "_selectorSignal") {
                    return self.fail(cx, &e);
                }
                let stream = match TcpStream::connect(self.addr) {
                    Ok(s) => Arc::new(s),
                    Err(e) => return self.fail(cx, &e),
                };
                let source = Source::new(stream.clone());
                let me = cx.me().clone();
                match Request::new_writer((&me, "_connectReady"), &source) {
                    Ok(r) => {
                        let _ = cx.send(r, "_selectorSignal");
                    }
                    Err(e) => return self.fail(cx, &e),
                }
                self.phase = Phase::Connecting(stream, source);
                Step::Pause
            }
            Phase::Connecting(stream, source) => {
                if cx.recv::<Ready>("_connectReady").is_none() {
                    if cx.recv::<Control>("control").is_some() {
                        self.phase = Phase::Connecting(stream, source);
                        return self.fail(cx, &"stopped while connecting");
                    }
                    self.phase = Phase::Connecting(stream, source);
                    return Step::Pause;
                }
                // Writable: the connect finished, one way or the other.
                let outcome = match stream.take_error() {
                    Ok(Some(e)) | Err(e) => Err(e),
                    Ok(None) => stream.peer_addr().map(drop),
                };
                match outcome {
                    Ok(()) => self.connected(cx, stream, source),
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                        // Spurious notice: still connecting; ask again.
                        let me = cx.me().clone();
                        if let Ok(r) = Request::new_writer((&me, "_connectReady"), &source) {
                            let _ = cx.send(r, "_selectorSignal");
                        }
                        self.phase = Phase::Connecting(stream, source);
                        Step::Pause
                    }
                    Err(e) => {
                        self.phase = Phase::Connecting(stream, source);
                        self.fail(cx, &e)
                    }
                }
            }
            Phase::Connected { csa, control } => {
                while let Some(msg) = cx.recv::<Control>("control") {
                    if let Some(p) = &control {
                        let _ = p.send(msg);
                    }
                }
                let ended = cx.recv::<SocketShutdown>("_socketFeedback").is_some() || csa.is_done();
                if ended {
                    cx.remove_child(&csa);
                    log::debug!("tcpclient: connection to {} ended", self.addr);
                    let _ = cx.send(Control::ProducerFinished, "signal");
                    return Step::Done;
                }
                self.phase = Phase::Connected { csa, control };
                Step::Pause
            }
            Phase::Done => Step::Done,
        }
    }
}
