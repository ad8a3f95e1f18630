//! Composition: `Pipeline` and `Graphline` (A11).

use crate::boxes::{Boxes, Direction};
use crate::component::{Component, Cx, Handle, Postbox, Step};
use crate::error::LinkError;
use crate::ipc::Control;

/// The parent body shared by Pipeline and Graphline: adopt and activate the
/// children, forward `control` to them if asked, wait for all to end.
struct Parent {
    children: Vec<Handle>,
    started: bool,
    /// Graphline only: `control` messages to copy to every child.
    broadcast_control: Option<Vec<Postbox<Control>>>,
    /// Graphline only: send `producerFinished` out of `signal` at the end.
    signal_when_done: bool,
    boxes: Boxes,
    name: &'static str,
}

impl Component for Parent {
    fn boxes(&self) -> Boxes {
        self.boxes.clone()
    }

    fn name(&self) -> std::borrow::Cow<'static, str> {
        self.name.into()
    }

    fn main(&mut self, cx: &mut Cx<'_>) -> Step {
        if !self.started {
            self.started = true;
            for child in &self.children {
                cx.add_child(child);
                if !child.is_activated() {
                    if let Err(e) = cx.activate(child) {
                        log::error!("{}: cannot activate {child:?}: {e}", self.name);
                    }
                }
            }
        }
        if let Some(targets) = &self.broadcast_control {
            while let Some(msg) = cx.recv::<Control>("control") {
                for t in targets {
                    // A child whose control box is full misses this copy;
                    // it is told to stop by the next one.
                    let _ = t.send(msg.clone());
                }
            }
        }
        for child in cx.children() {
            if child.is_done() {
                cx.remove_child(&child);
            }
        }
        if !cx.children().is_empty() {
            return Step::Pause;
        }
        if self.signal_when_done {
            let _ = cx.send(Control::ProducerFinished, "signal");
        }
        Step::Done
    }
}

/// Kamaelia's `Pipeline(c1, c2, …)` (A11): each component's `outbox` feeds
/// the next one's `inbox` and its `signal` the next one's `control`. The
/// pipeline's own `inbox`/`control` pass through to the first component and
/// the last component's `outbox`/`signal` surface as the pipeline's. It
/// activates its children when it is activated and ends when they all have.
///
/// ```
/// use axon::{Boxes, Component, Control, Cx, Endpoint, Handle, Pipeline, Scheduler, Step, link};
/// use std::time::Duration;
///
/// struct Double;
/// impl Component for Double {
///     fn boxes(&self) -> Boxes { Boxes::standard::<u32, u32>() }
///     fn main(&mut self, cx: &mut Cx<'_>) -> Step {
///         while let Some(n) = cx.recv::<u32>("inbox") {
///             let _ = cx.send(n * 2, "outbox");
///         }
///         if let Some(c) = cx.recv::<Control>("control") {
///             let _ = cx.send(c, "signal");
///             return Step::Done;
///         }
///         Step::Pause
///     }
/// }
///
/// let quadruple = Pipeline::new(vec![Handle::new(Double), Handle::new(Double)]).unwrap();
/// let edge = Endpoint::new("edge", Boxes::standard::<u32, u32>());
/// link((edge.handle(), "outbox"), (&quadruple, "inbox")).unwrap();
/// link((edge.handle(), "signal"), (&quadruple, "control")).unwrap();
/// link((&quadruple, "outbox"), (edge.handle(), "inbox")).unwrap();
/// link((&quadruple, "signal"), (edge.handle(), "control")).unwrap();
///
/// let scheduler = Scheduler::new();
/// scheduler.activate(&quadruple).unwrap();
/// let running = std::thread::spawn(move || scheduler.run());
/// edge.send(5u32, "outbox").unwrap();
/// assert_eq!(edge.recv_timeout::<u32>("inbox", Duration::from_secs(5)).unwrap(), Some(20));
/// edge.send(Control::ProducerFinished, "signal").unwrap();
/// assert_eq!(
///     edge.recv_timeout::<Control>("control", Duration::from_secs(5)).unwrap(),
///     Some(Control::ProducerFinished)
/// );
/// running.join().unwrap(); // the pipeline ended, so the scheduler did
/// ```
#[derive(Debug)]
pub struct Pipeline;

impl Pipeline {
    /// Builds the pipeline (see the type docs). Errors if a component lacks
    /// one of `inbox`, `control`, `outbox`, `signal` where the chain needs
    /// it, or two neighbours' box types differ.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(components: Vec<Handle>) -> Result<Handle, LinkError> {
        let mut boxes = Boxes::new();
        if let (Some(first), Some(last)) = (components.first(), components.last()) {
            for (child, name, direction) in [
                (first, "inbox", Direction::Inbox),
                (first, "control", Direction::Inbox),
                (last, "outbox", Direction::Outbox),
                (last, "signal", Direction::Outbox),
            ] {
                let like = child
                    .erased_box(name, direction)
                    .ok_or_else(|| no_box(child, name))?;
                boxes = boxes.like(
                    name,
                    "passes through to the pipeline's end",
                    direction,
                    &like,
                );
            }
        }
        let pipeline = Handle::new(Parent {
            children: components.clone(),
            started: false,
            broadcast_control: None,
            signal_when_done: false,
            boxes,
            name: "Pipeline",
        });
        for pair in components.windows(2) {
            pipeline.link((&pair[0], "outbox"), (&pair[1], "inbox"))?;
            pipeline.link((&pair[0], "signal"), (&pair[1], "control"))?;
        }
        if let (Some(first), Some(last)) = (components.first(), components.last()) {
            pipeline.link((&pipeline, "inbox"), (first, "inbox"))?;
            pipeline.link((&pipeline, "control"), (first, "control"))?;
            pipeline.link((last, "outbox"), (&pipeline, "outbox"))?;
            pipeline.link((last, "signal"), (&pipeline, "signal"))?;
        }
        Ok(pipeline)
    }
}

fn no_box(child: &Handle, name: &str) -> LinkError {
    LinkError::NoSuchBox {
        component: child.name().to_owned(),
        name: name.to_owned(),
    }
}

/// Kamaelia's `Graphline(name=component, …, linkages={…})` (A11): named
/// children wired by box name. The name `"self"` means the graphline itself:
/// `("self", "inbox") → ("child", "inbox")` creates the graphline's own
/// `inbox` as a passthrough, `("child", "outbox") → ("self", "outbox")` its
/// own `outbox`, each carrying the type of the child's box.
///
/// As in Kamaelia, if no linkage uses the graphline's `control`, a
/// [`Control`] message arriving there is copied to every child's `control`;
/// and if no linkage feeds its `signal`, it sends `producerFinished` out of
/// `signal` when all children have ended.
///
/// ```
/// use axon::{Boxes, Component, Cx, Graphline, Handle, Step};
///
/// struct Source;
/// impl Component for Source {
///     fn boxes(&self) -> Boxes { Boxes::standard::<(), String>() }
///     fn main(&mut self, cx: &mut Cx<'_>) -> Step {
///         let _ = cx.send("hello".to_string(), "outbox");
///         Step::Done
///     }
/// }
/// struct Sink;
/// impl Component for Sink {
///     fn boxes(&self) -> Boxes { Boxes::standard::<String, ()>() }
///     fn main(&mut self, cx: &mut Cx<'_>) -> Step {
///         match cx.recv::<String>("inbox") {
///             Some(s) => { assert_eq!(s, "hello"); Step::Done }
///             None => Step::Pause,
///         }
///     }
/// }
///
/// let graph = Graphline::new(
///     vec![("source", Handle::new(Source)), ("sink", Handle::new(Sink))],
///     &[(("source", "outbox"), ("sink", "inbox"))],
/// ).unwrap();
/// let scheduler = axon::Scheduler::new();
/// scheduler.activate(&graph).unwrap();
/// scheduler.run();
/// assert!(graph.is_done());
/// ```
#[derive(Debug)]
pub struct Graphline;

/// One linkage of a [`Graphline`]: `((child, box), (child, box))`.
pub type Linkage<'a> = ((&'a str, &'a str), (&'a str, &'a str));

impl Graphline {
    /// Builds the graphline (see the type docs).
    #[allow(clippy::new_ret_no_self)]
    pub fn new(
        children: Vec<(&str, Handle)>,
        linkages: &[Linkage<'_>],
    ) -> Result<Handle, LinkError> {
        let child = |name: &str| {
            children
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, h)| h)
                .ok_or_else(|| LinkError::NoSuchChild(name.to_owned()))
        };
        let mut boxes = Boxes::new();
        for &((src, src_box), (dst, dst_box)) in linkages {
            if src == "self" && dst == "self" {
                return Err(LinkError::InboxToOutbox {
                    source: format!("self.{src_box}"),
                    sink: format!("self.{dst_box}"),
                });
            }
            if src == "self" {
                let c = child(dst)?;
                let like = c
                    .erased_box(dst_box, Direction::Inbox)
                    .ok_or_else(|| no_box(c, dst_box))?;
                boxes = boxes.like(
                    src_box.to_owned(),
                    "passes through to a child",
                    Direction::Inbox,
                    &like,
                );
            } else if dst == "self" {
                let c = child(src)?;
                let like = c
                    .erased_box(src_box, Direction::Outbox)
                    .ok_or_else(|| no_box(c, src_box))?;
                boxes = boxes.like(
                    dst_box.to_owned(),
                    "passes through from a child",
                    Direction::Outbox,
                    &like,
                );
            }
        }
        let uses = |name: &str| {
            linkages
                .iter()
                .any(|&(s, d)| s == ("self", name) || d == ("self", name))
        };
        let broadcast = !uses("control");
        let signal_when_done = !uses("signal");
        if broadcast {
            boxes = boxes.inbox::<Control>("control", "copied to every child's control");
        }
        if signal_when_done {
            boxes =
                boxes.outbox::<Control>("signal", "producerFinished when every child has ended");
        }
        let broadcast_control = broadcast.then(|| {
            children
                .iter()
                .filter_map(|(_, h)| h.postbox::<Control>("control").ok())
                .collect()
        });
        let graph = Handle::new(Parent {
            children: children.iter().map(|(_, h)| h.clone()).collect(),
            started: false,
            broadcast_control,
            signal_when_done,
            boxes,
            name: "Graphline",
        });
        let resolve = |name: &str| {
            if name == "self" {
                Ok(&graph)
            } else {
                child(name)
            }
        };
        for &((src, src_box), (dst, dst_box)) in linkages {
            graph.link((resolve(src)?, src_box), (resolve(dst)?, dst_box))?;
        }
        Ok(graph)
    }
}
