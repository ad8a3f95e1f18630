//! A box's state: its queue and its linkage (A2–A5).
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
//! A server holds two components and fifteen boxes per connection, so a
//! box is kept small (24 bytes): its name, description and type live once
//! per component *type* in the owner's box table (reached through the
//! owner's wake cell), its target and its queue share one lock (a
//! one-byte lock ([`BoxLock`]) beside the box's other small fields, not a
//! `Mutex` around them, which would pad it to eight), and the
//! queue itself is allocated only when the first message arrives. A queue
//! that grew during a burst gives its buffer back once it is empty again,
//! and an emptied queue's memory is kept for the thread's next one.
//!
//! A box is not an allocation of its own: it is a field of its
//! component's box set, which follows the component's wake cell in the
//! component's one allocation (`axon::unit`). So a box keeps no pointer
//! to its owner: it keeps how far back the cell is (`Node::owner`). A
//! reference to a box from elsewhere (a linkage's target, a
//! [`Postbox`](crate::Postbox), a [`Link`](crate::Link)) is one pointer,
//! [`NodeRef`], that counts the *cell*: the box lives as long as anyone
//! can send to it. An [`OwnerRef`] (what a set is built with) is not
//! counted, or every cell would keep itself alive. So that two components
//! linked both ways do not keep each other's boxes for ever, a
//! component's boxes let go of their linkages and messages once no
//! handle on it is left (its last handle's drop, `CoreRef`'s).
//!
//! ## Counters
//!
//! Each box counts the messages that arrive in its queue and the most that
//! ever waited at once, for [`Snapshot`](crate::Snapshot)s. Both are
//! written under the lock a push already holds, and they live in what was
//! padding in the box's guarded state, so they cost no memory, no atomic
//! and no lock of their own.

#![allow(unsafe_code)] // NodeRef, ErasedRef, OwnerRef, Locked: see their SAFETY notes

use crate::sync::Mutex;
use std::any::{Any, TypeId};
use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};

use crate::boxlock::BoxLock;
use crate::declare::{BoxInfo, Direction};
use crate::error::LinkError;
use crate::spare;
use crate::sync::lock;
use crate::unit::CellRef;
use crate::wake::{WakeCell, DONE};

/// Serialises every change of linkage topology in the process.
static TOPOLOGY: Mutex<()> = Mutex::new(());

/// Makes a box of some message type (the type is the function's), for a
/// [`DynamicBoxes`](crate::DynamicBoxes) set.
pub(crate) type Maker = fn(Direction, u16, &OwnerRef) -> Box<dyn HoldsBox>;

pub(crate) fn make_node<T: Send + 'static>(
    direction: Direction,
    index: u16,
    owner: &OwnerRef,
) -> Box<dyn HoldsBox> {
    Box::new(Detached::<T>::new(direction, index, owner))
}

/// A box that is not a field of its owner's box set (a dynamic box, whose
/// type is known only at run time, or a box a test makes by hand), with
/// its owner in the word before it: a box in a set finds its owner from
/// its own address ([`Node::owner`]), which a box elsewhere cannot.
#[repr(C)]
pub(crate) struct Detached<T> {
    owner: OwnerRef,
    /// The box's place in its owner's declaration (a box in a set finds
    /// it from its own offset there).
    index: u16,
    node: Node<T>,
}

impl<T: Send + 'static> Detached<T> {
    /// A box of `owner`'s, `index`th in its declaration. It must be kept in
    /// `owner`'s unit (see [`OwnerRef`]).
    pub(crate) fn new(direction: Direction, index: u16, owner: &OwnerRef) -> Self {
        Detached {
            owner: owner.clone(),
            index,
            node: Node::with_back(direction, DETACHED_BACK),
        }
    }
}

impl Detached<()> {
    /// How far before its box a `Detached`'s owner reference and index
    /// are (the same for every message type: a box's layout does not
    /// depend on it).
    fn header_back() -> (usize, usize) {
        let d = std::mem::MaybeUninit::<Detached<()>>::uninit();
        let base = d.as_ptr();
        // SAFETY: only the fields' addresses are taken; nothing is read.
        let (owner, index, node) = unsafe {
            (
                std::ptr::addr_of!((*base).owner) as usize,
                std::ptr::addr_of!((*base).index) as usize,
                std::ptr::addr_of!((*base).node) as usize,
            )
        };
        (node - owner, node - index)
    }
}

impl<T> Detached<T> {
    /// The box, its owner found just before it ([`Node::owner_addr`]).
    fn node(&self) -> &Node<T> {
        // Exposed, so that the address the box finds its owner reference
        // at may be turned back into a pointer into this `Detached`.
        let _ = self as *const Detached<T> as usize;
        &self.node
    }
}

impl<T> Deref for Detached<T> {
    type Target = Node<T>;

    fn deref(&self) -> &Node<T> {
        self.node()
    }
}

/// What a [`DynamicBoxes`](crate::DynamicBoxes) set keeps of each box: a
/// [`Detached`] of some message type. Public only as [`ErasedBox`] is.
pub trait HoldsBox: Send + Sync + 'static {
    /// The box.
    fn erased(&self) -> &dyn ErasedBox;
}

impl<T: Send + 'static> HoldsBox for Detached<T> {
    fn erased(&self) -> &dyn ErasedBox {
        self.node()
    }
}

/// The size of every box, whatever it carries (a message type is only
/// ever behind a pointer in it): a box set's `i`th box is `i` of these
/// after the set's start.
pub(crate) const BOX_SIZE: usize = std::mem::size_of::<Node<()>>();

/// Where a unit's box set starts, from the unit's start: after its wake
/// cell, at the set's alignment, which is a box's (a set is its boxes).
pub(crate) const SET_OFFSET: usize = {
    let cell = std::mem::size_of::<WakeCell>();
    let align = std::mem::align_of::<Node<()>>();
    cell.div_ceil(align) * align
};

/// `Node::back` of a box in a [`Detached`] (a box in a set is at least
/// [`SET_OFFSET`] from its owner).
const DETACHED_BACK: u16 = 0;

/// Where the `index`th box of a set is from its owner's cell; `None` past
/// what a box can say (tens of thousands of boxes in one set).
fn back_of(index: u16) -> Option<u16> {
    u16::try_from(SET_OFFSET + usize::from(index) * BOX_SIZE).ok()
}

/// A box's reference to the wake cell of the component it belongs to: a
/// [`CellRef`] that is not counted.
///
/// A component's boxes are fields of its box set, in the one allocation
/// its wake cell heads (`axon::unit`), so the cell outlives every box
/// in it; counting the reference would make each cell keep itself alive.
/// Only axon makes one, for the unit it is building
/// ([`BoxSet::__build`](crate::BoxSet::__build)); a box made with it must
/// stay in that unit's set.
pub struct OwnerRef(ManuallyDrop<CellRef>);

impl OwnerRef {
    /// An uncounted reference to `cell`.
    ///
    /// # Safety
    ///
    /// `cell` must outlive every use of the reference and of its copies:
    /// the boxes made with it must live in the set of the unit `cell`
    /// heads.
    pub(crate) unsafe fn new(cell: NonNull<WakeCell>) -> Self {
        // SAFETY: never dropped (`ManuallyDrop`), so it counts nothing,
        // and the caller keeps the cell alive while it is used.
        OwnerRef(unsafe { CellRef::uncounted(cell) })
    }
}

impl std::fmt::Debug for OwnerRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OwnerRef({:p})", self.0.as_ptr())
    }
}

impl Clone for OwnerRef {
    /// Another uncounted reference to the same cell, made without
    /// touching its count (every box of a set gets one as it is made).
    fn clone(&self) -> Self {
        // SAFETY: a bitwise copy of the uncounted reference: neither copy
        // is ever dropped (`ManuallyDrop`), so the count stays as it was,
        // and the copy is bound by the promise `self` was made under (the
        // cell outlives it).
        OwnerRef(unsafe { std::ptr::read(&self.0) })
    }
}

impl Deref for OwnerRef {
    type Target = CellRef;

    fn deref(&self) -> &CellRef {
        &self.0
    }
}

/// A counted reference to a box of another component (a linkage's target,
/// a [`Postbox`](crate::Postbox)): one word, a pointer to the box. It
/// counts the box's owner's wake cell, which owns the box set the box is
/// in, so the box lives while the reference does.
pub(crate) struct NodeRef<T> {
    node: NonNull<Node<T>>,
}

// SAFETY: a `NodeRef` is a shared reference to a `Node<T>` kept alive by a
// count on its unit (as an `Arc<Node<T>>` would be): it is `Send` and
// `Sync` exactly when `Node<T>` is `Sync` (`Node` guards its state with a
// mutex and atomics, and is `Sync` for `T: Send`).
unsafe impl<T: Send + 'static> Send for NodeRef<T> {}
// SAFETY: as for `Send`.
unsafe impl<T: Send + 'static> Sync for NodeRef<T> {}

impl<T> NodeRef<T> {
    /// A counted reference to `node`.
    ///
    /// # Safety
    ///
    /// `node` must be in the box set its owner's cell owns, or (unit
    /// tests) outlive the reference: counting the cell then keeps the box.
    pub(crate) unsafe fn new(node: &Node<T>) -> Self {
        // SAFETY: `owner` is a live cell (the node is in its set); the
        // count taken here is given back by `drop`.
        unsafe { CellRef::increment(node.owner()) };
        NodeRef {
            node: NonNull::from(node),
        }
    }

    /// True if both lead to the same box.
    pub(crate) fn ptr_eq(&self, other: &NodeRef<T>) -> bool {
        self.node == other.node
    }
}

impl<T> Deref for NodeRef<T> {
    type Target = Node<T>;

    fn deref(&self) -> &Node<T> {
        // SAFETY: the count this reference holds on the node's owner cell
        // keeps the cell, and with it the set the node is in, alive.
        unsafe { self.node.as_ref() }
    }
}

impl<T> Clone for NodeRef<T> {
    fn clone(&self) -> Self {
        // SAFETY: `self` keeps the node alive, and it is in its set.
        unsafe { NodeRef::new(self) }
    }
}

impl<T> Drop for NodeRef<T> {
    fn drop(&mut self) {
        let cell: *const WakeCell = self.owner();
        // SAFETY: gives back the count `new` took. It may free the cell and
        // the node with it; neither is touched after this.
        unsafe { CellRef::decrement(cell) };
    }
}

/// A counted reference to a box with its message type erased: a linkage's
/// ends, looked up by name. One pointer: it counts the box's owner's wake
/// cell, as a `NodeRef` does.
pub struct ErasedRef {
    node: NonNull<dyn ErasedBox>,
}

// SAFETY: as `NodeRef`'s: a counted shared reference to an `ErasedBox`,
// which is `Send + Sync`.
unsafe impl Send for ErasedRef {}
// SAFETY: as for `Send`.
unsafe impl Sync for ErasedRef {}

impl ErasedRef {
    /// A counted reference to `node`.
    ///
    /// # Safety
    ///
    /// As [`NodeRef::new`]'s.
    pub(crate) unsafe fn new(node: &dyn ErasedBox) -> Self {
        // SAFETY: as in `NodeRef::new`.
        unsafe { CellRef::increment(node.owner_cell()) };
        ErasedRef {
            node: NonNull::from(node),
        }
    }

    /// The typed reference, or this one back for a box of another type.
    pub(crate) fn downcast<T: Send + 'static>(self) -> Result<NodeRef<T>, ErasedRef> {
        if !self.as_any().is::<Node<T>>() {
            return Err(self);
        }
        let node = self.node.cast::<Node<T>>();
        // The count moves to the typed reference.
        std::mem::forget(self);
        Ok(NodeRef { node })
    }
}

impl Deref for ErasedRef {
    type Target = dyn ErasedBox;

    fn deref(&self) -> &dyn ErasedBox {
        // SAFETY: as `NodeRef`'s.
        unsafe { self.node.as_ref() }
    }
}

impl std::fmt::Debug for ErasedRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ErasedRef({})", self.name())
    }
}

impl Clone for ErasedRef {
    fn clone(&self) -> Self {
        // SAFETY: as `NodeRef`'s.
        unsafe { ErasedRef::new(&**self) }
    }
}

impl Drop for ErasedRef {
    fn drop(&mut self) {
        let cell: *const WakeCell = self.owner_cell();
        // SAFETY: as `NodeRef`'s.
        unsafe { CellRef::decrement(cell) };
    }
}

impl<T: Send + 'static> From<NodeRef<T>> for ErasedRef {
    fn from(node: NodeRef<T>) -> ErasedRef {
        let erased: NonNull<dyn ErasedBox> = node.node;
        std::mem::forget(node);
        ErasedRef { node: erased }
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
    waiting: Vec<CellRef>,
}

impl<T: 'static> Queue<T> {
    /// The size class of this queue type's block, if blocks of its layout
    /// are kept (see [`spare`]).
    const CLASS: Option<usize> = spare::class_of(std::alloc::Layout::new::<Self>());

    /// An empty queue, in a block this thread kept if it has one.
    #[inline]
    fn new() -> Box<Self> {
        let empty = Queue {
            front: None,
            rest: VecDeque::new(),
            waiting: Vec::new(),
        };
        let Some(class) = Self::CLASS else {
            return Box::new(empty);
        };
        match spare::take(class) {
            Some(block) => {
                let queue = block.cast::<Self>().as_ptr();
                // SAFETY: the block was allocated by the global allocator
                // with `Layout::new::<Queue<U>>()` for some `U` whose queue
                // has this class, that is this size and alignment, which is
                // the layout a `Box<Self>` is allocated and freed with; it
                // holds no value (see `recycle`), and was taken out of the
                // spares, so nothing else refers to it. Writing the queue
                // makes it a valid `Self` that the box owns from here.
                unsafe {
                    queue.write(empty);
                    Box::from_raw(queue)
                }
            }
            None => Box::new(empty),
        }
    }

    /// Frees an emptied queue, or keeps its block for [`Queue::new`] on
    /// this thread (if its layout is kept and the thread has fewer than
    /// [`spare::PER_CLASS`] of its size). A queue that grew in a burst gives
    /// its ring buffer back either way.
    #[inline]
    fn recycle(queue: Box<Self>) {
        let Some(class) = Self::CLASS else {
            return; // dropped
        };
        if queue.front.is_some() || !queue.waiting.is_empty() || !queue.rest.is_empty() {
            return; // not empty: dropped (never the case: callers empty it)
        }
        let mut queue = queue;
        // (A ring buffer of zero-sized messages never allocates, and
        // reports a capacity of `usize::MAX`.)
        let ring_buffer = |q: &Self| size_of::<T>() != 0 && q.rest.capacity() != 0;
        if ring_buffer(&queue) {
            queue.rest = VecDeque::new(); // frees the ring buffer
        }
        if queue.waiting.capacity() != 0 {
            queue.waiting = Vec::new();
        }
        debug_assert!(
            !ring_buffer(&queue) && queue.waiting.capacity() == 0,
            "a kept block's queue owns no buffer"
        );
        // Its fields now own nothing (no message, no buffer), so the block
        // is given up without dropping them: it holds no value.
        let block = NonNull::from(Box::leak(queue)).cast::<u8>();
        // SAFETY: a `Box<Self>`'s block, allocated with `Self`'s layout,
        // which is class `class`'s; it holds no value (above), and the box
        // was leaked, so nothing uses it after this.
        unsafe { spare::keep(block, class) };
    }
}

impl<T> Queue<T> {
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

/// What a box's lock guards: where the box leads, or the messages waiting
/// in it (never both: a box linked onwards hands on what it held, A4),
/// and its two counters (for introspection, see [`Counts`]).
///
/// The counters sit in every variant, beside the tag, in bytes that would
/// otherwise be padding: counting costs a box no memory (it stays 40
/// bytes) and a delivery no extra lock or atomic (it is counted under the
/// lock the push already holds).
enum Inner<T> {
    /// Not linked onwards: messages wait here, in a queue made when one
    /// arrives and freed when the last is taken (inboxes only).
    Local {
        high: u16,
        wraps: u8,
        delivered: u32,
        queue: Option<Box<Queue<T>>>,
    },
    /// Linked onwards: the next box along the linkage (A3).
    Linked {
        high: u16,
        wraps: u8,
        delivered: u32,
        next: NodeRef<T>,
    },
}

/// What a box held before its linkage changed ([`Inner::set_target`]).
enum Held<T> {
    /// Its queue, if it had one.
    Queue(Option<Box<Queue<T>>>),
    /// Where it led: held only to be dropped (after the caller's locks).
    #[allow(dead_code)]
    Target(NodeRef<T>),
}

impl<T> Held<T> {
    fn queue(self) -> Option<Box<Queue<T>>> {
        match self {
            Held::Queue(queue) => queue,
            Held::Target(_) => None,
        }
    }
}

/// A box's counters, as a snapshot reads them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// The most messages that have waited in the box at once (saturates
    /// at 65,535).
    pub high_water: u16,
    /// Messages that have arrived in the box's queue (40 bits: it wraps
    /// after about 10^12).
    pub delivered: u64,
}

impl<T: 'static> Inner<T> {
    const fn new() -> Self {
        Inner::Local {
            high: 0,
            wraps: 0,
            delivered: 0,
            queue: None,
        }
    }

    fn parts(&self) -> (u16, u8, u32) {
        match *self {
            Inner::Local {
                high,
                wraps,
                delivered,
                ..
            }
            | Inner::Linked {
                high,
                wraps,
                delivered,
                ..
            } => (high, wraps, delivered),
        }
    }

    fn counts(&self) -> Counts {
        let (high, wraps, delivered) = self.parts();
        Counts {
            high_water: high,
            delivered: (u64::from(wraps) << 32) | u64::from(delivered),
        }
    }

    fn target(&self) -> Option<&NodeRef<T>> {
        match self {
            Inner::Linked { next, .. } => Some(next),
            Inner::Local { .. } => None,
        }
    }

    fn queue(&self) -> Option<&Queue<T>> {
        match self {
            Inner::Local { queue, .. } => queue.as_deref(),
            Inner::Linked { .. } => None,
        }
    }

    fn queue_mut(&mut self) -> Option<&mut Queue<T>> {
        match self {
            Inner::Local { queue, .. } => queue.as_deref_mut(),
            Inner::Linked { .. } => None,
        }
    }

    /// Takes the queue out, if any, leaving the box empty.
    #[inline]
    fn take_queue(&mut self) -> Option<Box<Queue<T>>> {
        match self {
            Inner::Local { queue, .. } => queue.take(),
            Inner::Linked { .. } => None,
        }
    }

    /// Links onwards (`Some`) or not (`None`), handing back what the box
    /// held: its queue (A4: its messages move on) or its old target (for
    /// the caller to drop outside the lock).
    fn set_target(&mut self, next: Option<NodeRef<T>>) -> Held<T> {
        let (high, wraps, delivered) = self.parts();
        let new = match next {
            Some(next) => Inner::Linked {
                high,
                wraps,
                delivered,
                next,
            },
            None => Inner::Local {
                high,
                wraps,
                delivered,
                queue: None,
            },
        };
        match std::mem::replace(self, new) {
            Inner::Local { queue, .. } => Held::Queue(queue),
            Inner::Linked { next, .. } => Held::Target(next),
        }
    }

    /// Appends `msg` if fewer than `limit` wait, counting it; gives it back
    /// if the box is full or linked onwards (`Err(msg, queue)`: the queue,
    /// if any, to register a waiting producer in). `made` is told when a
    /// queue had to be made.
    #[inline]
    fn push(
        &mut self,
        msg: T,
        limit: usize,
        made: impl FnOnce(),
    ) -> Result<(), (T, Option<&mut Queue<T>>)> {
        let Inner::Local {
            high,
            wraps,
            delivered,
            queue,
        } = self
        else {
            // Linked onwards: the callers looked under this lock, so this
            // is never reached; refusing is the safe answer (A5: retried).
            return Err((msg, None));
        };
        let queue = match queue {
            Some(q) => q,
            None => {
                made();
                queue.insert(Queue::new())
            }
        };
        let len = queue.len();
        if len >= limit {
            return Err((msg, Some(queue)));
        }
        queue.push(msg);
        *delivered = delivered.wrapping_add(1);
        if *delivered == 0 {
            *wraps = wraps.wrapping_add(1);
        }
        if len >= usize::from(*high) {
            *high = u16::try_from(len + 1).unwrap_or(u16::MAX);
        }
        Ok(())
    }
}

/// `flags`: the box is linked onwards (`target.is_some()`).
const HAS_TARGET: u8 = 1;
/// `flags`: the box holds a queue (messages, or producers waiting). Set and
/// cleared under the lock; read without it by `pop`, where a stale "no"
/// only means a message pushed at this instant is taken at the next step,
/// which that push's wake-up (after it unlocks) guarantees (A6).
const HAS_QUEUE: u8 = 2;
/// `flags`: keep the queue (and its capacity) when it empties
/// ([`Node::keep_queue`]).
const KEEP_QUEUE: u8 = 4;

/// `flags`: the box has held a queue at some time (set with every
/// [`HAS_QUEUE`], never cleared). Its counters only move while it holds
/// one, so a box with neither this nor [`HAS_TARGET`] has nothing for a
/// snapshot to read under its lock ([`ErasedBox::observe`]).
const HELD: u8 = 8;

/// `limit` value for an unbounded inbox.
const UNBOUNDED: u32 = u32::MAX;

/// `flags`: the box is an inbox (set when it is made, never changed).
const INBOX: u8 = 16;

/// A box carrying messages of type `T` (24 bytes; see the module docs).
///
/// It keeps no pointer to its owner: it is the `index`th field of its
/// owner's box set, which sits right after the owner's wake cell in the
/// component's one allocation, so the owner is a subtraction away
/// ([`Node::owner`]); a [`Detached`] box keeps its owner just before it.
pub(crate) struct Node<T> {
    /// Its target and queue, only ever reached under `lock`
    /// ([`Node::locked`]): a `Mutex<Inner<T>>` taken apart, so that the
    /// lock's one byte shares a word with the fields below instead of
    /// being padded to eight.
    inner: UnsafeCell<Inner<T>>,
    /// A5: the most messages the queue may hold; [`UNBOUNDED`] for none.
    limit: AtomicU32,
    /// How far before this box its owner's cell is, in bytes (it is the
    /// `index`th field of the box set after the cell: [`SET_OFFSET`] +
    /// `index` × [`BOX_SIZE`]); [`DETACHED_BACK`] for a box of a
    /// [`Detached`], which keeps its owner and index just before it.
    back: u16,
    /// [`HAS_TARGET`] and [`HAS_QUEUE`], readable without the lock: a send
    /// into an inbox that passes through elsewhere must follow it, and a
    /// `recv` on an empty inbox (the end of every receive loop) needs no
    /// lock. [`INBOX`] says the box's direction. Changed only under the
    /// lock ([`Node::set_flags`]).
    flags: AtomicU8,
    lock: BoxLock,
}

// SAFETY: `inner` is only reached through `Node::locked`, which holds
// `lock` for as long as the reference lives, as a `Mutex<Inner<T>>` would
// (which is `Send + Sync` for `T: Send`); every other field is `Sync`.
unsafe impl<T: Send> Sync for Node<T> {}
// SAFETY: as for `Sync`: moving a box moves its messages, which are `Send`.
unsafe impl<T: Send> Send for Node<T> {}

/// A box's `inner`, locked: [`Node::locked`]. Not `Send`: the lock is
/// released on the thread that took it.
struct Locked<'a, T> {
    node: &'a Node<T>,
    _not_send: PhantomData<*const ()>,
}

impl<T> Deref for Locked<'_, T> {
    type Target = Inner<T>;

    fn deref(&self) -> &Inner<T> {
        // SAFETY: this guard holds the node's lock (taken in `locked`,
        // released in `drop`), so no other reference to `inner` exists.
        unsafe { &*self.node.inner.get() }
    }
}

impl<T> DerefMut for Locked<'_, T> {
    fn deref_mut(&mut self) -> &mut Inner<T> {
        // SAFETY: as in `deref`; `&mut self` makes this the only one.
        unsafe { &mut *self.node.inner.get() }
    }
}

impl<T> Drop for Locked<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the lock was taken by `Node::locked` for this guard, on
        // this thread (the guard is not `Send`), and is released once.
        unsafe { self.node.lock.unlock() }
    }
}

/// Wakes the producers that waited for space (A6): out of line, as most
/// pops have none.
#[inline(never)]
fn wake_all(waiting: Vec<CellRef>) {
    for w in waiting {
        w.wake();
    }
}

/// A push into a full inbox (A5); the message is given back.
pub(crate) struct Full<T>(pub(crate) T);

impl<T> Node<T> {
    /// Takes this box's lock, for its target and queue.
    fn locked(&self) -> Locked<'_, T> {
        self.lock.lock();
        Locked {
            node: self,
            _not_send: PhantomData,
        }
    }

    /// Inbox or outbox.
    fn dir(&self) -> Direction {
        if self.flags.load(Ordering::Relaxed) & INBOX != 0 {
            Direction::Inbox
        } else {
            Direction::Outbox
        }
    }
}

impl<T> Node<T> {
    /// The wake cell of the component this box belongs to.
    #[inline]
    pub(crate) fn owner(&self) -> &WakeCell {
        // SAFETY: the owner's cell outlives its boxes (they are in its
        // unit), at the address `owner_addr` finds, and the unit's
        // allocation was exposed as it was made (`unit::make`): the
        // address, turned back into a pointer, takes its provenance.
        unsafe { &*(self.owner_addr() as *const WakeCell) }
    }

    /// Where this box's owner's cell is (an address, not yet a pointer:
    /// `unit::make` compares it before any is made).
    #[inline]
    pub(crate) fn owner_addr(&self) -> usize {
        let at = self as *const Node<T> as usize;
        match self.back {
            // SAFETY: a detached box is the `node` of a `Detached`
            // (`repr(C)`), after its owner reference; the `Detached`
            // exposed its address as it handed this box out.
            DETACHED_BACK => unsafe { (*self.detached_header().0).as_ptr() as usize },
            // In a unit: its set is right after the cell, and this box is
            // `back` bytes after it (checked for each set type as its
            // first unit is made).
            back => at - usize::from(back),
        }
    }

    /// A detached box's owner reference and index, just before it.
    fn detached_header(&self) -> (*const OwnerRef, *const u16) {
        let at = self as *const Node<T> as usize;
        let (owner, index) = Detached::<()>::header_back();
        ((at - owner) as *const OwnerRef, (at - index) as *const u16)
    }

    /// This box's place in its owner's declaration.
    pub(crate) fn index(&self) -> u16 {
        match self.back {
            // SAFETY: as in `owner_addr`.
            DETACHED_BACK => unsafe { *self.detached_header().1 },
            back => ((usize::from(back) - SET_OFFSET) / BOX_SIZE) as u16,
        }
    }
}

impl<T: Send + 'static> Node<T> {
    /// The `index`th box of a box set: it must be made as that field of a
    /// set being built for a unit (by [`Port::__make`](crate::__private::Port::__make)),
    /// and stay there, or be made into a [`Detached`].
    ///
    /// # Panics
    ///
    /// With more boxes in one set than a box can count back over (2,700:
    /// a declaration's boxes are a few).
    pub(crate) fn new(direction: Direction, index: u16) -> Self {
        let back = back_of(index).unwrap_or_else(|| {
            panic!("box {index}: too many boxes in one box set for its box to find its owner")
        });
        Node::with_back(direction, back)
    }

    fn with_back(direction: Direction, back: u16) -> Self {
        Node {
            inner: UnsafeCell::new(Inner::new()),
            limit: AtomicU32::new(UNBOUNDED),
            back,
            flags: AtomicU8::new(if direction == Direction::Inbox {
                INBOX
            } else {
                0
            }),
            lock: BoxLock::new(),
        }
    }

    /// Keeps this inbox's queue when it empties (see
    /// [`Inbox::keep_queue`](crate::Inbox::keep_queue)).
    pub(crate) fn keep_queue(&self) {
        let _inner = self.locked();
        self.set_flags(KEEP_QUEUE, 0);
    }

    /// Sets the bits `set` of `flags` and clears `clear`, with the box's
    /// lock held: every change to `flags` is made under it, so a load and
    /// a store do what a read-modify-write would, without its cost (two
    /// per message otherwise). Readers without the lock see either value.
    #[inline]
    fn set_flags(&self, set: u8, clear: u8) {
        let flags = self.flags.load(Ordering::Relaxed);
        self.flags.store((flags | set) & !clear, Ordering::Release);
    }

    pub(crate) fn box_name(&self) -> &str {
        self.owner()
            .table()
            .get(usize::from(self.index()))
            .map_or("?", |m| &m.name)
    }

    /// Sends `msg` from this box along its linkage to the final inbox of
    /// the chain (A3: the pointers are followed, nothing is copied per hop;
    /// the common one-hop case takes the sender's lock and the
    /// destination's). An unlinked outbox discards (A4). If the final inbox
    /// is full, `waiter` (the sender) is remembered and woken when space
    /// frees (A5, A6).
    pub(crate) fn send(&self, msg: T, waiter: Option<&WakeCell>) -> Result<(), Full<T>> {
        let mut inner = self.locked();
        match inner.target() {
            None if self.dir() == Direction::Inbox => {
                let pushed = self.push_locked(&mut inner, msg, waiter);
                drop(inner);
                self.pushed(pushed)
            }
            None => {
                log::trace!(
                    "discarding message sent to unlinked outbox {:?}",
                    self.box_name()
                );
                Ok(())
            }
            Some(next) if next.flags.load(Ordering::Acquire) & HAS_TARGET == 0 => {
                if next.dir() == Direction::Inbox {
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
    fn push(&self, msg: T, waiter: Option<&WakeCell>) -> Result<(), Full<T>> {
        let mut inner = self.locked();
        if let Some(next) = inner.target() {
            // Linked onwards since the sender looked (A4): follow the link.
            let next = next.clone();
            drop(inner);
            return next.send(msg, waiter);
        }
        let pushed = self.push_locked(&mut inner, msg, waiter);
        drop(inner);
        self.pushed(pushed)
    }

    /// After a push, outside the lock: wakes the owner of a message queued,
    /// or drops one discarded.
    #[inline]
    fn pushed(&self, pushed: Result<Option<T>, Full<T>>) -> Result<(), Full<T>> {
        match pushed {
            Ok(None) => {
                self.owner().wake();
                Ok(())
            }
            Ok(Some(discarded)) => {
                drop(discarded);
                Ok(())
            }
            Err(full) => Err(full),
        }
    }

    /// The queue part of a push, under the lock; the caller wakes the owner
    /// (or drops the message given back: the owner has ended) after
    /// unlocking ([`pushed`](Self::pushed)).
    fn push_locked(
        &self,
        inner: &mut Inner<T>,
        msg: T,
        waiter: Option<&WakeCell>,
    ) -> Result<Option<T>, Full<T>> {
        if self.owner().state() == DONE {
            // Nobody will ever take it: a message to a component that has
            // ended is discarded, as one to an unlinked outbox is (A4).
            // Kept, it could keep its sender alive through a cycle (a
            // CSA's socketShutdown holds the CSA, whose feedback linkage
            // holds the ended server) and, with it, a socket.
            return Ok(Some(msg));
        }
        let limit = self.limit.load(Ordering::Relaxed) as usize;
        let made = || self.set_flags(HAS_QUEUE | HELD, 0);
        match inner.push(msg, limit, made) {
            Ok(()) => Ok(None),
            Err((msg, queue)) => {
                if let (Some(w), Some(queue)) = (waiter, queue) {
                    if !queue.waiting.iter().any(|x| std::ptr::eq(x.as_ptr(), w)) {
                        queue.waiting.push(CellRef::from(w));
                    }
                }
                Err(Full(msg))
            }
        }
    }

    /// Drops every message waiting, outside the lock, and wakes the
    /// producers waiting for room (their next send is discarded): what a
    /// component's inboxes do when it ends.
    fn discard_queue(&self) {
        let queue = {
            let mut inner = self.locked();
            let queue = inner.take_queue();
            self.set_flags(0, HAS_QUEUE);
            queue
        };
        if let Some(mut queue) = queue {
            let waiting = std::mem::take(&mut queue.waiting);
            drop(queue.drain());
            for w in waiting {
                w.wake();
            }
        }
    }

    /// Takes the oldest message (A2); wakes producers waiting for space.
    #[inline]
    pub(crate) fn pop(&self) -> Option<T> {
        if self.flags.load(Ordering::Acquire) & HAS_QUEUE == 0 {
            return None;
        }
        self.pop_locked()
    }

    fn pop_locked(&self) -> Option<T> {
        let mut inner = self.locked();
        let queue = inner.queue_mut()?;
        let msg = queue.pop();
        // Producers to wake, if any wait (most pops have none to wake).
        let waiting = (msg.is_some() && !queue.waiting.is_empty())
            .then(|| std::mem::take(&mut queue.waiting));
        if queue.front.is_none()
            && queue.waiting.is_empty()
            && self.flags.load(Ordering::Relaxed) & KEEP_QUEUE == 0
        {
            if let Some(queue) = inner.take_queue() {
                Queue::recycle(queue); // empty: an idle box holds nothing
            }
            self.set_flags(0, HAS_QUEUE);
        }
        drop(inner);
        if let Some(waiting) = waiting {
            wake_all(waiting);
        }
        msg
    }

    /// The number of messages waiting.
    #[inline]
    pub(crate) fn queued(&self) -> usize {
        if self.flags.load(Ordering::Acquire) & HAS_QUEUE == 0 {
            return 0; // as `pop`: an empty inbox is looked at without its lock
        }
        self.locked().queue().map_or(0, |q| q.len())
    }

    /// The size limit (A5), `None` when unbounded.
    pub(crate) fn limit(&self) -> Option<usize> {
        match self.limit.load(Ordering::Relaxed) {
            UNBOUNDED => None,
            n => Some(n as usize),
        }
    }

    /// A counted reference to this box.
    pub(crate) fn to_ref(&self) -> NodeRef<T> {
        // SAFETY: every box is in the set its owner's cell owns (`Node::new`
        // says so, and `OwnerRef`s are made only for sets being built).
        unsafe { NodeRef::new(self) }
    }

    /// The inbox sends from this box end in, if any.
    fn final_inbox(&self) -> Option<NodeRef<T>> {
        let mut node = self.to_ref();
        loop {
            let next = node.locked().target().cloned();
            match next {
                Some(next) => node = next,
                None => break,
            }
        }
        (node.dir() == Direction::Inbox).then_some(node)
    }
}

/// The type-erased face of a `Node<T>`, so components can keep boxes of
/// different message types in one table and link them by name.
///
/// Public only so that [`BoxSet`](crate::BoxSet) implementations (the
/// [`boxes!`](crate::boxes) macro) can hand it out; the module is private,
/// so nobody outside the crate can name or call it.
pub trait ErasedBox: Send + Sync + 'static {
    /// The box's name (from its owner's table).
    fn name(&self) -> &str;
    /// Name, direction, description and type.
    fn info(&self) -> BoxInfo;
    /// Inbox or outbox.
    fn direction(&self) -> Direction;
    /// The message type.
    fn message_type(&self) -> (TypeId, &'static str);
    /// For identity and downcasts.
    fn as_any(&self) -> &dyn Any;
    /// The wake cell of the component the box belongs to (which owns the
    /// box set the box is in).
    fn owner_cell(&self) -> &WakeCell;
    /// Where that cell is, as an address (see `Node::owner_addr`).
    fn owner_addr(&self) -> usize;
    /// A counted reference to this box.
    fn to_ref(&self) -> ErasedRef;
    /// Makes a box of the same message type.
    fn maker(&self) -> Maker;
    /// Messages waiting.
    fn len(&self) -> usize;
    /// No message waiting.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// A5's size limit.
    fn limit(&self) -> Option<usize>;
    /// Sets A5's size limit.
    fn set_limit(&self, limit: Option<usize>);
    /// True if sends from this box reach an inbox.
    fn is_linked(&self) -> bool;
    /// True if this box is linked onwards (to a box that may itself lead
    /// nowhere).
    fn has_target(&self) -> bool;
    /// The inbox sends from this box end in, if any.
    fn destination(&self) -> Option<ErasedRef>;
    /// The cell of the component owning the box this box's linkage leads
    /// to (its first hop), if it is linked onwards.
    fn next_cell(&self) -> Option<CellRef>;
    /// Makes this box's linkage to `dst` (A3, A4).
    fn link_to(&self, dst: ErasedRef) -> Result<(), LinkError>;
    /// Removes the linkage out of this box if it leads to `dst`; true if it
    /// did.
    fn unlink_from(&self, dst: &dyn ErasedBox) -> bool;
    /// Removes the linkage out of this box, whatever it leads to, and
    /// (unless its component `ended`, which emptied its inboxes for good)
    /// drops every message waiting: its component can no longer be reached
    /// (every handle on it is gone), and what it holds could keep other
    /// components alive through a cycle of linkages.
    fn release(&self, ended: bool);
    /// True if both are the same box.
    fn same(&self, other: &dyn ErasedBox) -> bool;
    /// Drops every message waiting (its owner has ended).
    fn discard_all(&self);
    /// What a snapshot needs of the box, under one lock.
    fn observe(&self) -> Observed;
}

/// A box as a snapshot sees it ([`ErasedBox::observe`]).
#[derive(Clone, Copy, Debug)]
pub struct Observed {
    /// Messages waiting.
    pub len: usize,
    /// A5's limit.
    pub limit: Option<usize>,
    /// The counters.
    pub counts: Counts,
    /// The next box along the linkage, if any.
    pub next: Option<NextBox>,
}

/// The box a linkage leads to, as a snapshot sees it.
#[derive(Clone, Copy, Debug)]
pub struct NextBox {
    /// Its owner's wake cell, as an address to find the owner by.
    pub cell: usize,
    /// Its index in its owner's box table.
    pub index: u16,
    /// Inbox or outbox.
    pub direction: Direction,
}

impl<T: Send + 'static> ErasedBox for Node<T> {
    fn name(&self) -> &str {
        self.box_name()
    }

    fn info(&self) -> BoxInfo {
        match self.owner().table().get(usize::from(self.index())) {
            Some(meta) => meta.info(),
            None => BoxInfo {
                name: "?".into(),
                direction: self.dir(),
                doc: String::new(),
                message_type: std::any::type_name::<T>(),
            },
        }
    }

    fn direction(&self) -> Direction {
        self.dir()
    }

    fn message_type(&self) -> (TypeId, &'static str) {
        (TypeId::of::<T>(), std::any::type_name::<T>())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn owner_cell(&self) -> &WakeCell {
        self.owner()
    }

    fn owner_addr(&self) -> usize {
        Node::owner_addr(self)
    }

    fn to_ref(&self) -> ErasedRef {
        // SAFETY: as in `Node::to_ref`.
        unsafe { ErasedRef::new(self) }
    }

    fn maker(&self) -> Maker {
        make_node::<T>
    }

    fn len(&self) -> usize {
        self.queued()
    }

    fn limit(&self) -> Option<usize> {
        Node::limit(self)
    }

    fn set_limit(&self, limit: Option<usize>) {
        if self.dir() != Direction::Inbox {
            return;
        }
        let limit = limit.map_or(UNBOUNDED, |n| n.min(UNBOUNDED as usize - 1) as u32);
        let mut inner = self.locked();
        self.limit.store(limit, Ordering::Relaxed);
        let waiting = inner
            .queue_mut()
            .map(|q| std::mem::take(&mut q.waiting))
            .unwrap_or_default();
        drop(inner);
        // A larger (or no) limit may have made room: let producers retry.
        for w in waiting {
            w.wake();
        }
    }

    fn destination(&self) -> Option<ErasedRef> {
        self.final_inbox().map(ErasedRef::from)
    }

    fn next_cell(&self) -> Option<CellRef> {
        if !self.has_target() {
            return None;
        }
        self.locked()
            .target()
            .map(|next| CellRef::from(next.owner()))
    }

    fn is_linked(&self) -> bool {
        let next = self.locked().target().cloned();
        next.and_then(|n| n.final_inbox()).is_some()
    }

    fn has_target(&self) -> bool {
        self.flags.load(Ordering::Acquire) & HAS_TARGET != 0
    }

    fn link_to(&self, dst: ErasedRef) -> Result<(), LinkError> {
        // Type mismatch is checked (with full names) by the caller; this is
        // a second line of defence. Names are for errors only: copied when
        // one is made, not per link.
        let dst = match dst.downcast::<T>() {
            Ok(dst) => dst,
            Err(dst) => {
                return Err(LinkError::TypeMismatch {
                    source: self.box_name().to_string(),
                    source_type: std::any::type_name::<T>(),
                    sink: dst.name().to_owned(),
                    sink_type: "another type",
                })
            }
        };
        let dst_direction = dst.dir();
        // Taken after `dst`, so released before it is dropped (on an error
        // below): were it the last reference to its component, that
        // component's end would take this lock again.
        let _topology = lock(&TOPOLOGY);
        if self.dir() == Direction::Inbox && dst_direction == Direction::Outbox {
            return Err(LinkError::InboxToOutbox {
                source: self.box_name().to_string(),
                sink: dst.box_name().to_string(),
            });
        }
        if let Some(existing) = self.locked().target() {
            return Err(LinkError::AlreadyLinked {
                source: self.box_name().to_string(),
                existing: existing.box_name().to_string(),
            });
        }
        // Refuse loops: following dst's chain must not come back here.
        // Targets are only ever added under `TOPOLOGY`, which is held, so
        // a box whose flags say it leads nowhere ends the chain, read
        // without its lock (the usual case: dst is an inbox of its own).
        if std::ptr::eq(&*dst, self) {
            return Err(LinkError::Cycle {
                source: self.box_name().to_string(),
                sink: dst.box_name().to_string(),
            });
        }
        let onwards = |node: &Node<T>| {
            (node.flags.load(Ordering::Acquire) & HAS_TARGET != 0)
                .then(|| node.locked().target().cloned())
                .flatten()
        };
        let mut cursor = onwards(&dst);
        while let Some(node) = cursor {
            if std::ptr::eq(&*node, self) {
                return Err(LinkError::Cycle {
                    source: self.box_name().to_string(),
                    sink: dst.box_name().to_string(),
                });
            }
            cursor = onwards(&node);
        }
        // A4: messages already waiting here move on. A push racing with
        // this takes the same lock, so it either queued before (and moves
        // now) or sees the target and follows it.
        let mut inner = self.locked();
        let queue = inner.set_target(Some(dst)).queue();
        self.set_flags(HAS_TARGET, HAS_QUEUE);
        drop(inner);
        // Usually none: a box is linked before it is used.
        let Some(mut queue) = queue else {
            return Ok(());
        };
        // Producers waiting for space here retry along the link.
        for w in std::mem::take(&mut queue.waiting) {
            w.wake();
        }
        let moved = queue.drain();
        // Only when something moves is the chain followed to its end.
        if let Some(dest) = (!moved.is_empty()).then(|| self.final_inbox()).flatten() {
            let mut dest_inner = dest.locked();
            dest.set_flags(HAS_QUEUE | HELD, 0);
            for msg in moved {
                // Unbounded here (A4: nothing waiting is lost), and the
                // final inbox leads nowhere, so this is never refused.
                let _ = dest_inner.push(msg, usize::MAX, || {});
            }
            drop(dest_inner);
            dest.owner().wake();
        }
        Ok(())
    }

    fn unlink_from(&self, dst: &dyn ErasedBox) -> bool {
        // The old target is dropped after both locks: it may be the last
        // reference to its component, whose end takes locks of its own.
        let old = {
            let _topology = lock(&TOPOLOGY);
            let mut inner = self.locked();
            if !inner.target().is_some_and(|t| t.same(dst)) {
                return false;
            }
            self.set_flags(0, HAS_TARGET);
            inner.set_target(None)
        };
        drop(old);
        true
    }

    fn release(&self, ended: bool) {
        // A box that leads nowhere (most) is passed over without its lock:
        // only its own component links it onwards, and nobody holds that
        // component now. Without the topology lock: removing a linkage
        // cannot make a loop, and this runs as a component is dropped,
        // perhaps inside a drop that another linkage change started.
        if self.flags.load(Ordering::Acquire) & HAS_TARGET != 0 {
            let old = {
                let mut inner = self.locked();
                self.set_flags(0, HAS_TARGET);
                inner.set_target(None)
            };
            drop(old);
        }
        // An ended component's inboxes were emptied as it ended, under
        // their locks, and every later push is discarded (`push_locked`).
        if !ended && self.dir() == Direction::Inbox {
            self.discard_queue();
        }
    }

    fn observe(&self) -> Observed {
        // Never held a message, leads nowhere: its counters are zero and
        // there is no lock to take (a third of a server's boxes, mostly
        // unused outboxes and control inboxes). A push racing with this
        // look is seen by the next snapshot, as it would be had it come
        // a moment later.
        if self.flags.load(Ordering::Acquire) & (HAS_TARGET | HELD) == 0 {
            return Observed {
                len: 0,
                limit: Node::limit(self),
                counts: Counts::default(),
                next: None,
            };
        }
        let inner = self.locked();
        Observed {
            len: inner.queue().map_or(0, |q| q.len()),
            limit: Node::limit(self),
            counts: inner.counts(),
            next: inner.target().map(|next| NextBox {
                cell: next.owner() as *const WakeCell as usize,
                index: next.index(),
                direction: next.dir(),
            }),
        }
    }

    fn same(&self, other: &dyn ErasedBox) -> bool {
        std::ptr::eq(
            self as *const Self as *const u8,
            other.as_any() as *const dyn Any as *const u8,
        )
    }

    fn discard_all(&self) {
        if self.dir() == Direction::Inbox {
            self.discard_queue();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cell to make boxes by hand with. Each test declares its boxes
    /// after the cell, so they (and every reference to them) are dropped
    /// before it, which is what `OwnerRef::new` asks.
    fn cell() -> (CellRef, OwnerRef) {
        type Set = crate::Standard<u8, u8>;
        let dynamic = crate::Declaration::default();
        let table = <Set as crate::BoxSet>::__table(&dynamic);
        let (core, _) =
            crate::unit::make::<Set, crate::unit::NoBody>(table, &dynamic, "test".into());
        let cell = CellRef::from(core.wake());
        // SAFETY: see above.
        let owner = unsafe { OwnerRef::new(NonNull::new(cell.as_ptr() as *mut WakeCell).unwrap()) };
        (cell, owner)
    }

    /// An `OwnerRef` and its copies never count their cell (each box of a
    /// set holds one), while a `CellRef` cloned through one counts as usual.
    #[test]
    fn an_owner_ref_and_its_copies_never_count_their_cell() {
        let (cell, owner) = cell();
        let before = cell.count();
        let copies: Vec<OwnerRef> = (0..3).map(|_| owner.clone()).collect();
        assert_eq!(cell.count(), before);
        assert!(copies.iter().all(|c| CellRef::ptr_eq(c, &cell)));
        drop(copies);
        assert_eq!(cell.count(), before);
        let counted = CellRef::clone(&*owner.clone());
        assert_eq!(cell.count(), before + 1);
        drop(counted);
        assert_eq!(cell.count(), before);
    }

    /// `Locked` is the box's only way to its target and queue: under
    /// contention (four producers pushing into one inbox while a consumer
    /// pops) nothing is lost, doubled or reordered within a producer.
    #[test]
    fn locked_many_threads_push_into_one_inbox_and_each_message_arrives_once_in_order() {
        const PRODUCERS: u64 = 4;
        const EACH: u64 = 20_000;
        let (_cell, owner) = cell();
        let inbox = Detached::<u64>::new(Direction::Inbox, 0, &owner);
        let mut next = [0u64; PRODUCERS as usize];
        std::thread::scope(|s| {
            for p in 0..PRODUCERS {
                let inbox = &inbox;
                s.spawn(move || {
                    for i in 0..EACH {
                        assert!(inbox.push(p * EACH + i, None).is_ok());
                    }
                });
            }
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            let mut got = 0;
            while got < PRODUCERS * EACH {
                assert!(std::time::Instant::now() < deadline, "only {got} arrived");
                match inbox.pop() {
                    Some(m) => {
                        let (p, i) = ((m / EACH) as usize, m % EACH);
                        assert_eq!(i, next[p], "producer {p}'s messages in order, once");
                        next[p] += 1;
                        got += 1;
                    }
                    None => std::thread::yield_now(),
                }
            }
        });
        assert_eq!(inbox.pop(), None);
        assert!(next.iter().all(|&n| n == EACH));
    }

    #[test]
    fn a_box_is_24_bytes_whatever_it_carries() {
        // Fifteen boxes per connection: this is what idle memory is made
        // of. A set's boxes are found by their places (`BOX_SIZE`), so
        // every box must be the same size.
        assert_eq!(std::mem::size_of::<Node<Vec<u8>>>(), 24);
        assert_eq!(std::mem::size_of::<Node<crate::Control>>(), BOX_SIZE);
        assert_eq!(std::mem::size_of::<Node<[u8; 1024]>>(), BOX_SIZE);
        assert_eq!(std::mem::size_of::<crate::Inbox<()>>(), BOX_SIZE);
    }

    fn has_queue<T: 'static>(node: &Node<T>) -> bool {
        node.locked().queue().is_some()
    }

    /// The blocks this thread keeps for queues of `Msg`'s size.
    fn spares<Msg: 'static>() -> usize {
        let class = Queue::<Msg>::CLASS.expect("a kept layout");
        crate::spare::kept(class)
    }

    #[test]
    fn an_emptied_queue_is_kept_for_the_next_box_of_its_size_on_this_thread() {
        // Each test has a thread, so its spares are its own.
        #[derive(Debug, PartialEq)]
        struct Msg(u32);
        let (_cell, owner) = cell();
        let (a, b) = (
            Detached::<Msg>::new(Direction::Inbox, 0, &owner),
            Detached::<Msg>::new(Direction::Inbox, 1, &owner),
        );
        let queue_of = |n: &Node<Msg>| n.locked().queue().map(|q| q as *const Queue<Msg> as usize);
        assert!(a.send(Msg(1), None).is_ok());
        let first = queue_of(&a).expect("a queue while a message waits");
        assert_eq!(a.pop(), Some(Msg(1)));
        assert_eq!(queue_of(&a), None, "an idle box holds no queue");
        assert_eq!(spares::<Msg>(), 1);
        // The next empty box of the type to get a message takes it.
        assert!(b.send(Msg(2), None).is_ok());
        assert_eq!(spares::<Msg>(), 0);
        assert_eq!(queue_of(&b), Some(first));
        assert_eq!(b.pop(), Some(Msg(2)));
        assert_eq!(spares::<Msg>(), 1);
        // One that grew in a burst is kept too, its ring buffer freed.
        for i in 0..64 {
            assert!(a.send(Msg(i), None).is_ok());
        }
        assert_eq!(spares::<Msg>(), 0);
        assert_eq!(std::iter::from_fn(|| a.pop()).count(), 64);
        assert_eq!(spares::<Msg>(), 1);
        assert!(a.send(Msg(3), None).is_ok());
        assert_eq!(a.locked().queue().map(|q| q.rest.capacity()), Some(0));
        assert_eq!(a.pop(), Some(Msg(3)));
        // And the spares of a size are bounded.
        let many: Vec<_> = (0..crate::spare::PER_CLASS as u16 + 10)
            .map(|i| Detached::<Msg>::new(Direction::Inbox, i, &owner))
            .collect();
        for n in &many {
            assert!(n.send(Msg(0), None).is_ok());
        }
        for n in &many {
            assert_eq!(n.pop(), Some(Msg(0)));
        }
        assert_eq!(spares::<Msg>(), crate::spare::PER_CLASS);
    }

    #[test]
    fn zero_sized_messages_are_queued_and_their_queues_kept() {
        // A ring buffer of `()` reports a capacity of `usize::MAX` and owns
        // no memory: its queue is kept like any other (a debug build once
        // asserted here that a kept queue's ring buffer had no capacity).
        let (_cell, owner) = cell();
        let node = Detached::<()>::new(Direction::Inbox, 0, &owner);
        for burst in [1, 5, 1] {
            for _ in 0..burst {
                assert!(node.send((), None).is_ok());
            }
            assert_eq!(std::iter::from_fn(|| node.pop()).count(), burst);
            assert_eq!(spares::<()>(), 1);
        }
    }

    #[test]
    fn a_kept_block_serves_another_message_type_of_the_same_size() {
        use std::sync::Arc;
        // Two types whose queues have the same layout; the messages count
        // their drops, so a message dropped twice, or a queue built over a
        // live one, shows.
        #[allow(dead_code)] // held for their drops
        struct A(Arc<()>);
        #[allow(dead_code)]
        struct B(usize, Arc<()>);
        assert_eq!(Queue::<A>::CLASS, Queue::<Arc<()>>::CLASS);
        assert_ne!(Queue::<A>::CLASS, Queue::<B>::CLASS);
        let live = Arc::new(());
        let (_cell, owner) = cell();
        let a = Detached::<A>::new(Direction::Inbox, 0, &owner);
        let c = Detached::<Arc<()>>::new(Direction::Inbox, 1, &owner);
        for round in 0..4 {
            for _ in 0..=round {
                assert!(a.send(A(live.clone()), None).is_ok());
            }
            while a.pop().is_some() {}
            assert_eq!(spares::<A>(), 1);
            for _ in 0..=round {
                assert!(c.send(live.clone(), None).is_ok());
            }
            assert_eq!(spares::<Arc<()>>(), 0, "the block of A's queue serves");
            assert_eq!(Arc::strong_count(&live), 2 + round);
            while c.pop().is_some() {}
            assert_eq!(Arc::strong_count(&live), 1);
        }
        // A message type too large for the kept sizes is simply allocated.
        struct Big([u64; 300]);
        assert_eq!(Queue::<Big>::CLASS, None);
        let big = Detached::<Big>::new(Direction::Inbox, 2, &owner);
        assert!(big.send(Big([7; 300]), None).is_ok());
        assert_eq!(big.pop().map(|b| b.0[299]), Some(7));
        // Messages left in a box when it goes are dropped once.
        assert!(a.send(A(live.clone()), None).is_ok());
        drop(a);
        assert_eq!(Arc::strong_count(&live), 1);
    }

    #[test]
    fn an_emptied_queue_is_freed_unless_kept() {
        let (_cell, owner) = cell();
        for keep in [false, true] {
            let node = Detached::<u32>::new(Direction::Inbox, 0, &owner);
            if keep {
                node.keep_queue();
            }
            for round in 0..3 {
                for i in 0..10 {
                    assert!(matches!(
                        node.push_locked(&mut node.locked(), i, None),
                        Ok(None)
                    ));
                }
                assert!(has_queue(&node));
                let got: Vec<u32> = std::iter::from_fn(|| node.pop()).collect();
                assert_eq!(got, (0..10).collect::<Vec<_>>(), "round {round}");
                assert_eq!(node.queued(), 0);
                assert_eq!(node.pop(), None);
                // An idle box holds nothing, unless told to keep its queue
                // (then with its capacity: no regrowth next burst).
                assert_eq!(has_queue(&node), keep);
                if keep {
                    assert!(node.locked().queue().unwrap().rest.capacity() >= 9);
                }
            }
        }
    }

    /// A box that never held a message is observed without its lock, as
    /// zeros; once it has held one, its counters are read under the lock
    /// even after its queue is freed, and a linked box shows its linkage.
    #[test]
    fn observe_skips_the_lock_only_for_boxes_that_never_held_a_message() {
        let (cell, owner) = cell();
        let node = Detached::<u32>::new(Direction::Inbox, 0, &owner);
        node.set_limit(Some(5));
        let seen = node.observe();
        assert_eq!(
            (seen.len, seen.limit, seen.counts),
            (0, Some(5), Counts::default())
        );
        assert!(seen.next.is_none());
        for i in 0..3 {
            assert!(matches!(
                node.push_locked(&mut node.locked(), i, None),
                Ok(None)
            ));
        }
        assert_eq!(node.observe().len, 3);
        while node.pop().is_some() {}
        assert!(!has_queue(&node), "freed when emptied");
        let seen = node.observe();
        assert_eq!(seen.len, 0);
        let want = Counts {
            high_water: 3,
            delivered: 3,
        };
        assert_eq!(seen.counts, want, "still counted after the queue is gone");
        // An outbox that never carried anything, linked: its linkage shows.
        let out = Detached::<u32>::new(Direction::Outbox, 1, &owner);
        out.link_to(node.to_ref().into()).unwrap();
        let next = out.observe().next.expect("its linkage");
        assert_eq!(next.cell, cell.as_ptr() as usize);
        assert_eq!((next.index, next.direction), (0, Direction::Inbox));
    }
}
