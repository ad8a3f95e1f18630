//! [`Handle`]: a component as others see it (Kamaelia's component object):
//! its boxes by name, its children (A7), the linkages it made.

use crate::sync::Mutex;
use rustc_hash::FxHashSet as HashSet;
use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::boxset::{BoxSet, BoxesRef};
use crate::declare::{BoxInfo, Direction};
use crate::error::{ActivateError, BoxError};
use crate::key::{BoxKey, BoxName};
use crate::linkage::LinkBook;
use crate::node::ErasedBox;
use crate::ports::Postbox;
use crate::sync::lock;
use crate::unit::{Claimed, CoreRef, WeakCore};
use crate::wake::{WakeCell, DONE};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) struct Core {
    pub(crate) id: u64,
    pub(crate) name: Name,
    /// Its parent, children and linkages: one lock for them all, as none
    /// is wanted often.
    pub(crate) family: Mutex<Family>,
}

/// A component's name: 16 bytes where a `Cow<'static, str>` takes 24, in
/// a record every component has. Most names are static (a type's); one
/// made at run time takes an allocation of its own.
pub(crate) enum Name {
    Static(&'static str),
    #[allow(clippy::box_collection, clippy::redundant_allocation)] // thin: see above
    Owned(Box<Box<str>>),
}

impl Name {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Name::Static(name) => name,
            Name::Owned(name) => name,
        }
    }

    /// The name, to keep (in a linkage's record, a snapshot).
    pub(crate) fn to_cow(&self) -> Cow<'static, str> {
        match self {
            Name::Static(name) => Cow::Borrowed(name),
            Name::Owned(name) => Cow::Owned(name.to_string()),
        }
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A component's parent, and its children and linkages if it has any.
/// (Its body is in its unit, after its boxes.)
pub(crate) struct Family {
    /// Woken (and told, if it watches) when this component ends (A7).
    pub(crate) parent: Option<WeakCore>,
    /// Made on first use: most components (one CSA and one handler per
    /// connection) never have children or make linkages.
    pub(crate) kin: Option<Box<Kin>>,
}

/// A component's children (A7) and the linkages it made (Kamaelia: its
/// postoffice).
#[derive(Default)]
pub(crate) struct Kin {
    /// Keyed by the handle itself (hashed by id): one word per child.
    pub(crate) children: HashSet<Handle>,
    pub(crate) links: LinkBook,
    /// Children that ended and have not been asked for yet; kept only
    /// once the component asks ([`Cx::ended_children`](crate::Cx::ended_children)).
    pub(crate) ended: Option<Vec<Handle>>,
}

impl Core {
    pub(crate) fn new(name: Cow<'static, str>) -> Core {
        let name = match name {
            Cow::Borrowed(name) => Name::Static(name),
            Cow::Owned(name) => Name::Owned(Box::new(name.into_boxed_str())),
        };
        Core {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            name,
            family: Mutex::new(Family {
                parent: None,
                kin: None,
            }),
        }
    }

    /// The wake cell this core is in, which also has the boxes (the same
    /// value the body's steps see, typed).
    #[inline]
    pub(crate) fn wake(&self) -> &WakeCell {
        WakeCell::of_core(self)
    }

    /// The `i`th box.
    pub(crate) fn port(&self, i: usize) -> Option<&dyn ErasedBox> {
        self.wake().set().port(i)
    }

    pub(crate) fn find(&self, name: &str, direction: Direction) -> Option<&dyn ErasedBox> {
        let i = self.wake().table().find(name, direction)?;
        self.port(i)
    }

    /// The box `name` stands for, either direction: by its place for a
    /// [`BoxKey`](crate::BoxKey) made from this component's type.
    pub(crate) fn find_named(&self, name: &impl BoxName) -> Option<&dyn ErasedBox> {
        let i = name.__index(self.wake().table())?;
        self.port(i)
    }

    /// As [`find_named`](Self::find_named), only if it goes `direction`.
    pub(crate) fn find_named_in(
        &self,
        name: &impl BoxName,
        direction: Direction,
    ) -> Option<&dyn ErasedBox> {
        let table = self.wake().table();
        let i = name.__index(table)?;
        if table.get(i)?.direction != direction {
            return None;
        }
        self.port(i)
    }

    /// True if any inbox holds a message (A2: Kamaelia's `anyReady`).
    pub(crate) fn any_ready(&self) -> bool {
        let table = self.wake().table();
        (0..table.len()).any(|i| {
            table
                .get(i)
                .is_some_and(|m| m.direction == Direction::Inbox)
                && self.port(i).is_some_and(|b| !b.is_empty())
        })
    }

    /// Runs `f` on this component's kin, making it if need be.
    pub(crate) fn kin<R>(&self, f: impl FnOnce(&mut Kin) -> R) -> R {
        f(lock(&self.family).kin.get_or_insert_with(Box::default))
    }

    /// Runs `f` on this component's kin if it has any.
    pub(crate) fn kin_if_any<R: Default>(&self, f: impl FnOnce(&mut Kin) -> R) -> R {
        lock(&self.family)
            .kin
            .as_deref_mut()
            .map(f)
            .unwrap_or_default()
    }

    fn no_such_box(&self, name: &str) -> BoxError {
        BoxError::NoSuchBox {
            component: self.name.to_string(),
            name: name.to_owned(),
        }
    }
}

/// A component: its boxes, linkages and children, shared by everyone who
/// holds a clone (Kamaelia's component object).
///
/// Make one from a component's body with [`Handle::new`] (or let anything
/// that takes `impl Into<Handle>`, such as
/// [`Scheduler::activate`](crate::Scheduler::activate), do it), link its
/// boxes by name, then activate it on a scheduler or from a parent's
/// [`Cx`](crate::Cx).
#[derive(Clone)]
pub struct Handle(pub(crate) CoreRef);

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.0.name, self.0.id)
    }
}

impl PartialEq for Handle {
    fn eq(&self, other: &Self) -> bool {
        CoreRef::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Handle {}

impl std::hash::Hash for Handle {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.id.hash(state);
    }
}

impl From<&Handle> for Handle {
    fn from(h: &Handle) -> Handle {
        h.clone()
    }
}

impl Handle {
    /// The component's name (for logs).
    pub fn name(&self) -> &str {
        self.0.name.as_str()
    }

    /// A process-unique number for this component.
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// Every box with its direction, description and message type (A1).
    pub fn boxes(&self) -> Vec<BoxInfo> {
        self.0.wake().table().iter().map(|m| m.info()).collect()
    }

    /// True if the component has a box called `name` (either direction).
    pub fn has_box(&self, name: &str) -> bool {
        self.0.wake().table().find_any(name).is_some()
    }

    /// The name and direction of every box, in declaration order, without
    /// copying anything: for code that looks for several optional boxes
    /// in one pass (ServerCore, per connection).
    pub fn box_names(&self) -> impl Iterator<Item = (&str, Direction)> + '_ {
        self.0
            .wake()
            .table()
            .iter()
            .map(|m| (m.name.as_ref(), m.direction))
    }

    /// True once the component has finished (returned
    /// [`Step::Done`](crate::Step::Done), panicked, or its scheduler
    /// stopped).
    pub fn is_done(&self) -> bool {
        self.0.wake().state() == DONE
    }

    /// True if the component ended by panicking.
    pub fn panicked(&self) -> bool {
        self.0.wake().panicked()
    }

    /// True once the component has been activated.
    pub fn is_activated(&self) -> bool {
        self.0.wake().is_activated()
    }

    /// The component's boxes, typed, if they are a `B`: for code outside
    /// the body that knows what the component is (tests, a parent).
    pub fn typed_boxes<B: BoxSet>(&self) -> Option<BoxesRef<B>> {
        BoxesRef::of(self.0.wake())
    }

    /// Sets (or, with `None`, removes) the size limit of an inbox (A5).
    /// Kamaelia: `inboxes[name].setSize(n)`. An inbox that passes through
    /// to a child's (a [`Pipeline`](crate::Pipeline)'s) holds no messages:
    /// the limit goes to the inbox at the end of the passthroughs, where
    /// they wait.
    pub fn set_inbox_size(
        &self,
        inbox: impl BoxName,
        limit: Option<usize>,
    ) -> Result<(), BoxError> {
        let b = self
            .0
            .find_named_in(&inbox, Direction::Inbox)
            .ok_or_else(|| self.0.no_such_box(inbox.__name()))?;
        match b.destination() {
            Some(last) => last.set_limit(limit),
            None => b.set_limit(limit),
        }
        Ok(())
    }

    /// The number of messages waiting in an inbox (0 for an unknown name).
    pub fn inbox_len(&self, inbox: &str) -> usize {
        self.0.find(inbox, Direction::Inbox).map_or(0, |b| b.len())
    }

    /// A typed sender straight into one of this component's inboxes,
    /// found by name (or [`BoxKey`]): Kamaelia's `(component, "inbox")`
    /// pair, as a service request names it. Errors: no such inbox, or it
    /// carries another type.
    pub fn postbox<T: Send + 'static>(&self, inbox: impl BoxName) -> Result<Postbox<T>, BoxError> {
        let b = self
            .0
            .find_named_in(&inbox, Direction::Inbox)
            .ok_or_else(|| self.0.no_such_box(inbox.__name()))?;
        let carries = b.message_type().1;
        b.as_any()
            .downcast_ref::<crate::node::Node<T>>()
            .map(|n| Postbox::from_node(n.to_ref()))
            .ok_or_else(|| BoxError::WrongType {
                name: inbox.__name().to_owned(),
                carries,
                asked: std::any::type_name::<T>(),
            })
    }

    /// The component whose box this one's linkage leads to (the next hop,
    /// Kamaelia's postoffice would say), if the box `name` is linked
    /// onwards and that component is still held by a handle. A server
    /// finds a connection's CSA from its handler's `signal` this way,
    /// keeping no map from handlers to connections.
    ///
    /// ```
    /// use axon::{link_boxes, Endpoint, Standard};
    ///
    /// let a = Endpoint::<Standard<u8, u8>>::new("a");
    /// let b = Endpoint::<Standard<u8, u8>>::new("b");
    /// assert!(a.handle().linked_to("outbox").is_none());
    /// link_boxes((a.handle(), "outbox"), (b.handle(), "inbox")).unwrap();
    /// assert_eq!(a.handle().linked_to("outbox").as_ref(), Some(b.handle()));
    /// ```
    pub fn linked_to(&self, name: impl BoxName) -> Option<Handle> {
        let next = self.0.find_named(&name)?.next_cell()?;
        WeakCore::of(next).upgrade().map(Handle)
    }

    /// A [`BoxKey`] for this component's box called `name`: found by its
    /// place in every component of this one's type, by name in any
    /// other. A name this component has no box of makes a key that goes
    /// by name.
    pub fn box_key(&self, name: impl Into<std::borrow::Cow<'static, str>>) -> BoxKey {
        BoxKey::found_in(name.into(), self.0.wake().table())
    }

    /// True if `key` was made from a component of this one's type (see
    /// [`box_key`](Self::box_key)): it finds its box here by its place.
    pub fn fits(&self, key: &BoxKey) -> bool {
        key.placed_in(self.0.wake().table())
    }

    /// Takes the oldest message from one of this component's inboxes, from
    /// outside its body (tests, inspection). Kamaelia: `_collect`.
    pub fn collect<T: Send + 'static>(&self, inbox: &str) -> Result<Option<T>, BoxError> {
        let b = self
            .0
            .find(inbox, Direction::Inbox)
            .ok_or_else(|| self.0.no_such_box(inbox))?;
        let carries = b.message_type().1;
        b.as_any()
            .downcast_ref::<crate::node::Node<T>>()
            .map(|n| n.pop())
            .ok_or_else(|| BoxError::WrongType {
                name: inbox.to_owned(),
                carries,
                asked: std::any::type_name::<T>(),
            })
    }

    /// Claims the body for a runner: errors if it was claimed before or
    /// there is none (an endpoint).
    pub(crate) fn claim_activation(&self) -> Result<Claimed, ActivateError> {
        Claimed::new(self.clone()).ok_or_else(|| {
            if self.0.wake().is_activated() {
                ActivateError::AlreadyActivated(self.0.name.to_string())
            } else {
                ActivateError::NoBody(self.0.name.to_string())
            }
        })
    }

    /// Called by the runner when the body returned `Done` (or panicked, or
    /// its scheduler stopped): unlinks what it made (Kamaelia's
    /// `_closeDownMicroprocess`) and tells its parent (A7).
    pub(crate) fn finish(&self) {
        let core = &self.0;
        core.wake().set_done();
        // What waits in its inboxes will never be taken, and later sends
        // are discarded (see `Node::push_locked`): freed now, so that no
        // message keeps its sender (or a socket it holds) alive.
        // (An outbox's `discard_all` does nothing: one pass over them all.)
        core.wake().set().discard_all();
        let links = core.kin_if_any(|k| std::mem::take(&mut k.links).all());
        for link in links {
            link.remove();
        }
        let parent = lock(&core.family).parent.take();
        if let Some(parent) = parent.and_then(|p| p.upgrade()) {
            parent.kin_if_any(|k| {
                if let Some(ended) = &mut k.ended {
                    ended.push(self.clone());
                }
            });
            parent.wake().wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{link_boxes, Control, Endpoint, Standard};

    /// Where `h`'s unit is, to ask later whether it was freed.
    fn unit_of(h: &Handle) -> usize {
        h.0.as_ptr() as usize
    }

    fn freed(unit: usize) -> bool {
        crate::unit::freed(unit)
    }

    /// Boxes live in their cell, and a linkage into a box counts its cell:
    /// two components linked both ways would keep each other's boxes for
    /// ever, were the linkages kept once nobody holds either component.
    #[test]
    fn two_components_linked_both_ways_are_freed_when_their_handles_go() {
        let a = Endpoint::<Standard<u8, u8>>::new("a");
        let b = Endpoint::<Standard<u8, u8>>::new("b");
        link_boxes((a.handle(), "outbox"), (b.handle(), "inbox")).unwrap();
        link_boxes((b.handle(), "outbox"), (a.handle(), "inbox")).unwrap();
        a.outbox.send(1).unwrap();
        assert_eq!(b.inbox.recv(), Some(1));
        let (wa, wb) = (unit_of(a.handle()), unit_of(b.handle()));
        drop(a);
        assert!(!freed(wa), "b's outbox still leads to a's inbox");
        drop(b);
        assert!(freed(wa) && freed(wb));
    }

    crate::boxes! {
        /// A set declared with the macro: its boxes are released (and
        /// emptied) by its own typed calls, not through `__each`.
        struct Declared {
            /// bytes in
            pub inbox: crate::Inbox<u8>,
            /// messages holding a count
            pub extra: crate::Inbox<std::sync::Arc<()>>,
            /// bytes out (never linked)
            pub outbox: crate::Outbox<u8>,
            /// bytes out, the last box
            pub late: crate::Outbox<u8>,
        }
    }

    /// As `two_components_linked_both_ways_are_freed_when_their_handles_go`,
    /// for a set declared with `boxes!`, through its last box, and with a
    /// message waiting in another: every box lets go.
    #[test]
    fn components_of_a_declared_set_let_go_of_every_box_with_their_last_handle() {
        let a = Endpoint::<Declared>::new("a");
        let b = Endpoint::<Declared>::new("b");
        link_boxes((a.handle(), "late"), (b.handle(), "inbox")).unwrap();
        link_boxes((b.handle(), "late"), (a.handle(), "inbox")).unwrap();
        let held = std::sync::Arc::new(());
        a.handle()
            .postbox::<std::sync::Arc<()>>("extra")
            .unwrap()
            .send(held.clone())
            .unwrap();
        let (wa, wb) = (unit_of(a.handle()), unit_of(b.handle()));
        drop(a);
        assert_eq!(std::sync::Arc::strong_count(&held), 1, "dropped with a");
        assert!(!freed(wa), "b's last box still leads to a's inbox");
        drop(b);
        assert!(freed(wa) && freed(wb));
    }

    /// A message waiting in a box may hold a reference to a box of the same
    /// component (here a postbox to its own `control`): dropped with the
    /// component, not kept by itself for ever.
    #[test]
    fn a_postbox_to_itself_waiting_in_its_own_inbox_does_not_keep_it() {
        let e = Endpoint::<Standard<Postbox<Control>, u8>>::new("e");
        let own_control = e.handle().postbox::<Control>("control").unwrap();
        e.handle()
            .postbox::<Postbox<Control>>("inbox")
            .unwrap()
            .send(own_control)
            .unwrap();
        assert_eq!(e.inbox.len(), 1);
        let w = unit_of(e.handle());
        drop(e);
        assert!(freed(w));
    }

    /// A postbox may outlive every handle on its inbox's component: sends
    /// into it are harmless, and the boxes go with the last postbox.
    #[test]
    fn a_postbox_outliving_its_component_keeps_its_box_until_it_goes() {
        let e = Endpoint::<Standard<u8, u8>>::new("e");
        let p = e.inbox.postbox();
        let w = unit_of(e.handle());
        drop(e);
        assert!(!freed(w));
        for i in 0..3 {
            let _ = p.send(i);
        }
        let q = p.clone();
        drop(p);
        assert!(!freed(w));
        assert!(q.same(&q.clone()));
        drop(q);
        assert!(freed(w));
    }
}
