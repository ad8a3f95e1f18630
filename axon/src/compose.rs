//! Composition: `Pipeline` and `Graphline` (A11).
//!
//! Both are components whose boxes are their children's, passed through:
//! their box sets are [`DynamicBoxes`] taking the types of the children's
//! boxes. The children's linkages are made (and checked) when the
//! composite is built, the passthroughs when its handle is made.

use std::borrow::Cow;

use crate::boxset::{Declaration, DynamicBoxes};
use crate::component::{Component, Step};
use crate::control::Control;
use crate::cx::Cx;
use crate::declare::Direction;
use crate::error::LinkError;
use crate::handle::Handle;
use crate::linkage::Link;
use crate::links::{link, unlink};
use crate::node::ErasedBox;
use crate::ports::Postbox;

/// Which end of a passthrough: the composite itself, or one of its
/// children.
#[derive(Clone, Copy)]
enum End {
    Me,
    Child(usize),
}

/// The parent body shared by Pipeline and Graphline: adopt and activate the
/// children, forward `control` to them if asked, wait for all to end.
struct Parent {
    children: Vec<Handle>,
    started: bool,
    /// Linkages between children, made when the composite was built.
    links: Vec<Link>,
    /// Passthroughs to make once the composite's own boxes exist.
    passthroughs: Vec<((End, String), (End, String))>,
    /// Graphline only: `control` messages to copy to every child.
    broadcast_control: Option<Vec<Postbox<Control>>>,
    /// Graphline only: send `producerFinished` out of `signal` at the end.
    signal_when_done: bool,
    declaration: Declaration,
    name: &'static str,
}

impl Parent {
    fn created(&mut self, me: &Handle, boxes: &DynamicBoxes) {
        for link in self.links.drain(..) {
            me.adopt_link(link);
        }
        for ((src, src_box), (dst, dst_box)) in std::mem::take(&mut self.passthroughs) {
            let end = |e: End| match e {
                End::Me => me.clone(),
                End::Child(i) => self.children[i].clone(),
            };
            let (src, dst) = (end(src), end(dst));
            if let Err(e) = me.link((&src, &src_box), (&dst, &dst_box)) {
                // Checked when the composite was built: only a linkage made
                // since, by someone else, can get here.
                log::error!("{}: cannot pass {src_box} through: {e}", self.name);
            }
        }
        let _ = boxes;
    }

    fn step(&mut self, cx: &mut Cx<'_, DynamicBoxes>) -> Step {
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
        let control = self
            .broadcast_control
            .as_ref()
            .and_then(|t| Some((t, cx.boxes.inbox::<Control>("control").ok()?)));
        if let Some((targets, control)) = control {
            while let Some(msg) = control.recv() {
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
        if let Some(signal) = self
            .signal_when_done
            .then(|| cx.boxes.outbox::<Control>("signal").ok())
            .flatten()
        {
            let _ = signal.send(Control::ProducerFinished);
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
/// Better than Kamaelia, whose inboxes are unbounded: every inbox inside
/// the pipeline that has no size limit gets [`PIPELINE_INBOX_LIMIT`]
/// (A5), so a component that is held (its next one full) stops the one
/// before it, back to the pipeline's own `inbox`; nothing queues without
/// end in between.
///
/// ```
/// use axon::{link, Component, Control, Cx, Endpoint, Pipeline, Scheduler, Standard, Step};
/// use std::time::Duration;
///
/// struct Double;
/// impl Component for Double {
///     type Boxes = Standard<u32, u32>;
///     fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
///         while let Some(n) = cx.inbox.recv() {
///             let _ = cx.outbox.send(n * 2); // unbounded: never full
///         }
///         if let Some(c) = cx.control.recv() {
///             let _ = cx.signal.send(c);
///             return Step::Done;
///         }
///         Step::Pause
///     }
/// }
///
/// let quadruple = Pipeline::new(vec![Double.into(), Double.into()]).unwrap();
/// let scheduler = Scheduler::new();
/// let quadruple = scheduler.activate(quadruple).unwrap();
/// let edge = Endpoint::<Standard<u32, u32>>::new("edge");
/// link((edge.handle(), "outbox"), (&quadruple, "inbox")).unwrap();
/// link((edge.handle(), "signal"), (&quadruple, "control")).unwrap();
/// link((&quadruple, "outbox"), (edge.handle(), "inbox")).unwrap();
/// link((&quadruple, "signal"), (edge.handle(), "control")).unwrap();
///
/// let running = std::thread::spawn(move || scheduler.run());
/// edge.outbox.send(5).unwrap();
/// assert_eq!(edge.inbox.recv_timeout(Duration::from_secs(5)), Some(20));
/// edge.signal.send(Control::ProducerFinished).unwrap();
/// assert_eq!(
///     edge.control.recv_timeout(Duration::from_secs(5)),
///     Some(Control::ProducerFinished)
/// );
/// running.join().unwrap(); // the pipeline ended, so the scheduler did
/// ```
pub struct Pipeline(Parent);

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.0.children).finish()
    }
}

fn no_box(child: &Handle, name: &str) -> LinkError {
    LinkError::NoSuchBox {
        component: child.name().to_owned(),
        name: name.to_owned(),
    }
}

fn erased<'a>(
    child: &'a Handle,
    name: &str,
    direction: Direction,
) -> Result<&'a dyn ErasedBox, LinkError> {
    child
        .0
        .find(name, direction)
        .ok_or_else(|| no_box(child, name))
}

/// Refuses a passthrough out of a child's box that already leads
/// somewhere (one source, one destination: A3).
fn free_source(child: &Handle, name: &str, b: &dyn ErasedBox) -> Result<(), LinkError> {
    if b.has_target() {
        return Err(LinkError::AlreadyLinked {
            source: format!("{}.{name}", child.name()),
            existing: "another box".into(),
        });
    }
    Ok(())
}

/// Makes linkages in turn; on the first error, removes those made.
/// A linkage to make: `((source, box), (destination, box))`.
type Pair<'a> = ((&'a Handle, &'a str), (&'a Handle, &'a str));

fn link_all(pairs: Vec<Pair<'_>>) -> Result<Vec<Link>, LinkError> {
    let mut made = Vec::with_capacity(pairs.len());
    for (src, dst) in pairs {
        match link(src, dst) {
            Ok(l) => made.push(l),
            Err(e) => {
                for l in &made {
                    unlink(l);
                }
                return Err(e);
            }
        }
    }
    Ok(made)
}

/// The size limit a pipeline gives the inboxes inside it that have none
/// (A5): the `inbox` of every component but the first, whose limit is the
/// pipeline's own (a server's handler gets 16 from ServerCore).
pub const PIPELINE_INBOX_LIMIT: usize = 16;

/// Bounds `child`'s inbox, at the end of its passthroughs, if nothing has
/// bounded it: a component held by the next one then holds its own sender,
/// and so on back to the pipeline's inbox, instead of queueing without end.
fn bound_inbox(child: &Handle) {
    if let Some(b) = child.0.find("inbox", Direction::Inbox) {
        let last = b.destination();
        let last = last.as_deref().unwrap_or(b);
        if last.limit().is_none() {
            last.set_limit(Some(PIPELINE_INBOX_LIMIT));
        }
    }
}

impl Pipeline {
    /// Builds the pipeline (see the type docs); make it a component with
    /// [`Handle::new`] or by activating it. Errors if a component lacks
    /// one of `inbox`, `control`, `outbox`, `signal` where the chain needs
    /// it, two neighbours' box types differ, or a box the chain needs is
    /// already linked.
    pub fn new(components: Vec<Handle>) -> Result<Pipeline, LinkError> {
        let mut declaration = Declaration::new();
        let mut passthroughs = Vec::new();
        if let (Some(first), Some(last)) = (components.first(), components.last()) {
            let n = components.len() - 1;
            for (child, at, name, direction) in [
                (first, 0, "inbox", Direction::Inbox),
                (first, 0, "control", Direction::Inbox),
                (last, n, "outbox", Direction::Outbox),
                (last, n, "signal", Direction::Outbox),
            ] {
                let like = erased(child, name, direction)?;
                if direction == Direction::Outbox {
                    free_source(child, name, like)?;
                }
                declaration = declaration.like(
                    name,
                    "passes through to the pipeline's end",
                    direction,
                    like,
                );
                let (me, it) = (
                    (End::Me, name.to_owned()),
                    (End::Child(at), name.to_owned()),
                );
                passthroughs.push(match direction {
                    Direction::Inbox => (me, it),
                    Direction::Outbox => (it, me),
                });
            }
        }
        let mut pairs = Vec::new();
        for pair in components.windows(2) {
            pairs.push(((&pair[0], "outbox"), (&pair[1], "inbox")));
            pairs.push(((&pair[0], "signal"), (&pair[1], "control")));
        }
        let links = link_all(pairs)?;
        for child in components.iter().skip(1) {
            bound_inbox(child);
        }
        Ok(Pipeline(Parent {
            children: components,
            started: false,
            links,
            passthroughs,
            broadcast_control: None,
            signal_when_done: false,
            declaration,
            name: "Pipeline",
        }))
    }
}

/// Kamaelia's `Pipeline(a, b, c)`: [`Pipeline::new`] with each component
/// turned into a [`Handle`] for you.
///
/// ```
/// use axon::{pipeline, Component, Cx, Standard, Step};
///
/// /// Doubles each number, holding one the next box had no room for (A5).
/// #[derive(Default)]
/// struct Double(Option<u32>);
///
/// impl Component for Double {
///     type Boxes = Standard<u32, u32>;
///     fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
///         while let Some(n) = self.0.take().or_else(|| cx.inbox.recv()) {
///             if let Err(full) = cx.outbox.send(n * 2) {
///                 self.0 = Some(full.into_inner() / 2);
///                 return Step::Pause; // woken when there is room (A6)
///             }
///         }
///         Step::Pause
///     }
/// }
///
/// let quadruple = pipeline![Double::default(), Double::default()].unwrap();
/// # let _ = quadruple;
/// ```
#[macro_export]
macro_rules! pipeline {
    ($($component:expr),+ $(,)?) => {
        $crate::Pipeline::new(::std::vec![$($crate::Handle::from($component)),+])
    };
}

impl Component for Pipeline {
    type Boxes = DynamicBoxes;

    fn main(&mut self, cx: &mut Cx<'_, DynamicBoxes>) -> Step {
        self.0.step(cx)
    }

    fn name(&self) -> Cow<'static, str> {
        "Pipeline".into()
    }

    fn created(&mut self, me: &Handle, boxes: &DynamicBoxes) {
        self.0.created(me, boxes);
    }

    fn dynamic_boxes(&self) -> Declaration {
        self.0.declaration.clone()
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
/// use axon::{Component, Cx, Graphline, Scheduler, Standard, Step};
///
/// struct Source;
/// impl Component for Source {
///     type Boxes = Standard<(), String>;
///     fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
///         let _ = cx.outbox.send("hello".to_string());
///         Step::Done
///     }
/// }
/// struct Sink;
/// impl Component for Sink {
///     type Boxes = Standard<String, ()>;
///     fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
///         match cx.inbox.recv() {
///             Some(s) => { assert_eq!(s, "hello"); Step::Done }
///             None => Step::Pause,
///         }
///     }
/// }
///
/// let graph = Graphline::new(
///     vec![("source", Source.into()), ("sink", Sink.into())],
///     &[(("source", "outbox"), ("sink", "inbox"))],
/// ).unwrap();
/// let scheduler = Scheduler::new();
/// let graph = scheduler.activate(graph).unwrap();
/// scheduler.run();
/// assert!(graph.is_done());
/// ```
pub struct Graphline(Parent);

impl std::fmt::Debug for Graphline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.0.children).finish()
    }
}

/// One linkage of a [`Graphline`]: `((child, box), (child, box))`.
pub type Linkage<'a> = ((&'a str, &'a str), (&'a str, &'a str));

impl Graphline {
    /// Builds the graphline (see the type docs); make it a component with
    /// [`Handle::new`] or by activating it. Errors: an unknown child or
    /// box, a linkage from `"self"` to `"self"`, or any linkage error
    /// (A3).
    pub fn new(
        children: Vec<(&str, Handle)>,
        linkages: &[Linkage<'_>],
    ) -> Result<Graphline, LinkError> {
        let child = |name: &str| {
            children
                .iter()
                .position(|(n, _)| *n == name)
                .ok_or_else(|| LinkError::NoSuchChild(name.to_owned()))
        };
        let mut declaration = Declaration::new();
        let mut passthroughs = Vec::new();
        let mut pairs = Vec::new();
        for &((src, src_box), (dst, dst_box)) in linkages {
            match (src == "self", dst == "self") {
                (true, true) => {
                    return Err(LinkError::InboxToOutbox {
                        source: format!("self.{src_box}"),
                        sink: format!("self.{dst_box}"),
                    })
                }
                (true, false) => {
                    let c = child(dst)?;
                    let like = erased(&children[c].1, dst_box, Direction::Inbox)?;
                    if declaration.has(src_box) {
                        return Err(LinkError::AlreadyLinked {
                            source: format!("self.{src_box}"),
                            existing: "another child".into(),
                        });
                    }
                    declaration = declaration.like(
                        src_box.to_owned(),
                        "passes through to a child",
                        Direction::Inbox,
                        like,
                    );
                    passthroughs.push((
                        (End::Me, src_box.to_owned()),
                        (End::Child(c), dst_box.to_owned()),
                    ));
                }
                (false, true) => {
                    let c = child(src)?;
                    let like = erased(&children[c].1, src_box, Direction::Outbox)?;
                    free_source(&children[c].1, src_box, like)?;
                    declaration = declaration.like(
                        dst_box.to_owned(),
                        "passes through from a child",
                        Direction::Outbox,
                        like,
                    );
                    passthroughs.push((
                        (End::Child(c), src_box.to_owned()),
                        (End::Me, dst_box.to_owned()),
                    ));
                }
                (false, false) => {
                    let (s, d) = (child(src)?, child(dst)?);
                    pairs.push(((&children[s].1, src_box), (&children[d].1, dst_box)));
                }
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
            declaration =
                declaration.inbox::<Control>("control", "copied to every child's control");
        }
        if signal_when_done {
            declaration = declaration
                .outbox::<Control>("signal", "producerFinished when every child has ended");
        }
        let links = link_all(pairs)?;
        let broadcast_control = broadcast.then(|| {
            children
                .iter()
                .filter_map(|(_, h)| h.postbox::<Control>("control").ok())
                .collect()
        });
        Ok(Graphline(Parent {
            children: children.into_iter().map(|(_, h)| h).collect(),
            started: false,
            links,
            passthroughs,
            broadcast_control,
            signal_when_done,
            declaration,
            name: "Graphline",
        }))
    }
}

impl Component for Graphline {
    type Boxes = DynamicBoxes;

    fn main(&mut self, cx: &mut Cx<'_, DynamicBoxes>) -> Step {
        self.0.step(cx)
    }

    fn name(&self) -> Cow<'static, str> {
        "Graphline".into()
    }

    fn created(&mut self, me: &Handle, boxes: &DynamicBoxes) {
        self.0.created(me, boxes);
    }

    fn dynamic_boxes(&self) -> Declaration {
        self.0.declaration.clone()
    }
}
