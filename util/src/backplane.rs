//! [`Backplane`], [`PublishTo`] and [`SubscribeTo`]: Kamaelia's
//! `Kamaelia.Util.Backplane`, a named many-to-many bus found through the
//! CAT.
//!
//! A `Backplane("CHAT")` registers itself with the scheduler's CAT as the
//! service `Backplane_I_CHAT`. Anything sent to a `PublishTo("CHAT")`
//! goes to every `SubscribeTo("CHAT")`, each of which sends it out of its
//! `outbox`. Publishers and subscribers need not know of each other, and
//! come and go as they please.
//!
//! ## Bounded, whatever the subscribers do
//!
//! A subscriber that does not keep up is where a bus grows without bound.
//! Here each subscriber has a queue inside the backplane, bounded **in
//! bytes** ([`BackplaneOptions::max_queued_bytes`], as weighed by
//! [`Weight`]). A subscriber whose queue is full first holds the
//! publishers (their sends meet "no space in box", A5), so one that reads
//! more slowly than they write paces them and loses nothing. If it is
//! still full after [`BackplaneOptions::grace`] (50 ms), it has stopped
//! keeping up, holds nobody any more, and the [`Policy`] applies to it
//! until its queue has emptied:
//!
//! - [`Policy::DropOldest`] (the default): its oldest messages go to make
//!   room. Drops are counted ([`BackplaneStats`]) and logged at `warn`:
//!   once when a subscriber starts dropping, and again with the count when
//!   it has caught up or left.
//! - [`Policy::Disconnect`]: it is unsubscribed and told
//!   `shutdownMicroprocess` (a chat member's connection is then closed).
//! - [`Policy::HoldPublishers`]: the backplane stops taking new messages
//!   until it has room; its own inbox fills, so publishers meet "no space
//!   in box" (A5) and, through them, their connections stop reading. Nothing
//!   is lost, and the slowest subscriber sets everyone's pace.
//!
//! Messages are cloned once per subscriber, so use a type whose clone
//! shares its buffer (an `Arc<[u8]>`, say): a line published to 1,000
//! subscribers is then held once.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use axon::{link, Endpoint, Scheduler, Standard};
//! use util::{Backplane, PublishTo, SubscribeTo};
//!
//! let scheduler = Scheduler::new();
//! // Kamaelia: Backplane("NEWS").activate()
//! let plane = scheduler.activate(Backplane::<Arc<[u8]>>::new("NEWS")).unwrap();
//! // Components run in the order they were activated: the subscriber
//! // joins before the publisher's first message arrives.
//! let subscriber = scheduler.activate(SubscribeTo::<Arc<[u8]>>::new("NEWS")).unwrap();
//! let publisher = scheduler.activate(PublishTo::<Arc<[u8]>>::new("NEWS")).unwrap();
//!
//! let reader = Endpoint::<Standard<Arc<[u8]>, ()>>::new("reader");
//! link((&subscriber, "outbox"), (reader.handle(), "inbox")).unwrap();
//! let writer = Endpoint::<Standard<(), Arc<[u8]>>>::new("writer");
//! link((writer.handle(), "outbox"), (&publisher, "inbox")).unwrap();
//! writer.outbox.send(Arc::from(&b"extra!"[..])).unwrap();
//!
//! let stop = scheduler.handle();
//! let running = std::thread::spawn(move || scheduler.run());
//! let got = reader.inbox.recv_timeout(Duration::from_secs(10));
//! assert_eq!(got.as_deref(), Some(&b"extra!"[..]));
//! stop.stop();
//! running.join().unwrap();
//! # drop(plane);
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axon::{Component, Control, Cx, Handle, Postbox, Standard, Step};

/// How many bytes a message holds, for a subscriber's byte bound.
pub trait Weight {
    /// The message's size in bytes (its payload; a rough figure is fine).
    fn weight(&self) -> usize;

    /// Called once, when the backplane takes the published message from
    /// its inbox. A publisher that limits what it has in flight (a credit,
    /// so that a flood from one publisher cannot crowd the others out of
    /// the backplane's inbox) is given its credit back here; the default
    /// does nothing.
    fn taken(&self) {}
}

impl Weight for Vec<u8> {
    fn weight(&self) -> usize {
        self.len()
    }
}

impl Weight for Arc<[u8]> {
    fn weight(&self) -> usize {
        self.len()
    }
}

impl Weight for String {
    fn weight(&self) -> usize {
        self.len()
    }
}

impl Weight for Arc<str> {
    fn weight(&self) -> usize {
        self.len()
    }
}

/// What a queued message is taken to cost beyond its [`Weight`]: its slot
/// and its allocation's bookkeeping. A flood of empty messages is then
/// bounded too.
pub const MESSAGE_OVERHEAD: usize = 64;

fn cost<T: Weight>(m: &T) -> usize {
    m.weight() + MESSAGE_OVERHEAD
}

/// What a [`Backplane`] does for a subscriber whose queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Policy {
    /// Drop its oldest queued messages to make room (counted, logged).
    #[default]
    DropOldest,
    /// Unsubscribe it and send it `shutdownMicroprocess`.
    Disconnect,
    /// Take no more messages until it has room: publishers are held (A5).
    HoldPublishers,
}

/// A [`Backplane`]'s limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackplaneOptions {
    /// The most bytes queued for one subscriber beyond what its inbox
    /// holds (default 256 KiB), each message counted as its [`Weight`]
    /// plus [`MESSAGE_OVERHEAD`]. One message larger than this is still
    /// queued when the queue is empty, so a large message is never
    /// undeliverable.
    pub max_queued_bytes: usize,
    /// What to do when a subscriber's queue is full (default
    /// [`Policy::DropOldest`]).
    pub policy: Policy,
    /// How long a full subscriber holds the publishers before the policy
    /// applies to it (default 50 ms). A subscriber that reads, only more
    /// slowly than the publishers write, so paces them and loses nothing;
    /// one that has stopped reading is then dropped from (or
    /// disconnected), and holds nobody, until it has caught up.
    pub grace: Duration,
}

impl Default for BackplaneOptions {
    fn default() -> Self {
        BackplaneOptions {
            max_queued_bytes: 256 * 1024,
            policy: Policy::default(),
            grace: Duration::from_millis(50),
        }
    }
}

/// A backplane's running counts, readable from any thread
/// ([`Backplane::stats`]).
#[derive(Debug, Default)]
pub struct BackplaneStats {
    published: AtomicU64,
    delivered: AtomicU64,
    dropped: AtomicU64,
    disconnected: AtomicU64,
    subscribers: AtomicU64,
}

impl BackplaneStats {
    /// Messages published.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }
    /// Messages handed to a subscriber's inbox.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }
    /// Messages dropped for subscribers that did not keep up
    /// ([`Policy::DropOldest`]).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
    /// Subscribers disconnected for not keeping up ([`Policy::Disconnect`]).
    pub fn disconnected(&self) -> u64 {
        self.disconnected.load(Ordering::Relaxed)
    }
    /// Subscribers now subscribed.
    pub fn subscribers(&self) -> u64 {
        self.subscribers.load(Ordering::Relaxed)
    }
}

/// What goes into a backplane's `inbox`: a publication, or a subscriber
/// coming or going. [`PublishTo`] and [`SubscribeTo`] send these; a
/// component of your own may too (find the backplane with
/// [`find_backplane`]).
pub enum PlaneMessage<T> {
    /// A message for every subscriber.
    Publish(T),
    /// A new subscriber.
    Subscribe(Subscription<T>),
    /// The subscriber with this id leaves.
    Unsubscribe(u64),
}

impl<T> fmt::Debug for PlaneMessage<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlaneMessage::Publish(_) => write!(f, "Publish(..)"),
            PlaneMessage::Subscribe(s) => write!(f, "Subscribe({})", s.id),
            PlaneMessage::Unsubscribe(id) => write!(f, "Unsubscribe({id})"),
        }
    }
}

/// A subscriber, as a backplane knows it.
pub struct Subscription<T> {
    /// Its id, unique on the scheduler (its handle's id will do).
    pub id: u64,
    /// Where its messages go.
    pub to: Postbox<T>,
    /// Where `shutdownMicroprocess` goes if it is disconnected.
    pub control: Option<Postbox<Control>>,
    /// The subscriber itself: once it has ended, it is dropped.
    pub who: Handle,
}

impl<T> fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Subscription({})", self.id)
    }
}

impl<T> Subscription<T> {
    /// The subscription of `me`: messages to `to`, a disconnection notice
    /// to `control`.
    pub fn new(me: &Handle, to: Postbox<T>, control: Option<Postbox<Control>>) -> Self {
        Subscription {
            id: me.id(),
            to,
            control,
            who: me.clone(),
        }
    }
}

/// The CAT service name of the backplane called `name` (Kamaelia's
/// `"Backplane_I_" + name`).
pub fn service_name(name: &str) -> String {
    format!("Backplane_I_{name}")
}

/// The inbox of the backplane called `name` on this component's
/// scheduler, or on one whose CAT it consults (a server spread over
/// several schedulers: [`Cat::consult_after`](axon::Cat::consult_after)),
/// or why there is none (not activated yet, or it carries another message
/// type).
pub fn find_backplane<T: Send + 'static, B>(
    cx: &Cx<B>,
    name: &str,
) -> Result<Postbox<PlaneMessage<T>>, String> {
    let (plane, inbox) = cx
        .cat()
        .find_service(&service_name(name))
        .map_err(|e| format!("no backplane {name:?}: {e}"))?;
    plane
        .postbox::<PlaneMessage<T>>(&inbox)
        .map_err(|e| format!("backplane {name:?}: {e}"))
}

/// How many steps a publisher or subscriber looks for its backplane before
/// it gives up (the backplane registers on its first step, so one
/// activated just before, or beside it, is found within a round or two).
const FIND_TRIES: u32 = 64;

/// The size limit of a backplane's own inbox, in messages: what holds
/// publishers while a subscriber is full. Large enough that publishers
/// with a credit of their own ([`Weight::taken`]) are held by their credit
/// and each gets its turn, rather than racing for the last free slots.
const PLANE_INBOX: usize = 256;

/// The size limit of a subscriber's inbox, in messages; beyond it,
/// messages wait in the backplane, bounded in bytes.
pub const SUBSCRIBER_INBOX: usize = 4;

struct Subscriber<T> {
    sub: Subscription<T>,
    queue: VecDeque<T>,
    queued_bytes: usize,
    /// Since when its queue has been full, while it holds the publishers.
    full_since: Option<Instant>,
    /// Past its grace: the policy applies to it until its queue empties.
    lagging: bool,
    /// Dropped since the last time this subscriber caught up.
    dropping: u64,
    dropped: u64,
}

/// Kamaelia's `Backplane(name)`: passes every message published to it to
/// every subscriber.
///
/// ## Boxes
///
/// [`Standard`]`<PlaneMessage<T>, ()>`:
///
/// | box | direction | carries | meaning |
/// |---|---|---|---|
/// | `inbox` | inbox | [`PlaneMessage<T>`] | publications, subscriptions (bounded to 256 messages) |
/// | `control` | inbox | [`Control`] | any message: deregister, pass it on out of `signal`, end |
/// | `outbox` | outbox | `()` | unused |
/// | `signal` | outbox | [`Control`] | the `control` message, passed on |
///
/// It registers as the CAT service `Backplane_I_<name>` on its first
/// step; a second backplane of the same name logs an error and ends.
pub struct Backplane<T> {
    name: String,
    options: BackplaneOptions,
    subscribers: Vec<Subscriber<T>>,
    registered: bool,
    stats: Arc<BackplaneStats>,
}

impl<T> fmt::Debug for Backplane<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backplane")
            .field("name", &self.name)
            .field("subscribers", &self.subscribers.len())
            .finish()
    }
}

impl<T: Clone + Weight + Send + 'static> Backplane<T> {
    /// Kamaelia's `Backplane(name)`, with the default limits.
    pub fn new(name: &str) -> Self {
        Backplane::with_options(name, BackplaneOptions::default())
    }

    /// A backplane with these limits.
    pub fn with_options(name: &str, options: BackplaneOptions) -> Self {
        Backplane {
            name: name.to_owned(),
            options,
            subscribers: Vec::new(),
            registered: false,
            stats: Arc::default(),
        }
    }

    /// Its counts, to read while it runs.
    pub fn stats(&self) -> Arc<BackplaneStats> {
        self.stats.clone()
    }

    /// Hands `s` what is queued for it, as far as its inbox takes it.
    /// False if it has ended (drop it).
    fn pump(
        cx: &Cx<Standard<PlaneMessage<T>, ()>>,
        s: &mut Subscriber<T>,
        stats: &BackplaneStats,
    ) -> bool {
        while let Some(msg) = s.queue.pop_front() {
            let w = cost(&msg);
            match cx.send_to(&s.sub.to, msg) {
                Ok(()) => {
                    s.queued_bytes -= w;
                    stats.delivered.fetch_add(1, Ordering::Relaxed);
                }
                Err(full) => {
                    s.queue.push_front(full.into_inner());
                    // Woken when it takes one (A6), unless it has gone.
                    return !s.sub.who.is_done();
                }
            }
        }
        true
    }

    /// Queues `msg` for `s`, making room as the policy says. False if `s`
    /// is to be disconnected.
    fn offer(&self, s: &mut Subscriber<T>, msg: T) -> bool {
        let w = cost(&msg);
        let max = self.options.max_queued_bytes;
        let over = s.queued_bytes + w > max && !s.queue.is_empty();
        match self.options.policy {
            // Not (yet) lagging: it holds the publishers, so it goes over by
            // at most one message; nothing is dropped.
            _ if !s.lagging => {}
            Policy::HoldPublishers => {}
            Policy::Disconnect if over => return false,
            Policy::Disconnect => {}
            Policy::DropOldest => {
                while s.queued_bytes + w > max {
                    let Some(old) = s.queue.pop_front() else {
                        break;
                    };
                    s.queued_bytes -= cost(&old);
                    if s.dropping == 0 {
                        log::warn!(
                            "backplane {}: subscriber {} is not keeping up; dropping its \
                             oldest messages",
                            self.name,
                            s.sub.id
                        );
                    }
                    s.dropping += 1;
                    s.dropped += 1;
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        s.queued_bytes += w;
        s.queue.push_back(msg);
        true
    }

    /// True while a full subscriber, within its grace, holds the
    /// publishers; then a wake-up is set for the end of the grace. A
    /// subscriber past it starts lagging (the policy applies to it).
    fn holding(&mut self, cx: &Cx<Standard<PlaneMessage<T>, ()>>) -> bool {
        let max = self.options.max_queued_bytes;
        let hold_for_ever = self.options.policy == Policy::HoldPublishers;
        let mut now = None;
        let mut until: Option<Instant> = None;
        for s in &mut self.subscribers {
            if s.lagging || s.queued_bytes < max {
                s.full_since = None;
                continue;
            }
            if hold_for_ever {
                return true;
            }
            let now = *now.get_or_insert_with(Instant::now);
            let since = *s.full_since.get_or_insert(now);
            let end = since + self.options.grace;
            if now >= end {
                s.lagging = true;
                s.full_since = None;
                continue;
            }
            until = Some(until.map_or(end, |u| u.min(end)));
        }
        match until {
            Some(end) => {
                cx.wake_at(end);
                true
            }
            None => false,
        }
    }

    fn remove(&mut self, at: usize, why: &str) {
        let s = self.subscribers.swap_remove(at);
        self.stats.subscribers.fetch_sub(1, Ordering::Relaxed);
        if s.dropped > 0 {
            log::warn!(
                "backplane {}: subscriber {} {why}; {} of its messages were dropped",
                self.name,
                s.sub.id,
                s.dropped
            );
        } else {
            log::debug!("backplane {}: subscriber {} {why}", self.name, s.sub.id);
        }
    }

    fn disconnect(&mut self, at: usize) {
        let s = &self.subscribers[at];
        log::warn!(
            "backplane {}: subscriber {} is not keeping up ({} bytes queued); disconnecting it",
            self.name,
            s.sub.id,
            s.queued_bytes
        );
        if let Some(c) = &s.sub.control {
            // A control inbox is unbounded.
            let _ = c.send(Control::ShutdownMicroprocess);
        }
        self.stats.disconnected.fetch_add(1, Ordering::Relaxed);
        self.remove(at, "was disconnected");
    }

    fn publish(&mut self, msg: T) {
        self.stats.published.fetch_add(1, Ordering::Relaxed);
        let mut disconnect = Vec::new();
        let mut subscribers = std::mem::take(&mut self.subscribers);
        for (i, s) in subscribers.iter_mut().enumerate() {
            if !self.offer(s, msg.clone()) {
                disconnect.push(i);
            }
        }
        self.subscribers = subscribers;
        for at in disconnect.into_iter().rev() {
            self.disconnect(at);
        }
    }
}

impl<T: Clone + Weight + Send + 'static> Component for Backplane<T> {
    type Boxes = Standard<PlaneMessage<T>, ()>;

    fn name(&self) -> std::borrow::Cow<'static, str> {
        "Backplane".into()
    }

    fn created(&mut self, _me: &Handle, boxes: &Self::Boxes) {
        boxes.inbox.set_limit(Some(PLANE_INBOX));
    }

    fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
        if !self.registered {
            let service = service_name(&self.name);
            if let Err(e) = cx.cat().register_service(&service, cx.me(), "inbox") {
                log::error!("backplane {}: cannot register {service}: {e}", self.name);
                let _ = cx.signal.send(Control::ShutdownMicroprocess);
                return Step::Done;
            }
            self.registered = true;
        }
        loop {
            // Hand out what is queued; forget subscribers that have gone.
            let mut at = 0;
            while at < self.subscribers.len() {
                let alive = Self::pump(cx, &mut self.subscribers[at], &self.stats);
                let s = &mut self.subscribers[at];
                if s.queue.is_empty() {
                    s.lagging = false;
                }
                if s.queue.is_empty() && s.dropping > 0 {
                    log::warn!(
                        "backplane {}: subscriber {} caught up after {} messages were dropped",
                        self.name,
                        s.sub.id,
                        s.dropping
                    );
                    s.dropping = 0;
                }
                if alive {
                    at += 1;
                } else {
                    self.remove(at, "has ended");
                }
            }
            if self.holding(cx) {
                // Woken when a subscriber takes a message (A6), or at the
                // end of its grace.
                break;
            }
            let Some(msg) = cx.inbox.recv() else { break };
            match msg {
                PlaneMessage::Publish(m) => {
                    m.taken();
                    self.publish(m)
                }
                PlaneMessage::Subscribe(sub) => {
                    log::debug!("backplane {}: subscriber {} joined", self.name, sub.id);
                    self.stats.subscribers.fetch_add(1, Ordering::Relaxed);
                    self.subscribers.push(Subscriber {
                        sub,
                        queue: VecDeque::new(),
                        queued_bytes: 0,
                        full_since: None,
                        lagging: false,
                        dropping: 0,
                        dropped: 0,
                    });
                }
                PlaneMessage::Unsubscribe(id) => {
                    if let Some(at) = self.subscribers.iter().position(|s| s.sub.id == id) {
                        self.remove(at, "left");
                    }
                }
            }
        }
        if let Some(msg) = cx.control.recv() {
            let _ = cx.cat().deregister_service(&service_name(&self.name));
            let _ = cx.signal.send(msg);
            return Step::Done;
        }
        Step::Pause
    }
}

/// Finds a backplane for a publisher or subscriber: `Ok(None)` to try
/// again next step.
fn look_up<T: Send + 'static, B>(
    cx: &Cx<B>,
    name: &str,
    tries: &mut u32,
) -> Result<Option<Postbox<PlaneMessage<T>>>, String> {
    match find_backplane::<T, B>(cx, name) {
        Ok(p) => Ok(Some(p)),
        Err(_) if *tries < FIND_TRIES => {
            *tries += 1;
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Kamaelia's `PublishTo(name)`: what arrives in its `inbox` is published
/// on the backplane called `name`.
///
/// ## Boxes
///
/// [`Standard`]`<T, ()>`:
///
/// | box | direction | carries | meaning |
/// |---|---|---|---|
/// | `inbox` | inbox | `T` | messages to publish (bounded to 16: a held backplane holds the sender) |
/// | `control` | inbox | [`Control`] | any message: publish what is left, pass it on out of `signal`, end |
/// | `outbox` | outbox | `()` | unused |
/// | `signal` | outbox | [`Control`] | the `control` message, passed on; `shutdownMicroprocess` if there is no such backplane |
pub struct PublishTo<T> {
    name: String,
    plane: Option<Postbox<PlaneMessage<T>>>,
    held: Option<PlaneMessage<T>>,
    tries: u32,
}

impl<T> fmt::Debug for PublishTo<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublishTo({:?})", self.name)
    }
}

impl<T> PublishTo<T> {
    /// Kamaelia's `PublishTo(name)`.
    pub fn new(name: &str) -> Self {
        PublishTo {
            name: name.to_owned(),
            plane: None,
            held: None,
            tries: 0,
        }
    }
}

impl<T: Send + 'static> Component for PublishTo<T> {
    type Boxes = Standard<T, ()>;

    fn name(&self) -> std::borrow::Cow<'static, str> {
        "PublishTo".into()
    }

    fn created(&mut self, _me: &Handle, boxes: &Self::Boxes) {
        boxes.inbox.set_limit(Some(16));
    }

    fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
        let plane = match &self.plane {
            Some(p) => p.clone(),
            None => match look_up::<T, _>(cx, &self.name, &mut self.tries) {
                Ok(Some(p)) => {
                    self.plane = Some(p.clone());
                    p
                }
                Ok(None) => return Step::Continue,
                Err(e) => {
                    log::error!("publishto: {e}");
                    let _ = cx.signal.send(Control::ShutdownMicroprocess);
                    return Step::Done;
                }
            },
        };
        while let Some(msg) = self
            .held
            .take()
            .or_else(|| cx.inbox.recv().map(PlaneMessage::Publish))
        {
            if let Err(full) = cx.send_to(&plane, msg) {
                self.held = Some(full.into_inner());
                return Step::Pause; // woken when the backplane has room (A6)
            }
        }
        if let Some(msg) = cx.control.recv() {
            let _ = cx.signal.send(msg);
            return Step::Done;
        }
        Step::Pause
    }
}

/// Kamaelia's `SubscribeTo(name)`: everything published on the backplane
/// called `name` comes out of its `outbox`.
///
/// ## Boxes
///
/// [`Standard`]`<T, T>`:
///
/// | box | direction | carries | meaning |
/// |---|---|---|---|
/// | `inbox` | inbox | `T` | from the backplane (bounded to [`SUBSCRIBER_INBOX`]; the rest waits in the backplane, bounded in bytes) |
/// | `control` | inbox | [`Control`] | any message: unsubscribe, pass it on out of `signal`, end; the backplane sends `shutdownMicroprocess` when it disconnects a subscriber that did not keep up |
/// | `outbox` | outbox | `T` | every message published |
/// | `signal` | outbox | [`Control`] | the `control` message, passed on; `shutdownMicroprocess` if there is no such backplane |
pub struct SubscribeTo<T> {
    name: String,
    plane: Option<Postbox<PlaneMessage<T>>>,
    /// The subscription, until the backplane has taken it.
    joining: Option<PlaneMessage<T>>,
    held: Option<T>,
    tries: u32,
    _types: PhantomData<fn(T)>,
}

impl<T> fmt::Debug for SubscribeTo<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SubscribeTo({:?})", self.name)
    }
}

impl<T> SubscribeTo<T> {
    /// Kamaelia's `SubscribeTo(name)`.
    pub fn new(name: &str) -> Self {
        SubscribeTo {
            name: name.to_owned(),
            plane: None,
            joining: None,
            held: None,
            tries: 0,
            _types: PhantomData,
        }
    }
}

impl<T: Send + 'static> Component for SubscribeTo<T> {
    type Boxes = Standard<T, T>;

    fn name(&self) -> std::borrow::Cow<'static, str> {
        "SubscribeTo".into()
    }

    fn created(&mut self, me: &Handle, boxes: &Self::Boxes) {
        boxes.inbox.set_limit(Some(SUBSCRIBER_INBOX));
        self.joining = Some(PlaneMessage::Subscribe(Subscription::new(
            me,
            boxes.inbox.postbox(),
            Some(boxes.control.postbox()),
        )));
    }

    fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
        if let Some(msg) = cx.control.recv() {
            if let Some(p) = &self.plane {
                let _ = p.send(PlaneMessage::Unsubscribe(cx.me().id()));
            }
            let _ = cx.signal.send(msg);
            return Step::Done;
        }
        if self.plane.is_none() {
            match look_up::<T, _>(cx, &self.name, &mut self.tries) {
                Ok(Some(p)) => self.plane = Some(p),
                Ok(None) => return Step::Continue,
                Err(e) => {
                    log::error!("subscribeto: {e}");
                    let _ = cx.signal.send(Control::ShutdownMicroprocess);
                    return Step::Done;
                }
            }
        }
        if let (Some(join), Some(plane)) = (self.joining.take(), &self.plane) {
            if let Err(full) = cx.send_to(plane, join) {
                self.joining = Some(full.into_inner());
                return Step::Pause;
            }
        }
        while let Some(msg) = self.held.take().or_else(|| cx.inbox.recv()) {
            if let Err(full) = cx.outbox.send(msg) {
                self.held = Some(full.into_inner());
                return Step::Pause;
            }
        }
        Step::Pause
    }
}
