//! A component in one allocation: its wake cell, its core, its box set and
//! its body.
//!
//! A component is reached two ways, and each keeps a different part of it:
//!
//! - **By handle** ([`Handle`](crate::Handle), a [`CoreRef`]): its core
//!   (name, parent, children, linkages) and its body until it runs. When
//!   the last handle goes, the core goes: its boxes let go of where they
//!   lead and of what waits in them, so components linked both ways are
//!   freed.
//! - **By its boxes** ([`CellRef`]: a linkage's target, a postbox, a
//!   producer waiting for space, a timer): its wake cell and its boxes,
//!   which stay while anyone can still send to them (a send then finds the
//!   component gone and is discarded).
//!
//! They used to be four allocations (an `Arc` of the core holding an
//! `Arc` of the cell, which held a `Box` of the set, and a `Box` of the
//! body). Here they are one [`Unit`] with two counts, as an `Arc` has
//! strong and weak ones: `handles` counts the handles, and `refs` counts
//! every [`CellRef`] plus one for all the handles together. The core is
//! dropped when `handles` reaches zero, the whole unit freed when `refs`
//! does. A component's wake state, core, boxes and body sit side by side
//! in memory: a core finds its cell at its own address (it is the cell's
//! first field), a box finds it by its place in the set after the cell,
//! and the cell knows its unit's type ([`UnitVt`]), which says where the
//! body is.
//!
//! The allocation is a block of the thread's spares ([`spare`]) when one
//! of its size was kept there, and goes back to them when the unit is
//! freed: a server makes and frees two units per connection.
//!
//! The body belongs to whoever runs it: from activation, the runner's
//! [`Claimed`], which steps it and drops it when it ends (its socket, say,
//! closes then, not when the last reference to its boxes goes); if it is
//! never activated, it goes with the last handle.
//!
//! ```
//! use axon::{Component, Cx, Handle, Standard, Step};
//!
//! struct Quiet;
//! impl Component for Quiet {
//!     type Boxes = Standard<u8, u8>;
//!     fn main(&mut self, _: &mut Cx<Self::Boxes>) -> Step { Step::Pause }
//! }
//!
//! let quiet = Handle::new(Quiet);
//! let inbox = quiet.postbox::<u8>("inbox").unwrap(); // counts the boxes
//! drop(quiet); // the core goes; the boxes stay for the postbox
//! assert!(inbox.send(1).is_ok()); // delivered to nobody, and dropped
//! ```

#![allow(unsafe_code)] // the unit's counts and layout: see their SAFETY notes

use std::borrow::Cow;
use std::cell::UnsafeCell;
use std::fmt;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::ops::Deref;
use std::ptr::{self, NonNull};
use std::sync::atomic::{fence, AtomicU32, Ordering};

use crate::boxset::{BoxSet, BoxesRef, Declaration, ErasedSet};
use crate::component::{Body, Env, Step};
use crate::declare::BoxTable;
use crate::handle::{Core, Handle};
use crate::node::OwnerRef;
use crate::shared::Shared;
use crate::spare;
use crate::wake::{WakeCell, DONE};
use std::cell::Cell;
use std::sync::Arc;

/// One component's allocation: its wake cell (with its core inside), then
/// its box set. `repr(C)`, so the cell is at its start: a pointer to the
/// cell is a pointer to the unit.
#[repr(C)]
pub(crate) struct Unit<S> {
    pub(crate) cell: WakeCell,
    pub(crate) set: S,
}

/// More references than this is a leak in a loop: abort, as `Arc` does,
/// rather than let a count wrap. (32-bit counts, 8 bytes in every
/// component: two billion references to one component, 16 GiB of them,
/// is a leak.)
const MAX_REFS: u32 = i32::MAX as u32;

#[cfg(test)]
thread_local! {
    /// The addresses of the units freed on this thread, for tests that
    /// check what a drop frees ([`freed`]).
    static FREED: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// True if the unit at `addr` (a handle's `as_ptr`) has been freed on this
/// thread (tests: nothing allocated after that drop may reuse the address).
#[cfg(test)]
pub(crate) fn freed(addr: usize) -> bool {
    FREED.with(|f| f.borrow().contains(&addr))
}

/// The two counts of a unit (see the [module docs](self)).
pub(crate) struct Counts {
    /// Every [`CellRef`], plus one for all the handles together.
    refs: AtomicU32,
    /// Every [`CoreRef`].
    handles: AtomicU32,
}

impl Counts {
    /// One handle, and the one reference all handles share.
    pub(crate) fn new() -> Counts {
        Counts {
            refs: AtomicU32::new(1),
            handles: AtomicU32::new(1),
        }
    }
}

/// A component's whole allocation: its unit, then its body (`D`: an
/// endpoint's is [`NoBody`]). `repr(C)`, so the cell is at its start. The
/// body is written once the component's [`created`](crate::Component::created)
/// has run ([`put_body`]), and dropped by its runner when it ends, or with
/// its core if it never ran ([`WakeCell::drop_body`]): not with the unit,
/// which may outlive it for the boxes' references.
#[repr(C)]
struct Whole<S, D> {
    unit: Unit<S>,
    body: UnsafeCell<MaybeUninit<D>>,
}

/// What a cell knows of the unit it heads, typed (one per box set and
/// body type, in static memory): a cell keeps a pointer to it where it
/// would keep two fat pointers, to its set and to its body.
pub(crate) struct UnitVt {
    /// The unit's box set.
    pub(crate) set: unsafe fn(*const WakeCell) -> *const dyn ErasedSet,
    /// The unit's body.
    pub(crate) body: unsafe fn(*const WakeCell) -> *mut dyn Body,
    /// Steps the unit's body: one call, where reaching the body and then
    /// calling its `step` would be two.
    step: unsafe fn(*const WakeCell, Env<'_>) -> Step,
    /// Frees the unit (its cell's fields and its boxes; not its body).
    pub(crate) free: unsafe fn(*mut WakeCell),
}

impl<S: BoxSet, D: Body + 'static> Whole<S, D> {
    const VT: UnitVt = UnitVt {
        set: Self::set,
        body: Self::body,
        step: Self::step,
        free: Self::free,
    };

    /// The whole allocation `cell` heads.
    ///
    /// # Safety
    ///
    /// `cell` must head a `Whole<S, D>` (one `make::<S, D>` made).
    unsafe fn of(cell: *const WakeCell) -> *mut Self {
        // The cell is the first field (`repr(C)`, twice): the same
        // address; `make` exposed the allocation, so the address becomes a
        // pointer to all of it.
        cell as usize as *mut Self
    }

    unsafe fn set(cell: *const WakeCell) -> *const dyn ErasedSet {
        // SAFETY: (all three) `cell` is the head of a live `Whole<S, D>`,
        // which is what its `vt` says (`make` wrote both).
        unsafe { ptr::addr_of!((*Self::of(cell)).unit.set) as *const dyn ErasedSet }
    }

    unsafe fn body(cell: *const WakeCell) -> *mut dyn Body {
        // SAFETY: as for `set`.
        unsafe { (*Self::of(cell)).body.get().cast::<D>() as *mut dyn Body }
    }

    unsafe fn step(cell: *const WakeCell, env: Env<'_>) -> Step {
        // SAFETY: as for `set`; the caller (`Claimed::step`) has the body
        // to itself.
        unsafe { (*(*Self::of(cell)).body.get().cast::<D>()).step(env) }
    }

    unsafe fn free(cell: *mut WakeCell) {
        // SAFETY: `cell` heads a `Whole<S, D>` (its `vt` says so).
        let whole = unsafe { Self::of(cell) };
        match Self::CLASS {
            // SAFETY: as for `set`; `make` allocated it as a `Box` of a
            // `Whole<S, D>` (uninitialised then) or took a block of its
            // layout from the spares, and the body, in its `MaybeUninit`,
            // is not dropped here. Once its fields are dropped the block
            // holds no value, and nothing refers to it (the last count
            // went): it is kept, or freed with its layout.
            Some(class) => unsafe {
                ptr::drop_in_place(whole);
                spare::keep(NonNull::new_unchecked(whole).cast(), class)
            },
            // SAFETY: as above, allocated as a `Box`.
            None => drop(unsafe { Box::from_raw(whole) }),
        }
    }

    /// The size class the blocks of this unit type are kept in between
    /// components ([`spare`]): a connection's CSA and handler are made and
    /// freed per connection, and a block from there costs a fraction of
    /// an allocation and a free.
    const CLASS: Option<usize> = spare::class_of(std::alloc::Layout::new::<Self>());

    /// Memory for a unit of this type: a kept block, or a new one.
    fn allocate() -> *mut Self {
        if let Some(block) = Self::CLASS.and_then(spare::take) {
            #[cfg(test)]
            let _ = FREED.try_with(|f| f.borrow_mut().retain(|&a| a != block.as_ptr() as usize));
            return block.as_ptr().cast();
        }
        Box::into_raw(Box::new(MaybeUninit::<Self>::uninit())).cast()
    }
}

/// An endpoint's body: it has none to run ([`Handle::without_body`](crate::Handle)).
pub(crate) struct NoBody;

impl Body for NoBody {
    fn step(&mut self, _: Env<'_>) -> Step {
        Step::Done
    }
    fn kind(&self) -> &'static str {
        "Endpoint"
    }
    fn counters(&self, _: &mut crate::component::Counters<'_>) {}
}

/// Makes a component's unit for the box set `B` (its boxes built with the
/// unit as their owner) with its core, and room after them for a body `D`
/// ([`put_body`]); returns its first handle and its boxes, typed.
pub(crate) fn make<B: BoxSet, D: Body + 'static>(
    table: BoxTable,
    dynamic: &Declaration,
    name: Cow<'static, str>,
) -> (CoreRef, BoxesRef<B>) {
    let raw = Whole::<B, D>::allocate();
    // SAFETY: `raw` is memory for a `Whole<B, D>` that nothing else refers
    // to (a fresh allocation, or a kept block of its layout), written
    // field by field before anything reads it: the cell first (it knows
    // the unit's type, to reach the set and the body and to free it), then
    // the boxes (each told the cell as its owner, which it only stores),
    // then the core; the body later (`put_body`). If building the boxes
    // panics, the unit is leaked, never read or freed.
    unsafe {
        let cell = ptr::addr_of_mut!((*raw).unit.cell);
        cell.write(WakeCell::new(table, &Whole::<B, D>::VT));
        let cell = NonNull::new_unchecked(cell);
        let owner = OwnerRef::new(cell);
        ptr::addr_of_mut!((*raw).unit.set).write(B::__build(dynamic, &owner));
        // Each box finds its owner from its own address (`Node::owner`):
        // the unit's allocation is exposed, so that an address inside it
        // may be turned back into a pointer; and the first unit of each
        // set type checks that every box finds this cell.
        let unit = raw as usize;
        let head = &*cell.as_ptr();
        if !head.table().layout_checked() {
            let mut found = true;
            head.set().each(&mut |b| found &= b.owner_addr() == unit);
            assert!(
                found,
                "box set {}: a box does not find its owner: declare box sets with `boxes!`",
                std::any::type_name::<B>()
            );
            head.table().set_layout_checked();
        }
        head.init_core(Core::new(name));
        let core = CoreRef(cell);
        let boxes = BoxesRef::of(core.wake()).expect("the boxes just made are B's");
        (core, boxes)
    }
}

/// Writes the body of the component `cell` heads: it may now be activated.
///
/// # Safety
///
/// `cell` must head a unit that `make::<B, D>` made, whose body has not
/// been written yet, and no runner may have it (it has not been
/// activated: its handle was only just made).
pub(crate) unsafe fn put_body<B: BoxSet, D: Body + 'static>(cell: &WakeCell, body: D) {
    // SAFETY: the caller says the unit is a `Whole<B, D>` with no body yet
    // and that nobody else reaches its body.
    unsafe { (*(*Whole::<B, D>::of(cell)).body.get()).write(body) };
    cell.set_has_body();
}

/// The box set of the unit `cell` heads, typed: for a body, which lives as
/// long as its unit and so keeps no reference to its boxes.
///
/// # Safety
///
/// `cell` must head a `Unit<B>` (one [`make`] made for `B`).
#[inline]
pub(crate) unsafe fn set_of<B: BoxSet>(cell: &WakeCell) -> &B {
    let unit = cell as *const WakeCell as usize as *const Unit<B>;
    // SAFETY: the caller says the unit is a `Unit<B>`, whose first field
    // the cell is (`repr(C)`), and whose allocation `make` exposed: the
    // address becomes a pointer to it, and its set lives as the cell does.
    unsafe { &(*unit).set }
}

/// A counted reference to a component's wake cell, and so to its boxes:
/// what a linkage, a postbox, a waiting producer or a timer holds (an
/// `Arc<WakeCell>`, as it were). The cell and the boxes live while any is
/// held; the core does not (see the `unit` module docs).
pub struct CellRef(NonNull<WakeCell>);

// SAFETY: a `CellRef` is a shared reference to a `WakeCell` kept alive by
// a count, as an `Arc<WakeCell>` would be, and `WakeCell` is `Send + Sync`.
unsafe impl Send for CellRef {}
// SAFETY: as for `Send`.
unsafe impl Sync for CellRef {}

impl CellRef {
    /// The cell's address (an identity, and for prefetching).
    pub(crate) fn as_ptr(&self) -> *const WakeCell {
        self.0.as_ptr()
    }

    /// True if both are the same cell.
    #[cfg(test)]
    pub(crate) fn ptr_eq(a: &CellRef, b: &CellRef) -> bool {
        a.0 == b.0
    }

    /// A counted reference to `cell`, taken without a `CellRef` (an
    /// [`OwnerRef`] is an uncounted one).
    ///
    /// # Safety
    ///
    /// `cell` must be live: a count on it is held while this runs.
    pub(crate) unsafe fn increment(cell: *const WakeCell) {
        // SAFETY: the caller's count keeps the cell live. Relaxed, as
        // `Arc::clone`: a new reference is made from one already held.
        let old = unsafe { (*cell).counts.refs.fetch_add(1, Ordering::Relaxed) };
        if old > MAX_REFS {
            std::process::abort();
        }
    }

    /// Gives back a count taken by [`increment`](Self::increment) (or a
    /// `CellRef`'s); the last one frees the unit.
    ///
    /// # Safety
    ///
    /// The caller gives up one count it holds, and does not touch the cell
    /// afterwards.
    pub(crate) unsafe fn decrement(cell: *const WakeCell) {
        // SAFETY: the caller's count keeps the cell live until this drop
        // of it; Release, then Acquire before freeing, as `Arc`'s drop:
        // every use of the unit happens before it is freed.
        unsafe {
            if (*cell).counts.refs.fetch_sub(1, Ordering::Release) != 1 {
                return;
            }
            fence(Ordering::Acquire);
            #[cfg(test)]
            let _ = FREED.try_with(|f| f.borrow_mut().push(cell as usize));
            // The core and the body are gone already (the handles' own
            // count was the last but one); this drops the cell's fields
            // and the boxes, and frees the memory `make` took (or keeps it
            // for the next unit of its size on this thread).
            WakeCell::free_unit(cell);
        }
    }

    /// The number of counted references (tests).
    #[cfg(test)]
    pub(crate) fn count(&self) -> usize {
        self.counts.refs.load(Ordering::Acquire) as usize
    }
}

impl From<&WakeCell> for CellRef {
    /// A counted reference to a cell (every cell is the head of a unit,
    /// and one reached by reference is live).
    fn from(cell: &WakeCell) -> CellRef {
        // SAFETY: the reference says the cell is live now.
        unsafe { CellRef::increment(cell) };
        CellRef(NonNull::from(cell))
    }
}

impl Clone for CellRef {
    fn clone(&self) -> Self {
        // SAFETY: `self` holds a count, so the cell is live.
        unsafe { CellRef::increment(self.as_ptr()) };
        CellRef(self.0)
    }
}

impl Drop for CellRef {
    fn drop(&mut self) {
        // SAFETY: gives back the count this reference held.
        unsafe { CellRef::decrement(self.as_ptr()) }
    }
}

impl Deref for CellRef {
    type Target = WakeCell;

    fn deref(&self) -> &WakeCell {
        // SAFETY: the count held keeps the cell live.
        unsafe { self.0.as_ref() }
    }
}

impl fmt::Debug for CellRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CellRef({:p}, {:?})", self.0, &**self)
    }
}

impl CellRef {
    /// An uncounted copy, for an [`OwnerRef`].
    ///
    /// # Safety
    ///
    /// The copy must never be dropped (it counts nothing), and the cell
    /// must outlive it.
    pub(crate) unsafe fn uncounted(cell: NonNull<WakeCell>) -> ManuallyDrop<CellRef> {
        ManuallyDrop::new(CellRef(cell))
    }
}

/// A component its runner claimed ([`Handle::claim_activation`]): the
/// one value through which its body is stepped, and which drops the body
/// when it goes (or [`end`](Self::end)s). A handle, which keeps the body
/// from the last handle's drop; not `Clone`, so that the body it gives
/// out is nobody else's, and not `Sync`, so that the body it lends to be
/// read (a snapshot's) is read on one thread (a body is `Send`, not
/// necessarily `Sync`).
pub(crate) struct Claimed(Handle, std::marker::PhantomData<Cell<()>>);

impl Claimed {
    /// Claims `handle`'s body; `None` if it has none (an endpoint, or one
    /// that ran already) or another runner claimed it.
    pub(crate) fn new(handle: Handle) -> Option<Claimed> {
        let wake = handle.0.wake();
        (wake.has_body() && wake.claim_activation())
            .then_some(Claimed(handle, std::marker::PhantomData))
    }

    /// Runs one step of the body.
    #[inline]
    pub(crate) fn step(&mut self, shared: &Arc<Shared>, idle_service: &Cell<bool>) -> Step {
        let wake = self.0 .0.wake();
        let env = Env {
            me: &self.0,
            shared,
            idle_service,
        };
        // SAFETY: the body is written (`new` saw `has_body`) and is this
        // claim's alone: the claim is made once (the flag `new` set), is
        // not `Clone`, and the body is dropped only by its own drop (or by
        // the last handle, and this holds one); `&mut self` keeps the step
        // the only use of it.
        unsafe { (wake.vt().step)(wake, env) }
    }

    /// The body, to read (a snapshot).
    pub(crate) fn body_ref(&self) -> &dyn Body {
        let wake = self.0 .0.wake();
        // SAFETY: as for `step`; `&self` keeps it from being stepped
        // meanwhile, and on this thread (`Claimed` is not `Sync`).
        unsafe { &*(wake.vt().body)(wake) }
    }

    /// Drops the body and gives the handle back (for its runner to
    /// [`finish`](Handle::finish)).
    pub(crate) fn end(self) -> Handle {
        let me = ManuallyDrop::new(self);
        me.0 .0.wake().drop_body();
        // SAFETY: `me` is never used or dropped again: the handle is moved
        // out of it once.
        unsafe { ptr::read(&me.0) }
    }
}

impl Deref for Claimed {
    type Target = Handle;

    fn deref(&self) -> &Handle {
        &self.0
    }
}

impl Drop for Claimed {
    fn drop(&mut self) {
        self.0 .0.wake().drop_body();
    }
}

/// What the `unsafe impl`s of `Send` and `Sync` here and on the cell rely
/// on, checked by the compiler: a core and a box set may be shared and
/// sent between threads (an `Arc` of each would need as much).
const _: () = {
    fn shared<T: Send + Sync + ?Sized>() {}
    let _ = shared::<Core>;
    let _ = shared::<dyn ErasedSet>;
};

/// A handle's reference to its component: counts the handles, and
/// dereferences to the core (see the [module docs](self)).
pub(crate) struct CoreRef(NonNull<WakeCell>);

// SAFETY: a `CoreRef` is a shared reference to a unit kept alive by its
// counts, as an `Arc<Core>` would be: the core (locks and immutable
// fields) and the cell are `Sync`, and their contents `Send`.
unsafe impl Send for CoreRef {}
// SAFETY: as for `Send`.
unsafe impl Sync for CoreRef {}

impl CoreRef {
    fn cell(&self) -> &WakeCell {
        // SAFETY: a handle's count keeps the unit (and its core) live.
        unsafe { self.0.as_ref() }
    }

    /// True if both are the same component.
    pub(crate) fn ptr_eq(a: &CoreRef, b: &CoreRef) -> bool {
        a.0 == b.0
    }

    /// The component's address (for prefetching).
    pub(crate) fn as_ptr(&self) -> *const WakeCell {
        self.0.as_ptr()
    }

    /// A reference that keeps the unit but not the core: it gives a
    /// handle back while one lives ([`WeakCore::upgrade`]).
    pub(crate) fn downgrade(&self) -> WeakCore {
        WeakCore(CellRef::from(self.wake()))
    }
}

impl Clone for CoreRef {
    fn clone(&self) -> Self {
        let old = self.cell().counts.handles.fetch_add(1, Ordering::Relaxed);
        if old > MAX_REFS {
            std::process::abort();
        }
        CoreRef(self.0)
    }
}

impl Drop for CoreRef {
    fn drop(&mut self) {
        let cell = self.cell();
        if cell.counts.handles.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        fence(Ordering::Acquire);
        // Nobody can reach the component by handle any more: its boxes
        // let go of where they lead and of what waits in them. They stay
        // (a linkage or postbox into them may still send, and is
        // discarded, or queued for nobody, as before) until the last such
        // reference goes; but they no longer keep anyone else alive, so
        // two components linked both ways, each owning the other's box
        // through its own, are freed.
        let ended = cell.state() == DONE;
        cell.set().release(ended);
        // A body never run (a runner holds a handle while it has one).
        cell.drop_body();
        // SAFETY: this was the last handle, and only handles reach the
        // core (a `WeakCore` makes one only while another lives), so
        // nothing can see it now; it is dropped once, here.
        unsafe { cell.drop_core() };
        // SAFETY: the handles' shared count, given back once, by the last.
        unsafe { CellRef::decrement(self.0.as_ptr()) }
    }
}

impl Deref for CoreRef {
    type Target = Core;

    fn deref(&self) -> &Core {
        // SAFETY: the core lives while any handle does.
        unsafe { self.cell().core() }
    }
}

/// A reference to a component that does not keep it (its parent's, A7):
/// an `std::sync::Weak` of its core, as it were.
pub(crate) struct WeakCore(CellRef);

impl WeakCore {
    /// The component's address (an identity).
    pub(crate) fn as_ptr(&self) -> *const WakeCell {
        self.0.as_ptr()
    }

    /// True while a handle to the component lives.
    pub(crate) fn is_alive(&self) -> bool {
        self.0.counts.handles.load(Ordering::Acquire) != 0
    }

    /// The reference `cell` (a counted one, taken here) is to its
    /// component.
    pub(crate) fn of(cell: CellRef) -> WeakCore {
        WeakCore(cell)
    }

    /// A handle, if any other still lives.
    pub(crate) fn upgrade(&self) -> Option<CoreRef> {
        let handles = &self.0.counts.handles;
        let mut n = handles.load(Ordering::Relaxed);
        loop {
            if n == 0 {
                return None;
            }
            if n > MAX_REFS {
                std::process::abort();
            }
            // Acquire on success, as `Weak::upgrade`: the core it reaches
            // was made before the handle it was counted from.
            match handles.compare_exchange_weak(n, n + 1, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return Some(CoreRef(self.0 .0)),
                Err(now) => n = now,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Component, Cx, Handle, Standard, Step};
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    /// Says when its body is dropped; ends on its first step if `ends`,
    /// pauses otherwise.
    struct Witness {
        dropped: Arc<AtomicBool>,
        ends: bool,
    }

    impl Drop for Witness {
        fn drop(&mut self) {
            self.dropped.store(true, Ordering::SeqCst);
        }
    }

    impl Component for Witness {
        type Boxes = Standard<u8, u8>;
        fn main(&mut self, _: &mut Cx<Self::Boxes>) -> Step {
            if self.ends {
                Step::Done
            } else {
                Step::Pause
            }
        }
    }

    fn witness_that(ends: bool) -> (Handle, Arc<AtomicBool>) {
        let dropped = Arc::new(AtomicBool::new(false));
        let body = Witness {
            dropped: dropped.clone(),
            ends,
        };
        (Handle::new(body), dropped)
    }

    fn witness() -> (Handle, Arc<AtomicBool>) {
        witness_that(false)
    }

    /// The core (here, the body it holds until activation) goes with the
    /// last handle; the unit stays for the boxes' references, and goes
    /// with the last of them.
    #[test]
    fn the_core_goes_with_the_last_handle_and_the_unit_with_the_last_reference() {
        let (h, body_dropped) = witness();
        let unit = h.0.as_ptr() as usize;
        let inbox = h.postbox::<u8>("inbox").unwrap();
        let again = h.clone();
        drop(h);
        assert!(!body_dropped.load(Ordering::SeqCst), "a handle is left");
        drop(again);
        assert!(body_dropped.load(Ordering::SeqCst));
        assert!(!freed(unit), "the postbox still counts the boxes");
        assert!(
            inbox.send(1).is_ok(),
            "a send to a component gone is dropped"
        );
        drop(inbox);
        assert!(freed(unit));
    }

    /// The body lives in the unit but goes when it ends, while handles
    /// and references still keep the unit; a second activation finds no
    /// body to run.
    #[test]
    fn a_body_in_its_unit_is_dropped_when_it_ends_not_with_the_unit() {
        let (h, dropped) = witness_that(true);
        let unit = h.0.as_ptr() as usize;
        let inbox = h.postbox::<u8>("inbox").unwrap();
        let scheduler = crate::Scheduler::new();
        let again = scheduler.handle();
        scheduler.activate(h.clone()).unwrap();
        assert!(!dropped.load(Ordering::SeqCst), "not run yet");
        scheduler.run();
        assert!(h.is_done());
        assert!(dropped.load(Ordering::SeqCst), "dropped as it ended");
        assert!(!h.0.wake().has_body());
        assert!(matches!(
            again.activate(h.clone()),
            Err(crate::ActivateError::AlreadyActivated(_))
        ));
        drop(h);
        assert!(!freed(unit), "the postbox still counts the boxes");
        drop(inbox);
        assert!(freed(unit));
    }

    /// A freed unit's block is kept for the next component of its size on
    /// this thread: the new component starts with empty boxes and its own
    /// body, and the old one's messages and body were dropped once.
    #[test]
    fn a_freed_units_block_serves_the_next_component_of_its_size() {
        let class = Whole::<Standard<u8, u8>, crate::component::Wrapped<Witness>>::CLASS
            .expect("a kept layout");
        let (h, dropped) = witness();
        let unit = h.0.as_ptr() as usize;
        let inbox = h.postbox::<u8>("inbox").unwrap();
        assert!(inbox.send(7).is_ok());
        let before = crate::spare::kept(class);
        drop((h, inbox));
        assert!(dropped.load(Ordering::SeqCst) && freed(unit));
        assert_eq!(crate::spare::kept(class), before + 1, "kept, not freed");
        let (again, dropped_again) = witness();
        assert_eq!(again.0.as_ptr() as usize, unit, "the kept block serves");
        assert!(!freed(unit), "in use again");
        assert_eq!(crate::spare::kept(class), before);
        assert!(!dropped_again.load(Ordering::SeqCst));
        let inbox = again.postbox::<u8>("inbox").unwrap();
        assert!(again.box_names().any(|(name, _)| name == "inbox"));
        let boxes = again.0.find("inbox", crate::Direction::Inbox);
        assert_eq!(boxes.map(|b| b.len()), Some(0), "empty boxes");
        assert!(inbox.send(8).is_ok());
        drop((again, inbox));
        assert!(dropped_again.load(Ordering::SeqCst) && freed(unit));
    }

    /// A parent's reference gives a handle back only while one lives.
    #[test]
    fn a_weak_core_upgrades_only_while_a_handle_lives() {
        let (h, _) = witness();
        let weak = h.0.downgrade();
        let up = weak.upgrade().map(Handle).expect("a handle lives");
        assert_eq!(up, h);
        assert!(weak.is_alive());
        drop((h, up));
        assert!(!weak.is_alive());
        assert!(weak.upgrade().is_none());
    }

    /// Handles and box references dropped on several threads at once free
    /// the unit once, after the last of them (an endpoint's signal, held
    /// by its cell, says when the cell has gone).
    #[test]
    fn handles_and_references_dropped_on_many_threads_free_the_unit_once() {
        // Fewer under Miri, which checks these drops for races.
        let (rounds, sends) = if cfg!(miri) { (2, 10) } else { (50, 100) };
        for _ in 0..rounds {
            let e = crate::Endpoint::<Standard<u8, u8>>::new("e");
            let signal = Arc::downgrade(e.handle().0.wake().external_signal().unwrap());
            let handle = e.handle().clone();
            let inbox = e.inbox.postbox();
            drop(e);
            let threads: Vec<_> = (0..4)
                .map(|i| {
                    let (h, p) = (handle.clone(), inbox.clone());
                    std::thread::spawn(move || {
                        for n in 0..sends {
                            let (h2, p2) = (h.clone(), p.clone());
                            let _ = p2.send(n);
                            if (n + i) % 2 == 0 {
                                drop((h2, p2));
                            } else {
                                drop((p2, h2));
                            }
                        }
                        if i % 2 == 0 {
                            drop((h, p));
                        } else {
                            drop((p, h));
                        }
                    })
                })
                .collect();
            drop((handle, inbox));
            for t in threads {
                t.join().unwrap();
            }
            assert!(signal.upgrade().is_none(), "the unit was freed");
        }
    }
}
