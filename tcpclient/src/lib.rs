//! # TCPClient
//!
//! Kamaelia's `Kamaelia.Internet.TCPClient` (rule H7 of the project's `docs/PROTOCOL.md`):
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
//! waiting client costs no CPU.
//!
//! `producerFinished` half-closes the connection: everything sent is
//! written, the write side is shut down, and the server's replies are read
//! (and come out of `outbox`) until it closes, within the CSA's linger time
//! ([`csa::CsaOptions::half_close`]). So `Pipeline(Request(), TCPClient(…),
//! Print())` prints the reply to a request that was followed at once by
//! `producerFinished`.
//!
//! Whatever arrives, in whatever phase, is acted on: bytes sent to `inbox`
//! before the connection is made wait there and are sent once it is;
//! `producerFinished` before then is kept and passed to the connection
//! once made (so a producer that sends its request and finishes at once
//! still gets its reply); `shutdownMicroprocess` before then ends the
//! client without connecting, reported on `signal`.
//!
//! ```no_run
//! use axon::{Pipeline, Scheduler};
//! use tcpclient::TcpClient;
//! # use axon::{Component, Control, Cx, Standard, Step};
//! # struct Request; struct Print;
//! # impl Component for Request { type Boxes = Standard<(), Vec<u8>>;
//! #     fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
//! #         let _ = cx.outbox.send(b"hello\n".to_vec());
//! #         let _ = cx.signal.send(Control::ProducerFinished); Step::Done } }
//! # impl Component for Print { type Boxes = Standard<Vec<u8>, ()>;
//! #     fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
//! #         while let Some(b) = cx.inbox.recv() { print!("{}", String::from_utf8_lossy(&b)); }
//! #         if cx.control.recv().is_some() { Step::Done } else { Step::Pause } } }
//!
//! // Kamaelia: Pipeline(Request(), TCPClient("127.0.0.1", 1601), Print()).run()
//! let client = TcpClient::new("127.0.0.1:1601".parse().unwrap());
//! let pipeline = Pipeline::new(vec![Request.into(), client.into(), Print.into()]).unwrap();
//! let scheduler = selector::scheduler().unwrap();
//! scheduler.activate(pipeline).unwrap();
//! scheduler.run(); // returns once the connection has closed
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axon::{boxes, Component, Control, Cx, Handle, Inbox, Outbox, Postbox, Step};
pub use csa::{Csa, SocketShutdown, TcpStream};
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

boxes! {
    /// The TCPClient's boxes (see the crate docs).
    pub struct TcpClientBoxes {
        /// bytes to send to the server
        pub inbox: Inbox<Vec<u8>>,
        /// producerFinished / shutdownMicroprocess
        pub control: Inbox<Control>,
        /// the CSA's CreatorFeedback
        #[name = "_socketFeedback"]
        pub socket_feedback: Inbox<SocketShutdown>,
        /// the Selector's notice: connect finished
        #[name = "_connectReady"]
        pub connect_ready: Inbox<Ready>,
        /// bytes from the server
        pub outbox: Outbox<Vec<u8>>,
        /// producerFinished at the end; shutdownMicroprocess if the connect failed
        pub signal: Outbox<Control>,
        /// requests to the Selector
        #[name = "_selectorSignal"]
        pub selector_signal: Outbox<Request>,
    }
}

/// The TCPClient component (see the crate docs).
pub struct TcpClient {
    addr: SocketAddr,
    phase: Phase,
    /// `producerFinished` that came before the connection: passed on once
    /// it is made.
    finished_early: Option<Control>,
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
            finished_early: None,
        }
    }

    /// Kamaelia `TCPClient(host, port, delay)`: waits `delay` after
    /// activation, then connects. Bytes that arrive in `inbox` meanwhile
    /// wait there and are sent once connected.
    pub fn with_delay(addr: SocketAddr, delay: Duration) -> TcpClient {
        TcpClient {
            addr,
            phase: Phase::Delay(delay),
            finished_early: None,
        }
    }

    fn fail(&mut self, cx: &Cx<TcpClientBoxes>, e: &dyn fmt::Display) -> Step {
        log::warn!("tcpclient: cannot connect to {}: {e}", self.addr);
        if let Phase::Connecting(_, source) = &self.phase {
            let _ = cx
                .selector_signal
                .send(Request::RemoveWriter(source.clone()));
        }
        self.phase = Phase::Done;
        let _ = cx.signal.send(Control::ShutdownMicroprocess);
        Step::Done
    }

    /// Control messages before the connection is made: `producerFinished`
    /// is kept for the connection; anything else stops the client.
    /// Returns false if it must stop.
    fn early_control(&mut self, cx: &Cx<TcpClientBoxes>) -> bool {
        while let Some(msg) = cx.control.recv() {
            if msg.is_producer_finished() {
                self.finished_early = Some(msg);
            } else {
                return false;
            }
        }
        true
    }

    fn connected(
        &mut self,
        cx: &Cx<TcpClientBoxes>,
        stream: Arc<TcpStream>,
        source: Source,
    ) -> Result<(), Box<dyn std::error::Error>> {
        log::debug!("tcpclient: connected to {}", self.addr);
        let _ = stream.set_nodelay(true);
        // Half-close on producerFinished: the server's replies to what was
        // sent last still arrive.
        let options = csa::CsaOptions {
            half_close: true,
            ..csa::CsaOptions::default()
        };
        let csa = Csa::shared(stream, source)
            .with_peer(self.addr)
            .with_options(options);
        let csa = Handle::new(csa);
        let me = cx.me().clone();
        cx.link((&me, "inbox"), (&csa, "inbox"))
            .and_then(|_| cx.link((&csa, "outbox"), (&me, "outbox")))
            .and_then(|_| cx.link((&csa, "CreatorFeedback"), (&me, "_socketFeedback")))?;
        cx.add_child(&csa);
        cx.activate(&csa)?;
        let control = csa.postbox("control").ok();
        if let (Some(p), Some(msg)) = (&control, self.finished_early.take()) {
            let _ = p.send(msg);
        }
        self.phase = Phase::Connected { csa, control };
        Ok(())
    }

    /// One phase's work; `None` to go straight on to the next phase in the
    /// same step.
    fn advance(&mut self, cx: &Cx<TcpClientBoxes>) -> Option<Step> {
        match std::mem::replace(&mut self.phase, Phase::Done) {
            Phase::Delay(delay) => {
                self.phase = Phase::Waiting(Instant::now() + delay);
                None
            }
            Phase::Waiting(at) => {
                if !self.early_control(cx) {
                    return Some(self.fail(cx, &"stopped before connecting"));
                }
                if Instant::now() < at {
                    cx.wake_at(at);
                    self.phase = Phase::Waiting(at);
                    return Some(Step::Pause);
                }
                self.phase = Phase::Start;
                None
            }
            Phase::Start => {
                if !self.early_control(cx) {
                    return Some(self.fail(cx, &"stopped before connecting"));
                }
                if let Err(e) = selector::link_to_selector(cx, "_selectorSignal") {
                    return Some(self.fail(cx, &e));
                }
                let stream = match TcpStream::connect(self.addr) {
                    Ok(s) => Arc::new(s),
                    Err(e) => return Some(self.fail(cx, &e)),
                };
                let source = Source::new(stream.clone());
                let _ = cx.selector_signal.send(Request::NewWriter(
                    cx.connect_ready.postbox(),
                    source.clone(),
                ));
                self.phase = Phase::Connecting(stream, source);
                Some(Step::Pause)
            }
            Phase::Connecting(stream, source) => {
                self.phase = Phase::Connecting(stream.clone(), source.clone());
                if !self.early_control(cx) {
                    return Some(self.fail(cx, &"stopped while connecting"));
                }
                if cx.connect_ready.recv().is_none() {
                    return Some(Step::Pause);
                }
                // Writable: the connect finished, one way or the other.
                let outcome = match stream.take_error() {
                    Ok(Some(e)) | Err(e) => Err(e),
                    Ok(None) => stream.peer_addr().map(drop),
                };
                match outcome {
                    Ok(()) => match self.connected(cx, stream, source) {
                        Ok(()) => None,
                        Err(e) => Some(self.fail(cx, &e)),
                    },
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                        // Spurious notice: still connecting; ask again.
                        let _ = cx
                            .selector_signal
                            .send(Request::NewWriter(cx.connect_ready.postbox(), source));
                        Some(Step::Pause)
                    }
                    Err(e) => Some(self.fail(cx, &e)),
                }
            }
            Phase::Connected { csa, control } => {
                while let Some(msg) = cx.control.recv() {
                    if let Some(p) = &control {
                        let _ = p.send(msg);
                    }
                }
                let ended = cx.socket_feedback.recv().is_some() || csa.is_done();
                if ended {
                    cx.remove_child(&csa);
                    log::debug!("tcpclient: connection to {} ended", self.addr);
                    let _ = cx.signal.send(Control::ProducerFinished);
                    return Some(Step::Done);
                }
                self.phase = Phase::Connected { csa, control };
                Some(Step::Pause)
            }
            Phase::Done => Some(Step::Done),
        }
    }
}

impl Component for TcpClient {
    type Boxes = TcpClientBoxes;

    fn name(&self) -> std::borrow::Cow<'static, str> {
        "TCPClient".into()
    }

    fn main(&mut self, cx: &mut Cx<TcpClientBoxes>) -> Step {
        loop {
            if let Some(step) = self.advance(cx) {
                return step;
            }
        }
    }
}
