//! Components, their handles and the context their body runs in (A1–A3, A7).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::boxes::{typed, BoxInfo, Boxes, Direction, ErasedBox, PushError};
use crate::cat::Cat;
use crate::error::{ActivateError, BoxError, LinkError, NoSpace};
use crate::scheduler::{SchedulerHandle, Shared};
use crate::wake::{lock, WakeCell, DONE};

/// What a component's [`main`](Component::main) tells its scheduler.
///
/// Kamaelia's generators `yield 1` to stay runnable, call `self.pause()` and
/// then `yield` to sleep, and `return` to finish; these are the three
/// answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Run me again soon (after every other runnable component has had a
    /// turn). Kamaelia: `yield 1`.
    Continue,
    /// Nothing to do: sleep, using no CPU, until woken (A6). Kamaelia:
    /// `self.pause(); yield 1`.
    Pause,
    /// Finished: the component ends, its linkages are removed and its parent
    /// is woken (A7). Kamaelia: `return`.
    Done,
}

/// The body of a component: a state machine the scheduler steps (A1, A8).
///
/// `main` is called each time the component is scheduled; it does as much
/// work as is ready (drain inboxes, send results) and says whether it wants
/// to run again, sleep until woken, or finish. It must not block: a component
/// that needs to block (on a file, a terminal, a foreign library) is
/// activated as *threaded* instead, and then may block freely.
pub trait Component: Send + 'static {
    /// The boxes this component has, created once when its
    /// [`Handle`] is made.
    fn boxes(&self) -> Boxes;

    /// A name for logs and errors. Defaults to the type's name.
    fn name(&self) -> Cow<'static, str> {
        let full = std::any::type_name::<Self>();
        Cow::Borrowed(full.rsplit("::").next().unwrap_or(full))
    }

    /// One step of work (see the trait docs).
    fn main(&mut self, cx: &mut Cx<'_>) -> Step;
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) struct Core {
    id: u64,
    name: Cow<'static, str>,
    /// Each box with its name and direction kept beside it, so that the
    /// per-message lookup by name is a scan of plain data (no virtual call).
    boxes: Vec<(Cow<'static, str>, Direction, Arc<dyn ErasedBox>)>,
    pub(crate) wake: Arc<WakeCell>,
    pub(crate) body: Mutex<Option<Box<dyn Component>>>,
    parent: Mutex<Option<Arc<WakeCell>>>,
    children: Mutex<HashMap<u64, Handle>>,
    /// Linkages this component made (Kamaelia: its postoffice).
    links: Mutex<LinkBook>,
    activated: std::sync::atomic::AtomicBool,
}

/// Box names are usually the same string literal at both ends (declared
/// and asked for in one crate): compare the pointers before the bytes.
#[inline]
fn same_name(a: &str, b: &str) -> bool {
    a.len() == b.len() && (std::ptr::eq(a.as_ptr(), b.as_ptr()) || a == b)
}

impl Core {
    fn find(&self, name: &str, direction: Direction) -> Option<&Arc<dyn ErasedBox>> {
        self.boxes
            .iter()
            .find(|(n, d, _)| *d == direction && same_name(n, name))
            .map(|(_, _, b)| b)
    }

    fn find_any(&self, name: &str) -> Option<&Arc<dyn ErasedBox>> {
        self.boxes
            .iter()
            .find(|(n, _, _)| same_name(n, name))
            .map(|(_, _, b)| b)
    }

    pub(crate) fn typed<T: Send + 'static>(
        &self,
        name: &str,
        direction: Direction,
    ) -> Result<&crate::boxes::Node<T>, BoxError> {
        let b = self
            .find(name, direction)
            .ok_or_else(|| BoxError::NoSuchBox {
                component: self.name.to_string(),
                name: name.to_owned(),
            })?;
        typed::<T>(&**b).ok_or_else(|| BoxError::WrongType {
            name: name.to_owned(),
            carries: b.message_type().1,
            asked: std::any::type_name::<T>(),
        })
    }

    /// Called by the runner when the body returned `Done` (or panicked).
    pub(crate) fn finish(&self) {
        self.wake.set_done();
        // Kamaelia's `_closeDownMicroprocess`: unlink everything it made.
        for link in std::mem::take(&mut *lock(&self.links)).all() {
            link.remove();
        }
        if let Some(parent) = lock(&self.parent).take() {
            parent.wake();
        }
    }
}

/// The linkages a component made (Kamaelia: its postoffice), filed under
/// each *other* component they touch, so that removing a child finds its
/// linkages without scanning every linkage the parent ever made (a
/// ServerCore makes four per connection).
#[derive(Default)]
struct LinkBook {
    by_component: HashMap<u64, Vec<Link>>,
}

impl LinkBook {
    /// The components a linkage is filed under: its ends other than `me`
    /// (or `me`, for a linkage between two of its own boxes).
    fn keys(link: &Link, me: u64) -> [Option<u64>; 2] {
        let src = (link.src_owner != me).then_some(link.src_owner);
        let dst =
            (link.dst_owner != me && link.dst_owner != link.src_owner).then_some(link.dst_owner);
        match (src, dst) {
            (None, None) => [Some(me), None],
            keys => [keys.0, keys.1],
        }
    }

    fn add(&mut self, link: Link, me: u64) {
        for key in Self::keys(&link, me).into_iter().flatten() {
            let links = self.by_component.entry(key).or_default();
            // Buckets hold a handful of linkages: grow them one at a time
            // rather than to Vec's minimum of four (memory per connection).
            links.reserve_exact(1);
            links.push(link.clone());
        }
    }

    fn forget(&mut self, link: &Link, me: u64) {
        for key in Self::keys(link, me).into_iter().flatten() {
            if let Some(links) = self.by_component.get_mut(&key) {
                links.retain(|l| l.id != link.id);
                if links.is_empty() {
                    self.by_component.remove(&key);
                }
            }
        }
    }

    /// Removes and returns every linkage touching `component`.
    fn take_component(&mut self, component: u64, me: u64) -> Vec<Link> {
        let links = self.by_component.remove(&component).unwrap_or_default();
        for link in &links {
            self.forget(link, me);
        }
        links
    }

    /// Every linkage, once each.
    fn all(&self) -> Vec<Link> {
        let mut seen = std::collections::HashSet::new();
        self.by_component
            .values()
            .flatten()
            .filter(|l| seen.insert(l.id))
            .cloned()
            .collect()
    }
}

/// A component: its boxes, linkages and children, shared by everyone who
/// holds a clone (Kamaelia's component object).
///
/// Create one with [`Handle::new`], link its boxes by name, then activate it
/// on a [`Scheduler`](crate::Scheduler) or from a parent's [`Cx`].
#[derive(Clone)]
pub struct Handle(pub(crate) Arc<Core>);

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.0.name, self.0.id)
    }
}

impl PartialEq for Handle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Handle {}

impl Handle {
    /// Creates a component from its body; its boxes are created now, so it
    /// can be linked before it is activated.
    pub fn new(body: impl Component) -> Handle {
        let name = body.name();
        let boxes = body.boxes();
        Handle::build(name, &boxes, Some(Box::new(body)))
    }

    pub(crate) fn build(
        name: Cow<'static, str>,
        boxes: &Boxes,
        body: Option<Box<dyn Component>>,
    ) -> Handle {
        let wake = Arc::new(WakeCell::new());
        Handle(Arc::new(Core {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            name,
            boxes: boxes.build(&wake),
            wake,
            body: Mutex::new(body),
            parent: Mutex::new(None),
            children: Mutex::new(HashMap::new()),
            links: Mutex::new(LinkBook::default()),
            activated: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// The component's name (for logs).
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// A process-unique number for this component.
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// Every box with its direction, description and message type (A1).
    pub fn boxes(&self) -> Vec<BoxInfo> {
        self.0.boxes.iter().map(|(_, _, b)| b.info()).collect()
    }

    /// True once the component has finished.
    pub fn is_done(&self) -> bool {
        self.0.wake.state() == DONE
    }

    /// True once the component has been activated.
    pub fn is_activated(&self) -> bool {
        self.0.activated.load(Ordering::Acquire)
    }

    /// Sets (or, with `None`, removes) the size limit of an inbox (A5).
    /// Kamaelia: `inboxes[name].setSize(n)`.
    pub fn set_inbox_size(&self, inbox: &str, limit: Option<usize>) -> Result<(), BoxError> {
        let b = self
            .0
            .find(inbox, Direction::Inbox)
            .ok_or_else(|| BoxError::NoSuchBox {
                component: self.0.name.to_string(),
                name: inbox.to_owned(),
            })?;
        b.set_limit(limit);
        Ok(())
    }

    /// The number of messages waiting in an inbox (0 for an unknown name).
    pub fn inbox_len(&self, inbox: &str) -> usize {
        self.0.find(inbox, Direction::Inbox).map_or(0, |b| b.len())
    }

    /// A typed sender straight into one of this component's inboxes, for
    /// code that is not a component (or a service, like the Selector, that
    /// answers requests naming `(component, inbox)`). Sends follow any
    /// passthrough linkage of the inbox.
    pub fn postbox<T: Send + 'static>(&self, inbox: &str) -> Result<Postbox<T>, BoxError> {
        self.0.typed::<T>(inbox, Direction::Inbox)?;
        let b = self.0.find(inbox, Direction::Inbox).cloned();
        let node = b
            .and_then(|b| b.into_any().downcast::<crate::boxes::Node<T>>().ok())
            .ok_or_else(|| BoxError::NoSuchBox {
                component: self.0.name.to_string(),
                name: inbox.to_owned(),
            })?;
        Ok(Postbox { node })
    }

    /// Links `src` to `dst` as a linkage owned by this component (A3): it is
    /// removed when this component ends or removes the other as a child.
    ///
    /// outbox→inbox is an ordinary link; inbox→inbox and outbox→outbox are
    /// passthrough links (Kamaelia's `passthrough=1` and `=2`, inferred from
    /// the box directions). Errors: unknown box, different message types,
    /// the source already linked, inbox→outbox, or a loop.
    pub fn link(&self, src: (&Handle, &str), dst: (&Handle, &str)) -> Result<Link, LinkError> {
        let link = link(src, dst)?;
        lock(&self.0.links).add(link.clone(), self.0.id);
        Ok(link)
    }

    /// Removes a linkage this component made; unknown links are ignored.
    pub fn unlink(&self, link: &Link) {
        lock(&self.0.links).forget(link, self.0.id);
        link.remove();
    }

    /// Removes every linkage this component made that touches `other`.
    pub fn unlink_component(&self, other: &Handle) {
        let removed = lock(&self.0.links).take_component(other.0.id, self.0.id);
        for link in removed {
            link.remove();
        }
    }

    /// True if what is sent out of this component's `outbox` arrives in
    /// `dst`'s inbox (directly or through passthroughs): for checking
    /// wiring, whoever made the linkage.
    pub fn leads_to(&self, outbox: &str, dst: (&Handle, &str)) -> bool {
        let (Some(src), Some(inbox)) = (
            self.0.find(outbox, Direction::Outbox),
            dst.0 .0.find(dst.1, Direction::Inbox),
        ) else {
            return false;
        };
        src.clone().destination().is_some_and(|d| d.same(&**inbox))
    }

    /// The linkages this component made and still holds.
    pub fn links(&self) -> Vec<Link> {
        lock(&self.0.links).all()
    }

    /// Takes the oldest message from one of this component's inboxes, from
    /// outside its body (tests, inspection). Kamaelia: `_collect`.
    pub fn collect<T: Send + 'static>(&self, inbox: &str) -> Result<Option<T>, BoxError> {
        Ok(self.0.typed::<T>(inbox, Direction::Inbox)?.pop())
    }

    pub(crate) fn take_body(&self) -> Result<Box<dyn Component>, ActivateError> {
        let body = lock(&self.0.body).take();
        if body.is_some() {
            self.0.activated.store(true, Ordering::Release);
        }
        body.ok_or_else(|| {
            if self.is_activated() {
                ActivateError::AlreadyActivated(self.0.name.to_string())
            } else {
                ActivateError::NoBody(self.0.name.to_string())
            }
        })
    }

    fn box_named(&self, name: &str) -> Result<Arc<dyn ErasedBox>, LinkError> {
        self.0
            .find_any(name)
            .cloned()
            .ok_or_else(|| LinkError::NoSuchBox {
                component: self.0.name.to_string(),
                name: name.to_owned(),
            })
    }

    pub(crate) fn erased_box(
        &self,
        name: &str,
        direction: Direction,
    ) -> Option<Arc<dyn ErasedBox>> {
        self.0.find(name, direction).cloned()
    }
}

/// A typed sender into one inbox; see [`Handle::postbox`].
pub struct Postbox<T> {
    node: Arc<crate::boxes::Node<T>>,
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
        write!(f, "Postbox({})", ErasedBox::name(&*self.node))
    }
}

impl<T: Send + 'static> Postbox<T> {
    /// Delivers `msg` and wakes the owner; gives it back if the inbox is
    /// full (A5).
    pub fn send(&self, msg: T) -> Result<(), NoSpace<T>> {
        self.node
            .send(msg, None)
            .map_err(|PushError::Full(m)| NoSpace(m))
    }
}

static NEXT_LINK: AtomicU64 = AtomicU64::new(1);

/// A linkage between two boxes (A3), as returned by [`link`]. Pass it to
/// [`unlink`] (or [`Handle::unlink`]) to remove it.
#[derive(Clone)]
pub struct Link {
    id: u64,
    src: Arc<dyn ErasedBox>,
    dst: Arc<dyn ErasedBox>,
    src_owner: u64,
    dst_owner: u64,
    /// For `Debug` only; weak, so that a linkage kept by one component
    /// never keeps another alive.
    src_core: std::sync::Weak<Core>,
    dst_core: std::sync::Weak<Core>,
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |c: &std::sync::Weak<Core>| {
            c.upgrade()
                .map_or(Cow::Borrowed("(ended)"), |c| c.name.clone())
        };
        write!(
            f,
            "{}.{} -> {}.{}",
            name(&self.src_core),
            self.src.name(),
            name(&self.dst_core),
            self.dst.name()
        )
    }
}

impl Link {
    fn remove(&self) {
        self.src.clone().unlink_from(&self.dst);
    }

    /// True if this linkage leaves `(component, box)`.
    pub fn is_from(&self, component: &Handle, name: &str) -> bool {
        self.src_owner == component.id() && self.src.name() == name
    }
}

/// Links `(component, box)` to `(component, box)` (A3), owned by nobody:
/// it lasts until [`unlink`]. See [`Handle::link`] for the rules.
pub fn link(src: (&Handle, &str), dst: (&Handle, &str)) -> Result<Link, LinkError> {
    let s = src.0.box_named(src.1)?;
    let d = dst.0.box_named(dst.1)?;
    let (s_type, s_name) = s.message_type();
    let (d_type, d_name) = d.message_type();
    if s_type != d_type {
        return Err(LinkError::TypeMismatch {
            source: format!("{}.{}", src.0.name(), src.1),
            source_type: s_name,
            sink: format!("{}.{}", dst.0.name(), dst.1),
            sink_type: d_name,
        });
    }
    s.clone().link_to(d.clone()).map_err(|e| match e {
        LinkError::AlreadyLinked { existing, .. } => LinkError::AlreadyLinked {
            source: format!("{}.{}", src.0.name(), src.1),
            existing,
        },
        other => other,
    })?;
    let link = Link {
        id: NEXT_LINK.fetch_add(1, Ordering::Relaxed),
        src: s,
        dst: d,
        src_owner: src.0.id(),
        dst_owner: dst.0.id(),
        src_core: Arc::downgrade(&src.0 .0),
        dst_core: Arc::downgrade(&dst.0 .0),
    };
    log::trace!("link {link:?}");
    Ok(link)
}

/// Removes a linkage (A3): later sends on its source no longer reach the old
/// destination. Removing one already gone does nothing.
pub fn unlink(link: &Link) {
    log::trace!("unlink {:?}", link);
    link.remove();
}

/// What a component's body can do while it runs: Kamaelia's `self.send`,
/// `self.recv`, `self.link`, `self.addChildren`, ….
///
/// # Panics
///
/// `send`, `recv` and `data_ready` name boxes by string, as Kamaelia does.
/// Naming a box the component does not have, or using the wrong message
/// type, is a bug in the component's code, not a runtime condition: it
/// panics with a message naming the box. The runner catches the panic, logs
/// it at `error`, and ends that component alone; every other component goes
/// on.
pub struct Cx<'a> {
    pub(crate) me: &'a Handle,
    pub(crate) shared: &'a Arc<Shared>,
}

impl fmt::Debug for Cx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cx({:?})", self.me)
    }
}

fn misuse(e: BoxError) -> ! {
    panic!("{e}")
}

impl<'a> Cx<'a> {
    /// This component.
    pub fn me(&self) -> &Handle {
        self.me
    }

    /// Takes the oldest message waiting in `inbox` (A2).
    pub fn recv<T: Send + 'static>(&mut self, inbox: &str) -> Option<T> {
        match self.me.0.typed::<T>(inbox, Direction::Inbox) {
            Ok(node) => node.pop(),
            Err(e) => misuse(e),
        }
    }

    /// Sends `msg` out of `outbox` (A2). An unlinked outbox discards it (A4).
    /// A full destination gives it back as [`NoSpace`] (A5); this component
    /// is then woken when space frees (A6).
    pub fn send<T: Send + 'static>(&mut self, msg: T, outbox: &str) -> Result<(), NoSpace<T>> {
        match self.me.0.typed::<T>(outbox, Direction::Outbox) {
            Ok(node) => node
                .send(msg, Some(&self.me.0.wake))
                .map_err(|PushError::Full(m)| NoSpace(m)),
            Err(e) => misuse(e),
        }
    }

    /// True if `inbox` holds a message (A2).
    pub fn data_ready(&self, inbox: &str) -> bool {
        match self.me.0.find(inbox, Direction::Inbox) {
            Some(b) => b.len() > 0,
            None => misuse(BoxError::NoSuchBox {
                component: self.me.0.name.to_string(),
                name: inbox.to_owned(),
            }),
        }
    }

    /// True if sends out of `outbox` currently reach an inbox (false: they
    /// would be discarded, A4). Panics on an unknown outbox, as `send` does.
    pub fn is_linked(&self, outbox: &str) -> bool {
        match self.me.0.find(outbox, Direction::Outbox) {
            Some(b) => b.is_linked(),
            None => misuse(BoxError::NoSuchBox {
                component: self.me.0.name.to_string(),
                name: outbox.to_owned(),
            }),
        }
    }

    /// True if any inbox holds a message (A2).
    pub fn any_ready(&self) -> bool {
        self.me
            .0
            .boxes
            .iter()
            .any(|(_, d, b)| *d == Direction::Inbox && b.len() > 0)
    }

    /// Links two boxes; the linkage belongs to this component
    /// ([`Handle::link`]).
    pub fn link(&mut self, src: (&Handle, &str), dst: (&Handle, &str)) -> Result<Link, LinkError> {
        self.me.link(src, dst)
    }

    /// Removes a linkage this component made.
    pub fn unlink(&mut self, link: &Link) {
        self.me.unlink(link)
    }

    /// Adopts `child` (A7): this component is woken when it ends.
    pub fn add_child(&mut self, child: &Handle) {
        *lock(&child.0.parent) = Some(self.me.0.wake.clone());
        lock(&self.me.0.children).insert(child.id(), child.clone());
        // A child that ended before adoption still wakes its new parent.
        if child.is_done() {
            self.me.0.wake.wake();
        }
    }

    /// Gives up `child` (A7) and removes every linkage this component made
    /// to or from it.
    pub fn remove_child(&mut self, child: &Handle) {
        lock(&self.me.0.children).remove(&child.id());
        let mut parent = lock(&child.0.parent);
        if parent
            .as_ref()
            .is_some_and(|p| Arc::ptr_eq(p, &self.me.0.wake))
        {
            *parent = None;
        }
        drop(parent);
        self.me.unlink_component(child);
    }

    /// The current children.
    pub fn children(&self) -> Vec<Handle> {
        lock(&self.me.0.children).values().cloned().collect()
    }

    /// Activates `component` on this component's scheduler.
    pub fn activate(&mut self, component: &Handle) -> Result<(), ActivateError> {
        self.scheduler().activate(component)
    }

    /// Activates `component` on an OS thread of its own (A8).
    pub fn activate_threaded(&mut self, component: &Handle) -> Result<(), ActivateError> {
        self.scheduler().activate_threaded(component)
    }

    /// Asks to be woken (A6) no later than `when`, even if nothing else
    /// happens: a timer. Not in Kamaelia's Axon, which has no timers; here
    /// it is what bounds waits such as the CSA's linger time (C7) without a
    /// polling loop. The wake-up may come early (any other wake-up) and
    /// comes once per call; a component that ends before it is simply not
    /// woken.
    pub fn wake_at(&mut self, when: std::time::Instant) {
        self.shared.add_timer(when, self.me.0.wake.clone());
    }

    /// The Coordinating Assistant Tracker of this scheduler (A9).
    pub fn cat(&self) -> &Cat {
        &self.shared.cat
    }

    /// A handle on the scheduler this component runs under.
    pub fn scheduler(&self) -> SchedulerHandle {
        SchedulerHandle {
            shared: self.shared.clone(),
        }
    }
}
