//! Making and removing linkages (A3): [`link`], [`unlink`],
//! [`unlink_boxes`], and a component's own linkages ([`Handle::link`]).

use crate::declare::Direction;
use crate::error::LinkError;
use crate::handle::Handle;
use crate::key::BoxName;
use crate::linkage::Link;
use crate::node::{ErasedBox, ErasedRef};

/// Links `(component, box)` to `(component, box)` (A3), owned by nobody:
/// it lasts until [`unlink`]. See [`Handle::link`] for the rules.
pub fn link(src: (&Handle, &str), dst: (&Handle, &str)) -> Result<Link, LinkError> {
    let (s, d) = boxes_of((src.0, &src.1), (dst.0, &dst.1))?;
    let (s, d) = (s.to_ref(), d.to_ref());
    join(&*s, d.clone(), (src.0, &src.1))?;
    let link = Link::new(
        (s, src.0.id(), src.0 .0.name.to_cow()),
        (d, dst.0.id(), dst.0 .0.name.to_cow()),
    );
    log::trace!("link {link:?}");
    Ok(link)
}

/// As [`link`], without its [`Link`]: for code that makes many linkages
/// and removes them by their ends ([`unlink_boxes`]) or not at all, as
/// ServerCore does four per connection. The same rules and errors. A box
/// is named by a `&str` or by a [`BoxKey`](crate::BoxKey), which finds it
/// without comparing names in a component of the type it was made from.
///
/// ```
/// use axon::{link_boxes, unlink_boxes, Handle, Standard, Component, Cx, Step};
///
/// struct Quiet;
/// impl Component for Quiet {
///     type Boxes = Standard<u8, u8>;
///     fn main(&mut self, _: &mut Cx<Self::Boxes>) -> Step { Step::Pause }
/// }
///
/// let (a, b) = (Handle::new(Quiet), Handle::new(Quiet));
/// link_boxes((&a, "outbox"), (&b, "inbox")).unwrap();
/// assert!(a.leads_to("outbox", (&b, "inbox")));
/// assert!(unlink_boxes((&a, "outbox"), (&b, "inbox")));
/// ```
pub fn link_boxes(
    src: (&Handle, impl BoxName),
    dst: (&Handle, impl BoxName),
) -> Result<(), LinkError> {
    let (s, d) = boxes_of((src.0, &src.1), (dst.0, &dst.1))?;
    join(s, d.to_ref(), (src.0, &src.1))?;
    log::trace!(
        "link {}.{} -> {}.{}",
        src.0.name(),
        src.1.__name(),
        dst.0.name(),
        dst.1.__name()
    );
    Ok(())
}

/// The two boxes a linkage would join, checked to carry the same type.
#[inline]
fn boxes_of<'a, S: BoxName, D: BoxName>(
    src: (&'a Handle, &S),
    dst: (&'a Handle, &D),
) -> Result<(&'a dyn ErasedBox, &'a dyn ErasedBox), LinkError> {
    // Found, of one type: the usual case, with no error built (the
    // error's strings make the `Result` a large value, written and read
    // through memory on every call when it is built in line).
    if let (Some(s), Some(d)) = (src.0 .0.find_named(src.1), dst.0 .0.find_named(dst.1)) {
        if s.message_type().0 == d.message_type().0 {
            return Ok((s, d));
        }
    }
    Err(unlinkable(src, dst))
}

/// Why `src` cannot be linked to `dst`: a box missing, or their types.
#[cold]
#[inline(never)]
fn unlinkable<S: BoxName, D: BoxName>(src: (&Handle, &S), dst: (&Handle, &D)) -> LinkError {
    let Some(s) = src.0 .0.find_named(src.1) else {
        return LinkError::NoSuchBox {
            component: src.0.name().to_owned(),
            name: src.1.__name().to_owned(),
        };
    };
    let Some(d) = dst.0 .0.find_named(dst.1) else {
        return LinkError::NoSuchBox {
            component: dst.0.name().to_owned(),
            name: dst.1.__name().to_owned(),
        };
    };
    LinkError::TypeMismatch {
        source: format!("{}.{}", src.0.name(), src.1.__name()),
        source_type: s.message_type().1,
        sink: format!("{}.{}", dst.0.name(), dst.1.__name()),
        sink_type: d.message_type().1,
    }
}

/// Sets `s`'s target to `d` (A3, A4), naming the ends in an error.
#[inline]
fn join(s: &dyn ErasedBox, d: ErasedRef, src: (&Handle, &impl BoxName)) -> Result<(), LinkError> {
    s.link_to(d).map_err(|e| named(e, src))
}

/// A linkage's error with its source named as the caller named it.
#[cold]
#[inline(never)]
fn named(e: LinkError, src: (&Handle, &impl BoxName)) -> LinkError {
    match e {
        LinkError::AlreadyLinked { existing, .. } => LinkError::AlreadyLinked {
            source: format!("{}.{}", src.0.name(), src.1.__name()),
            existing,
        },
        other => other,
    }
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
/// such linkage: false. Boxes are named as for [`link_boxes`].
pub fn unlink_boxes(src: (&Handle, impl BoxName), dst: (&Handle, impl BoxName)) -> bool {
    let (Some(s), Some(d)) = (src.0 .0.find_named(&src.1), dst.0 .0.find_named(&dst.1)) else {
        return false;
    };
    s.unlink_from(d)
}

impl Handle {
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

    /// Files a linkage made without an owner as this component's.
    pub(crate) fn adopt_link(&self, link: Link) {
        let me = self.0.id;
        self.0.kin(|k| k.links.add(link, me));
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
        src.destination().is_some_and(|d| d.same(inbox))
    }

    /// The linkages this component made and still holds.
    pub fn links(&self) -> Vec<Link> {
        self.0.kin_if_any(|k| k.links.all())
    }
}

impl Link {
    /// True if this linkage leaves `(component, box)`.
    pub fn is_from(&self, component: &Handle, name: &str) -> bool {
        self.src_owner == component.id() && self.src.name() == name
    }

    /// True if this linkage arrives at `(component, box)`.
    pub fn is_to(&self, component: &Handle, name: &str) -> bool {
        self.dst_owner == component.id() && self.dst.name() == name
    }
}
