//! The chat server: a [`Backplane`] and, per connection,
//! `Pipeline(LineSplit, ChatMember)`, as Kamaelia's chat servers are a
//! `Backplane("CHAT")` with a `PublishTo`/`SubscribeTo` pair per client.
//!
//! Every bound is set, so no peer can grow the server without limit:
//!
//! - a line is at most [`MAX_LINE`] bytes: [`LineSplit`] cuts a longer one
//!   (never buffering it whole) and works in time linear in its input;
//! - each member's queue in the backplane is bounded in bytes
//!   ([`MEMBER_QUEUE_BYTES`]); a member that does not read has its oldest
//!   lines dropped, counted and logged, and never slows the others;
//! - a member's inboxes are bounded in messages (the handler's by
//!   ServerCore, `fromBackplane` to [`SUBSCRIBER_INBOX`]).
//!
//! Lines are shared, not copied, between members: one `Arc<[u8]>` per
//! line, copied once per member only as it is written to that member's
//! connection.
//!
//! ```
//! use examples::chat::{self, ChatMember};
//! use kamaelia::prelude::*;
//!
//! let scheduler = selector::scheduler().unwrap();
//! // The backplane first, so members find it.
//! scheduler.activate(chat::backplane("CHAT")).unwrap();
//! let server = SimpleServer::new(|| chat::member("CHAT"), "127.0.0.1:0".parse().unwrap(),
//!                                Default::default()).unwrap();
//! scheduler.activate(server).unwrap();
//! # drop(scheduler);
//! ```

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use axon::{boxes, Component, Control, Cx, Handle, Inbox, Outbox, Pipeline, Postbox, Step};
use framing::{LineSplit, TooLong};
use util::{
    find_backplane, Backplane, BackplaneOptions, PlaneMessage, Policy, Subscription, Weight,
    SUBSCRIBER_INBOX,
};

/// The longest line a member may send (64 KiB); a longer one is cut.
pub const MAX_LINE: usize = framing::MAX_LINE;

/// The most bytes waiting in the backplane for one member (64 KiB)
/// beyond its bounded inboxes.
pub const MEMBER_QUEUE_BYTES: usize = 64 * 1024;

/// The most lines a member publishes in one step. A member that has more
/// lets every other component run first ([`Step::Continue`]), so a flood
/// from one client cannot keep the others' lines out of the backplane's
/// bounded inbox.
pub const PUBLISH_BATCH: usize = 8;

/// How [`ChatMember::publish`] left things.
#[derive(PartialEq)]
enum Published {
    /// Everything the client sent is published.
    All,
    /// The backplane is full: woken when it has room.
    Held,
    /// A batch is published and more is waiting.
    More,
}

/// How many steps a member looks for its backplane before it gives up.
const FIND_TRIES: u32 = 64;

/// One line, with its newline, and who sent it. Cloning shares the line.
#[derive(Clone, Debug)]
pub struct ChatLine {
    /// The sending member's id (its handle's id).
    pub from: u64,
    /// The line, with its `\n`.
    pub line: Arc<[u8]>,
    /// The sender's credit, given back when the backplane takes the line.
    credit: Option<Arc<Credit>>,
}

impl ChatLine {
    /// A line from `from` (for a publisher of your own; members add their
    /// credit).
    pub fn new(from: u64, line: Arc<[u8]>) -> Self {
        ChatLine {
            from,
            line,
            credit: None,
        }
    }
}

impl Weight for ChatLine {
    fn weight(&self) -> usize {
        self.line.len()
    }

    fn taken(&self) {
        if let Some(c) = &self.credit {
            c.give_back();
        }
    }
}

/// The most lines a member has in the backplane's inbox at once. Each
/// member waits for its own lines to be taken, not for a free slot that
/// every fast sender races for, so a flood from some members cannot keep
/// another's lines waiting behind it (fairness between publishers).
pub const MEMBER_CREDIT: usize = 4;

/// A member's lines in flight to the backplane, and how to wake it when
/// one is taken.
#[derive(Debug)]
struct Credit {
    in_flight: AtomicUsize,
    waiting: AtomicBool,
    wake: Postbox<()>,
}

impl Credit {
    fn give_back(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        if self.waiting.swap(false, Ordering::AcqRel) {
            // Its `_credit` inbox is unbounded; one message per wait.
            let _ = self.wake.send(());
        }
    }

    /// Takes one credit, or says to wait (and be woken) if none is left.
    fn take(&self) -> bool {
        if self.in_flight.load(Ordering::Acquire) >= MEMBER_CREDIT {
            self.waiting.store(true, Ordering::Release);
            // Taken back meanwhile? Then go on (a spare wake-up is harmless).
            if self.in_flight.load(Ordering::Acquire) >= MEMBER_CREDIT {
                return false;
            }
        }
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        true
    }
}

/// The chat's backplane: members' queues bounded to
/// [`MEMBER_QUEUE_BYTES`], the oldest lines dropped for a member that does
/// not keep up.
pub fn backplane(name: &str) -> Backplane<ChatLine> {
    Backplane::with_options(
        name,
        BackplaneOptions {
            max_queued_bytes: MEMBER_QUEUE_BYTES,
            policy: Policy::DropOldest,
            ..BackplaneOptions::default()
        },
    )
}

/// One connection's protocol handler: `Pipeline(LineSplit, ChatMember)`,
/// lines cut at [`MAX_LINE`].
pub fn member(backplane: &str) -> Pipeline {
    Pipeline::new(vec![
        LineSplit::with_limit(MAX_LINE, TooLong::Cut).into(),
        ChatMember::new(backplane).into(),
    ])
    .expect("LineSplit's lines are what a ChatMember takes")
}

boxes! {
    /// A [`ChatMember`]'s boxes.
    pub struct ChatMemberBoxes {
        /// lines from this member's client, without their line ends
        pub inbox: Inbox<Vec<u8>>,
        /// producerFinished / socketShutdown: leave; shutdownMicroprocess: leave and close
        pub control: Inbox<Control>,
        /// the other members' lines, from the backplane
        #[name = "fromBackplane"]
        pub from_plane: Inbox<ChatLine>,
        /// bytes for this member's client
        pub outbox: Outbox<Vec<u8>>,
        /// producerFinished when it has left; shutdownMicroprocess if it was disconnected
        pub signal: Outbox<Control>,
        /// wakes it when the backplane has taken one of its lines
        #[name = "_credit"]
        pub credit: Inbox<()>,
    }
}

/// A chat member: publishes its client's lines on the backplane and
/// writes every other member's lines to its client. Kamaelia's
/// `PublishTo` and `SubscribeTo` in one component (a member costs one
/// component, not three), leaving out its own lines.
///
/// ## Boxes
///
/// | box | direction | carries | meaning |
/// |---|---|---|---|
/// | `inbox` | inbox | `Vec<u8>` | lines from the client (from [`LineSplit`]) |
/// | `control` | inbox | [`Control`] | `producerFinished` / `socketShutdown`: publish what is left, leave, say `producerFinished`; `shutdownMicroprocess` (also the backplane's notice of a disconnection): leave and pass it on |
/// | `fromBackplane` | inbox | [`ChatLine`] | every member's lines (bounded to [`SUBSCRIBER_INBOX`]) |
/// | `outbox` | outbox | `Vec<u8>` | the others' lines, for the client |
/// | `signal` | outbox | [`Control`] | how it ended |
/// | `_credit` | inbox | `()` | the backplane has taken one of its lines: it may publish another ([`MEMBER_CREDIT`]) |
///
/// Both directions honour A5: a line the connection has no room for is
/// kept (and the backplane queues, then drops, what follows); a line the
/// backplane has no room for is kept, and no more are taken from the
/// client until it is sent.
pub struct ChatMember {
    plane_name: String,
    plane: Option<Postbox<PlaneMessage<ChatLine>>>,
    tries: u32,
    joining: Option<PlaneMessage<ChatLine>>,
    /// A line for the client that its connection had no room for.
    to_client: Option<Vec<u8>>,
    /// A line for the backplane that it had no room for.
    to_plane: Option<PlaneMessage<ChatLine>>,
    /// The control message it is ending on, once what it holds is done.
    leaving: Option<Control>,
    /// Its lines in flight to the backplane (made in `created`).
    credit: Option<Arc<Credit>>,
}

impl fmt::Debug for ChatMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChatMember({:?})", self.plane_name)
    }
}

impl ChatMember {
    /// A member of the chat on the backplane called `backplane`.
    pub fn new(backplane: &str) -> Self {
        ChatMember {
            plane_name: backplane.to_owned(),
            plane: None,
            tries: 0,
            joining: None,
            to_client: None,
            to_plane: None,
            leaving: None,
            credit: None,
        }
    }

    fn leave(&mut self, cx: &Cx<ChatMemberBoxes>, how: Control) -> Step {
        if let Some(p) = &self.plane {
            // The backplane's inbox is bounded; if it is full the
            // backplane still forgets us once we have ended.
            let _ = p.send(PlaneMessage::Unsubscribe(cx.me().id()));
        }
        let _ = cx.signal.send(how);
        Step::Done
    }

    /// Sends the others' lines to the client; false if its connection is
    /// full.
    fn deliver(&mut self, cx: &Cx<ChatMemberBoxes>) -> bool {
        let me = cx.me().id();
        loop {
            let bytes = match self.to_client.take() {
                Some(b) => b,
                None => match cx.from_plane.recv() {
                    Some(l) if l.from == me => continue,
                    Some(l) => l.line.to_vec(),
                    None => return true,
                },
            };
            if let Err(full) = cx.outbox.send(bytes) {
                self.to_client = Some(full.into_inner()); // woken when there is room
                return false;
            }
        }
    }

    /// Publishes the client's lines, at most [`PUBLISH_BATCH`] of them.
    fn publish(
        &mut self,
        cx: &Cx<ChatMemberBoxes>,
        plane: &Postbox<PlaneMessage<ChatLine>>,
    ) -> Published {
        let me = cx.me().id();
        let Some(credit) = self.credit.clone() else {
            return Published::All;
        };
        for _ in 0..PUBLISH_BATCH {
            let msg = match self.to_plane.take() {
                Some(m) => m, // its credit is already taken
                None => {
                    if cx.inbox.is_empty() {
                        return Published::All;
                    }
                    if !credit.take() {
                        return Published::Held; // woken by `_credit`
                    }
                    let Some(mut line) = cx.inbox.recv() else {
                        credit.give_back();
                        return Published::All;
                    };
                    line.push(b'\n');
                    PlaneMessage::Publish(ChatLine {
                        from: me,
                        line: line.into(),
                        credit: Some(credit.clone()),
                    })
                }
            };
            if let Err(full) = cx.send_to(plane, msg) {
                self.to_plane = Some(full.into_inner()); // woken when there is room (A6)
                return Published::Held;
            }
        }
        if cx.inbox.is_empty() {
            Published::All
        } else {
            Published::More
        }
    }
}

impl Component for ChatMember {
    type Boxes = ChatMemberBoxes;

    fn name(&self) -> std::borrow::Cow<'static, str> {
        "ChatMember".into()
    }

    fn created(&mut self, me: &Handle, boxes: &ChatMemberBoxes) {
        boxes.from_plane.set_limit(Some(SUBSCRIBER_INBOX));
        self.credit = Some(Arc::new(Credit {
            in_flight: AtomicUsize::new(0),
            waiting: AtomicBool::new(false),
            wake: boxes.credit.postbox(),
        }));
        self.joining = Some(PlaneMessage::Subscribe(Subscription::new(
            me,
            boxes.from_plane.postbox(),
            Some(boxes.control.postbox()),
        )));
    }

    fn main(&mut self, cx: &mut Cx<ChatMemberBoxes>) -> Step {
        let plane = match &self.plane {
            Some(p) => p.clone(),
            None => match find_backplane::<ChatLine, _>(cx, &self.plane_name) {
                Ok(p) => {
                    self.plane = Some(p.clone());
                    p
                }
                Err(_) if self.tries < FIND_TRIES => {
                    self.tries += 1;
                    return Step::Continue;
                }
                Err(e) => {
                    log::error!("chat: {e}");
                    return self.leave(cx, Control::ShutdownMicroprocess);
                }
            },
        };
        if let Some(join) = self.joining.take() {
            if let Err(full) = cx.send_to(&plane, join) {
                self.joining = Some(full.into_inner());
                return Step::Pause;
            }
        }
        while cx.credit.recv().is_some() {}
        self.deliver(cx);
        let published = self.publish(cx, &plane);
        if self.leaving.is_none() {
            self.leaving = cx.control.recv();
        }
        match self.leaving.take() {
            // Lines still to publish first: woken when the backplane has room.
            Some(msg) if msg.is_producer_finished() && published != Published::All => {
                self.leaving = Some(msg);
            }
            Some(msg) if msg.is_producer_finished() => {
                return self.leave(cx, Control::ProducerFinished)
            }
            Some(_) => return self.leave(cx, Control::ShutdownMicroprocess),
            None => {}
        }
        if published == Published::More {
            return Step::Continue;
        }
        Step::Pause
    }
}
