//! Components, their handles and the context their body runs in (A1–A3, A7).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
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
    /// The boxes, in the order of the declaration kept in `wake` (names are
    /// looked up there, the box is found here by index).
    nodes: Box<[Arc<dyn ErasedBox>]>,
    pub(crate) wake: Arc<WakeCell>,
    /// Until activation (then it is its runner's; `wake` says it was
    /// activated). An [`Endpoint`](crate::Endpoint)'s handle has none.
    body: Mutex<Option<Box<dyn Component>>>,
    family: Mutex<Family>,
}

/// A component's parent, and its children and linkages if it has any.
struct Family {
    /// Woken when this component ends (A7).
    parent: Option<Arc<WakeCell>>,
    /// Made on first use: most components (one CSA and one handler per
    /// connection) never have children or make linkages.
    kin: Option<Box<Kin>>,
}

/// A component's children (A7) and the linkages it made (Kamaelia: its
/// postoffice).
#[derive(Default)]
struct Kin {
    /// Keyed by the handle itself (hashed by id): one word per child.
    children: HashSet<Handle>,
    links: LinkBook,
}

impl Core {
    fn find(&self, name: &str, direction: Direction) -> Option<&Arc<dyn ErasedBox>> {
        let i = self.wake.boxes().find(name, direction)?;
        self.nodes.get(i)
    }

    fn find_any(&self, name: &str) -> Option<&Arc<dyn ErasedBox>> {
        let i = self.wake.boxes().find_any(name)?;
        self.nodes.get(i)
    }

    /// Runs `f` on this component's kin, making it if need be.
    fn kin<R>(&self, f: impl FnOnce(&mut Kin) -> R) -> R {
        f(lock(&self.family).kin.get_or_insert_with(Box::default))
    }

    /// Runs `f` on this component's kin if it has any.
    fn kin_if_any<R: Default>(&self, f: impl FnOnce(&mut Kin) -> R) -> R {
        lock(&self.family)
            .kin
            .as_deref_mut()
            .map(f)
            .unwrap_or_default()
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
        let links = self.kin_if_any(|k| std::mem::take(&mut k.links).all());
        for link in links {
            link.remove();
        }
        let parent = lock(&self.family).parent.take();
        if let Some(parent) = parent {
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

impl std::hash::Hash for Handle {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.id.hash(state);
    }
}

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
        let wake = Arc::new(WakeCell::new(boxes.clone()));
        Handle(Arc::new(Core {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            name,
            nodes: boxes.build(&wake),
            wake,
            body: Mutex::new(body),
            family: Mutex::new(Family {
                parent: None,
                kin: None,
            }),
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
        self.0.nodes.iter().map(|b| b.info()).collect()
    }

    /// True if the component has a box called `name` (either direction).
    pub fn has_box(&self, name: &str) -> bool {
        self.0.find_any(name).is_some()
    }

    /// True once the component has finished.
    pub fn is_done(&self) -> bool {
        self.0.wake.state() == DONE
    }

    /// True once the component has been activated.
    pub fn is_activated(&self) -> bool {
        self.0.wake.is_activated()
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
        Ok(Postbox {
            node: self.typed_node::<T>(inbox, Direction::Inbox)?,
        })
    }

    /// One of this component's inboxes, for receiving without a lookup by
    /// name each time (see [`Inbox`]). Errors: no such inbox, or it carries
    /// another type.
    pub fn inbox<T: Send + 'static>(&self, name: &str) -> Result<Inbox<T>, BoxError> {
        Ok(Inbox {
            node: self.typed_node::<T>(name, Direction::Inbox)?,
        })
    }

    /// One of this component's outboxes, for sending without a lookup by
    /// name each time (see [`Outbox`]). It is meant for the component's own
    /// body: whoever holds it sends as this component (and this component
    /// is the one woken when a full destination frees space).
    pub fn outbox<T: Send + 'static>(&self, name: &str) -> Result<Outbox<T>, BoxError> {
        Ok(Outbox {
            node: self.typed_node::<T>(name, Direction::Outbox)?,
        })
    }

    fn typed_node<T: Send + 'static>(
        &self,
        name: &str,
        direction: Direction,
    ) -> Result<Arc<crate::boxes::Node<T>>, BoxError> {
        let b = self
            .0
            .find(name, direction)
            .ok_or_else(|| BoxError::NoSuchBox {
                component: self.0.name.to_string(),
                name: name.to_owned(),
            })?;
        let carries = b.message_type().1;
        b.clone()
            .into_any()
            .downcast::<crate::boxes::Node<T>>()
            .map_err(|_| BoxError::WrongType {
                name: name.to_owned(),
                carries,
                asked: std::any::type_name::<T>(),
            })
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
        let me = self.0.id;
        self.0.kin(|k| k.links.add(link.clone(), me));
        Ok(link)
    }

    /// Removes a linkage this component made; unknown links are ignored.
    pub fn unlink(&self, link: &Link) {
        let me = self.0.id;
        self.0.kin_if_any(|k| k.links.forget(link, me));
        link.remove();
    }

    /// Removes every linkage this component made that touches `other`.
    pub fn unlink_component(&self, other: &Handle) {
        let me = self.0.id;
        let removed = self
            .0
            .kin_if_any(|k| k.links.take_component(other.0.id, me));
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
        self.0.kin_if_any(|k| k.links.all())
    }

    /// Takes the oldest message from one of this component's inboxes, from
    /// outside its body (tests, inspection). Kamaelia: `_collect`.
    pub fn collect<T: Send + 'static>(&self, inbox: &str) -> Result<Option<T>, BoxError> {
        Ok(self.0.typed::<T>(inbox, Direction::Inbox)?.pop())
    }

    pub(crate) fn take_body(&self) -> Result<Box<dyn Component>, ActivateError> {
        let body = lock(&self.0.body).take();
        match body {
            Some(b) => {
                self.0.wake.set_activated();
                Ok(b)
            }
            None if self.is_activated() => {
                Err(ActivateError::AlreadyActivated(self.0.name.to_string()))
            }
            None => Err(ActivateError::NoBody(self.0.name.to_string())),
        }
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

/// One of a component's inboxes, found once by name and then used without
/// a lookup: the fast way for a component's body to receive.
/// [`Cx::recv`] finds the box by name on every call (Kamaelia's
/// `self.recv("inbox")`); a component on a hot path (the CSA, a protocol
/// handler) takes an `Inbox` in its first step and keeps it.
///
/// ```
/// use axon::{Boxes, Component, Cx, Handle, Inbox, Step};
///
/// struct Count {
///     inbox: Option<Inbox<u32>>,
///     total: u32,
/// }
///
/// impl Component for Count {
///     fn boxes(&self) -> Boxes {
///         Boxes::new().inbox::<u32>("inbox", "numbers to add")
///     }
///     fn main(&mut self, cx: &mut Cx<'_>) -> Step {
///         let me = cx.me().clone();
///         let inbox = self
///             .inbox
///             .get_or_insert_with(|| me.inbox("inbox").expect("declared above"));
///         while let Some(n) = inbox.recv() {
///             self.total += n;
///         }
///         Step::Pause
///     }
/// }
/// # let h = Handle::new(Count { inbox: None, total: 0 });
/// # assert!(h.inbox::<u32>("inbox").is_ok());
/// # assert!(h.inbox::<String>("inbox").is_err());
/// ```
pub struct Inbox<T> {
    node: Arc<crate::boxes::Node<T>>,
}

impl<T: Send + 'static> fmt::Debug for Inbox<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Inbox({})", ErasedBox::name(&*self.node))
    }
}

impl<T: Send + 'static> Inbox<T> {
    /// Takes the oldest message (A2); [`Cx::recv`] without the lookup.
    #[inline]
    pub fn recv(&self) -> Option<T> {
        self.node.pop()
    }

    /// The number of messages waiting.
    pub fn len(&self) -> usize {
        ErasedBox::len(&*self.node)
    }

    /// True if no message is waiting ([`Cx::data_ready`] negated).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A sender into this inbox, for someone else (a Selector request).
    pub fn postbox(&self) -> Postbox<T> {
        Postbox {
            node: self.node.clone(),
        }
    }
}

/// One of a component's outboxes, found once by name and then used without
/// a lookup: [`Cx::send`]'s fast form (see [`Inbox`]). A send that meets a
/// full inbox registers the outbox's owner to be woken when space frees
/// (A6), exactly as `Cx::send` does.
pub struct Outbox<T> {
    node: Arc<crate::boxes::Node<T>>,
}

impl<T: Send + 'static> fmt::Debug for Outbox<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Outbox({})", ErasedBox::name(&*self.node))
    }
}

impl<T: Send + 'static> Outbox<T> {
    /// Sends `msg` (A2–A6); [`Cx::send`] without the lookup.
    #[inline]
    pub fn send(&self, msg: T) -> Result<(), NoSpace<T>> {
        self.node
            .send(msg, Some(self.node.owner()))
            .map_err(|PushError::Full(m)| NoSpace(m))
    }

    /// True if sends currently reach an inbox ([`Cx::is_linked`]).
    pub fn is_linked(&self) -> bool {
        ErasedBox::is_linked(&*self.node)
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

/// Removes the linkage from `(component, box)` to `(component, box)` if
/// there is one, without its [`Link`]: for code that made many linkages
/// and would rather not keep a record of each (ServerCore makes four per
/// connection). Returns true if a linkage was removed; unknown boxes or no
/// such linkage: false.
pub fn unlink_boxes(src: (&Handle, &str), dst: (&Handle, &str)) -> bool {
    match (src.0 .0.find_any(src.1), dst.0 .0.find_any(dst.1)) {
        (Some(s), Some(d)) => s.clone().unlink_from(d),
        _ => false,
    }
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
            .nodes
            .iter()
            .any(|b| b.direction() == Direction::Inbox && b.len() > 0)
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
        lock(&child.0.family).parent = Some(self.me.0.wake.clone());
        self.me.0.kin(|k| k.children.insert(child.clone()));
        // A child that ended before adoption still wakes its new parent.
        if child.is_done() {
            self.me.0.wake.wake();
        }
    }

    /// Gives up `child` (A7) and removes every linkage this component made
    /// to or from it.
    pub fn remove_child(&mut self, child: &Handle) {
        self.me.0.kin_if_any(|k| k.children.remove(child));
        let mut family = lock(&child.0.family);
        if family
            .parent
            .as_ref()
            .is_some_and(|p| Arc::ptr_eq(p, &self.me.0.wake))
        {
            family.parent = None;
        }
        drop(family);
        self.me.unlink_component(child);
    }

    /// The current children.
    pub fn children(&self) -> Vec<Handle> {
        self.me
            .0
            .kin_if_any(|k| k.children.iter().cloned().collect())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_component_records_stay_small() {
        // Two components per connection: their records are idle memory.
        assert_eq!(std::mem::size_of::<Core>(), 104);
        assert_eq!(std::mem::size_of::<WakeCell>(), 40);
    }
}
