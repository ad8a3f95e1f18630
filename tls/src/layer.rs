//! The TLS layer's state machine: ciphertext on its outer boxes,
//! plaintext on its inner ones, rustls (through [`Engine`]) in between.
//!
//! One pass ([`Layer::pump`]) moves bytes until nothing moves: records out
//! to the connection, decrypted bytes to the handler, ciphertext into
//! rustls, the handler's bytes into rustls. Each move stops at a full box
//! (A5) and keeps what it holds, so the layer never holds more than one
//! message each way beyond rustls's own bounded buffers.

use std::time::{Duration, Instant};

use axon::{Control, Cx, Handle, Step};

use crate::engine::{Engine, Error, Plain};
use crate::limit::Turn;
use crate::{TlsBoxes, TlsClosed, TlsError, INBOX_LIMIT};

/// The most plaintext passed to the handler in one message.
const PLAIN_CHUNK: usize = 32 * 1024;

pub(crate) struct Layer {
    role: &'static str,
    engine: Result<Engine, String>,
    inner: Option<Handle>,
    pub(crate) handshake_timeout: Duration,
    started: bool,
    deadline: Option<Instant>,
    /// Ciphertext being fed to rustls, and how far.
    cipher_in: Vec<u8>,
    cipher_at: usize,
    /// The connection will send no more ciphertext once `inbox` is empty.
    cipher_eof: bool,
    /// Records the connection had no room for (A5).
    held_cipher: Option<Vec<u8>>,
    /// Decrypted bytes the handler had no room for (A5).
    held_plain: Option<Vec<u8>>,
    /// The handler's bytes being encrypted, and how far (a partial
    /// `writer().write` keeps the rest here).
    plain_out: Vec<u8>,
    plain_at: usize,
    /// The handler said producerFinished (or ended).
    plain_finished: bool,
    close_sent: bool,
    /// socketShutdown has gone to the handler.
    told_handler: bool,
    /// The peer's close_notify has come.
    peer_closed: bool,
    /// The input ended because our side stopped it (the connection said
    /// `producerFinished`, not `socketShutdown`: a graceful server stop,
    /// C7): no truncation, whatever the peer sent.
    ended_by_us: bool,
    /// What went wrong so far (truncation), for `tlsClosed`.
    verdict: Option<TlsError>,
    /// This layer's place under the server's handshake cap, if any.
    pub(crate) turn: Option<Turn>,
    /// STARTTLS: bytes pass through unchanged until `makessl`.
    pub(crate) plain_mode: bool,
    /// `makessl` has come: what was read and what the handler sent before
    /// it (these many messages of `inbox` and `plainInbox`) still pass in
    /// the clear, then TLS begins.
    switching: Option<(usize, usize)>,
}

impl Layer {
    pub(crate) fn new(role: &'static str, engine: Result<Engine, String>) -> Layer {
        Layer {
            role,
            engine,
            inner: None,
            handshake_timeout: crate::HANDSHAKE_TIMEOUT,
            started: false,
            deadline: None,
            cipher_in: Vec::new(),
            cipher_at: 0,
            cipher_eof: false,
            held_cipher: None,
            held_plain: None,
            plain_out: Vec::new(),
            plain_at: 0,
            plain_finished: false,
            close_sent: false,
            told_handler: false,
            peer_closed: false,
            ended_by_us: false,
            verdict: None,
            turn: None,
            plain_mode: false,
            switching: None,
        }
    }

    pub(crate) fn set_inner(&mut self, inner: Handle) {
        self.inner = Some(inner);
    }

    /// Bounds the plaintext inbox and links the inner handler, if any, to
    /// the plaintext boxes (as ServerCore links a handler to its CSA, H2).
    pub(crate) fn created(&mut self, me: &Handle, boxes: &TlsBoxes) {
        boxes.plain_inbox.set_limit(Some(INBOX_LIMIT));
        let Some(inner) = &self.inner else { return };
        let _ = inner.set_inbox_size("inbox", Some(INBOX_LIMIT));
        let mut pairs = vec![
            ((me, "plainOutbox"), (inner, "inbox")),
            ((me, "plainSignal"), (inner, "control")),
            ((inner, "outbox"), (me, "plainInbox")),
            ((inner, "signal"), (me, "plainControl")),
        ];
        if inner.has_box("serversignal") {
            pairs.push(((inner, "serversignal"), (me, "serversignal")));
        }
        if inner.has_box("sslready") {
            pairs.push(((me, "sslready"), (inner, "sslready")));
        }
        if inner.has_box("tlsClosed") {
            pairs.push(((me, "tlsClosed"), (inner, "tlsClosed")));
        }
        if inner.has_box("makessl") {
            pairs.push(((inner, "makessl"), (me, "makessl")));
        }
        // None is recorded (as ServerCore's H2): a record each would cost
        // a TLS connection 0.7 KiB while idle, and nothing needs them.
        // Every linkage joins this layer and its own child: those out of
        // the layer's boxes go with it, and a message into them after it
        // has ended is discarded (A4).
        for (src, dst) in pairs {
            if let Err(e) = axon::link_boxes(src, dst) {
                self.engine = Err(format!("cannot link the inner handler: {e}"));
                return;
            }
        }
    }

    pub(crate) fn step(&mut self, cx: &Cx<TlsBoxes>) -> Step {
        if !self.started {
            self.started = true;
            if let Err(e) = &self.engine {
                log::error!("tls {}: {e}", self.role);
                let e = TlsError::Setup(e.clone());
                return self.abort(cx, Some(e));
            }
            if let Some(inner) = self.inner.clone() {
                cx.add_child(&inner);
                if let Err(e) = cx.activate(&inner) {
                    log::error!("tls {}: {e}", self.role);
                    return self.abort(cx, Some(TlsError::Setup(e.to_string())));
                }
            }
            if !self.plain_mode {
                self.arm_deadline(cx);
            }
        }
        if self.plain_mode {
            match self.plain_step(cx) {
                Some(step) => return step,
                None => {
                    // Switched: TLS from here on (the rest of this step).
                    self.plain_mode = false;
                    if self.cipher_eof {
                        log::debug!("tls {}: the connection ended at makessl", self.role);
                        return self.abort(cx, Some(TlsError::EndedInHandshake));
                    }
                    self.arm_deadline(cx);
                }
            }
        }
        while cx.handshake_turn.recv().is_some() {}
        // Already TLS: a makessl means nothing.
        while cx.makessl.recv().is_some() {}
        // Control first: the bytes sent before it are then in the inbox.
        while let Some(msg) = cx.control.recv() {
            if msg.is_producer_finished() {
                self.cipher_eof = true;
                // A server's connection is a CSA, whose readShutdown says
                // producerFinished only for a stop of ours (C7); a
                // client's is a TcpClient, whose signal says it whenever
                // the connection ends.
                self.ended_by_us |= self.role == "server" && msg == Control::ProducerFinished;
            } else {
                log::debug!("tls {}: {msg:?}: closing", self.role);
                let how = self.stopped();
                return self.abort(cx, how);
            }
        }
        while let Some(msg) = cx.plain_control.recv() {
            if msg.is_producer_finished() {
                self.plain_finished = true;
            } else {
                // C5: one pass writing what the handler sent, then close.
                self.plain_finished = true;
                let how = self.stopped();
                let _ = self.pump(cx);
                if !self.handshaking() && !self.close_sent {
                    self.close_sent = true;
                    if let Some(e) = self.engine_mut() {
                        e.send_close_notify();
                    }
                    self.flush(cx);
                }
                let _ = cx.signal.send(Control::ShutdownMicroprocess);
                return self.end(cx, how);
            }
        }
        if let Some(inner) = &self.inner {
            if inner.is_done() && !self.plain_finished {
                if inner.panicked() {
                    log::warn!("tls {}: the inner handler panicked; closing", self.role);
                    let how = self.stopped();
                    return self.abort(cx, how);
                }
                self.plain_finished = true;
            }
        }
        if self.handshaking() && self.deadline.is_some_and(|d| Instant::now() >= d) {
            log::debug!(
                "tls {}: no handshake within {:?}: closing",
                self.role,
                self.handshake_timeout
            );
            let how = TlsError::HandshakeTimeout(self.handshake_timeout);
            return self.abort(cx, Some(how));
        }
        if self.cipher_eof && self.turn.as_ref().is_some_and(Turn::is_waiting) {
            // Queued for a turn, nothing sent yet: the peer cannot have
            // sent its Finished, and now never will.
            log::debug!(
                "tls {}: the connection ended while waiting for a handshake turn",
                self.role
            );
            return self.abort(cx, Some(TlsError::EndedInHandshake));
        }
        if let Err(e) = self.pump(cx) {
            return self.fail(cx, &e);
        }
        let input_over =
            self.cipher_eof && self.cipher_at >= self.cipher_in.len() && cx.inbox.is_empty();
        if input_over && !self.told_handler {
            if self.handshaking() {
                log::debug!(
                    "tls {}: the connection ended during the handshake",
                    self.role
                );
                let how = if self.ended_by_us {
                    TlsError::StoppedInHandshake
                } else {
                    TlsError::EndedInHandshake
                };
                return self.abort(cx, Some(how));
            }
            if self.held_plain.is_none() && self.ended_by_us && !self.peer_closed {
                // A graceful stop of ours (C7): no more input, and the
                // handler finishes its reply; then close_notify, as for
                // any close of ours. Not a truncation.
                log::debug!("tls {}: input ended by a graceful stop", self.role);
                self.told_handler = true;
                let _ = cx.plain_signal.send(Control::SocketShutdown);
            } else if self.held_plain.is_none() {
                // C7 over TLS: the handler finishes its reply all the same.
                log::debug!(
                    "tls {}: truncation: the connection ended without close_notify",
                    self.role
                );
                self.told_handler = true;
                self.verdict = Some(TlsError::Truncated);
                let _ = cx.plain_signal.send(Control::SocketShutdown);
            }
        }
        if self.plain_finished
            && self.plain_at >= self.plain_out.len()
            && cx.plain_inbox.is_empty()
            && !self.handshaking()
        {
            if !self.close_sent {
                self.close_sent = true;
                if let Some(e) = self.engine_mut() {
                    e.send_close_notify();
                }
                self.flush(cx);
            }
            let pending = self.engine.as_ref().is_ok_and(Engine::wants_write);
            if self.held_cipher.is_none() && !pending {
                // C5: the connection writes all this, then closes.
                let _ = cx.signal.send(Control::ProducerFinished);
                let how = self.verdict.take();
                return self.end(cx, how);
            }
        }
        Step::Pause
    }

    fn arm_deadline(&mut self, cx: &Cx<TlsBoxes>) {
        let deadline = Instant::now() + self.handshake_timeout;
        self.deadline = Some(deadline);
        cx.wake_at(deadline);
    }

    /// STARTTLS, before the switch: a passthrough, with A5 both ways (one
    /// message held each way), C5 and C7 as the connection's own. `None`
    /// once `makessl` has come and everything before it has passed: the
    /// caller goes on in TLS.
    fn plain_step(&mut self, cx: &Cx<TlsBoxes>) -> Option<Step> {
        while let Some(msg) = cx.control.recv() {
            if msg.is_producer_finished() {
                self.cipher_eof = true;
            } else {
                log::debug!("tls {}: {msg:?} before makessl: closing", self.role);
                return Some(self.abort(cx, None));
            }
        }
        while let Some(msg) = cx.plain_control.recv() {
            if msg.is_producer_finished() {
                self.plain_finished = true;
            } else {
                // C5: one pass writing what the handler sent, then close.
                self.pass_out(cx);
                let _ = cx.signal.send(Control::ShutdownMicroprocess);
                return Some(self.end(cx, None));
            }
        }
        if let Some(inner) = &self.inner {
            if inner.is_done() && !self.plain_finished {
                if inner.panicked() {
                    log::warn!("tls {}: the inner handler panicked; closing", self.role);
                    return Some(self.abort(cx, None));
                }
                self.plain_finished = true;
            }
        }
        if self.switching.is_none() && !self.plain_finished && cx.makessl.recv().is_some() {
            // What is in the boxes now came before the switch (as
            // Kamaelia's CSA, which wrote its inbox before makessl): it
            // passes in the clear, and nothing read before the switch is
            // ever fed to TLS.
            log::debug!("tls {}: makessl", self.role);
            self.switching = Some((cx.inbox.len(), cx.plain_inbox.len()));
        }
        while self.pass_in(cx) | self.pass_out(cx) {}
        if let Some((0, 0)) = self.switching {
            if self.held_plain.is_none() && self.held_cipher.is_none() {
                self.switching = None;
                return None;
            }
        }
        let input_over = self.cipher_eof && cx.inbox.is_empty() && self.held_plain.is_none();
        if input_over && !self.told_handler {
            self.told_handler = true; // C7, as the connection's own
            let _ = cx.plain_signal.send(Control::SocketShutdown);
        }
        if self.plain_finished && cx.plain_inbox.is_empty() && self.held_cipher.is_none() {
            let _ = cx.signal.send(Control::ProducerFinished);
            return Some(self.end(cx, None));
        }
        Some(Step::Pause)
    }

    /// Before the switch: one read chunk on to the handler, in the clear.
    fn pass_in(&mut self, cx: &Cx<TlsBoxes>) -> bool {
        let chunk = match self.held_plain.take() {
            Some(c) => c,
            None => {
                if let Some((left, _)) = &mut self.switching {
                    if *left == 0 {
                        return false;
                    }
                    *left -= 1;
                }
                match cx.inbox.recv() {
                    Some(c) => c,
                    None => return false,
                }
            }
        };
        match cx.plain_outbox.send(chunk) {
            Ok(()) => true,
            Err(full) => {
                self.held_plain = Some(full.into_inner());
                false
            }
        }
    }

    /// Before the switch: one message of the handler's on to the
    /// connection, in the clear.
    fn pass_out(&mut self, cx: &Cx<TlsBoxes>) -> bool {
        let chunk = match self.held_cipher.take() {
            Some(c) => c,
            None => {
                if let Some((_, left)) = &mut self.switching {
                    if *left == 0 {
                        return false;
                    }
                    *left -= 1;
                }
                match cx.plain_inbox.recv() {
                    Some(c) => c,
                    None => return false,
                }
            }
        };
        match cx.outbox.send(chunk) {
            Ok(()) => true,
            Err(full) => {
                self.held_cipher = Some(full.into_inner());
                false
            }
        }
    }

    fn handshaking(&self) -> bool {
        self.engine.as_ref().is_ok_and(Engine::is_handshaking)
    }

    fn engine_mut(&mut self) -> Option<&mut Engine> {
        self.engine.as_mut().ok()
    }

    /// Moves bytes every way until nothing moves.
    fn pump(&mut self, cx: &Cx<TlsBoxes>) -> Result<(), Error> {
        loop {
            let mut moved = false;
            self.flush(cx);
            moved |= self.deliver(cx);
            moved |= self.feed(cx)?;
            moved |= self.encrypt(cx);
            if !moved {
                return Ok(());
            }
        }
    }

    /// Sends the records rustls has ready (after every
    /// `process_new_packets` and every write: handshake messages, alerts,
    /// tickets, key updates, data). True if nothing is held back.
    fn flush(&mut self, cx: &Cx<TlsBoxes>) -> bool {
        if let Some(c) = self.held_cipher.take() {
            if let Err(full) = cx.outbox.send(c) {
                self.held_cipher = Some(full.into_inner());
                return false;
            }
        }
        while let Some(c) = self.engine_mut().and_then(Engine::take_ciphertext) {
            if let Err(full) = cx.outbox.send(c) {
                self.held_cipher = Some(full.into_inner());
                return false;
            }
        }
        true
    }

    /// Passes decrypted bytes to the handler while it has room.
    fn deliver(&mut self, cx: &Cx<TlsBoxes>) -> bool {
        let mut moved = false;
        loop {
            let chunk = match self.held_plain.take() {
                Some(c) => c,
                None => match self.engine_mut().map(|e| e.take_plaintext(PLAIN_CHUNK)) {
                    Some(Plain::Data(d)) => d,
                    Some(Plain::Closed) => {
                        if !self.told_handler {
                            // The peer's close_notify: a half-close (C7).
                            log::debug!("tls {}: close_notify from the peer", self.role);
                            self.told_handler = true;
                            self.peer_closed = true;
                            let _ = cx.plain_signal.send(Control::SocketShutdown);
                        }
                        return moved;
                    }
                    Some(Plain::Empty) | None => return moved,
                },
            };
            match cx.plain_outbox.send(chunk) {
                Ok(()) => moved = true,
                Err(full) => {
                    // A5: rustls keeps the rest and stops wanting to read.
                    self.held_plain = Some(full.into_inner());
                    return moved;
                }
            }
        }
    }

    /// Feeds ciphertext to rustls while it wants it and the handler's side
    /// is not full.
    fn feed(&mut self, cx: &Cx<TlsBoxes>) -> Result<bool, Error> {
        let Ok(engine) = self.engine.as_mut() else {
            return Ok(false);
        };
        if self.told_handler {
            // After close_notify nothing more is read: drop what comes.
            while cx.inbox.recv().is_some() {}
            self.cipher_in = Vec::new();
            self.cipher_at = 0;
            return Ok(false);
        }
        if self.held_plain.is_some() || !engine.wants_read() {
            return Ok(false);
        }
        let pending = self.cipher_at < self.cipher_in.len() || !cx.inbox.is_empty();
        if let Some(turn) = self.turn.as_mut().filter(|_| engine.is_handshaking()) {
            // The cap (HandshakeLimit): ciphertext waits, unread, for a turn.
            if pending && !turn.take(&cx.handshake_turn.postbox()) {
                return Ok(false);
            }
        }
        if self.cipher_at >= self.cipher_in.len() {
            match cx.inbox.recv() {
                Some(c) => {
                    self.cipher_in = c;
                    self.cipher_at = 0;
                }
                None => return Ok(false),
            }
            if self.cipher_in.is_empty() {
                return Ok(true);
            }
        }
        let was_handshaking = engine.is_handshaking();
        let n = engine.feed(&self.cipher_in[self.cipher_at..])?;
        self.cipher_at += n;
        if self.cipher_at >= self.cipher_in.len() {
            // The connection's read buffer, for its next read.
            csa::recycle(std::mem::take(&mut self.cipher_in));
            self.cipher_at = 0;
        }
        if was_handshaking && !engine.is_handshaking() {
            if let Some(turn) = self.turn.as_mut() {
                turn.release();
            }
            let s = engine.summary();
            log::debug!(
                "tls {}: handshake done: {} {}",
                self.role,
                s.protocol,
                s.cipher_suite
            );
            let _ = cx.sslready.send(s);
        }
        self.flush(cx);
        Ok(n > 0)
    }

    /// Encrypts the handler's bytes while the connection has room.
    fn encrypt(&mut self, cx: &Cx<TlsBoxes>) -> bool {
        if self.held_cipher.is_some() || self.close_sent {
            return false;
        }
        let Ok(engine) = self.engine.as_mut() else {
            return false;
        };
        if self.plain_at >= self.plain_out.len() {
            match cx.plain_inbox.recv() {
                Some(p) => {
                    self.plain_out = p;
                    self.plain_at = 0;
                }
                None => return false,
            }
        }
        let n = engine.write_plaintext(&self.plain_out[self.plain_at..]);
        self.plain_at += n;
        if self.plain_at >= self.plain_out.len() {
            self.plain_out = Vec::new();
            self.plain_at = 0;
        }
        self.flush(cx);
        n > 0 || self.plain_out.is_empty()
    }

    /// A TLS error: the alert rustls made goes out, then the connection
    /// closes (`shutdownMicroprocess`), and the handler is told to stop.
    fn fail(&mut self, cx: &Cx<TlsBoxes>, e: &Error) -> Step {
        if self.role == "client" {
            log::warn!("tls client: {e}");
        } else {
            log::debug!("tls server: {e}");
        }
        self.abort(cx, Some(TlsError::Tls(e.clone())))
    }

    /// Why a stop (`shutdownMicroprocess`) ends the session: during the
    /// handshake, the input's end if it came, or the stop; after it,
    /// truncation if the input ended without close_notify.
    fn stopped(&mut self) -> Option<TlsError> {
        if self.handshaking() || self.engine.is_err() {
            return Some(if self.cipher_eof {
                TlsError::EndedInHandshake
            } else {
                TlsError::StoppedInHandshake
            });
        }
        if self.cipher_eof && !self.peer_closed && !self.ended_by_us {
            return Some(TlsError::Truncated);
        }
        self.verdict.take()
    }

    /// Ends now: one pass sending what is ready (an alert, perhaps), then
    /// `shutdownMicroprocess` to the connection and to the handler.
    fn abort(&mut self, cx: &Cx<TlsBoxes>, how_died: Option<TlsError>) -> Step {
        self.flush(cx);
        let _ = cx.signal.send(Control::ShutdownMicroprocess);
        let _ = cx.plain_signal.send(Control::ShutdownMicroprocess);
        self.end(cx, how_died)
    }

    /// Every end goes through here: the turn under the cap is given back
    /// and `tlsClosed` says how the session ended, once.
    fn end(&mut self, cx: &Cx<TlsBoxes>, how_died: Option<TlsError>) -> Step {
        self.turn = None;
        let handshaken = self.engine.is_ok() && !self.handshaking();
        let _ = cx.tls_closed.send(TlsClosed {
            how_died,
            handshaken,
            is_server: self.role == "server",
        });
        Step::Done
    }
}
