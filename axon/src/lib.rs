//! # Axon: Kamaelia's component model in Rust
//!
//! A *component* is a small state machine with named **inboxes** and
//! **outboxes**. Components never call each other: they send messages out of
//! their outboxes, and a **linkage** decides which inbox those messages land
//! in. A cooperative **scheduler** runs many thousands of components on one
//! thread, waking each only when it has work (rules A1–A11 of the project's
//! `PROTOCOL.md`).
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
//! use axon::{Boxes, Component, Control, Cx, Handle, Pipeline, Scheduler, Step};
//! use std::sync::{Arc, Mutex};
//!
//! /// Sends each item out of `outbox`, then `producerFinished` out of `signal`.
//! struct Producer(Vec<String>);
//!
//! impl Component for Producer {
//!     fn boxes(&self) -> Boxes {
//!         Boxes::standard::<(), String>() // inbox, control, outbox, signal
//!     }
//!     fn main(&mut self, cx: &mut Cx<'_>) -> Step {
//!         for item in self.0.drain(..) {
//!             let _ = cx.send(item, "outbox"); // unbounded inbox: never full
//!         }
//!         let _ = cx.send(Control::ProducerFinished, "signal");
//!         Step::Done
//!     }
//! }
//!
//! /// Collects what arrives in `inbox` until told the producer finished.
//! struct Consumer(Arc<Mutex<Vec<String>>>);
//!
//! impl Component for Consumer {
//!     fn boxes(&self) -> Boxes {
//!         Boxes::standard::<String, ()>()
//!     }
//!     fn main(&mut self, cx: &mut Cx<'_>) -> Step {
//!         while let Some(item) = cx.recv::<String>("inbox") {
//!             self.0.lock().unwrap().push(item);
//!         }
//!         match cx.recv::<Control>("control") {
//!             Some(c) if c.is_producer_finished() => Step::Done,
//!             _ => Step::Pause, // sleep until a message arrives
//!         }
//!     }
//! }
//!
//! let seen = Arc::new(Mutex::new(Vec::new()));
//! let pipeline = Pipeline::new(vec![
//!     Handle::new(Producer(vec!["hello".into(), "world".into()])),
//!     Handle::new(Consumer(seen.clone())),
//! ])
//! .unwrap();
//! let scheduler = Scheduler::new();
//! scheduler.activate(&pipeline).unwrap();
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
//! ## Message types and linkage checks
//!
//! Kamaelia messages are untyped Python objects. Here every box carries one
//! Rust type, declared with the box ([`Boxes::inbox::<T>`](Boxes::inbox)).
//! [`link`] compares the two boxes' types *when the link is made* and refuses
//! a mismatch with [`LinkError::TypeMismatch`], naming both boxes and types.
//! So a delivery can never meet a message of the wrong type, messages travel
//! unboxed (a `Vec<u8>` chunk moves with no extra allocation), and linking
//! by `(component, "box name")` works exactly as in Kamaelia, including
//! passthrough links and [`Graphline`]s built from names at run time.
//!
//! ## Names: Kamaelia → Rust
//!
//! | Kamaelia                               | here                                   |
//! |----------------------------------------|----------------------------------------|
//! | `component` subclass                   | a type implementing [`Component`]      |
//! | the component object                   | [`Handle`]                             |
//! | `Inboxes = {...}`, `Outboxes = {...}`  | [`Component::boxes`] → [`Boxes`]       |
//! | `self.send(msg, "outbox")`             | [`Cx::send`]`(msg, "outbox")`          |
//! | `self.recv("inbox")`                   | [`Cx::recv`]`::<T>("inbox")`           |
//! | `self.dataReady("inbox")`, `anyReady()`| [`Cx::data_ready`], [`Cx::any_ready`]  |
//! | `self.inboxes["inbox"]`, `self.outboxes["outbox"]` | [`Inbox`], [`Outbox`] (from [`Handle::inbox`], [`Handle::outbox`]): the same, found once and kept, for hot paths |
//! | `self.link(src, dst, passthrough=…)`   | [`Cx::link`] / [`Handle::link`] / [`link`] |
//! | `self.unlink(...)`                     | [`Cx::unlink`], [`unlink`], [`unlink_boxes`] |
//! | `inboxes[n].setSize(k)`                | [`Handle::set_inbox_size`]             |
//! | `noSpaceInBox`                         | [`NoSpace`]                            |
//! | `addChildren`, `removeChild`           | [`Cx::add_child`], [`Cx::remove_child`]|
//! | `activate()`                           | [`Scheduler::activate`], [`Cx::activate`] |
//! | `threadedcomponent`                    | [`Cx::activate_threaded`]              |
//! | `scheduler.run.runThreads()`           | [`Scheduler::run`]                     |
//! | `coordinatingassistanttracker`         | [`Cat`]                                |
//! | `Axon.Ipc.*`                           | [`ipc`] ([`Control`] and friends)      |
//! | `Pipeline`, `Graphline`                | [`Pipeline`], [`Graphline`]            |
//! | `Axon.Handle` / likefile               | [`Endpoint`]                           |
//!
//! ## Threads
//!
//! [`Handle`], [`Postbox`] and [`SchedulerHandle`] are `Send + Sync`. A
//! threaded component runs the same [`Component`] on its own OS thread and
//! may block inside `main`; it wakes scheduler components (and they wake it)
//! through the same boxes. An [`Endpoint`] gives ordinary code boxes of its
//! own, with a blocking `recv_timeout`.

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]

mod boxes;
mod cat;
mod component;
mod compose;
mod endpoint;
mod error;
pub mod ipc;
mod scheduler;
mod wake;

pub use boxes::{BoxInfo, Boxes, Direction};
pub use cat::Cat;
pub use component::{
    link, unlink, unlink_boxes, Component, Cx, Handle, Inbox, Link, Outbox, Postbox, Step,
};
pub use compose::{Graphline, Linkage, Pipeline};
pub use endpoint::{Endpoint, SendError};
pub use error::{ActivateError, BoxError, CatError, LinkError, NoSpace};
pub use ipc::Control;
pub use scheduler::{Reactor, Scheduler, SchedulerHandle, ThreadReactor, Unpark};
