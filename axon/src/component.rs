//! The [`Component`] trait: a body, its box set, and the step it runs
//! (A1, A8).

#![allow(unsafe_code)] // `Wrapped::step`: a body's boxes, found from its unit

use std::borrow::Cow;
use std::cell::Cell;
use std::sync::Arc;

use crate::boxset::{BoxSet, BoxesRef, Declaration};
use crate::cx::Cx;
use crate::handle::Handle;
use crate::shared::Shared;

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

/// A component: a state machine with a set of boxes, stepped by a
/// scheduler (A1, A8).
///
/// `Boxes` is the component's box set: a struct with a field per box,
/// declared with [`boxes!`](crate::boxes), or Kamaelia's four defaults,
/// [`Standard`](crate::Standard). Axon makes the boxes when the component's
/// [`Handle`] is made and passes them to every step: `cx.inbox.recv()`,
/// `cx.outbox.send(msg)`, with every message type checked by the compiler.
///
/// `main` is called each time the component is scheduled; it does as much
/// work as is ready (drain inboxes, send results) and says whether it wants
/// to run again, sleep until woken, or finish. It must not block: a
/// component that needs to block (on a file, a terminal, a foreign library)
/// is activated as *threaded* instead, and then may block freely.
///
/// ```
/// use axon::{Component, Control, Cx, Standard, Step};
///
/// /// Adds up the numbers it is sent; says the total when told to stop.
/// #[derive(Default)]
/// struct Sum {
///     total: u64,
///     held: Option<u64>,
/// }
///
/// impl Component for Sum {
///     type Boxes = Standard<u64, u64>;
///
///     fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
///         while let Some(n) = cx.inbox.recv() {
///             self.total += n;
///         }
///         if let Some(msg) = cx.control.recv() {
///             self.held = Some(self.total);
///             let _ = msg;
///         }
///         if let Some(total) = self.held.take() {
///             // A5: a full destination gives the message back; keep it and
///             // pause until woken by space freeing.
///             if let Err(full) = cx.outbox.send(total) {
///                 self.held = Some(full.into_inner());
///                 return Step::Pause;
///             }
///             let _ = cx.signal.send(Control::ProducerFinished);
///             return Step::Done;
///         }
///         Step::Pause
///     }
/// }
/// ```
pub trait Component: Send + Sized + 'static {
    /// The component's boxes.
    type Boxes: BoxSet;

    /// Kamaelia's `threadedcomponent`: true for a component whose `main`
    /// blocks (on a terminal, a file, a foreign library). Activating it,
    /// by any means, runs it on an OS thread of its own (A8); it still
    /// talks through its boxes, and a `Step::Pause` parks its thread until
    /// it is woken.
    const THREADED: bool = false;

    /// One step of work (see the trait docs).
    fn main(&mut self, cx: &mut Cx<'_, Self::Boxes>) -> Step;

    /// A name for logs and errors. Defaults to the type's name.
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(crate::snapshot::short_kind(std::any::type_name::<Self>()))
    }

    /// Called once when the component's handle is made, before anyone else
    /// can see it: the place to set an inbox's size limit, or (for a
    /// component made of others) to link its boxes to its children's.
    fn created(&mut self, me: &Handle, boxes: &Self::Boxes) {
        let _ = (me, boxes);
    }

    /// For a component whose boxes are decided at run time
    /// (`type Boxes = DynamicBoxes`): their declaration. Not asked of
    /// typed box sets.
    fn dynamic_boxes(&self) -> Declaration {
        Declaration::new()
    }

    /// Reports counters the component keeps of its own to a snapshot
    /// ([`SchedulerHandle::snapshot`](crate::SchedulerHandle::snapshot)):
    /// a CSA reports the bytes it has read and written, say. Called on the
    /// scheduler's thread between steps, only when a snapshot is taken:
    /// keep it to a few [`Counters::add`]s of fields the component
    /// already updates (a plain `u64` bumped once per system call costs
    /// nothing measurable). Reports none by default.
    ///
    /// ```
    /// use axon::{Component, Counters, Cx, Standard, Step};
    ///
    /// struct Tally { seen: u64 }
    /// impl Component for Tally {
    ///     type Boxes = Standard<u32, ()>;
    ///     fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
    ///         while cx.inbox.recv().is_some() {
    ///             self.seen += 1;
    ///         }
    ///         Step::Pause
    ///     }
    ///     fn counters(&self, counters: &mut Counters<'_>) {
    ///         counters.add("seen", self.seen);
    ///     }
    /// }
    /// ```
    fn counters(&self, counters: &mut Counters<'_>) {
        let _ = counters;
    }
}

/// One counter a component reported ([`Component::counters`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counter {
    /// Its name (`bytes_in`, `bytes_out`, ...).
    pub name: &'static str,
    /// Its value when the snapshot was taken.
    pub value: u64,
}

/// Where [`Component::counters`] reports to.
#[derive(Debug)]
pub struct Counters<'a>(pub(crate) &'a mut Vec<Counter>);

impl Counters<'_> {
    /// Reports the counter `name` at `value`.
    pub fn add(&mut self, name: &'static str, value: u64) {
        self.0.push(Counter { name, value });
    }
}

/// What a step needs besides the body: the scheduler's side of [`Cx`].
pub(crate) struct Env<'a> {
    pub(crate) me: &'a Handle,
    pub(crate) shared: &'a Arc<Shared>,
    pub(crate) idle_service: &'a Cell<bool>,
}

/// A component's body, as its runner steps it: in its unit, after its
/// boxes ([`crate::unit`]).
pub(crate) trait Body: Send {
    fn step(&mut self, env: Env<'_>) -> Step;
    /// The component's type name, for snapshots: a method, so that it costs
    /// no memory per component.
    fn kind(&self) -> &'static str;
    /// The component's own counters ([`Component::counters`]).
    fn counters(&self, counters: &mut Counters<'_>);
}

/// A component as its runner steps it. Its boxes are not referred to:
/// they are in the same unit, reached from the handle every step is given.
pub(crate) struct Wrapped<C: Component> {
    component: C,
}

impl<C: Component> Body for Wrapped<C> {
    #[inline]
    fn step(&mut self, env: Env<'_>) -> Step {
        // SAFETY: a `Wrapped<C>` is made only by `Handle::new::<C>`, in a
        // unit for `C::Boxes`, and is stepped only with a handle on that
        // unit (its runner reached it through that handle).
        let boxes = unsafe { crate::unit::set_of::<C::Boxes>(env.me.0.wake()) };
        let mut cx = Cx {
            me: env.me,
            shared: env.shared,
            boxes,
            idle_service: env.idle_service,
        };
        self.component.main(&mut cx)
    }

    fn kind(&self) -> &'static str {
        std::any::type_name::<C>()
    }

    fn counters(&self, counters: &mut Counters<'_>) {
        self.component.counters(counters);
    }
}

impl Handle {
    /// Makes a component from its body: its boxes are made now, so it can
    /// be linked before it is activated.
    pub fn new<C: Component>(mut body: C) -> Handle {
        let dynamic = body.dynamic_boxes();
        let table = C::Boxes::__table(&dynamic);
        let (core, boxes) = crate::unit::make::<C::Boxes, Wrapped<C>>(table, &dynamic, body.name());
        if C::THREADED {
            core.wake().set_threaded();
        }
        let handle = Handle(core);
        body.created(&handle, &boxes);
        // SAFETY: the unit was made for `C::Boxes` and `Wrapped<C>` just
        // now, and only this handle (not yet given out) can activate it.
        unsafe {
            crate::unit::put_body::<C::Boxes, _>(handle.0.wake(), Wrapped { component: body })
        };
        handle
    }

    /// A handle with boxes and no body (an endpoint).
    pub(crate) fn without_body<B: BoxSet>(
        name: Cow<'static, str>,
        dynamic: &Declaration,
    ) -> (Handle, BoxesRef<B>) {
        let table = B::__table(dynamic);
        let (core, boxes) = crate::unit::make::<B, crate::unit::NoBody>(table, dynamic, name);
        (Handle(core), boxes)
    }
}

impl<C: Component> From<C> for Handle {
    fn from(body: C) -> Handle {
        Handle::new(body)
    }
}
