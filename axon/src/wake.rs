//! The pause/wake state machine behind rule A6.
//!
//! Every component owns one [`WakeCell`]. Whoever makes work for the
//! component (a message arriving, space freeing in an inbox it feeds, a child
//! ending) calls [`WakeCell::wake`]. The cell's state decides what that costs:
//!
//! | state       | meaning                          | `wake()` does                      |
//! |-------------|----------------------------------|------------------------------------|
//! | `INACTIVE`  | created, not yet activated       | nothing (activation runs it anyway)|
//! | `IDLE`      | paused                           | → `SCHEDULED`, queue it to its runner |
//! | `SCHEDULED` | queued to run                    | nothing (one load, no write)       |
//! | `RUNNING`   | inside `main` right now          | → `NOTIFIED`                       |
//! | `NOTIFIED`  | woken while running              | nothing                            |
//! | `DONE`      | finished                         | nothing                            |
//!
//! A component that returns [`Step::Pause`](crate::Step::Pause) goes
//! `RUNNING → IDLE` with one compare-and-swap; if that fails the component was
//! woken while it ran (`NOTIFIED`) and is run again, so a wake-up can never be
//! lost between "my inbox is empty" and "pause".
//!
//! A cell knows its runner only through its run queue ([`ReadyQueue`]):
//! never the scheduler's services or timers, so a component can never keep
//! its stopped scheduler's CAT, and with it the Selector and its sockets,
//! alive.

#![allow(unsafe_code)] // the core in the cell: see the SAFETY notes

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::Thread;

use crate::boxset::ErasedSet;
use crate::declare::BoxTable;
use crate::handle::Core;
use crate::ready::ReadyQueue;
use crate::sync::Signal;
use crate::unit::{Counts, UnitVt};

pub(crate) const INACTIVE: u8 = 0;
pub(crate) const IDLE: u8 = 1;
pub(crate) const SCHEDULED: u8 = 2;
pub(crate) const RUNNING: u8 = 3;
pub(crate) const NOTIFIED: u8 = 4;
pub(crate) const DONE: u8 = 5;

/// `flags`: the body has been claimed by a runner.
const ACTIVATED: u8 = 1;
/// `flags`: the body panicked (and was ended).
const PANICKED: u8 = 2;
/// `flags`: the component runs on a thread of its own
/// ([`Component::THREADED`](crate::Component::THREADED)).
const THREADED: u8 = 4;
/// `flags`: `target` is being written (by the one [`WakeCell::bind`] that
/// set this).
const BINDING: u8 = 8;
/// `flags`: `target` is written, and read from now on.
const BOUND: u8 = 16;
/// `flags`: the component's parent adopted it without listing it among its
/// children ([`Cx::adopt`](crate::Cx::adopt)): snapshots list it there.
const UNLISTED: u8 = 32;
/// `flags`: its body is in its unit, not dropped yet.
const HAS_BODY: u8 = 64;

/// Who runs the component, and so who must hear its wake-ups.
pub(crate) enum Target {
    /// A component on a cooperative scheduler, at `key` in its table (32
    /// bits: this cell is made for every component, so it is kept small).
    Scheduler { key: u32, queue: Arc<ReadyQueue> },
    /// A threaded component (A8): unpark its OS thread.
    Thread(Thread),
    /// An [`Endpoint`](crate::Endpoint) waited on by code outside any
    /// scheduler.
    External(Arc<Signal>),
}

/// The wake state of one component (see the module docs), at the head of
/// the component's one allocation (a `Unit`): its counts, its core, and
/// (after it) its boxes.
///
/// Every box of the component points here (to wake its owner), so the cell
/// also keeps the component's box table: that is where a box finds its
/// own name without storing it.
#[repr(C)]
pub struct WakeCell {
    /// The component's core: made just after the boxes, dropped when the
    /// last handle goes ([`CoreRef`](crate::unit::CoreRef)). First, so
    /// that a core finds its cell at its own address ([`Core::wake`]).
    core: UnsafeCell<MaybeUninit<Core>>,
    /// Its handles and its other references ([`crate::unit`]).
    pub(crate) counts: Counts,
    state: AtomicU8,
    flags: AtomicU8,
    /// Who runs the component: written once ([`bind`](Self::bind)),
    /// readable once [`BOUND`] is set (a `OnceLock` in 16 bytes instead of
    /// 24, its state in `flags`).
    target: UnsafeCell<MaybeUninit<Target>>,
    table: BoxTable,
    /// The type of the unit this cell heads: how to reach its boxes and
    /// its body, and to free it.
    vt: &'static UnitVt,
}

// SAFETY: the cell's own fields are atomics and `Sync` values; `whole`
// points to the unit the cell heads, whose set is `Send + Sync`
// (`ErasedSet`); `core` is read only through handles, shared (`Core` is
// `Sync`: its mutable parts are behind locks), and written only twice:
// made before any handle exists, dropped by the last one.
unsafe impl Sync for WakeCell {}
// SAFETY: as for `Sync`: everything the cell owns is `Send`.
unsafe impl Send for WakeCell {}

impl Drop for WakeCell {
    fn drop(&mut self) {
        if *self.flags.get_mut() & BOUND != 0 {
            // SAFETY: written once (`BOUND` says so), dropped once, here.
            unsafe { self.target.get_mut().assume_init_drop() }
        }
    }
}

impl std::fmt::Debug for WakeCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WakeCell({})", self.state())
    }
}

impl WakeCell {
    /// The head of the unit at `whole`, with one handle, and no core yet
    /// ([`init_core`](Self::init_core) comes next).
    pub(crate) fn new(table: BoxTable, vt: &'static UnitVt) -> Self {
        WakeCell {
            counts: Counts::new(),
            state: AtomicU8::new(INACTIVE),
            flags: AtomicU8::new(0),
            target: UnsafeCell::new(MaybeUninit::uninit()),
            table,
            vt,
            core: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// The cell `core` is in.
    #[inline]
    pub(crate) fn of_core(core: &Core) -> &WakeCell {
        // SAFETY: every core is made in the cell at the head of its unit,
        // as the cell's first field (`repr(C)`: the same address), and
        // lives only as long as the cell; the unit's allocation was exposed
        // as it was made (`unit::make`), so the address becomes a pointer
        // into it.
        unsafe { &*(core as *const Core as usize as *const WakeCell) }
    }

    /// The component's boxes.
    #[inline]
    pub(crate) fn set(&self) -> &dyn ErasedSet {
        // SAFETY: `vt` is the type of the unit this cell heads, and its set
        // was written before anyone could reach the cell; it lives as long
        // as the cell does.
        unsafe { &*(self.vt.set)(self) }
    }

    /// Frees the unit `cell` heads.
    ///
    /// # Safety
    ///
    /// Once, by the last reference, after its core and body went. A raw
    /// pointer, not `&self`: no reference to the cell may live across its
    /// freeing.
    pub(crate) unsafe fn free_unit(cell: *const WakeCell) {
        // SAFETY: see above; `vt` is the unit's type, read (copied) before
        // the unit goes.
        unsafe {
            let free = (*cell).vt.free;
            free(cell as *mut WakeCell)
        }
    }

    /// Says the body has been written ([`unit::put_body`](crate::unit::put_body)).
    pub(crate) fn set_has_body(&self) {
        self.flags.fetch_or(HAS_BODY, Ordering::Release);
    }

    /// True while the component has a body: from when it is made until
    /// its runner (or its last handle) drops it. An endpoint never has.
    pub(crate) fn has_body(&self) -> bool {
        self.flags.load(Ordering::Acquire) & HAS_BODY != 0
    }

    /// The type of the unit this cell heads.
    pub(crate) fn vt(&self) -> &'static UnitVt {
        self.vt
    }

    /// Drops the body, if it has one still.
    ///
    /// Called by its runner's claim as it goes ([`Claimed`](crate::unit::Claimed)),
    /// and by the last handle (for a body never activated): nobody steps
    /// it then (a claim holds a handle).
    pub(crate) fn drop_body(&self) {
        if self.flags.fetch_and(!HAS_BODY, Ordering::AcqRel) & HAS_BODY != 0 {
            // SAFETY: written, and (see above) nobody else reaches it;
            // dropped once: the flag is cleared by whoever drops it.
            unsafe { std::ptr::drop_in_place((self.vt.body)(self)) }
        }
    }

    /// Writes the core.
    ///
    /// # Safety
    ///
    /// Once, as the unit is made, before any handle to it exists.
    pub(crate) unsafe fn init_core(&self, core: Core) {
        // SAFETY: nobody else can reach the core yet (see above).
        unsafe { (*self.core.get()).write(core) };
    }

    /// The core.
    ///
    /// # Safety
    ///
    /// A handle must be held (the core lives while one does).
    pub(crate) unsafe fn core(&self) -> &Core {
        // SAFETY: made before the first handle, dropped after the last.
        unsafe { (*self.core.get()).assume_init_ref() }
    }

    /// Drops the core.
    ///
    /// # Safety
    ///
    /// Once, by the last handle, as it goes: nothing reaches the core
    /// after this.
    pub(crate) unsafe fn drop_core(&self) {
        // SAFETY: see above; it was made by `init_core`.
        unsafe { (*self.core.get()).assume_init_drop() }
    }

    /// Marks the body taken; false if it already was (a component runs
    /// once).
    pub(crate) fn claim_activation(&self) -> bool {
        self.flags.fetch_or(ACTIVATED, Ordering::AcqRel) & ACTIVATED == 0
    }

    pub(crate) fn is_activated(&self) -> bool {
        self.flags.load(Ordering::Acquire) & ACTIVATED != 0
    }

    pub(crate) fn set_panicked(&self) {
        self.flags.fetch_or(PANICKED, Ordering::AcqRel);
    }

    pub(crate) fn set_threaded(&self) {
        self.flags.fetch_or(THREADED, Ordering::AcqRel);
    }

    pub(crate) fn threaded(&self) -> bool {
        self.flags.load(Ordering::Acquire) & THREADED != 0
    }

    /// Marks (or unmarks) the component as adopted without being listed.
    pub(crate) fn set_unlisted(&self, unlisted: bool) {
        if unlisted {
            self.flags.fetch_or(UNLISTED, Ordering::AcqRel);
        } else {
            self.flags.fetch_and(!UNLISTED, Ordering::AcqRel);
        }
    }

    pub(crate) fn unlisted(&self) -> bool {
        self.flags.load(Ordering::Acquire) & UNLISTED != 0
    }

    pub(crate) fn panicked(&self) -> bool {
        self.flags.load(Ordering::Acquire) & PANICKED != 0
    }

    /// The owner's box table.
    pub(crate) fn table(&self) -> &BoxTable {
        &self.table
    }

    pub(crate) fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }

    /// Binds the cell to its runner. Returns false if it was already bound
    /// (a handle may be activated only once).
    pub(crate) fn bind(&self, target: Target) -> bool {
        if self.flags.fetch_or(BINDING, Ordering::AcqRel) & BINDING != 0 {
            return false;
        }
        // SAFETY: the one caller that set `BINDING` writes, once; nobody
        // reads before `BOUND` is set, after the write.
        unsafe { (*self.target.get()).write(target) };
        self.flags.fetch_or(BOUND, Ordering::Release);
        true
    }

    /// The runner, once bound.
    #[inline]
    fn target(&self) -> Option<&Target> {
        if self.flags.load(Ordering::Acquire) & BOUND == 0 {
            return None;
        }
        // SAFETY: written before `BOUND` was set (Release, seen by this
        // Acquire), never written again, dropped with the cell.
        Some(unsafe { (*self.target.get()).assume_init_ref() })
    }

    /// True if an [`Endpoint`](crate::Endpoint) owns this cell, and its
    /// signal.
    pub(crate) fn external_signal(&self) -> Option<&Arc<Signal>> {
        match self.target() {
            Some(Target::External(signal)) => Some(signal),
            _ => None,
        }
    }

    /// Rule A6: there is work for this component.
    pub(crate) fn wake(&self) {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            let next = match s {
                IDLE => SCHEDULED,
                RUNNING => NOTIFIED,
                _ => return,
            };
            match self
                .state
                .compare_exchange(s, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) if next == SCHEDULED => return self.dispatch(),
                Ok(_) => return,
                Err(actual) => s = actual,
            }
        }
    }

    fn dispatch(&self) {
        match self.target() {
            Some(Target::Scheduler { key, queue }) => queue.push_ready(*key),
            Some(Target::Thread(thread)) => thread.unpark(),
            Some(Target::External(signal)) => signal.raise(),
            None => {}
        }
    }

    /// The runner moves a `SCHEDULED` (or freshly activated) cell to
    /// `RUNNING` just before calling `main`.
    pub(crate) fn set_running(&self) {
        self.state.store(RUNNING, Ordering::Release);
    }

    /// After `main` returned `Continue`: stays queued, wake-ups are no-ops.
    pub(crate) fn set_scheduled(&self) {
        self.state.store(SCHEDULED, Ordering::Release);
    }

    /// After `main` returned `Pause`. Returns true if the component was woken
    /// while it ran and must run again (it is then `SCHEDULED`).
    pub(crate) fn pause(&self) -> bool {
        match self
            .state
            .compare_exchange(RUNNING, IDLE, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => false,
            Err(_) => {
                self.state.store(SCHEDULED, Ordering::Release);
                true
            }
        }
    }

    /// Marks an endpoint as waiting (idle) so that a delivery raises its
    /// signal.
    pub(crate) fn set_idle(&self) {
        self.state.store(IDLE, Ordering::Release);
    }

    pub(crate) fn set_done(&self) {
        self.state.store(DONE, Ordering::Release);
    }
}
