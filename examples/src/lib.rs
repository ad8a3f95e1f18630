//! Protocol handlers for the demos: [`Echo`] and the chat server
//! ([`ChatHub`] with one [`ChatClient`] per connection). Each follows the
//! handler contract of `chassis` (H6).

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

use std::collections::{HashMap, VecDeque};

use axon::{boxes, Component, Control, Cx, Handle, Inbox, Outbox, Postbox, Standard, Step};

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

boxes! {
    /// The [`ChatHub`]'s boxes.
    pub struct ChatHubBoxes {
        /// a client arrived
        pub join: Inbox<Join>,
        /// a client left
        pub leave: Inbox<u64>,
        /// a line to pass on to the others
        pub lines: Inbox<ChatLine>,
        /// any message ends the hub
        pub control: Inbox<Control>,
    }
}

impl Component for ChatHub {
    type Boxes = ChatHubBoxes;

    fn name(&self) -> std::borrow::Cow<'static, str> {
        "ChatHub".into()
    }

    fn main(&mut self, cx: &mut Cx<ChatHubBoxes>) -> Step {
        while let Some(j) = cx.join.recv() {
            self.clients.insert(j.id, j.to);
        }
        while let Some(line) = cx.lines.recv() {
            for (id, to) in &self.clients {
                if *id != line.from && to.send(line.line.clone()).is_err() {
                    log::debug!("chat: client {id} is not reading; line dropped for it");
                }
            }
        }
        while let Some(id) = cx.leave.recv() {
            self.clients.remove(&id);
        }
        if cx.control.recv().is_some() {
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

    fn leave(&mut self, cx: &Cx<ChatClientBoxes>) -> Step {
        let _ = self.hub_leave.send(self.id);
        let _ = cx.signal.send(Control::ProducerFinished);
        Step::Done
    }
}

boxes! {
    /// A [`ChatClient`]'s boxes: the standard four and `fromHub`.
    pub struct ChatClientBoxes {
        /// bytes from the client
        pub inbox: Inbox<Vec<u8>>,
        /// socketShutdown when the client is gone
        pub control: Inbox<Control>,
        /// bytes to the client
        pub outbox: Outbox<Vec<u8>>,
        /// producerFinished when it ends
        pub signal: Outbox<Control>,
        /// lines from the other clients
        #[name = "fromHub"]
        pub from_hub: Inbox<Vec<u8>>,
    }
}

impl Component for ChatClient {
    type Boxes = ChatClientBoxes;

    fn name(&self) -> std::borrow::Cow<'static, str> {
        "ChatClient".into()
    }

    fn main(&mut self, cx: &mut Cx<ChatClientBoxes>) -> Step {
        if !self.joined {
            self.joined = true;
            let to = cx.from_hub.postbox();
            let _ = self.hub_join.send(Join { id: self.id, to });
        }
        while let Some(bytes) = cx.inbox.recv() {
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
        while let Some(line) = cx.from_hub.recv() {
            if self.queue.len() == CLIENT_QUEUE {
                self.queue.pop_front();
            }
            self.queue.push_back(line);
        }
        while let Some(line) = self.queue.pop_front() {
            if let Err(full) = cx.outbox.send(line) {
                self.queue.push_front(full.into_inner());
                break;
            }
        }
        if cx.control.recv().is_some() {
            return self.leave(cx);
        }
        Step::Pause
    }
}
