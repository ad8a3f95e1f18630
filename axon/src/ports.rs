//! Typed handles on boxes: [`Inbox`], [`Outbox`] and [`Postbox`].
//!
//! A component's boxes are fields of its box set (see
//! [`boxes!`](crate::boxes)), so its body reaches each box directly, with
//! the message type checked by the compiler: `cx.inbox.recv()`,
//! `cx.outbox.send(msg)`. A [`Postbox`] is a sender into somebody else's
//! inbox (Kamaelia's `(component, "inbox")` pair, as a service request
//! names it).

#![allow(unsafe_code)] // `of_node`: a cast to a `repr(transparent)` wrapper

use std::fmt;
use std::time::{Duration, Instant};

use crate::declare::{BoxMeta, Direction};
use crate::error::NoSpace;
use crate::node::{ErasedBox, Full, Node, NodeRef, OwnerRef};
use crate::wake::WakeCell;

/// One inbox of a component (A1, A2): where messages of type `T` arrive.
///
/// Kamaelia's `self.recv("inbox")` is `cx.inbox.recv()`, `dataReady` is
/// `!cx.inbox.is_empty()`, and `inboxes["inbox"].setSize(n)` is
/// [`set_limit`](Self::set_limit).
///
/// An inbox is a field of its component's box set, where it lives (40
/// bytes, no allocation of its own) for as long as the component or
/// anything linked to it does; others reach it through a [`Postbox`] or a
/// linkage.
#[repr(transparent)]
pub struct Inbox<T> {
    node: Node<T>,
}

impl<T: Send + 'static> fmt::Debug for Inbox<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Inbox({})", self.node.box_name())
    }
}

impl<T: Send + 'static> Inbox<T> {
    /// The inbox that is `node` (a box of a [`DynamicBoxes`](crate::DynamicBoxes) set).
    pub(crate) fn of_node(node: &Node<T>) -> &Self {
        // SAFETY: `Inbox<T>` is `repr(transparent)` over `Node<T>`.
        unsafe { &*(node as *const Node<T>).cast::<Inbox<T>>() }
    }

    /// Takes the oldest message (A2), waking a producer that waits for
    /// space (A6). Taking from an empty inbox costs one atomic load.
    #[inline]
    pub fn recv(&self) -> Option<T> {
        self.node.pop()
    }

    /// The number of messages waiting.
    #[inline]
    pub fn len(&self) -> usize {
        self.node.queued()
    }

    /// True if no message is waiting (Kamaelia: `not dataReady(...)`).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The box's name, as linkages and services name it.
    pub fn name(&self) -> &str {
        self.node.box_name()
    }

    /// The size limit (A5); `None` for an unbounded inbox.
    pub fn limit(&self) -> Option<usize> {
        self.node.limit()
    }

    /// Sets (or, with `None`, removes) the size limit (A5). Kamaelia:
    /// `inboxes[name].setSize(n)`. Producers waiting for space retry.
    pub fn set_limit(&self, limit: Option<usize>) {
        ErasedBox::set_limit(&self.node, limit);
    }

    /// Keeps this inbox's queue, with its capacity, when it empties,
    /// instead of freeing it and making it again for the next message:
    /// for the busy inboxes of a long-lived component (a Selector's
    /// requests, a server's feedback from its connections), where
    /// messages come in bursts and making the queue again costs an
    /// allocation and its regrowth each time. Not for a component made
    /// per connection: there an idle box should hold nothing (a box costs
    /// 24 bytes, its queue is made when a message arrives).
    pub fn keep_queue(&self) {
        self.node.keep_queue();
    }

    /// A sender into this inbox, for someone else (a Selector request
    /// names the inbox its notice goes to).
    pub fn postbox(&self) -> Postbox<T> {
        Postbox {
            node: self.node.to_ref(),
        }
    }

    /// Waits up to `timeout` for a message: for an
    /// [`Endpoint`](crate::Endpoint)'s inboxes, in code outside any
    /// scheduler (a `main`, a test). No polling: the thread sleeps until a
    /// delivery wakes it.
    ///
    /// # Panics
    ///
    /// On a component's own inbox (a component never blocks: it returns
    /// [`Step::Pause`](crate::Step::Pause) and is woken, A6). The panic
    /// names the caller's line.
    #[track_caller]
    pub fn recv_timeout(&self, timeout: Duration) -> Option<T> {
        let owner = self.node.owner();
        let Some(signal) = owner.external_signal() else {
            panic!(
                "Inbox::recv_timeout on {:?}, which is not an Endpoint's: a component \
                 returns Step::Pause to wait",
                self.name()
            );
        };
        let deadline = Instant::now() + timeout;
        loop {
            // Idle first, then look: a delivery after the look raises the
            // signal, so none is missed.
            owner.set_idle();
            if let Some(msg) = self.node.pop() {
                return Some(msg);
            }
            if !signal.wait_until(deadline) {
                return self.node.pop();
            }
        }
    }
}

/// One outbox of a component (A1, A2): what it sends travels along the
/// outbox's linkage (A3); unlinked, it is discarded (A4).
///
/// Kamaelia's `self.send(msg, "outbox")` is `cx.outbox.send(msg)`.
///
/// Like an [`Inbox`], a field of its component's box set.
#[repr(transparent)]
pub struct Outbox<T> {
    node: Node<T>,
}

impl<T: Send + 'static> fmt::Debug for Outbox<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Outbox({})", self.node.box_name())
    }
}

impl<T: Send + 'static> Outbox<T> {
    /// The outbox that is `node` (a box of a [`DynamicBoxes`](crate::DynamicBoxes) set).
    pub(crate) fn of_node(node: &Node<T>) -> &Self {
        // SAFETY: `Outbox<T>` is `repr(transparent)` over `Node<T>`.
        unsafe { &*(node as *const Node<T>).cast::<Outbox<T>>() }
    }

    /// Sends `msg` (A2–A6). A full destination gives it back as
    /// [`NoSpace`] (A5): keep it and pause; the component is woken when
    /// space frees (A6).
    #[inline]
    pub fn send(&self, msg: T) -> Result<(), NoSpace<T>> {
        self.node
            .send(msg, Some(self.node.owner()))
            .map_err(|Full(m)| NoSpace(m))
    }

    /// True if sends currently reach an inbox (false: they would be
    /// discarded, A4).
    pub fn is_linked(&self) -> bool {
        ErasedBox::is_linked(&self.node)
    }

    /// Links this outbox to the inbox `dst` delivers to (A3), as
    /// [`link_boxes`](crate::link_boxes) does by name, owned by nobody:
    /// for code that holds both boxes typed and makes a linkage per
    /// connection (a TCPServer linking each new CSA's `_selectorSignal`
    /// to the Selector), with no look-up by name and no type check at run
    /// time. The same rules: an outbox already linked, or a loop, is
    /// refused.
    ///
    /// ```
    /// use axon::{Endpoint, Standard};
    ///
    /// let (a, b) = (Endpoint::<Standard<u8, u8>>::new("a"), Endpoint::<Standard<u8, u8>>::new("b"));
    /// a.outbox.link_to(&b.inbox.postbox()).unwrap();
    /// a.outbox.send(7).unwrap();
    /// assert_eq!(b.inbox.recv(), Some(7));
    /// assert!(a.outbox.link_to(&b.inbox.postbox()).is_err()); // linked already
    /// ```
    pub fn link_to(&self, dst: &Postbox<T>) -> Result<(), crate::LinkError> {
        self.node.link_to(dst.node.clone().into())
    }

    /// The box's name, as linkages name it.
    pub fn name(&self) -> &str {
        self.node.box_name()
    }
}

/// A typed sender straight into one inbox (Kamaelia's `(component,
/// "inbox")` pair): from [`Inbox::postbox`] or, by name,
/// [`Handle::postbox`](crate::Handle::postbox). Sends follow any
/// passthrough linkage of the inbox.
///
/// A postbox does not know who sends through it, so a send that meets a
/// full inbox cannot register the sender to be woken when space frees. A
/// component sends with [`Cx::send_to`](crate::Cx::send_to), which does
/// (A6).
pub struct Postbox<T> {
    node: NodeRef<T>,
}

impl<T> Clone for Postbox<T> {
    fn clone(&self) -> Self {
        Postbox {
            node: self.node.clone(),
        }
    }
}

impl<T: Send + 'static> fmt::Debug for Postbox<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Postbox({})", self.node.box_name())
    }
}

impl<T: Send + 'static> Postbox<T> {
    pub(crate) fn from_node(node: NodeRef<T>) -> Self {
        Postbox { node }
    }

    /// Delivers `msg` and wakes the owner; gives it back if the inbox is
    /// full (A5). Nobody is woken when space frees: see the type's docs.
    pub fn send(&self, msg: T) -> Result<(), NoSpace<T>> {
        self.node.send(msg, None).map_err(|Full(m)| NoSpace(m))
    }

    /// As `send`, remembering `waiter` to wake when space frees (A6).
    pub(crate) fn send_waking(&self, msg: T, waiter: &WakeCell) -> Result<(), NoSpace<T>> {
        self.node
            .send(msg, Some(waiter))
            .map_err(|Full(m)| NoSpace(m))
    }

    /// The inbox's name.
    pub fn name(&self) -> &str {
        self.node.box_name()
    }

    /// True if both deliver to the same inbox.
    pub fn same(&self, other: &Postbox<T>) -> bool {
        self.node.ptr_eq(&other.node)
    }
}

/// A box type a box set can hold: [`Inbox`] or [`Outbox`]. The
/// [`boxes!`](crate::boxes) macro's building block; not for use by hand.
#[doc(hidden)]
pub trait Port: Send + Sync + Sized + 'static {
    /// Describes the box.
    fn __meta(name: &'static str, doc: String) -> BoxMeta;
    /// Makes the box, `index`th of its owner's: it must be the set's
    /// `index`th field, in a set laid out as its fields are declared
    /// (`repr(C)`, as [`boxes!`](crate::boxes) declares it) whose every
    /// field is a box, and stay there. A box finds its owner from its own
    /// address and `index` (see [`OwnerRef`]); the first unit made of each
    /// set type checks that every box does.
    fn __make(owner: &OwnerRef, index: u16) -> Self;
    /// The box, erased.
    fn __erased(&self) -> &dyn ErasedBox;
}

impl<T: Send + 'static> Port for Inbox<T> {
    fn __meta(name: &'static str, doc: String) -> BoxMeta {
        BoxMeta::of::<T>(name.into(), doc.into(), Direction::Inbox)
    }
    fn __make(_: &OwnerRef, index: u16) -> Self {
        Inbox {
            node: Node::new(Direction::Inbox, index),
        }
    }
    fn __erased(&self) -> &dyn ErasedBox {
        &self.node
    }
}

impl<T: Send + 'static> Port for Outbox<T> {
    fn __meta(name: &'static str, doc: String) -> BoxMeta {
        BoxMeta::of::<T>(name.into(), doc.into(), Direction::Outbox)
    }
    fn __make(_: &OwnerRef, index: u16) -> Self {
        Outbox {
            node: Node::new(Direction::Outbox, index),
        }
    }
    fn __erased(&self) -> &dyn ErasedBox {
        &self.node
    }
}
