//! Inboxes, outboxes and the linkages between them (rules A1–A5).
//!
//! Every box is a [`Node<T>`]: `T` is the one message type the box carries.
//! An inbox holds a queue while messages wait in it; an outbox never does. A
//! linkage sets a box's *target*. A send follows the targets (outbox →
//! outbox → inbox → inbox) to the final inbox and pushes the message there,
//! once: nothing is copied per hop (A3). The usual linkage, outbox → inbox,
//! costs the sender's lock (to read its target) and the destination's;
//! each passthrough hop adds one lock. Taking from an empty inbox costs one
//! atomic load.
//!
//! Boxes know only where they lead, not who leads into them, so making or
//! removing a linkage is O(1) whatever the fan-in (a TCPServer's
//! `_feedbackFromCSA` is fed by every connection). Topology changes are
//! serialised by one global lock that the per-message path never takes.
//!
//! ## Memory
//!
//! A server holds two components and thirteen boxes per connection, so a
//! box is kept small (40 bytes): its name, description and type live once
//! per component *type* in the shared [`Boxes`] declaration (reached through
//! the owner's wake cell), its target and its queue share one lock, and the
//! queue itself is allocated only when the first message arrives. A queue
//! that grew during a burst gives its buffer back once it is empty again.

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::LinkError;
use crate::wake::{lock, WakeCell};

/// Serialises every change of linkage topology in the process.
static TOPOLOGY: Mutex<()> = Mutex::new(());

/// Whether a box receives (inbox) or sends (outbox).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// An inbox: messages arrive here and wait to be `recv`ed.
    Inbox,
    /// An outbox: messages `send` from here travel along its linkage.
    Outbox,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Inbox => "inbox",
            Direction::Outbox => "outbox",
        })
    }
}

/// Describes one box of a component: its name, its one-line documentation
/// and the type of message it carries (A1). Returned by
/// [`Handle::boxes`](crate::Handle::boxes) for introspection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoxInfo {
    /// The box name, e.g. `"inbox"` or `"protocolHandlerSignal"`.
    pub name: String,
    /// Whether it is an inbox or an outbox.
    pub direction: Direction,
    /// The one-line description given when the box was declared.
    pub doc: String,
    /// The Rust type name of the messages it carries.
    pub message_type: &'static str,
}

/// The highest box index: a component has at most 65,536 boxes (a box's
/// index is 16 bits). Small under test, so the limit is quick to reach.
const MAX_BOXES: usize = if cfg!(test) { 7 } else { u16::MAX as usize };

type Maker = fn(&BoxSpec, u16, &Arc<WakeCell>) -> Arc<dyn ErasedBox>;

/// One declared box, before its component exists.
#[derive(Clone)]
pub(crate) struct BoxSpec {
    pub(crate) name: Cow<'static, str>,
    pub(crate) doc: Cow<'static, str>,
    pub(crate) direction: Direction,
    make: Maker,
}

fn make_node<T: Send + 'static>(
    spec: &BoxSpec,
    index: u16,
    owner: &Arc<WakeCell>,
) -> Arc<dyn ErasedBox> {
    Arc::new(Node::<T>::new(spec.direction, index, owner.clone()))
}

/// The declaration of a component's boxes (A1): each with a name, a one-line
/// description and a message type.
///
/// ```
/// use axon::{Boxes, Control};
/// let boxes = Boxes::new()
///     .inbox::<String>("inbox", "lines to shout")
///     .inbox::<Control>("control", "producerFinished / shutdownMicroprocess")
///     .outbox::<String>("outbox", "the lines in upper case")
///     .outbox::<Control>("signal", "producerFinished when done");
/// assert_eq!(boxes.len(), 4);
/// ```
///
/// A `Boxes` is shared, not copied: cloning it is one reference count, and
/// every component made from clones of one declaration shares its names,
/// descriptions and types. A component made once per connection should
/// build its declaration once and hand out clones, so that each instance
/// pays only for its boxes' state:
///
/// ```
/// use std::sync::OnceLock;
/// use axon::{Boxes, Component, Cx, Step};
///
/// struct PerConnection;
///
/// impl Component for PerConnection {
///     fn boxes(&self) -> Boxes {
///         static BOXES: OnceLock<Boxes> = OnceLock::new();
///         BOXES.get_or_init(Boxes::standard::<Vec<u8>, Vec<u8>>).clone()
///     }
///     fn main(&mut self, _cx: &mut Cx<'_>) -> Step {
///         Step::Done
///     }
/// }
/// ```
#[derive(Clone, Default)]
pub struct Boxes {
    pub(crate) specs: Arc<Vec<BoxSpec>>,
}

impl fmt::Debug for Boxes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.specs.iter().map(|s| (&s.name, s.direction)))
            .finish()
    }
}

impl Boxes {
    /// No boxes at all.
    pub fn new() -> Self {
        Boxes::default()
    }

    /// Kamaelia's defaults (A1): inboxes `inbox` (carrying `I`) and `control`
    /// (carrying [`Control`](crate::Control)), outboxes `outbox` (carrying
    /// `O`) and `signal` (carrying `Control`).
    ///
    /// Made once per `(I, O)` in a process and shared after (see the type's
    /// docs); adding boxes to the result copies it first.
    pub fn standard<I: Send + 'static, O: Send + 'static>() -> Self {
        /// One declaration per message-type pair used in the program.
        static MADE: Mutex<Vec<((TypeId, TypeId), Boxes)>> = Mutex::new(Vec::new());
        let key = (TypeId::of::<I>(), TypeId::of::<O>());
        let mut made = lock(&MADE);
        if let Some((_, boxes)) = made.iter().find(|(k, _)| *k == key) {
            return boxes.clone();
        }
        let boxes = Boxes::new()
            .inbox::<I>("inbox", "data to process")
            .inbox::<crate::Control>("control", "shutdown signalling")
            .outbox::<O>("outbox", "data produced")
            .outbox::<crate::Control>("signal", "shutdown signalling");
        made.push((key, boxes.clone()));
        boxes
    }

    /// Declares an inbox carrying messages of type `T`. A later declaration
    /// of the same name replaces the earlier one (so defaults can be
    /// re-documented or re-typed).
    pub fn inbox<T: Send + 'static>(
        self,
        name: impl Into<Cow<'static, str>>,
        doc: impl Into<Cow<'static, str>>,
    ) -> Self {
        self.with(name, doc, Direction::Inbox, make_node::<T>)
    }

    /// Declares an outbox carrying messages of type `T`; same replacement
    /// rule as [`inbox`](Self::inbox).
    pub fn outbox<T: Send + 'static>(
        self,
        name: impl Into<Cow<'static, str>>,
        doc: impl Into<Cow<'static, str>>,
    ) -> Self {
        self.with(name, doc, Direction::Outbox, make_node::<T>)
    }

    /// The number of declared boxes.
    pub fn len(&self) -> usize {
        self.specs.len()
    }

    /// True when no box is declared.
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    fn with(
        mut self,
        name: impl Into<Cow<'static, str>>,
        doc: impl Into<Cow<'static, str>>,
        direction: Direction,
        make: Maker,
    ) -> Self {
        let name = name.into();
        let specs = Arc::make_mut(&mut self.specs);
        specs.retain(|s| s.name != name);
        if specs.len() > MAX_BOXES {
            // A box's index is 16 bits (boxes are kept small); asking for
            // the box later is a clear `NoSuchBox` error.
            log::error!("box {name:?} not declared: a component has at most 65,536 boxes");
            return self;
        }
        specs.push(BoxSpec {
            name,
            doc: doc.into(),
            direction,
            make,
        });
        self
    }

    /// Adds a box with the same message type as `like`.
    pub(crate) fn like(
        self,
        name: impl Into<Cow<'static, str>>,
        doc: &'static str,
        direction: Direction,
        like: &Arc<dyn ErasedBox>,
    ) -> Self {
        self.with(name, doc, direction, like.maker())
    }

    /// The index of the box called `name` going `direction`. Names are
    /// usually the same string literal where declared and where asked for
    /// (one crate), so the pointers are compared over every box before any
    /// bytes are: a lookup of `SendReady` never compares the bytes of
    /// `ReadReady`.
    #[inline]
    pub(crate) fn find(&self, name: &str, direction: Direction) -> Option<usize> {
        let same_ptr = |s: &BoxSpec| {
            s.direction == direction
                && s.name.len() == name.len()
                && std::ptr::eq(s.name.as_ptr(), name.as_ptr())
        };
        if let Some(i) = self.specs.iter().position(same_ptr) {
            return Some(i);
        }
        self.specs
            .iter()
            .position(|s| s.direction == direction && s.name == name)
    }

    /// The index of the box called `name`, either direction.
    pub(crate) fn find_any(&self, name: &str) -> Option<usize> {
        self.specs.iter().position(|s| s.name == name)
    }

    pub(crate) fn spec(&self, index: usize) -> &BoxSpec {
        &self.specs[index]
    }

    /// Makes the boxes of one component, in declaration order (at most
    /// [`MAX_BOXES`] + 1 of them, so each index fits in 16 bits).
    pub(crate) fn build(&self, owner: &Arc<WakeCell>) -> Box<[Arc<dyn ErasedBox>]> {
        self.specs
            .iter()
            .zip(0..=u16::MAX)
            .map(|(s, index)| (s.make)(s, index, owner))
            .collect()
    }
}

/// An inbox's messages, in one allocation made when a message arrives and
/// freed when the last is taken: an idle box holds no queue. The oldest
/// message is kept inline, so the usual one-at-a-time traffic needs no
/// ring buffer.
struct Queue<T> {
    /// The oldest message; `None` only when the queue is empty.
    front: Option<T>,
    /// The messages after `front`.
    rest: VecDeque<T>,
    /// Producers that met a full box and wait for space (A6).
    waiting: Vec<Arc<WakeCell>>,
}

impl<T> Queue<T> {
    fn new() -> Box<Self> {
        Box::new(Queue {
            front: None,
            rest: VecDeque::new(),
            waiting: Vec::new(),
        })
    }

    fn len(&self) -> usize {
        usize::from(self.front.is_some()) + self.rest.len()
    }

    fn push(&mut self, msg: T) {
        if self.front.is_none() {
            self.front = Some(msg);
        } else {
            self.rest.push_back(msg);
        }
    }

    fn pop(&mut self) -> Option<T> {
        let msg = self.front.take();
        self.front = self.rest.pop_front();
        msg
    }

    /// Takes every message, oldest first.
    fn drain(&mut self) -> Vec<T> {
        let mut all = Vec::with_capacity(self.len());
        all.extend(self.front.take());
        all.extend(self.rest.drain(..));
        all
    }
}

/// What a box's lock guards.
struct Inner<T> {
    /// The next box along the linkage (A3).
    target: Option<Arc<Node<T>>>,
    /// The messages waiting: inboxes only, made when one arrives and freed
    /// when the last is taken.
    queue: Option<Box<Queue<T>>>,
}

/// `flags`: the box is linked onwards (`target.is_some()`).
const HAS_TARGET: u8 = 1;
/// `flags`: the box holds a queue (messages, or producers waiting). Set and
/// cleared under the lock; read without it by `pop`, where a stale "no"
/// only means a message pushed at this instant is taken at the next step,
/// which that push's wake-up (after it unlocks) guarantees (A6).
const HAS_QUEUE: u8 = 2;

/// `limit` value for an unbounded inbox.
const UNBOUNDED: u32 = u32::MAX;

/// A box carrying messages of type `T` (40 bytes; see the module docs).
pub(crate) struct Node<T> {
    /// Woken when a message arrives (inboxes only, but every box knows its
    /// owner so that a full send can register the sender). It also holds
    /// the owner's [`Boxes`], where this box's name is.
    owner: Arc<WakeCell>,
    inner: Mutex<Inner<T>>,
    /// A5: the most messages the queue may hold; [`UNBOUNDED`] for none.
    limit: AtomicU32,
    /// This box's place in its owner's declaration.
    index: u16,
    direction: Direction,
    /// [`HAS_TARGET`] and [`HAS_QUEUE`], readable without the lock: a send
    /// into an inbox that passes through elsewhere must follow it, and a
    /// `recv` on an empty inbox (the end of every receive loop) needs no
    /// lock.
    flags: AtomicU8,
}

/// Why a push into a queue did not happen.
pub(crate) enum PushError<T> {
    /// The final inbox is full (A5); the message is given back.
    Full(T),
}

impl<T: Send + 'static> Node<T> {
    fn new(direction: Direction, index: u16, owner: Arc<WakeCell>) -> Self {
        Node {
            owner,
            inner: Mutex::new(Inner {
                target: None,
                queue: None,
            }),
            limit: AtomicU32::new(UNBOUNDED),
            index,
            direction,
            flags: AtomicU8::new(0),
        }
    }

    /// The wake cell of the component this box belongs to.
    pub(crate) fn owner(&self) -> &Arc<WakeCell> {
        &self.owner
    }

    fn box_name(&self) -> &str {
        &self.owner.boxes().spec(self.index as usize).name
    }

    /// Sends `msg` from this box along its linkage to the final inbox of
    /// the chain (A3: the pointers are followed, nothing is copied per hop;
    /// the common one-hop case takes the sender's lock and the
    /// destination's). An unlinked outbox discards (A4). If the final inbox
    /// is full, `waiter` (the sender) is remembered and woken when space
    /// frees (A5, A6).
    pub(crate) fn send(&self, msg: T, waiter: Option<&Arc<WakeCell>>) -> Result<(), PushError<T>> {
        let mut inner = lock(&self.inner);
        match &inner.target {
            None if self.direction == Direction::Inbox => {
                let pushed = self.push_locked(&mut inner, msg, waiter);
                drop(inner);
                if pushed.is_ok() {
                    self.owner.wake();
                }
                pushed
            }
            None => {
                log::trace!(
                    "discarding message sent to unlinked outbox {:?}",
                    self.box_name()
                );
                Ok(())
            }
            Some(next) if next.flags.load(Ordering::Acquire) & HAS_TARGET == 0 => {
                if next.direction == Direction::Inbox {
                    next.push(msg, waiter)
                } else {
                    log::trace!(
                        "discarding message sent to unlinked outbox {:?}",
                        next.box_name()
                    );
                    Ok(())
                }
            }
            Some(next) => {
                let next = next.clone();
                drop(inner);
                next.send(msg, waiter)
            }
        }
    }

    /// Appends to this box's own queue (following a linkage made since the
    /// sender looked) and wakes its owner.
    fn push(&self, msg: T, waiter: Option<&Arc<WakeCell>>) -> Result<(), PushError<T>> {
        let mut inner = lock(&self.inner);
        if let Some(next) = &inner.target {
            // Linked onwards since the sender looked (A4): follow the link.
            let next = next.clone();
            drop(inner);
            return next.send(msg, waiter);
        }
        let pushed = self.push_locked(&mut inner, msg, waiter);
        drop(inner);
        if pushed.is_ok() {
            self.owner.wake();
        }
        pushed
    }

    /// The queue part of a push, under the lock; the caller wakes the owner
    /// after unlocking.
    fn push_locked(
        &self,
        inner: &mut Inner<T>,
        msg: T,
        waiter: Option<&Arc<WakeCell>>,
    ) -> Result<(), PushError<T>> {
        if inner.queue.is_none() {
            self.flags.fetch_or(HAS_QUEUE, Ordering::Release);
        }
        let queue = inner.queue.get_or_insert_with(Queue::new);
        if queue.len() >= self.limit.load(Ordering::Relaxed) as usize {
            if let Some(w) = waiter {
                if !queue.waiting.iter().any(|x| Arc::ptr_eq(x, w)) {
                    queue.waiting.push(w.clone());
                }
            }
            return Err(PushError::Full(msg));
        }
        queue.push(msg);
        Ok(())
    }

    /// Takes the oldest message (A2); wakes producers waiting for space.
    pub(crate) fn pop(&self) -> Option<T> {
        if self.flags.load(Ordering::Acquire) & HAS_QUEUE == 0 {
            return None;
        }
        let mut inner = lock(&self.inner);
        let queue = inner.queue.as_mut()?;
        let msg = queue.pop();
        let waiting = if msg.is_some() {
            std::mem::take(&mut queue.waiting)
        } else {
            Vec::new()
        };
        if queue.front.is_none() && queue.waiting.is_empty() {
            inner.queue = None; // empty: an idle box holds nothing
            self.flags.fetch_and(!HAS_QUEUE, Ordering::Release);
        }
        drop(inner);
        if !waiting.is_empty() {
            for w in waiting {
                w.wake();
            }
        }
        msg
    }

    /// The inbox sends from this box end in, if any.
    fn final_inbox(self: &Arc<Self>) -> Option<Arc<Node<T>>> {
        let mut node = self.clone();
        loop {
            let next = lock(&node.inner).target.clone();
            match next {
                Some(next) => node = next,
                None => break,
            }
        }
        (node.direction == Direction::Inbox).then_some(node)
    }
}

/// The type-erased face of a [`Node<T>`], so components can keep boxes of
/// different message types in one table.
pub(crate) trait ErasedBox: Send + Sync + 'static {
    fn name(&self) -> &str;
    fn info(&self) -> BoxInfo;
    fn direction(&self) -> Direction;
    fn message_type(&self) -> (TypeId, &'static str);
    fn as_any(&self) -> &dyn Any;
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
    fn maker(&self) -> Maker;
    fn len(&self) -> usize;
    fn set_limit(&self, limit: Option<usize>);
    /// True if sends from this box reach an inbox.
    fn is_linked(&self) -> bool;
    /// The inbox sends from this box end in, if any.
    fn destination(self: Arc<Self>) -> Option<Arc<dyn ErasedBox>>;
    fn link_to(self: Arc<Self>, dst: Arc<dyn ErasedBox>) -> Result<(), LinkError>;
    /// Removes the linkage out of this box if it leads to `dst`; true if it
    /// did.
    fn unlink_from(self: Arc<Self>, dst: &Arc<dyn ErasedBox>) -> bool;
    fn same(&self, other: &dyn ErasedBox) -> bool;
}

impl<T: Send + 'static> ErasedBox for Node<T> {
    fn name(&self) -> &str {
        self.box_name()
    }

    fn info(&self) -> BoxInfo {
        let spec = self.owner.boxes().spec(self.index as usize);
        BoxInfo {
            name: spec.name.to_string(),
            direction: self.direction,
            doc: spec.doc.to_string(),
            message_type: std::any::type_name::<T>(),
        }
    }

    fn direction(&self) -> Direction {
        self.direction
    }

    fn message_type(&self) -> (TypeId, &'static str) {
        (TypeId::of::<T>(), std::any::type_name::<T>())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }

    fn maker(&self) -> Maker {
        make_node::<T>
    }

    fn len(&self) -> usize {
        if self.flags.load(Ordering::Acquire) & HAS_QUEUE == 0 {
            return 0; // as `pop`: an empty inbox is looked at without its lock
        }
        lock(&self.inner).queue.as_ref().map_or(0, |q| q.len())
    }

    fn set_limit(&self, limit: Option<usize>) {
        if self.direction != Direction::Inbox {
            return;
        }
        let limit = limit.map_or(UNBOUNDED, |n| n.min(UNBOUNDED as usize - 1) as u32);
        let mut inner = lock(&self.inner);
        self.limit.store(limit, Ordering::Relaxed);
        let waiting = inner
            .queue
            .as_mut()
            .map(|q| std::mem::take(&mut q.waiting))
            .unwrap_or_default();
        drop(inner);
        // A larger (or no) limit may have made room: let producers retry.
        for w in waiting {
            w.wake();
        }
    }

    fn destination(self: Arc<Self>) -> Option<Arc<dyn ErasedBox>> {
        self.final_inbox().map(|n| n as Arc<dyn ErasedBox>)
    }

    fn is_linked(&self) -> bool {
        let next = lock(&self.inner).target.clone();
        next.and_then(|n| n.final_inbox()).is_some()
    }

    fn link_to(self: Arc<Self>, dst: Arc<dyn ErasedBox>) -> Result<(), LinkError> {
        let _topology = lock(&TOPOLOGY);
        let dst_name = dst.name().to_owned();
        let dst_direction = dst.direction();
        let Ok(dst) = dst.into_any().downcast::<Node<T>>() else {
            // Type mismatch is checked (with full names) by the caller; this
            // is a second line of defence.
            return Err(LinkError::TypeMismatch {
                source: self.box_name().to_string(),
                source_type: std::any::type_name::<T>(),
                sink: dst_name,
                sink_type: "another type",
            });
        };
        if self.direction == Direction::Inbox && dst_direction == Direction::Outbox {
            return Err(LinkError::InboxToOutbox {
                source: self.box_name().to_string(),
                sink: dst_name,
            });
        }
        if let Some(existing) = &lock(&self.inner).target {
            return Err(LinkError::AlreadyLinked {
                source: self.box_name().to_string(),
                existing: existing.box_name().to_string(),
            });
        }
        // Refuse loops: following dst's chain must not come back here.
        let mut cursor = Some(dst.clone());
        while let Some(node) = cursor {
            if Arc::ptr_eq(&node, &self) {
                return Err(LinkError::Cycle {
                    source: self.box_name().to_string(),
                    sink: dst_name,
                });
            }
            cursor = lock(&node.inner).target.clone();
        }
        // A4: messages already waiting here move on. A push racing with
        // this takes the same lock, so it either queued before (and moves
        // now) or sees the target and follows it.
        let moved = {
            let mut inner = lock(&self.inner);
            inner.target = Some(dst);
            self.flags.fetch_or(HAS_TARGET, Ordering::Release);
            let queue = inner.queue.take();
            self.flags.fetch_and(!HAS_QUEUE, Ordering::Release);
            drop(inner);
            queue.map_or_else(Vec::new, |mut q| {
                // Producers waiting for space here retry along the link.
                for w in std::mem::take(&mut q.waiting) {
                    w.wake();
                }
                q.drain()
            })
        };
        if let (false, Some(dest)) = (moved.is_empty(), self.final_inbox()) {
            let mut dest_inner = lock(&dest.inner);
            dest.flags.fetch_or(HAS_QUEUE, Ordering::Release);
            let queue = dest_inner.queue.get_or_insert_with(Queue::new);
            for msg in moved {
                queue.push(msg);
            }
            drop(dest_inner);
            dest.owner.wake();
        }
        Ok(())
    }

    fn unlink_from(self: Arc<Self>, dst: &Arc<dyn ErasedBox>) -> bool {
        let _topology = lock(&TOPOLOGY);
        let mut inner = lock(&self.inner);
        if inner.target.as_ref().is_some_and(|t| t.same(&**dst)) {
            inner.target = None;
            self.flags.fetch_and(!HAS_TARGET, Ordering::Release);
            return true;
        }
        false
    }

    fn same(&self, other: &dyn ErasedBox) -> bool {
        std::ptr::eq(
            self as *const Self as *const u8,
            other.as_any() as *const dyn Any as *const u8,
        )
    }
}

/// Downcasts an erased box to its typed node, or says why not.
pub(crate) fn typed<T: Send + 'static>(b: &dyn ErasedBox) -> Option<&Node<T>> {
    b.as_any().downcast_ref::<Node<T>>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_component_past_its_box_limit_is_refused_the_rest_not_a_panic() {
        let mut boxes = Boxes::new();
        for i in 0..=MAX_BOXES + 1 {
            boxes = boxes.inbox::<u8>(format!("in{i}"), "");
        }
        assert_eq!(boxes.len(), MAX_BOXES + 1);
        let h = crate::Handle::build("big".into(), &boxes, None);
        assert!(h.inbox::<u8>(&format!("in{MAX_BOXES}")).is_ok());
        assert!(h.inbox::<u8>(&format!("in{}", MAX_BOXES + 1)).is_err());
    }

    #[test]
    fn a_box_is_40_bytes() {
        // Thirteen boxes per connection: this is what idle memory is made of.
        assert_eq!(std::mem::size_of::<Node<Vec<u8>>>(), 40);
        assert_eq!(std::mem::size_of::<Node<crate::Control>>(), 40);
    }
}
