//! Seeing the running system: a [`Snapshot`] of every component a
//! scheduler runs, its boxes with their counters, and every linkage
//! between them (Kamaelia's `Introspector`, with counts).
//!
//! A snapshot is taken *by the scheduler*, on its own thread, between two
//! components' steps: nothing runs while it is taken (threaded components
//! aside), so it is consistent, and taking one costs the running system
//! nothing until someone asks. Ask from anywhere with
//! [`SchedulerHandle::snapshot`] (blocking, with a timeout) or
//! [`SchedulerHandle::snapshot_then`] (a callback, for a component that
//! must not block: see the `introspect` crate's `Introspector`).
//!
//! ```
//! use axon::{Component, Cx, Scheduler, Standard, Step, RunState};
//! use std::time::Duration;
//!
//! struct Sleeper;
//! impl Component for Sleeper {
//!     type Boxes = Standard<u32, ()>;
//!     fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
//!         while cx.inbox.recv().is_some() {}
//!         Step::Pause
//!     }
//! }
//!
//! let scheduler = Scheduler::new();
//! let sleeper = scheduler.activate(Sleeper).unwrap();
//! let handle = scheduler.handle();
//! let running = std::thread::spawn(move || scheduler.run());
//! sleeper.postbox::<u32>("inbox").unwrap().send(7).unwrap();
//!
//! let snap = handle.snapshot(Duration::from_secs(10)).expect("the scheduler answers");
//! let me = snap.components.iter().find(|c| c.id == sleeper.id()).unwrap();
//! assert_eq!(me.kind, "Sleeper");
//! let inbox = me.boxes.iter().find(|b| b.name == "inbox").unwrap();
//! assert_eq!(inbox.delivered, 1); // counted when it arrived
//! assert!(matches!(me.state, RunState::Paused | RunState::Running));
//! handle.stop();
//! running.join().unwrap();
//! ```
//!
//! ## What the counters cost
//!
//! Each inbox counts the messages that arrive in it and the most that ever
//! waited in it at once. Both are written under the lock the delivery
//! already holds, in bytes that were padding: no atomic, no lock and no
//! memory is added to a send or to a box (see `node.rs`). A snapshot reads
//! them under each box's lock, once per box.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::component::{Body, Counter, Counters};
use crate::declare::{BoxMeta, Direction};
use crate::handle::Handle;
use crate::node::{ErasedBox, NextBox};
use crate::prefetch::prefetch;
use crate::shared::SchedulerHandle;
use crate::sync::lock;
use crate::wake::{DONE, IDLE, INACTIVE};

/// What a component was doing when the snapshot was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RunState {
    /// Runnable: woken, waiting for its turn (or, for the component that
    /// asked, running).
    Running,
    /// Paused until woken (A6), or not yet started.
    Paused,
    /// Finished, still held by its parent.
    Done,
}

impl RunState {
    /// `"running"`, `"paused"` or `"done"`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Paused => "paused",
            RunState::Done => "done",
        }
    }
}

/// One box of a component, with its counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoxSnapshot {
    /// The box's name (Kamaelia's: `inbox`, `_selectorSignal`, ...).
    pub name: Cow<'static, str>,
    /// Inbox or outbox.
    pub direction: Direction,
    /// Messages waiting now (inboxes; 0 for an outbox, which never holds
    /// any, and for an inbox passing through to another).
    pub len: usize,
    /// A5's size limit; `None` for unbounded.
    pub limit: Option<usize>,
    /// The most messages that ever waited at once (saturates at 65,535).
    pub high_water: usize,
    /// Messages that have arrived in this box's queue since it was made
    /// (inboxes only; it wraps after about 10^12).
    pub delivered: u64,
}

/// One component, as the scheduler saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentInfo {
    /// Its process-unique id ([`Handle::id`]).
    pub id: u64,
    /// Its name ([`Component::name`](crate::Component::name)).
    pub name: Cow<'static, str>,
    /// Its type's name without the path or generic parameters: what the
    /// `introspect` crate aggregates by ("Csa", "Echo", "Pipeline").
    pub kind: &'static str,
    /// Its type's full name.
    pub type_name: &'static str,
    /// Running, paused or done.
    pub state: RunState,
    /// The component that adopted it (A7), if any.
    pub parent: Option<u64>,
    /// The ids of its children (A7).
    pub children: Vec<u64>,
    /// Its boxes, in declaration order.
    pub boxes: Vec<BoxSnapshot>,
    /// The counters it keeps of its own
    /// ([`Component::counters`](crate::Component::counters)): a CSA's
    /// bytes in and out, say.
    pub counters: Vec<Counter>,
}

/// One linkage (A3): a box leading to the next box along its chain.
/// Passthroughs (inbox → inbox, outbox → outbox) are linkages too, so a
/// chain of them appears hop by hop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    /// The component owning the source box.
    pub src: u64,
    /// The source box's name.
    pub src_box: Cow<'static, str>,
    /// The component owning the destination box; `None` if it is not one
    /// this scheduler runs (an [`Endpoint`](crate::Endpoint), a threaded
    /// component, one not yet activated).
    pub dst: Option<u64>,
    /// The destination box's name (`"?"` when `dst` is `None`).
    pub dst_box: Cow<'static, str>,
    /// True for inbox → inbox and outbox → outbox (Kamaelia's
    /// `passthrough=1` and `=2`).
    pub passthrough: bool,
}

/// Every component one scheduler runs, with its boxes and linkages, taken
/// between two steps (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The components on the scheduler's thread, in no particular order.
    pub components: Vec<ComponentInfo>,
    /// Every linkage out of their boxes.
    pub linkages: Vec<LinkInfo>,
    /// Threaded components running (A8): counted, not listed.
    pub threaded: usize,
    /// How long the scheduler spent taking it.
    pub took: Duration,
}

/// A callback waiting for the next snapshot.
pub(crate) type SnapshotFn = Box<dyn FnOnce(Arc<Snapshot>) + Send>;

/// A type name without its path and generic parameters.
///
/// A component's default name is this, made at each creation: a search
/// for one byte (`:` appears in a path only as `::`), not for a
/// two-byte pattern, which costs a searcher's set-up each time. Type
/// names are short, so a plain scan of their bytes beats the searchers
/// (`split`, `rfind`) and their set-up: half the instructions. The last
/// name shortened on this thread is remembered: a server makes one
/// handler type per connection, and comparing two addresses is cheaper
/// than the scan (140 instructions for `examples::Echo`).
pub(crate) fn short_kind(full: &'static str) -> &'static str {
    thread_local! {
        static LAST: std::cell::Cell<(&'static str, &'static str)> =
            const { std::cell::Cell::new(("", "")) };
    }
    let same = |a: &str, b: &str| std::ptr::eq(a, b);
    let last = LAST.try_with(|l| l.get()).unwrap_or(("", ""));
    if same(last.0, full) {
        return last.1;
    }
    let short = scan_kind(full);
    let _ = LAST.try_with(|l| l.set((full, short)));
    short
}

/// [`short_kind`]'s scan.
fn scan_kind(full: &'static str) -> &'static str {
    let bytes = full.as_bytes();
    let end = bytes.iter().position(|&b| b == b'<').unwrap_or(bytes.len());
    let start = bytes[..end]
        .iter()
        .rposition(|&b| b == b':')
        .map_or(0, |i| i + 1);
    // Both ends are next to an ASCII byte (or the ends of the name), so
    // they are character boundaries.
    &full[start..end]
}

/// How many components ahead of the one being read the walk asks for
/// memory (see [`Ahead`]).
const AHEAD: usize = 8;

/// The components of a walk, with the memory of those a few places ahead
/// asked for early.
///
/// A component is memory reached one part through another (its handle's
/// allocation, its body, then each box and what the boxes point to), and
/// a snapshot of 10,000 connections reads 20,000 of them: nearly all of the
/// walk's time is spent waiting for memory. The CPU cannot overlap those
/// waits on its own (each needs the one before), so each component is
/// prefetched in three stages as it nears its turn: the head of its
/// allocation (its wake cell, with its core) when it enters the window,
/// the box set after it halfway, its boxes just before it is read. By
/// then each stage's pointers are in cache.
struct Ahead<'a, I> {
    entries: I,
    window: VecDeque<(&'a Handle, &'a dyn Body)>,
}

impl<'a, I: Iterator<Item = (&'a Handle, &'a dyn Body)>> Ahead<'a, I> {
    fn new(entries: I) -> Self {
        Ahead {
            entries,
            window: VecDeque::with_capacity(AHEAD + 1),
        }
    }
}

/// Prefetches the `len` bytes at `p` (a line or two).
fn prefetch_span<T: ?Sized>(p: *const T, len: usize) {
    let p = p as *const u8;
    prefetch(p);
    prefetch(p.wrapping_add(len - 1));
}

impl<'a, I: Iterator<Item = (&'a Handle, &'a dyn Body)>> Iterator for Ahead<'a, I> {
    type Item = (&'a Handle, &'a dyn Body);

    fn next(&mut self) -> Option<Self::Item> {
        while self.window.len() <= AHEAD {
            let Some((handle, body)) = self.entries.next() else {
                break;
            };
            prefetch_span(
                handle.0.as_ptr(),
                std::mem::size_of::<crate::wake::WakeCell>(),
            );
            prefetch(body as *const dyn Body);
            self.window.push_back((handle, body));
        }
        if let Some((handle, _)) = self.window.get(AHEAD / 2) {
            let set = handle.0.wake().set();
            prefetch(set as *const dyn crate::boxset::ErasedSet);
        }
        if let Some((handle, _)) = self.window.get(1) {
            let core = &handle.0;
            for i in 0..core.wake().table().len() {
                if let Some(b) = core.port(i) {
                    prefetch_span(b as *const dyn ErasedBox, std::mem::size_of_val(b));
                }
            }
        }
        self.window.pop_front()
    }
}

/// The last few parents a walk met, held for the walk.
///
/// Nearly every component has one of a few parents (a server's 10,000
/// connections, their handlers' chassis), so most lookups hit. Upgrading
/// each child's weak reference instead would write the parent's count
/// twice per child, a locked instruction each. Holding the parents keeps
/// their addresses from being reused while the walk compares them.
#[derive(Default)]
struct Parents([Option<crate::unit::CoreRef>; 4]);

impl Parents {
    /// `parent`'s id, if it is still alive.
    fn id_of(&mut self, parent: &crate::unit::WeakCore) -> Option<u64> {
        if !parent.is_alive() {
            return None;
        }
        let at = parent.as_ptr();
        if let Some(p) = self.0.iter().flatten().find(|p| p.as_ptr() == at) {
            return Some(p.id);
        }
        let p = parent.upgrade()?;
        let id = p.id;
        self.0.rotate_right(1);
        self.0[0] = Some(p);
        Some(id)
    }
}

/// Lists the children adopted without a list ([`Cx::adopt`](crate::Cx::adopt))
/// under their parents, as if they had been added. They have few parents
/// (a server's connections have one), so each parent is found by a pass
/// over the components, not through a map of all of them.
fn list_unlisted(components: &mut [ComponentInfo], mut unlisted: Vec<(u64, u64)>) {
    unlisted.sort_unstable();
    let mut rest = unlisted.as_slice();
    while let Some(&(parent, _)) = rest.first() {
        let n = rest.iter().take_while(|(p, _)| *p == parent).count();
        let (group, after) = rest.split_at(n);
        if let Some(p) = components.iter_mut().find(|c| c.id == parent) {
            p.children.extend(group.iter().map(|&(_, child)| child));
        }
        rest = after;
    }
}

/// How many children ahead [`extend_ids`] asks for memory. Reading an id
/// is a few instructions, so the misses overlap only when many are asked
/// for at once.
const IDS_AHEAD: usize = 16;

/// Appends the ids of `handles` to `out`, in order, asking for each
/// handle's memory a few places ahead: a server's 10,000 children are
/// 10,000 cache misses otherwise, one after another.
fn extend_ids<'a>(out: &mut Vec<u64>, handles: impl Iterator<Item = &'a Handle>) {
    let mut ring: [Option<&Handle>; IDS_AHEAD] = [None; IDS_AHEAD];
    let mut at = 0;
    for h in handles {
        prefetch(h.0.as_ptr());
        if let Some(due) = ring[at % IDS_AHEAD].replace(h) {
            out.push(due.id());
        }
        at += 1;
    }
    for k in 0..IDS_AHEAD {
        if let Some(due) = ring[(at + k) % IDS_AHEAD].take() {
            out.push(due.id());
        }
    }
}

/// How many of the components a walk met last it remembers, to find a
/// linkage's destination among them (see [`Resolver`]).
const RECENT: usize = 6;

/// A walked component as a linkage finds it: its wake cell's address (all
/// a box knows of the next box's owner), its id and its box table.
type Walked<'a> = (usize, u64, &'a [BoxMeta]);

/// Finds the component each linkage leads to, during the walk.
///
/// Most linkages join neighbours in the walk (a CSA and its handler are
/// made together, so they sit side by side) or lead to one of a few
/// components that many share (the Selector, a server). So each is looked
/// for first among the last few destinations met, and one left open is
/// tried again on the next component walked. Only the few left after that
/// are looked up at the end. A map of every component by its cell, looked
/// up once per linkage, cost a cache miss per linkage.
struct Resolver<'a> {
    /// Every component walked, in order.
    seen: Vec<Walked<'a>>,
    /// The destinations met last, the latest first.
    recent: [Walked<'a>; RECENT],
    /// Linkages of the component before the current one still open: the
    /// linkage's place, its destination's cell and box index.
    open: Vec<(usize, usize, u16)>,
    /// Linkages left for [`finish`](Self::finish).
    left: Vec<(usize, usize, u16)>,
}

impl<'a> Resolver<'a> {
    fn with_capacity(components: usize) -> Self {
        Resolver {
            seen: Vec::with_capacity(components),
            recent: [(0, 0, &[]); RECENT],
            open: Vec::new(),
            left: Vec::new(),
        }
    }

    /// The walk has come to the component of `cell`: the linkages still
    /// open that lead to it are settled, the others left for the end.
    fn enter(&mut self, cell: usize, id: u64, table: &'a [BoxMeta], linkages: &mut [LinkInfo]) {
        let walked = (cell, id, table);
        self.seen.push(walked);
        for (at, to, index) in self.open.drain(..) {
            match linkages.get_mut(at) {
                Some(link) if to == cell => settle(link, walked, index),
                _ => self.left.push((at, to, index)),
            }
        }
        self.recent.rotate_right(1);
        self.recent[0] = walked;
    }

    /// Settles `link` (the linkage at `at`, to `next`) if its destination
    /// was met lately; otherwise keeps it open.
    fn link(&mut self, at: usize, next: NextBox, link: &mut LinkInfo) {
        match self.recent.iter().position(|w| w.0 == next.cell) {
            Some(i) => {
                let walked = self.recent[i];
                // The latest first: a shared destination stays near the front.
                self.recent[..=i].rotate_right(1);
                settle(link, walked, next.index);
            }
            None => self.open.push((at, next.cell, next.index)),
        }
    }

    /// Settles what is left, in one pass over every component walked.
    /// Destinations not found are not components of ours (an endpoint, a
    /// threaded component): their linkages keep `None` and `"?"`.
    fn finish(mut self, linkages: &mut [LinkInfo]) {
        self.left.append(&mut self.open);
        if self.left.is_empty() {
            return;
        }
        self.left.sort_unstable_by_key(|&(_, cell, _)| cell);
        let mut found = vec![false; self.left.len()];
        for &walked in &self.seen {
            let from = self.left.partition_point(|&(_, cell, _)| cell < walked.0);
            for (k, &(at, cell, index)) in self.left.iter().enumerate().skip(from) {
                if cell != walked.0 {
                    break;
                }
                found[k] = true;
                if let Some(link) = linkages.get_mut(at) {
                    settle(link, walked, index);
                }
            }
        }
        for (&(at, ..), found) in self.left.iter().zip(found) {
            if let (false, Some(link)) = (found, linkages.get_mut(at)) {
                link.passthrough = false;
            }
        }
    }
}

/// Fills in `link`'s destination: box `index` of the component `walked`.
fn settle(link: &mut LinkInfo, walked: Walked<'_>, index: u16) {
    link.dst = Some(walked.1);
    if let Some(meta) = walked.2.get(usize::from(index)) {
        link.dst_box = meta.name.clone();
    }
}

/// Takes a snapshot of `entries` (each component with its body), on the
/// scheduler's thread, reusing the memory of `old` if given.
///
/// A snapshot of a big system is megabytes (10,000 connections: about
/// 20,000 components and 150,000 boxes), and memory freshly taken from
/// the system costs a page fault per 4 KiB: about as much as the walk
/// itself. Reusing the last one's vectors, overwritten in place, avoids
/// both those faults and an allocation per component.
pub(crate) fn take<'a>(
    entries: impl ExactSizeIterator<Item = (&'a Handle, &'a dyn Body)>,
    threaded: usize,
    old: Option<Snapshot>,
) -> Snapshot {
    let started = Instant::now();
    let Snapshot {
        mut components,
        mut linkages,
        ..
    } = old.unwrap_or_default();
    // Entries below `reusable` are the old snapshot's, overwritten in turn.
    let reusable = components.len();
    components.reserve(entries.len().saturating_sub(reusable));
    linkages.clear();
    let mut resolver = Resolver::with_capacity(entries.len());
    // Kinds by type name: a few types make up most components (a CSA and
    // a handler per connection), so the last few are remembered.
    let mut kinds: [(usize, &'static str); 4] = [(0, ""); 4];
    let mut kind_of = |type_name: &'static str| {
        let key = type_name.as_ptr() as usize ^ type_name.len();
        if let Some(&(_, kind)) = kinds.iter().find(|(k, _)| *k == key) {
            return kind;
        }
        let kind = short_kind(type_name);
        kinds.rotate_right(1);
        kinds[0] = (key, kind);
        kind
    };
    let mut parents = Parents::default();
    // Children adopted without being listed (`Cx::adopt`): (parent, child).
    let mut unlisted: Vec<(u64, u64)> = Vec::new();
    let mut count = 0;
    for (handle, body) in Ahead::new(entries) {
        let core = &handle.0;
        let type_name = body.kind();
        let at = count;
        count += 1;
        // The old snapshot's memory this walk overwrites is as cold as the
        // components it reads: ask for it ahead too (its record, then the
        // buffer of its boxes).
        if let Some(c) = components.get(at + AHEAD) {
            prefetch_span(c, std::mem::size_of::<ComponentInfo>());
        }
        if let Some(c) = components.get(at + AHEAD / 2) {
            let bytes = std::mem::size_of_val(c.boxes.as_slice());
            let p = c.boxes.as_ptr() as *const u8;
            for off in (0..bytes).step_by(64) {
                prefetch(p.wrapping_add(off));
            }
            // Its counters and children are buffers of their own: a store
            // into a cold one stalls the next locked instruction (the
            // family lock below) until it lands.
            if c.counters.capacity() > 0 {
                prefetch(c.counters.as_ptr());
            }
            if c.children.capacity() > 0 {
                prefetch(c.children.as_ptr());
            }
        }
        let table = core.wake().table();
        resolver.enter(
            core.wake() as *const crate::wake::WakeCell as usize,
            core.id,
            table.metas(),
            &mut linkages,
        );
        let state = match core.wake().state() {
            DONE => RunState::Done,
            IDLE | INACTIVE => RunState::Paused,
            _ => RunState::Running,
        };
        let (mut children, mut boxes, mut counters) = match components.get_mut(at) {
            Some(c) if at < reusable => (
                std::mem::take(&mut c.children),
                std::mem::take(&mut c.boxes),
                std::mem::take(&mut c.counters),
            ),
            _ => (Vec::new(), Vec::with_capacity(table.len()), Vec::new()),
        };
        children.clear();
        boxes.clear();
        counters.clear();
        body.counters(&mut Counters(&mut counters));
        let parent = {
            let family = lock(&core.family);
            if let Some(kin) = &family.kin {
                extend_ids(&mut children, kin.children.iter());
            }
            family.parent.as_ref().and_then(|p| parents.id_of(p))
        };
        if let Some(p) = parent.filter(|_| core.wake().unlisted()) {
            unlisted.push((p, core.id));
        }
        for (i, meta) in table.iter().enumerate() {
            let Some(b) = core.port(i) else { continue };
            let seen = b.observe();
            if let Some(next) = seen.next {
                let mut link = LinkInfo {
                    src: core.id,
                    src_box: meta.name.clone(),
                    dst: None,
                    passthrough: next.direction == meta.direction,
                    dst_box: Cow::Borrowed("?"),
                };
                resolver.link(linkages.len(), next, &mut link);
                linkages.push(link);
            }
            boxes.push(BoxSnapshot {
                name: meta.name.clone(),
                direction: meta.direction,
                len: seen.len,
                limit: seen.limit,
                high_water: usize::from(seen.counts.high_water),
                delivered: seen.counts.delivered,
            });
        }
        let info = ComponentInfo {
            id: core.id,
            name: core.name.to_cow(),
            kind: kind_of(type_name),
            type_name,
            state,
            parent,
            children,
            boxes,
            counters,
        };
        match components.get_mut(at) {
            Some(slot) => *slot = info,
            None => components.push(info),
        }
    }
    components.truncate(count);
    list_unlisted(&mut components, unlisted);
    resolver.finish(&mut linkages);
    Snapshot {
        components,
        linkages,
        threaded,
        took: started.elapsed(),
    }
}

impl SchedulerHandle {
    /// Asks the scheduler for a [`Snapshot`] and calls `f` with it, on the
    /// scheduler's thread, before its next round of steps (the module docs
    /// say what is in it). `f` must be quick and must not block: send the
    /// snapshot somewhere (a component's postbox, a channel). If the
    /// scheduler ends first, `f` is dropped uncalled.
    ///
    /// Requests made while one is pending share its snapshot.
    pub fn snapshot_then(&self, f: impl FnOnce(Arc<Snapshot>) + Send + 'static) {
        self.ask(None, Box::new(f));
    }

    /// As [`snapshot_then`](Self::snapshot_then), handing back `old`, a
    /// snapshot its holder is done with: if nobody else holds it by the
    /// time the next one is taken, the next one is written over its
    /// memory, which saves about half the time a big snapshot takes (the
    /// allocations and page faults of megabytes). A component that looks
    /// regularly (the `introspect` crate's `Introspector`) hands back its
    /// last snapshot with each request.
    ///
    /// The scheduler keeps `old` only until that next snapshot, so hand
    /// one back only when asking.
    pub fn snapshot_then_reusing(
        &self,
        old: Arc<Snapshot>,
        f: impl FnOnce(Arc<Snapshot>) + Send + 'static,
    ) {
        self.ask(Some(old), Box::new(f));
    }

    fn ask(&self, old: Option<Arc<Snapshot>>, f: SnapshotFn) {
        let mut q = self.shared.queue.lock();
        if q.gone {
            return; // `f` is dropped uncalled
        }
        // Under the queue's lock, so a scheduler being dropped either
        // clears this callback (and `old`) or has refused it.
        if let Some(old) = old {
            *lock(&self.shared.recycled) = Some(old);
        }
        lock(&self.shared.snapshots).push(f);
        q.snapshot = true;
        self.shared.queue.kick(q);
    }

    /// Takes a [`Snapshot`], waiting up to `timeout` for the scheduler to
    /// take it: for code outside the scheduler (a test, a `main`, an
    /// embedding application's own thread). `None` if the scheduler did
    /// not answer in time, has ended, or runs on this very thread (a
    /// component asks with [`snapshot_then`](Self::snapshot_then)
    /// instead).
    pub fn snapshot(&self, timeout: Duration) -> Option<Arc<Snapshot>> {
        self.wait_for(None, timeout)
    }

    /// As [`snapshot`](Self::snapshot), handing back `old` for the new
    /// one to reuse (see [`snapshot_then_reusing`](Self::snapshot_then_reusing)).
    pub fn snapshot_reusing(&self, old: Arc<Snapshot>, timeout: Duration) -> Option<Arc<Snapshot>> {
        self.wait_for(Some(old), timeout)
    }

    fn wait_for(&self, old: Option<Arc<Snapshot>>, timeout: Duration) -> Option<Arc<Snapshot>> {
        if self.shared.queue.is_running_here() {
            return None;
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.ask(
            old,
            Box::new(move |s| {
                let _ = tx.try_send(s);
            }),
        );
        rx.recv_timeout(timeout).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Component, Control, Cx, Pipeline, Scheduler, Standard, Step};

    /// Never reads its inbox: what is sent waits there. Ends when told.
    struct Hoarder;
    impl Component for Hoarder {
        type Boxes = Standard<u32, u32>;
        fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
            if cx.control.recv().is_some() {
                return Step::Done;
            }
            Step::Pause
        }
    }

    /// Passes every message on, keeping one the next box refuses (A5).
    #[derive(Default)]
    struct Relay(Option<u32>);
    impl Component for Relay {
        type Boxes = Standard<u32, u32>;
        fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
            while let Some(m) = self.0.take().or_else(|| cx.inbox.recv()) {
                if let Err(full) = cx.outbox.send(m) {
                    self.0 = Some(full.into_inner());
                    return Step::Pause;
                }
            }
            Step::Pause
        }
    }

    const WAIT: Duration = Duration::from_secs(20);

    /// The resolver settles every linkage as a look-up of all components
    /// would: to a neighbour behind or ahead, to a few shared destinations,
    /// to one far away in either direction, and to none of ours (then
    /// `None`, `"?"` and no passthrough), in walks of every small size.
    #[test]
    fn the_resolver_finds_every_linkages_destination() {
        let table: Vec<BoxMeta> = ["a", "b", "c"]
            .iter()
            .map(|&n| BoxMeta::of::<u32>(n.into(), "".into(), Direction::Inbox))
            .collect();
        for n in 1..40usize {
            // Component k: cell 1000 + 16k, id 7k + 1.
            let cell = |k: usize| 1000 + 16 * k;
            let id = |k: usize| 7 * k as u64 + 1;
            let mut x = n as u64;
            let mut next_random = move || {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 33) as usize
            };
            let mut resolver = Resolver::with_capacity(n);
            let mut linkages = Vec::new();
            let mut want = Vec::new();
            for k in 0..n {
                resolver.enter(cell(k), id(k), &table, &mut linkages);
                for j in 0..5 {
                    let (to, index) = match (next_random() % 6, j) {
                        (0, _) => (k.checked_sub(1), 1),
                        (1, _) => (Some(k + 1).filter(|&t| t < n), 2),
                        (2, _) => (Some(0), 0),
                        (3, _) => (Some(n / 2), 1),
                        (4, _) => (Some(next_random() % n), next_random() % 3),
                        _ => (None, 0),
                    };
                    let mut link = LinkInfo {
                        src: id(k),
                        src_box: "out".into(),
                        dst: None,
                        dst_box: Cow::Borrowed("?"),
                        passthrough: true,
                    };
                    let target = NextBox {
                        cell: to.map_or(7, cell),
                        index: index as u16,
                        direction: Direction::Inbox,
                    };
                    resolver.link(linkages.len(), target, &mut link);
                    linkages.push(link);
                    want.push(match to {
                        Some(t) => (Some(id(t)), ["a", "b", "c"][index], true),
                        None => (None, "?", false),
                    });
                }
            }
            resolver.finish(&mut linkages);
            let got: Vec<_> = linkages
                .iter()
                .map(|l| (l.dst, &*l.dst_box, l.passthrough))
                .collect();
            assert_eq!(got, want, "a walk of {n}");
        }
    }

    fn find<'a>(s: &'a Snapshot, h: &Handle) -> &'a ComponentInfo {
        s.components
            .iter()
            .find(|c| c.id == h.id())
            .expect("listed")
    }

    fn boxed<'a>(c: &'a ComponentInfo, name: &str) -> &'a BoxSnapshot {
        c.boxes.iter().find(|b| b.name == name).expect("box listed")
    }

    #[test]
    fn a_snapshot_counts_what_arrived_and_what_waits() {
        let scheduler = Scheduler::new();
        let hoarder = scheduler.activate(Hoarder).unwrap();
        let handle = scheduler.handle();
        let running = std::thread::spawn(move || scheduler.run());
        let inbox = hoarder.postbox::<u32>("inbox").unwrap();
        for i in 0..5 {
            inbox.send(i).unwrap();
        }
        let snap = handle.snapshot(WAIT).expect("a snapshot");
        let me = find(&snap, &hoarder);
        assert_eq!((me.kind, me.name.as_ref()), ("Hoarder", "Hoarder"));
        let b = boxed(me, "inbox");
        assert_eq!((b.len, b.high_water, b.delivered), (5, 5, 5));
        assert_eq!(b.direction, Direction::Inbox);
        assert_eq!(b.limit, None);
        // Taking them leaves the counts.
        for _ in 0..5 {
            hoarder.collect::<u32>("inbox").unwrap();
        }
        let snap = handle.snapshot(WAIT).expect("a snapshot");
        let b = boxed(find(&snap, &hoarder), "inbox");
        assert_eq!((b.len, b.high_water, b.delivered), (0, 5, 5));
        handle.stop();
        running.join().unwrap();
    }

    #[test]
    fn a_snapshot_lists_linkages_passthroughs_and_children() {
        let scheduler = Scheduler::new();
        let first = Handle::new(Relay::default());
        let last = Handle::new(Hoarder);
        let pipe = Pipeline::new(vec![first.clone(), last.clone()]).unwrap();
        let pipe = scheduler.activate(pipe).unwrap();
        let handle = scheduler.handle();
        let running = std::thread::spawn(move || scheduler.run());
        let into = pipe.postbox::<u32>("inbox").unwrap();
        into.send(1).unwrap();
        into.send(2).unwrap();
        // Wait (with a deadline) until the relay has passed both on.
        let deadline = Instant::now() + WAIT;
        let snap = loop {
            let snap = handle.snapshot(WAIT).expect("a snapshot");
            if snap.components.len() == 3 && boxed(find(&snap, &last), "inbox").delivered == 2 {
                break snap;
            }
            assert!(Instant::now() < deadline, "the relay never passed both on");
            std::thread::yield_now();
        };
        let p = find(&snap, &pipe);
        assert_eq!(p.kind, "Pipeline");
        let mut kids = p.children.clone();
        kids.sort_unstable();
        let mut want = vec![first.id(), last.id()];
        want.sort_unstable();
        assert_eq!(kids, want);
        assert_eq!(find(&snap, &first).parent, Some(pipe.id()));
        let has = |src: &Handle, sb: &str, dst: &Handle, db: &str, pass: bool| {
            snap.linkages.iter().any(|l| {
                l.src == src.id()
                    && l.src_box == sb
                    && l.dst == Some(dst.id())
                    && l.dst_box == db
                    && l.passthrough == pass
            })
        };
        assert!(
            has(&pipe, "inbox", &first, "inbox", true),
            "{:?}",
            snap.linkages
        );
        assert!(has(&first, "outbox", &last, "inbox", false));
        assert!(has(&last, "outbox", &pipe, "outbox", true));
        // The relay's inbox passed through nothing and held both in turn.
        assert_eq!(boxed(find(&snap, &first), "inbox").delivered, 2);
        // A passthrough inbox holds nothing and counts nothing.
        assert_eq!(boxed(p, "inbox").delivered, 0);
        handle.stop();
        running.join().unwrap();
    }

    /// Children adopted without being listed (`Cx::adopt`) are listed in
    /// a snapshot as added ones are, each under its own parent.
    #[test]
    fn a_snapshot_lists_adopted_children_under_their_parents() {
        struct Adopter {
            adopt: Vec<Handle>,
            add: Vec<Handle>,
        }
        impl Component for Adopter {
            type Boxes = Standard<u32, u32>;
            fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
                for kid in self.adopt.drain(..) {
                    cx.adopt(&kid);
                    cx.activate(&kid).unwrap();
                }
                for kid in self.add.drain(..) {
                    cx.add_child(&kid);
                    cx.activate(&kid).unwrap();
                }
                Step::Pause
            }
        }
        let kids: Vec<Handle> = (0..5).map(|_| Handle::new(Hoarder)).collect();
        let scheduler = Scheduler::new();
        let a = scheduler
            .activate(Adopter {
                adopt: kids[..2].to_vec(),
                add: kids[2..3].to_vec(),
            })
            .unwrap();
        let b = scheduler
            .activate(Adopter {
                adopt: kids[3..].to_vec(),
                add: Vec::new(),
            })
            .unwrap();
        let handle = scheduler.handle();
        let running = std::thread::spawn(move || scheduler.run());
        let deadline = Instant::now() + WAIT;
        let snap = loop {
            let snap = handle.snapshot(WAIT).expect("a snapshot");
            if snap.components.len() == 7 {
                break snap;
            }
            assert!(Instant::now() < deadline, "never activated");
            std::thread::yield_now();
        };
        let sorted = |h: &Handle| {
            let mut ids = find(&snap, h).children.clone();
            ids.sort_unstable();
            ids
        };
        let ids = |hs: &[Handle]| hs.iter().map(Handle::id).collect::<Vec<_>>();
        assert_eq!(sorted(&a), ids(&kids[..3]));
        assert_eq!(sorted(&b), ids(&kids[3..]));
        assert!(kids.iter().all(|k| find(&snap, k).parent.is_some()));
        handle.stop();
        running.join().unwrap();
    }

    /// A snapshot written over an old one's memory says exactly what a
    /// fresh one says, whether the old one listed more components, fewer,
    /// or is still held by someone (then it is not touched).
    #[test]
    fn a_snapshot_reusing_an_old_one_says_what_a_fresh_one_says() {
        let scheduler = Scheduler::new();
        let handle = scheduler.handle();
        let mut hoarders: Vec<Handle> = (0..3)
            .map(|_| scheduler.activate(Hoarder).unwrap())
            .collect();
        let pipe =
            Pipeline::new(vec![Handle::new(Relay::default()), Handle::new(Hoarder)]).unwrap();
        let pipe = scheduler.activate(pipe).unwrap();
        let running = std::thread::spawn(move || scheduler.run());
        pipe.postbox::<u32>("inbox").unwrap().send(1).unwrap();
        hoarders[0]
            .postbox::<u32>("inbox")
            .unwrap()
            .send(9)
            .unwrap();
        let same = |a: &Snapshot, b: &Snapshot| {
            let key = |s: &Snapshot| {
                let mut c = s.components.clone();
                c.sort_by_key(|c| c.id);
                let mut l = s.linkages.clone();
                l.sort_by_key(|l| (l.src, l.src_box.to_string()));
                (c, l, s.threaded)
            };
            key(a) == key(b)
        };
        let settled = |old: Option<Arc<Snapshot>>| {
            let deadline = Instant::now() + WAIT;
            let mut old = old;
            loop {
                let fresh = handle.snapshot(WAIT).expect("a snapshot");
                let reused = match old.take() {
                    Some(o) => handle.snapshot_reusing(o, WAIT),
                    None => handle.snapshot(WAIT),
                }
                .expect("a snapshot");
                if same(&fresh, &reused) {
                    return (fresh, reused);
                }
                // Only the relay's one message may still be on its way.
                assert!(Instant::now() < deadline, "{fresh:?} vs {reused:?}");
                old = Some(reused);
                std::thread::yield_now();
            }
        };
        // Same components: the memory is reused.
        let (_, first) = settled(None);
        let at = first.components.as_ptr();
        let (_, second) = settled(Some(first));
        assert_eq!(second.components.as_ptr(), at, "the old vector was reused");
        assert_eq!(second.components.len(), 6);
        // Fewer components than the old one listed.
        for h in hoarders.drain(1..) {
            h.postbox::<Control>("control")
                .unwrap()
                .send(Control::ShutdownMicroprocess)
                .unwrap();
        }
        let deadline = Instant::now() + WAIT;
        let mut old = second;
        let fewer = loop {
            let s = handle.snapshot_reusing(old, WAIT).expect("a snapshot");
            if s.components.len() == 4 {
                break s;
            }
            assert!(Instant::now() < deadline, "the hoarders never ended");
            old = s;
            std::thread::yield_now();
        };
        let fresh = handle.snapshot(WAIT).expect("a snapshot");
        assert!(same(&fresh, &fewer), "{fresh:?} vs {fewer:?}");
        // Still held elsewhere: left alone, and the new one is right.
        let kept = fewer.clone();
        let again = handle.snapshot_reusing(fewer, WAIT).expect("a snapshot");
        assert!(same(&kept, &again));
        assert_ne!(kept.components.as_ptr(), again.components.as_ptr());
        handle.stop();
        running.join().unwrap();
    }

    /// Counts what it takes, and reports it (`Component::counters`).
    #[derive(Default)]
    struct Tally(u64);
    impl Component for Tally {
        type Boxes = Standard<u32, ()>;
        fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
            while let Some(n) = cx.inbox.recv() {
                self.0 += u64::from(n);
            }
            Step::Pause
        }
        fn counters(&self, counters: &mut crate::Counters<'_>) {
            counters.add("total", self.0);
            counters.add("twice", 2 * self.0);
        }
    }

    #[test]
    fn a_snapshot_lists_the_counters_a_component_reports() {
        let scheduler = Scheduler::new();
        let tally = scheduler.activate(Tally::default()).unwrap();
        let hoarder = scheduler.activate(Hoarder).unwrap();
        let handle = scheduler.handle();
        let running = std::thread::spawn(move || scheduler.run());
        let inbox = tally.postbox::<u32>("inbox").unwrap();
        for n in [3, 4, 5] {
            inbox.send(n).unwrap();
        }
        let deadline = Instant::now() + WAIT;
        let mut old: Option<Arc<Snapshot>> = None;
        loop {
            let snap = match old.take() {
                Some(o) => handle.snapshot_reusing(o, WAIT),
                None => handle.snapshot(WAIT),
            }
            .expect("a snapshot");
            let counters = &find(&snap, &tally).counters;
            let want = [
                crate::Counter {
                    name: "total",
                    value: 12,
                },
                crate::Counter {
                    name: "twice",
                    value: 24,
                },
            ];
            if counters[..] == want {
                assert!(find(&snap, &hoarder).counters.is_empty());
                break;
            }
            assert!(Instant::now() < deadline, "{counters:?}");
            old = Some(snap);
            std::thread::yield_now();
        }
        handle.stop();
        running.join().unwrap();
    }

    /// Asks for a snapshot from inside a step: the blocking call refuses
    /// at once instead of waiting for itself.
    struct AsksItself(std::sync::mpsc::Sender<bool>);
    impl Component for AsksItself {
        type Boxes = Standard<(), ()>;
        fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
            let _ = self.0.send(cx.scheduler().snapshot(WAIT).is_none());
            Step::Done
        }
    }

    #[test]
    fn a_blocking_snapshot_on_the_schedulers_own_thread_is_refused() {
        let (tx, rx) = std::sync::mpsc::channel();
        let scheduler = Scheduler::new();
        scheduler.activate(AsksItself(tx)).unwrap();
        scheduler.run();
        assert!(rx.recv_timeout(WAIT).unwrap());
    }

    #[test]
    fn waiting_for_a_snapshot_ends_when_the_scheduler_does() {
        let scheduler = Scheduler::new();
        let handle = scheduler.handle();
        drop(scheduler);
        let started = Instant::now();
        assert!(handle.snapshot(WAIT).is_none());
        assert!(started.elapsed() < WAIT);
    }

    /// The prefetching ring hands back every id in order, for any count
    /// around its size (a parent with no children, a few, thousands).
    #[test]
    fn ids_read_ahead_come_back_all_and_in_order() {
        let handles: Vec<Handle> = (0..3 * IDS_AHEAD + 1)
            .map(|_| Handle::new(Hoarder))
            .collect();
        for n in [
            0,
            1,
            IDS_AHEAD - 1,
            IDS_AHEAD,
            IDS_AHEAD + 1,
            3 * IDS_AHEAD + 1,
        ] {
            let mut out = vec![7];
            extend_ids(&mut out, handles[..n].iter());
            let want: Vec<u64> = std::iter::once(7)
                .chain(handles[..n].iter().map(Handle::id))
                .collect();
            assert_eq!(out, want, "{n} handles");
        }
    }

    /// Components read through the prefetching window come back all and
    /// in order, with the window's stages ahead of them.
    #[test]
    fn the_walk_sees_every_entry_once_in_order() {
        let claims: Vec<_> = (0..2 * AHEAD + 3)
            .map(|_| Handle::new(Hoarder).claim_activation().unwrap())
            .collect();
        let handles: Vec<Handle> = claims.iter().map(|c| (**c).clone()).collect();
        for n in [0, 1, AHEAD, AHEAD + 1, handles.len()] {
            let seen: Vec<u64> = Ahead::new(claims[..n].iter().map(|c| (&**c, c.body_ref())))
                .map(|(h, _)| h.id())
                .collect();
            let want: Vec<u64> = handles[..n].iter().map(Handle::id).collect();
            assert_eq!(seen, want, "{n} entries");
        }
    }

    #[test]
    fn kinds_lose_their_path_and_generics() {
        assert_eq!(short_kind("csa::Csa"), "Csa");
        assert_eq!(short_kind("util::Pure<alloc::vec::Vec<u8>>"), "Pure");
        assert_eq!(short_kind("Echo"), "Echo");
        // The remembered last name answers only for itself.
        for _ in 0..2 {
            assert_eq!(short_kind("examples::Echo"), "Echo");
            assert_eq!(short_kind("examples::Echo<u8>"), "Echo");
            assert_eq!(short_kind("a::b::Tap"), "Tap");
        }
    }
}
