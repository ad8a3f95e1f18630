//! [`Cx`]: what a component's body can do while it runs.

use std::cell::Cell;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;

use crate::cat::Cat;
use crate::error::{ActivateError, LinkError, NoSpace};
use crate::handle::Handle;
use crate::linkage::Link;
use crate::ports::Postbox;
use crate::shared::{SchedulerHandle, Shared};
use crate::sync::lock;
use crate::unit::CellRef;

/// What a component's body can do while it runs: its boxes (as fields,
/// through `Deref`: `cx.inbox.recv()`, `cx.outbox.send(msg)`), and
/// Kamaelia's `self.link`, `self.addChildren`, `self.activate`, ….
///
/// `B` is the component's box set ([`Component::Boxes`](crate::Component::Boxes)).
pub struct Cx<'a, B> {
    pub(crate) me: &'a Handle,
    pub(crate) shared: &'a Arc<Shared>,
    pub(crate) boxes: &'a B,
    pub(crate) idle_service: &'a Cell<bool>,
}

impl<B> fmt::Debug for Cx<'_, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cx({:?})", self.me)
    }
}

impl<B> Deref for Cx<'_, B> {
    type Target = B;

    #[inline]
    fn deref(&self) -> &B {
        self.boxes
    }
}

impl<'a, B> Cx<'a, B> {
    /// This component.
    pub fn me(&self) -> &Handle {
        self.me
    }

    /// This component's boxes (also reached through `Deref`).
    pub fn boxes(&self) -> &'a B {
        self.boxes
    }

    /// Sends `msg` into the inbox `to` leads to, as this component: a full
    /// inbox gives it back as [`NoSpace`] (A5), and this component is then
    /// woken when space frees (A6), exactly as for a send out of its own
    /// outbox. For services that answer many requesters (a chat hub).
    pub fn send_to<T: Send + 'static>(&self, to: &Postbox<T>, msg: T) -> Result<(), NoSpace<T>> {
        to.send_waking(msg, self.me.0.wake())
    }

    /// True if any inbox holds a message (Kamaelia: `anyReady`).
    pub fn any_ready(&self) -> bool {
        self.me.0.any_ready()
    }

    /// Links two boxes; the linkage belongs to this component
    /// ([`Handle::link`]).
    pub fn link(&self, src: (&Handle, &str), dst: (&Handle, &str)) -> Result<Link, LinkError> {
        self.me.link(src, dst)
    }

    /// Removes a linkage this component made.
    pub fn unlink(&self, link: &Link) {
        self.me.unlink(link)
    }

    /// Adopts `child` (A7): this component is woken when it ends, and
    /// keeps it among its [`children`](Self::children).
    pub fn add_child(&self, child: &Handle) {
        self.me.0.kin(|k| k.children.insert(child.clone()));
        self.tie(child);
        child.0.wake().set_unlisted(false);
    }

    /// Gives up `child` (A7) and removes every linkage this component made
    /// to or from it.
    pub fn remove_child(&self, child: &Handle) {
        self.me.0.kin_if_any(|k| k.children.remove(child));
        self.disown(child);
        self.me.unlink_component(child);
    }

    /// A7 without the list: `child` wakes this component when it ends (and
    /// is then among its [`ended_children`](Self::ended_children)), as a
    /// child added with [`add_child`](Self::add_child) does, but it is not
    /// kept among its [`children`](Self::children). For a parent that
    /// keeps its children itself, such as a server that keeps each
    /// connection's components: no second record per child.
    ///
    /// ```
    /// use axon::{Component, Cx, Handle, Scheduler, Standard, Step};
    ///
    /// struct Quick;
    /// impl Component for Quick {
    ///     type Boxes = Standard<(), ()>;
    ///     fn main(&mut self, _: &mut Cx<Self::Boxes>) -> Step { Step::Done }
    /// }
    ///
    /// struct Server { child: Option<Handle>, heard: bool }
    /// impl Component for Server {
    ///     type Boxes = Standard<(), ()>;
    ///     fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
    ///         if let Some(child) = self.child.take() {
    ///             let _ = cx.ended_children(); // starts the list
    ///             cx.adopt(&child);
    ///             assert!(cx.children().is_empty()); // not listed
    ///             cx.activate(&child).unwrap();
    ///             return Step::Pause;
    ///         }
    ///         self.heard = !cx.ended_children().is_empty();
    ///         if self.heard { Step::Done } else { Step::Pause }
    ///     }
    /// }
    ///
    /// let scheduler = Scheduler::new();
    /// scheduler.activate(Server { child: Some(Handle::new(Quick)), heard: false }).unwrap();
    /// scheduler.run(); // returns: the server heard its child end, and ended
    /// ```
    ///
    /// A [snapshot](crate::SchedulerHandle::snapshot) still lists it among
    /// this component's children.
    pub fn adopt(&self, child: &Handle) {
        self.tie(child);
        child.0.wake().set_unlisted(true);
    }

    /// A7's tie: `child` tells this component when it ends.
    fn tie(&self, child: &Handle) {
        lock(&child.0.family).parent = Some(self.me.0.downgrade());
        // A child that ended before adoption still wakes its new parent.
        if child.is_done() {
            self.me.0.wake().wake();
        }
    }

    /// Undoes [`adopt`](Self::adopt): `child` no longer tells this
    /// component of its end (if this component is still its parent).
    pub fn disown(&self, child: &Handle) {
        let mut family = lock(&child.0.family);
        if family
            .parent
            .as_ref()
            .is_some_and(|p| std::ptr::eq(p.as_ptr(), self.me.0.as_ptr()))
        {
            family.parent = None;
            child.0.wake().set_unlisted(false);
        }
    }

    /// The children that ended since the last call (A7: which ones woke
    /// this component), for a parent with many children, such as a server
    /// with one handler per connection. A component that never calls it
    /// keeps no such list; one that does should call it whenever it is
    /// woken.
    pub fn ended_children(&self) -> Vec<Handle> {
        self.me
            .0
            .kin(|k| std::mem::take(k.ended.get_or_insert_with(Vec::new)))
    }

    /// As [`ended_children`](Self::ended_children), appended to `into`:
    /// for a parent that is told of ends all the time (a server, one
    /// handler and one CSA per connection), with no list made for each
    /// call and none for the ends that follow (both lists keep their
    /// memory).
    ///
    /// ```
    /// # use axon::{Component, Cx, Handle, Standard, Step};
    /// struct Parent { ended: Vec<Handle> }
    /// impl Component for Parent {
    ///     type Boxes = Standard<(), ()>;
    ///     fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
    ///         cx.ended_children_into(&mut self.ended);
    ///         for child in self.ended.drain(..) {
    ///             let _ = child.panicked(); // …
    ///         }
    ///         Step::Pause
    ///     }
    /// }
    /// ```
    pub fn ended_children_into(&self, into: &mut Vec<Handle>) {
        self.me
            .0
            .kin(|k| into.append(k.ended.get_or_insert_with(Vec::new)));
    }

    /// The current children.
    pub fn children(&self) -> Vec<Handle> {
        self.me
            .0
            .kin_if_any(|k| k.children.iter().cloned().collect())
    }

    /// Activates a component on this component's scheduler and returns its
    /// handle.
    pub fn activate(&self, component: impl Into<Handle>) -> Result<Handle, ActivateError> {
        self.scheduler().activate(component)
    }

    /// Activates a component on an OS thread of its own (A8).
    pub fn activate_threaded(&self, component: impl Into<Handle>) -> Result<Handle, ActivateError> {
        self.scheduler().activate_threaded(component)
    }

    /// Asks to be woken (A6) no later than `when`, even if nothing else
    /// happens: a timer. Not in Kamaelia's Axon, which has no timers; here
    /// it is what bounds waits such as the CSA's linger time (C7) without a
    /// polling loop. The wake-up may come early (any other wake-up) and
    /// comes once per call; a component that ends before it is simply not
    /// woken.
    pub fn wake_at(&self, when: Instant) {
        self.shared.add_timer(when, CellRef::from(self.me.0.wake()));
    }

    /// Says whether this component is a service with nothing to serve (the
    /// Selector, while no socket is registered with it). The scheduler's
    /// [`run`](crate::Scheduler::run) returns once only such components
    /// are left, as Kamaelia's did when its Selector went idle; a service
    /// that has work keeps it running. Starts false; a threaded component's
    /// call is ignored.
    pub fn set_idle_service(&self, idle: bool) {
        self.idle_service.set(idle);
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
