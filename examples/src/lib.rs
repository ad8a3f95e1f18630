//! Protocol handlers for the demos: [`Echo`] and the chat server
//! ([`ChatHub`] with one [`ChatClient`] per connection). Each follows the
//! handler contract of `chassis` (H6).

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

use std::collections::{HashMap, VecDeque};

use axon::{Boxes, Component, Control, Cx, Handle, Inbox, Outbox, Postbox, Step};

/// Sends every byte it receives straight back (the chunk itself: no copy).
///
/// Boxes: the standard four, `Vec<u8>` in `inbox` and `outbox`. On
/// `socketShutdown` (the client finished sending, C7) it writes what it
/// still holds, sends `producerFinished` out of `signal` and ends.
///
/// It runs once per message on every connection, so it finds its three
/// busy boxes by name once ([`axon::Inbox`], [`axon::Outbox`]) rather than
/// on every `recv` and `send`.
#[derive(Debug, Default)]
pub struct Echo {
    held: Option<Vec<u8>>,
    closing: bool,
    boxes: Option<EchoBoxes>,
}

#[derive(Debug)]
struct EchoBoxes {
    inbox: Inbox<Vec<u8>>,
    control: Inbox<Control>,
    outbox: Outbox<Vec<u8>>,
}

impl Echo {
    /// A new echo handler.
    pub fn new() -> Self {
        Echo::default()
    }

    fn step(&mut self, cx: &mut Cx<'_>, b: &EchoBoxes) -> Step {
        loop {
            let chunk = match self.held.take() {
                Some(chunk) => chunk,
                None => match b.inbox.recv() {
                    Some(chunk) => chunk,
                    None => break,
                },
            };
            if let Err(full) = b.outbox.send(chunk) {
                // A5: keep it; woken when the CSA takes from its inbox.
                self.held = Some(full.into_inner());
                return Step::Pause;
            }
        }
        while let Some(msg) = b.control.recv() {
            if msg.is_producer_finished() {
                self.closing = true;
            } else {
                return Step::Done;
            }
        }
        if self.closing && b.inbox.is_empty() {
            let _ = cx.send(Control::ProducerFinished, "signal");
            return Step::Done;
        }
        Step::Pause
    }
}

impl Component for Echo {
    fn boxes(&self) -> Boxes {
        Boxes::standard::<Vec<u8>, Vec<u8>>()
    }

    fn main(&mut self, cx: &mut Cx<'_>) -> Step {
        let b = match self.boxes.take() {
            Some(b) => b,
            None => {
                let me = cx.me();
                match (me.inbox("inbox"), me.inbox("control"), me.outbox("outbox")) {
                    (Ok(inbox), Ok(control), Ok(outbox)) => EchoBoxes {
                        inbox,
                        control,
                        outbox,
                    },
                    _ => {
                        log::error!("echo: its standard boxes are missing");
                        return Step::Done;
                    }
                }
            }
        };
        let step = self.step(cx, &b);
        self.boxes = Some(b);
        step
    }
}

/// A client joining the chat: its id and where to send it lines.
#[derive(Debug)]
pub struct Join {
    /// The client's id.
    pub id: u64,
    /// Its `fromHub` inbox.
    pub to: Postbox<Vec<u8>>,
}

/// A complete line from one client.
#[derive(Debug)]
pub struct ChatLine {
    /// Who said it.
    pub from: u64,
    /// The line, with its newline.
    pub line: Vec<u8>,
}

/// The chat backplane: every line from one client goes to all the others.
///
/// | box | direction | carries | meaning |
/// |---|---|---|---|
/// | `join` | inbox | [`Join`] | a client arrived |
/// | `leave` | inbox | `u64` | a client left |
/// | `lines` | inbox | [`ChatLine`] | a line to pass on |
/// | `control` | inbox | [`Control`] | any message ends the hub |
///
/// A client whose `fromHub` inbox is full (it is not reading) misses that
/// line rather than slowing everyone else.
#[derive(Debug, Default)]
pub struct ChatHub {
    clients: HashMap<u64, Postbox<Vec<u8>>>,
}

impl ChatHub {
    /// An empty hub.
    pub fn new() -> Self {
        ChatHub::default()
    }
}

impl Component for ChatHub {
    fn boxes(&self) -> Boxes {
        Boxes::new()
            .inbox::<Join>("join", "a client arrived")
            .inbox::<u64>("leave", "a client left")
            .inbox::<ChatLine>("lines", "a line to pass on to the others")
            .inbox::<Control>("control", "any message ends the hub")
    }

    fn name(&self) -> std::borrow::Cow<'static, str> {
        "ChatHub".into()
    }

    fn main(&mut self, cx: &mut Cx<'_>) -> Step {
        while let Some(j) = cx.recv::<Join>("join") {
            self.clients.insert(j.id, j.to);
        }
        while let Some(line) = cx.recv::<ChatLine>("lines") {
            for (id, to) in &self.clients {
                if *id != line.from && to.send(line.line.clone()).is_err() {
                    log::debug!("chat: client {id} is not reading; line dropped for it");
                }
            }
        }
        while let Some(id) = cx.recv::<u64>("leave") {
            self.clients.remove(&id);
        }
        if cx.recv::<Control>("control").is_some() {
            return Step::Done;
        }
        Step::Pause
    }
}

/// Lines queued for one chat client above which the oldest is dropped.
const CLIENT_QUEUE: usize = 256;

/// One chat connection: splits what the client sends into lines for the
/// hub, and writes the hub's lines to the client.
///
/// Boxes: the standard four (`Vec<u8>` in `inbox`/`outbox`) plus `fromHub`
/// (`Vec<u8>`, lines from other clients).
#[derive(Debug)]
pub struct ChatClient {
    id: u64,
    hub_join: Postbox<Join>,
    hub_leave: Postbox<u64>,
    hub_lines: Postbox<ChatLine>,
    partial: Vec<u8>,
    queue: VecDeque<Vec<u8>>,
    joined: bool,
}

impl ChatClient {
    /// A handler for client `id` talking to `hub`.
    pub fn new(id: u64, hub: &Handle) -> Result<Self, axon::BoxError> {
        Ok(ChatClient {
            id,
            hub_join: hub.postbox("join")?,
            hub_leave: hub.postbox("leave")?,
            hub_lines: hub.postbox("lines")?,
            partial: Vec::new(),
            queue: VecDeque::new(),
            joined: false,
        })
    }

    fn leave(&mut self, cx: &mut Cx<'_>) -> Step {
        let _ = self.hub_leave.send(self.id);
        let _ = cx.send(Control::ProducerFinished, "signal");
        Step::Done
    }
}

impl Component for ChatClient {
    fn boxes(&self) -> Boxes {
        Boxes::standard::<Vec<u8>, Vec<u8>>()
            .inbox::<Vec<u8>>("fromHub", "lines from the other clients")
    }

    fn name(&self) -> std::borrow::Cow<'static, str> {
        "ChatClient".into()
    }

    fn main(&mut self, cx: &mut Cx<'_>) -> Step {
        if !self.joined {
            self.joined = true;
            match cx.me().postbox::<Vec<u8>>("fromHub") {
                Ok(to) => {
                    let _ = self.hub_join.send(Join { id: self.id, to });
                }
                Err(e) => log::error!("chat: {e}"),
            }
        }
        while let Some(bytes) = cx.recv::<Vec<u8>>("inbox") {
            self.partial.extend_from_slice(&bytes);
            while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
                let rest = self.partial.split_off(end + 1);
                let line = std::mem::replace(&mut self.partial, rest);
                let _ = self.hub_lines.send(ChatLine {
                    from: self.id,
                    line,
                });
            }
        }
        while let Some(line) = cx.recv::<Vec<u8>>("fromHub") {
            if self.queue.len() == CLIENT_QUEUE {
                self.queue.pop_front();
            }
            self.queue.push_back(line);
        }
        while let Some(line) = self.queue.pop_front() {
            if let Err(full) = cx.send(line, "outbox") {
                self.queue.push_front(full.into_inner());
                break;
            }
        }
        if cx.recv::<Control>("control").is_some() {
            return self.leave(cx);
        }
        Step::Pause
    }
}
