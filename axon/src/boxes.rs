//! Inboxes, outboxes and the linkages between them (rules A1–A5).
//!
//! Every box is a [`Node<T>`]: `T` is the one message type the box carries.
//! An inbox owns a queue; an outbox owns none. A linkage sets a box's
//! *target*. A send follows the targets (outbox → outbox → inbox → inbox)
//! to the final inbox and pushes the message there, once: nothing is copied
//! per hop (A3). The usual linkage, outbox → inbox, costs the sender's
//! target lock and the destination's queue lock; each passthrough hop adds
//! one lock.
//!
//! Boxes know only where they lead, not who leads into them, so making or
//! removing a linkage is O(1) whatever the fan-in (a TCPServer's
//! `_feedbackFromCSA` is fed by every connection). Topology changes are
//! serialised by one global lock that the per-message path never takes.

use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
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

type Maker = fn(&BoxSpec, &Arc<WakeCell>) -> Arc<dyn ErasedBox>;

/// One declared box, before its component exists.
#[derive(Clone)]
pub(crate) struct BoxSpec {
    pub(crate) name: Cow<'static, str>,
    pub(crate) doc: Cow<'static, str>,
    pub(crate) direction: Direction,
    make: Maker,
}

fn make_node<T: Send + 'static>(spec: &BoxSpec, owner: &Arc<WakeCell>) -> Arc<dyn ErasedBox> {
    Arc::new(Node::<T>::new(spec, owner.clone()))
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
#[derive(Clone, Default)]
pub struct Boxes {
    pub(crate) specs: Vec<BoxSpec>,
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
    pub fn standard<I: Send + 'static, O: Send + 'static>() -> Self {
        Boxes::new()
            .inbox::<I>("inbox", "data to process")
            .inbox::<crate::Control>("control", "shutdown signalling")
            .outbox::<O>("outbox", "data produced")
            .outbox::<crate::Control>("signal", "shutdown signalling")
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
        self.specs.retain(|s| s.name != name);
        self.specs.push(BoxSpec {
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

    pub(crate) fn build(
        &self,
        owner: &Arc<WakeCell>,
    ) -> Vec<(Cow<'static, str>, Direction, Arc<dyn ErasedBox>)> {
        self.specs
            .iter()
            .map(|s| (s.name.clone(), s.direction, (s.make)(s, owner)))
            .collect()
    }
}

/// The queue behind an inbox.
struct Queue<T> {
    items: VecDeque<T>,
    /// A5: `usize::MAX` is unbounded.
    limit: usize,
    /// Producers that met a full box and wait for space (A6).
    waiting: Vec<Arc<WakeCell>>,
}

/// A box carrying messages of type `T`.
pub(crate) struct Node<T> {
    name: Cow<'static, str>,
    doc: Cow<'static, str>,
    direction: Direction,
    /// Woken when a message arrives (inboxes only, but every box knows its
    /// owner so that a full send can register the sender).
    owner: Arc<WakeCell>,
    /// The messages waiting: inboxes only (an outbox stores nothing, so it
    /// pays for no queue).
    queue: Option<Box<Mutex<Queue<T>>>>,
    /// The next box along the linkage (A3).
    target: Mutex<Option<Arc<Node<T>>>>,
    /// `target.is_some()`, readable without the lock: a send into an inbox
    /// that passes through elsewhere must follow it.
    has_target: AtomicBool,
}

/// Why a push into a queue did not happen.
pub(crate) enum PushError<T> {
    /// The final inbox is full (A5); the message is given back.
    Full(T),
}

impl<T: Send + 'static> Node<T> {
    fn new(spec: &BoxSpec, owner: Arc<WakeCell>) -> Self {
        Node {
            name: spec.name.clone(),
            doc: spec.doc.clone(),
            direction: spec.direction,
            owner,
            queue: (spec.direction == Direction::Inbox).then(|| {
                Box::new(Mutex::new(Queue {
                    items: VecDeque::new(),
                    limit: usize::MAX,
                    waiting: Vec::new(),
                }))
            }),
            target: Mutex::new(None),
            has_target: AtomicBool::new(false),
        }
    }

    /// Sends `msg` from this box along its linkage to the final inbox of
    /// the chain (A3: the pointers are followed, nothing is copied per hop;
    /// the common one-hop case takes the one lock). An unlinked outbox
    /// discards (A4). If the final inbox is full, `waiter` (the sender) is
    /// remembered and woken when space frees (A5, A6).
    pub(crate) fn send(&self, msg: T, waiter: Option<&Arc<WakeCell>>) -> Result<(), PushError<T>> {
        let target = lock(&self.target);
        match &*target {
            None if self.direction == Direction::Inbox => {
                drop(target);
                self.push(msg, waiter)
            }
            None => {
                log::trace!("discarding message sent to unlinked outbox {:?}", self.name);
                Ok(())
            }
            Some(next) if !next.has_target.load(Ordering::Acquire) => {
                if next.direction == Direction::Inbox {
                    next.push(msg, waiter)
                } else {
                    log::trace!("discarding message sent to unlinked outbox {:?}", next.name);
                    Ok(())
                }
            }
            Some(next) => {
                let next = next.clone();
                drop(target);
                next.send(msg, waiter)
            }
        }
    }

    /// Appends to this box's own queue and wakes its owner.
    fn push(&self, msg: T, waiter: Option<&Arc<WakeCell>>) -> Result<(), PushError<T>> {
        let Some(queue) = &self.queue else {
            return Ok(()); // never: only inboxes are destinations
        };
        let mut q = lock(queue);
        if self.has_target.load(Ordering::Acquire) {
            // Linked onwards since the sender looked (A4): follow the link.
            drop(q);
            return self.send(msg, waiter);
        }
        if q.items.len() >= q.limit {
            if let Some(w) = waiter {
                if !q.waiting.iter().any(|x| Arc::ptr_eq(x, w)) {
                    q.waiting.push(w.clone());
                }
            }
            return Err(PushError::Full(msg));
        }
        q.items.push_back(msg);
        drop(q);
        self.owner.wake();
        Ok(())
    }

    /// Takes the oldest message (A2); wakes producers waiting for space.
    pub(crate) fn pop(&self) -> Option<T> {
        let mut q = lock(self.queue.as_ref()?);
        let msg = q.items.pop_front();
        if msg.is_some() && !q.waiting.is_empty() {
            let waiting = std::mem::take(&mut q.waiting);
            drop(q);
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
            let next = lock(&node.target).clone();
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
    /// Removes the linkage out of this box if it leads to `dst`.
    fn unlink_from(self: Arc<Self>, dst: &Arc<dyn ErasedBox>);
    fn same(&self, other: &dyn ErasedBox) -> bool;
}

impl<T: Send + 'static> ErasedBox for Node<T> {
    fn name(&self) -> &str {
        &self.name
    }

    fn info(&self) -> BoxInfo {
        BoxInfo {
            name: self.name.to_string(),
            direction: self.direction,
            doc: self.doc.to_string(),
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
        self.queue.as_ref().map_or(0, |q| lock(q).items.len())
    }

    fn set_limit(&self, limit: Option<usize>) {
        let Some(queue) = &self.queue else {
            return;
        };
        let mut q = lock(queue);
        q.limit = limit.unwrap_or(usize::MAX);
        let waiting = std::mem::take(&mut q.waiting);
        drop(q);
        // A larger (or no) limit may have made room: let producers retry.
        for w in waiting {
            w.wake();
        }
    }

    fn destination(self: Arc<Self>) -> Option<Arc<dyn ErasedBox>> {
        self.final_inbox().map(|n| n as Arc<dyn ErasedBox>)
    }

    fn is_linked(&self) -> bool {
        let next = lock(&self.target).clone();
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
                source: self.name.to_string(),
                source_type: std::any::type_name::<T>(),
                sink: dst_name,
                sink_type: "another type",
            });
        };
        if self.direction == Direction::Inbox && dst_direction == Direction::Outbox {
            return Err(LinkError::InboxToOutbox {
                source: self.name.to_string(),
                sink: dst_name,
            });
        }
        if let Some(existing) = &*lock(&self.target) {
            return Err(LinkError::AlreadyLinked {
                source: self.name.to_string(),
                existing: existing.name.to_string(),
            });
        }
        // Refuse loops: following dst's chain must not come back here.
        let mut cursor = Some(dst.clone());
        while let Some(node) = cursor {
            if Arc::ptr_eq(&node, &self) {
                return Err(LinkError::Cycle {
                    source: self.name.to_string(),
                    sink: dst_name,
                });
            }
            cursor = lock(&node.target).clone();
        }
        *lock(&self.target) = Some(dst);
        self.has_target.store(true, Ordering::Release);
        // A4: messages already waiting here move on. A push racing with
        // this sees `has_target` under the queue lock and follows the link.
        if let Some(queue) = &self.queue {
            let moved: Vec<T> = lock(queue).items.drain(..).collect();
            if let (false, Some(dest)) = (moved.is_empty(), self.final_inbox()) {
                if let Some(dest_queue) = &dest.queue {
                    lock(dest_queue).items.extend(moved);
                }
                dest.owner.wake();
            }
        }
        Ok(())
    }

    fn unlink_from(self: Arc<Self>, dst: &Arc<dyn ErasedBox>) {
        let _topology = lock(&TOPOLOGY);
        let mut target = lock(&self.target);
        if target.as_ref().is_some_and(|t| t.same(&**dst)) {
            *target = None;
            self.has_target.store(false, Ordering::Release);
        }
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
