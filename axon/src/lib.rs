//! # Axon: Kamaelia's component model in Rust
//!
//! A *component* is a small state machine with named **inboxes** and
//! **outboxes**. Components never call each other: they send messages out of
//! their outboxes, and a **linkage** decides which inbox those messages land
//! in. A cooperative **scheduler** runs many thousands of components on one
//! thread, waking each only when it has work (rules A1–A11 of the project's
//! `docs/PROTOCOL.md`).
//!
//! ## Hello, Pipeline
//!
//! The classic Kamaelia first program is a producer piped into a consumer.
//! In Python:
//!
//! ```python
//! Pipeline(Producer(["hello", "world"]), Consumer()).run()
//! ```
//!
//! In Rust:
//!
//! ```
//! use axon::{Component, Control, Cx, Pipeline, Scheduler, Standard, Step};
//! use std::sync::{Arc, Mutex};
//!
//! /// Sends each item out of `outbox`, then `producerFinished` out of `signal`.
//! struct Producer(Vec<String>);
//!
//! impl Component for Producer {
//!     type Boxes = Standard<(), String>; // inbox, control, outbox, signal
//!
//!     fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
//!         while let Some(item) = self.0.pop() {
//!             if let Err(full) = cx.outbox.send(item) {
//!                 self.0.push(full.into_inner()); // A5: keep it, wait for space
//!                 return Step::Pause;
//!             }
//!         }
//!         let _ = cx.signal.send(Control::ProducerFinished);
//!         Step::Done
//!     }
//! }
//!
//! /// Collects what arrives in `inbox` until told the producer finished.
//! struct Consumer(Arc<Mutex<Vec<String>>>);
//!
//! impl Component for Consumer {
//!     type Boxes = Standard<String, ()>;
//!
//!     fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
//!         while let Some(item) = cx.inbox.recv() {
//!             self.0.lock().unwrap().push(item);
//!         }
//!         match cx.control.recv() {
//!             Some(c) if c.is_producer_finished() => Step::Done,
//!             _ => Step::Pause, // sleep until a message arrives
//!         }
//!     }
//! }
//!
//! let seen = Arc::new(Mutex::new(Vec::new()));
//! let words = vec!["world".to_string(), "hello".to_string()];
//! let pipeline = Pipeline::new(vec![Producer(words).into(), Consumer(seen.clone()).into()]).unwrap();
//! let scheduler = Scheduler::new();
//! scheduler.activate(pipeline).unwrap();
//! scheduler.run(); // returns when every component has finished
//! assert_eq!(*seen.lock().unwrap(), ["hello", "world"]);
//! ```
//!
//! ## The author's view: `main` is one step of a state machine
//!
//! Kamaelia components are Python generators: `main` loops, and each
//! `yield` hands control back to the scheduler. Here a component implements
//! [`Component::main`], which the scheduler calls each time the component
//! is runnable. It drains what is ready and answers with a [`Step`]:
//! `Continue` (Kamaelia's `yield 1`), `Pause` (`self.pause(); yield`) or
//! `Done` (`return`). State that a generator keeps in local variables lives
//! in the component's fields.
//!
//! We chose this over `async fn` bodies because it is what Kamaelia
//! authors already write (a loop body that checks its inboxes), it has no
//! hidden state machine or pinning, and it costs exactly one virtual call per
//! step: no allocation, no waker clone, no future polled through layers. A
//! step that handles a thousand messages is still one call.
//!
//! ## Boxes are typed fields
//!
//! A component's boxes are a struct, its [`Component::Boxes`]: Kamaelia's
//! four defaults ([`Standard`]) or a set declared with [`boxes!`]. Axon
//! makes them with the component and hands them to every step through
//! [`Cx`], so `cx.inbox.recv()` and `cx.outbox.send(msg)` are checked by
//! the compiler and look nothing up while the component runs. Names stay
//! Kamaelia's, and are strings wherever they come from outside at run
//! time: [`link`]`((&a, "outbox"), (&b, "inbox"))`, [`Graphline`],
//! [`Handle::postbox`]. A linkage compares the two boxes' types *when it is
//! made* and refuses a mismatch with [`LinkError::TypeMismatch`], so a
//! delivery never meets the wrong type and messages travel unboxed.
//!
//! ## Waking, and what it costs (A6)
//!
//! A paused component is not looked at again until something wakes it: a
//! message arriving in one of its inboxes, space freeing in a full inbox it
//! tried to send to, or one of its children ending. Waking a component that
//! is already queued is one atomic load; waking a paused one is one
//! compare-and-swap and one push onto its scheduler's run queue. When no
//! component is runnable the scheduler blocks in its [`Reactor`] (by default
//! it parks the thread): an idle system uses no CPU and no timer.
//!
//! ## Seeing it run
//!
//! [`SchedulerHandle::snapshot`] lists every component a scheduler runs
//! ([`Snapshot`]): its name, kind, state, parent and children, each box
//! with its queue length, limit, high-water mark and delivered count, and
//! every linkage, passthroughs included. The scheduler takes it itself,
//! between two steps, only when asked. The counters are always on: each
//! inbox counts under the lock a delivery already holds, in what was
//! padding, so they cost no memory and no atomic. The `introspect` crate
//! serves snapshots as a live page, `graph.json` and `graph.dot`.
//!
//! ## Names: Kamaelia → Rust
//!
//! | Kamaelia                               | here                                   |
//! |----------------------------------------|----------------------------------------|
//! | `component` subclass                   | a type implementing [`Component`]      |
//! | the component object                   | [`Handle`] (`Handle::new(body)`, or `body.into()`) |
//! | `Inboxes = {...}`, `Outboxes = {...}`  | [`Component::Boxes`]: [`Standard`] or a [`boxes!`] struct |
//! | `self.send(msg, "outbox")`             | `cx.outbox.send(msg)` ([`Outbox::send`]) |
//! | `self.recv("inbox")`                   | `cx.inbox.recv()` ([`Inbox::recv`])    |
//! | `self.dataReady("inbox")`, `anyReady()`| `!cx.inbox.is_empty()`, [`Cx::any_ready`] |
//! | `self.link(src, dst, passthrough=…)`   | [`Cx::link`] / [`Handle::link`] / [`link`] |
//! | `self.unlink(...)`                     | [`Cx::unlink`], [`unlink`], [`unlink_boxes`] |
//! | `inboxes[n].setSize(k)`                | [`Inbox::set_limit`], [`Handle::set_inbox_size`] |
//! | `noSpaceInBox`                         | [`NoSpace`]                            |
//! | `addChildren`, `removeChild`           | [`Cx::add_child`], [`Cx::remove_child`]|
//! | `activate()`                           | [`Scheduler::activate`], [`Cx::activate`] |
//! | `threadedcomponent`                    | [`Cx::activate_threaded`]              |
//! | `scheduler.run.runThreads()`           | [`Scheduler::run`]                     |
//! | `coordinatingassistanttracker`         | [`Cat`]                                |
//! | `Axon.Ipc.*`                           | [`ipc`] ([`Control`] and friends)      |
//! | `Pipeline`, `Graphline`                | [`Pipeline`], [`Graphline`]            |
//! | `Axon.Handle` / likefile               | [`Endpoint`]                           |
//! | `Axon.Introspector`                    | [`SchedulerHandle::snapshot`] ([`Snapshot`]) |
//!
//! ## One constructor rule
//!
//! A component type's `new` returns the component's body (`Self`, or a
//! `Result` when it can fail). [`Handle::new`] turns a body into a
//! component; anything that takes `impl Into<Handle>` (activation,
//! [`Pipeline::new`]'s children) does it for you.
//!
//! ## Threads
//!
//! [`Handle`], [`Postbox`] and [`SchedulerHandle`] are `Send + Sync`. A
//! threaded component runs the same [`Component`] on its own OS thread and
//! may block inside `main`; it wakes scheduler components (and they wake it)
//! through the same boxes. An [`Endpoint`] gives ordinary code boxes of its
//! own, with a blocking `recv_timeout`.
//!
//! ## Inside
//!
//! The modules build on one another in this order, each using only those
//! before it: `sync` (locks), `error`, `declare` (box names and types as
//! data), `ready` (a scheduler's run queue), `wake` (a component's
//! pause/wake state), `node` (a box's queue and linkage), `ports` (typed
//! box handles), `control`, `boxset` (box sets and [`boxes!`]), `linkage`,
//! `unit` (a component in one allocation: its wake cell with its core,
//! its boxes and its body, and the references that keep them), `handle`,
//! `links`, `cat`, `timers`, `shared`, `cx`, `component`, `scheduler`,
//! then `compose`, `endpoint` and `ipc` (one reference runs ahead: a unit
//! holds its component's body as `component`'s `Body` trait, stepped
//! through the unit's type); `snapshot` (seeing the running system:
//! [`SchedulerHandle::snapshot`]) reads them all, asking the CPU for
//! memory ahead of its walk through `prefetch` (a hint that cannot fault).
//! `unsafe` is allowed only in the modules that lay a unit out and reach
//! into it (`unit`, `wake`, `node`, `boxset`, `ports`, `component`) and in
//! `prefetch`, each use with its `SAFETY` note.

// `unsafe` only where a module allows it (see "Inside" above), each use
// with its SAFETY note.
#![deny(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

mod boxlock;
mod boxset;
mod cat;
mod component;
mod compose;
mod control;
mod cx;
mod declare;
mod endpoint;
mod error;
mod handle;
pub mod ipc;
mod key;
mod linkage;
mod links;
mod node;
mod ports;
mod prefetch;
mod ready;
mod scheduler;
mod shared;
mod snapshot;
mod spare;
mod sync;
mod timers;
mod unit;
mod wake;

pub use boxset::{BoxSet, BoxesRef, Declaration, DynamicBoxes, Standard};
pub use cat::Cat;
pub use component::{Component, Counter, Counters, Step};
pub use compose::{Graphline, Linkage, Pipeline, PIPELINE_INBOX_LIMIT};
pub use control::Control;
pub use cx::Cx;
pub use declare::{BoxInfo, Direction};
pub use endpoint::Endpoint;
pub use error::{ActivateError, BoxError, CatError, LinkError, NoSpace};
pub use handle::Handle;
pub use key::{BoxKey, BoxName};
pub use linkage::Link;
pub use links::{link, link_boxes, unlink, unlink_boxes};
pub use ports::{Inbox, Outbox, Postbox};
pub use ready::Unpark;
pub use scheduler::{Reactor, Scheduler, ThreadReactor};
pub use shared::SchedulerHandle;
pub use snapshot::{BoxSnapshot, ComponentInfo, LinkInfo, RunState, Snapshot};

/// What the [`boxes!`] macro expands to needs; not for use by hand.
#[doc(hidden)]
pub mod __private {
    pub use crate::boxset::__table as table;
    pub use crate::declare::BoxTable;
    pub use crate::node::{ErasedBox, OwnerRef};
    pub use crate::ports::Port;
    pub use crate::unit::CellRef;
    pub use crate::wake::WakeCell;

    /// Joins a box's doc-comment lines into its one-line description.
    pub fn one_line(lines: &[&str]) -> String {
        crate::declare::one_line(lines)
    }
}
