//! A cap on handshakes in progress, shared by the layers of one server.
//!
//! A handshake costs CPU (key exchange, signatures) and memory (rustls's
//! handshake state), and a client decides when to start one; a flood of
//! ClientHellos could otherwise take a server's every cycle. The cap
//! counts layers that have begun feeding a handshake to rustls: a
//! connection whose first ciphertext arrives while the cap is reached
//! waits in a first-come, first-served queue without its ciphertext being
//! read (it stays in the layer's bounded `inbox`, and then in the CSA and
//! the kernel, C3), and is handed a turn, by a message to its
//! `_handshakeTurn` inbox, when one in progress finishes or ends. The
//! handshake deadline counts from the connection's start, queue included,
//! so a queued connection is never held for longer than that.
//!
//! Each turn is a [`Turn`] owned by its layer: dropping it (the layer
//! ends, however it ends, or is dropped unrun) gives the turn back or
//! leaves the queue, so no turn is ever lost.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use axon::Postbox;
use tcpserver::{AcceptGate, HandOff};

/// A cap on the handshakes in progress at once, shared by every
/// [`TlsServer`](crate::TlsServer) of a server (clone it into the
/// factory; see [`TlsServer::with_handshake_limit`](crate::TlsServer::with_handshake_limit)).
///
/// Above the cap a new connection's handshake waits, unread, for a turn
/// (first come, first served); its handshake deadline runs meanwhile.
#[derive(Clone)]
pub struct HandshakeLimit {
    gate: Arc<Mutex<Gate>>,
}

struct Gate {
    max: usize,
    /// Turns held, or granted and not yet taken up.
    active: usize,
    /// The most `active` has been.
    most: usize,
    next_id: u64,
    waiters: VecDeque<(u64, Postbox<()>)>,
    /// Waiters handed a turn that have not taken it up yet.
    granted: HashSet<u64>,
    /// Turns taken at accept by an [`AcceptGate`] and not yet claimed by
    /// the layer made for that connection (counted in `active`).
    reserved: usize,
    /// Servers paused by the gate, to tell when a turn frees.
    paused: Vec<Postbox<HandOff>>,
}

impl fmt::Debug for HandshakeLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = self.lock();
        f.debug_struct("HandshakeLimit")
            .field("max", &g.max)
            .field("in_progress", &g.active)
            .field("waiting", &g.waiters.len())
            .finish()
    }
}

impl HandshakeLimit {
    /// At most `max` handshakes in progress at once (at least 1).
    pub fn new(max: usize) -> HandshakeLimit {
        HandshakeLimit {
            gate: Arc::new(Mutex::new(Gate {
                max: max.max(1),
                active: 0,
                most: 0,
                next_id: 0,
                waiters: VecDeque::new(),
                granted: HashSet::new(),
                reserved: 0,
                paused: Vec::new(),
            })),
        }
    }

    /// The cap.
    pub fn max(&self) -> usize {
        self.lock().max
    }

    /// Handshakes in progress now (turns held, or handed out and about to
    /// be taken up).
    pub fn in_progress(&self) -> usize {
        self.lock().active
    }

    /// Connections waiting for a turn now.
    pub fn waiting(&self) -> usize {
        self.lock().waiters.len()
    }

    /// The most handshakes that have been in progress at once.
    pub fn most_in_progress(&self) -> usize {
        self.lock().most
    }

    fn lock(&self) -> MutexGuard<'_, Gate> {
        // A panic while holding it leaves counts that are still whole.
        self.gate.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// This limit as the [`AcceptGate`] of the servers whose layers share
    /// it (`ServerOptions::accept_gate`): above the cap, accepting
    /// pauses, as at T8's connection limit, and new clients wait in the
    /// kernel's backlog rather than in the server, unread. A turn is then
    /// taken at accept, and the layer made for that connection holds it
    /// from its start (its handshake deadline is the most a silent client
    /// keeps it); every connection of such a server must get a layer with
    /// this limit (a factory that wraps each in a `TlsServer`).
    pub fn accept_gate(&self) -> std::sync::Arc<dyn AcceptGate> {
        std::sync::Arc::new(self.clone())
    }

    pub(crate) fn turn(&self) -> Turn {
        let mut g = self.lock();
        g.next_id += 1;
        // A turn the gate took when this connection was accepted.
        let state = if g.reserved > 0 {
            g.reserved -= 1;
            State::Holding
        } else {
            State::Idle
        };
        Turn {
            limit: self.clone(),
            id: g.next_id,
            state,
        }
    }

    /// A turn is given back: the next waiter gets it, or it is freed (and
    /// servers the gate paused may accept again).
    fn pass_on(&self) {
        let (next, paused) = {
            let mut g = self.lock();
            match g.waiters.pop_front() {
                Some((id, wake)) => {
                    g.granted.insert(id);
                    (Some(wake), Vec::new())
                }
                None => {
                    g.active = g.active.saturating_sub(1);
                    (None, std::mem::take(&mut g.paused))
                }
            }
        };
        // Outside the lock: the waiter is woken by the message (A6). If
        // its inbox is gone, so is its layer, whose Turn has given the
        // turn back already or will when dropped.
        if let Some(wake) = next {
            let _ = wake.send(());
        }
        for server in paused {
            let _ = server.send(HandOff::Resume);
        }
    }
}

impl AcceptGate for HandshakeLimit {
    fn try_enter(&self, resume: &Postbox<HandOff>) -> bool {
        let mut g = self.lock();
        if g.active < g.max && g.waiters.is_empty() {
            g.active += 1;
            g.most = g.most.max(g.active);
            g.reserved += 1;
            true
        } else {
            // Told when a turn frees (`pass_on`); a server asks again only
            // after that, so the list stays as short as the servers.
            if !g.paused.iter().any(|p| p.same(resume)) {
                g.paused.push(resume.clone());
            }
            false
        }
    }

    fn leave(&self) {
        {
            let mut g = self.lock();
            g.reserved = g.reserved.saturating_sub(1);
        }
        self.pass_on();
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Idle,
    Waiting,
    Holding,
    Done,
}

/// One layer's place under a [`HandshakeLimit`].
pub(crate) struct Turn {
    limit: HandshakeLimit,
    id: u64,
    state: State,
}

impl Turn {
    /// True once this layer holds a turn: at once if one is free and
    /// nobody waits; otherwise it joins the queue and `wake` is sent a
    /// message when its turn comes (then call again).
    pub(crate) fn take(&mut self, wake: &Postbox<()>) -> bool {
        let mut g = self.limit.lock();
        match self.state {
            State::Holding => true,
            State::Done => false,
            State::Waiting => {
                if g.granted.remove(&self.id) {
                    self.state = State::Holding;
                    true
                } else {
                    false
                }
            }
            State::Idle => {
                if g.active < g.max && g.waiters.is_empty() {
                    g.active += 1;
                    g.most = g.most.max(g.active);
                    self.state = State::Holding;
                    true
                } else {
                    g.waiters.push_back((self.id, wake.clone()));
                    self.state = State::Waiting;
                    false
                }
            }
        }
    }

    /// True while queued for a turn.
    pub(crate) fn is_waiting(&self) -> bool {
        self.state == State::Waiting
    }

    /// Gives the turn back (the handshake is over) or leaves the queue.
    pub(crate) fn release(&mut self) {
        let state = std::mem::replace(&mut self.state, State::Done);
        let pass = match state {
            State::Holding => true,
            State::Waiting => {
                let mut g = self.limit.lock();
                g.waiters.retain(|(id, _)| *id != self.id);
                // Handed a turn it never took up: pass that on.
                g.granted.remove(&self.id)
            }
            State::Idle | State::Done => false,
        };
        if pass {
            self.limit.pass_on();
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.release();
    }
}
