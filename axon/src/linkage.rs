//! A linkage as a value ([`Link`]) and the book a component keeps of the
//! linkages it made (Kamaelia's postoffice), so that they go when it ends
//! or gives up a child (A7).

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::node::ErasedRef;

static NEXT_LINK: AtomicU64 = AtomicU64::new(1);

/// A linkage between two boxes (A3), as returned by [`link`](crate::link). Pass it to
/// [`unlink`](crate::unlink) (or [`Handle::unlink`](crate::Handle::unlink)) to remove it.
#[derive(Clone)]
pub struct Link {
    pub(crate) id: u64,
    pub(crate) src: ErasedRef,
    pub(crate) dst: ErasedRef,
    pub(crate) src_owner: u64,
    pub(crate) dst_owner: u64,
    /// The components' names, for `Debug` (not their handles: a linkage
    /// kept by one component never keeps another alive).
    src_name: Cow<'static, str>,
    dst_name: Cow<'static, str>,
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{} -> {}.{}",
            self.src_name,
            self.src.name(),
            self.dst_name,
            self.dst.name()
        )
    }
}

impl Link {
    pub(crate) fn new(
        src: (ErasedRef, u64, Cow<'static, str>),
        dst: (ErasedRef, u64, Cow<'static, str>),
    ) -> Link {
        Link {
            id: NEXT_LINK.fetch_add(1, Ordering::Relaxed),
            src: src.0,
            src_owner: src.1,
            src_name: src.2,
            dst: dst.0,
            dst_owner: dst.1,
            dst_name: dst.2,
        }
    }

    pub(crate) fn remove(&self) {
        self.src.unlink_from(&*self.dst);
    }
}

/// The linkages a component made, filed under each *other* component they
/// touch, so that removing a child finds its linkages without scanning
/// every linkage the parent ever made.
#[derive(Default)]
pub(crate) struct LinkBook {
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

    pub(crate) fn add(&mut self, link: Link, me: u64) {
        for key in Self::keys(&link, me).into_iter().flatten() {
            let links = self.by_component.entry(key).or_default();
            // Buckets hold a handful of linkages: grow them one at a time
            // rather than to Vec's minimum of four (memory per connection).
            links.reserve_exact(1);
            links.push(link.clone());
        }
    }

    pub(crate) fn forget(&mut self, link: &Link, me: u64) {
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
    pub(crate) fn take_component(&mut self, component: u64, me: u64) -> Vec<Link> {
        let links = self.by_component.remove(&component).unwrap_or_default();
        for link in &links {
            self.forget(link, me);
        }
        links
    }

    /// Every linkage, once each.
    pub(crate) fn all(&self) -> Vec<Link> {
        let mut seen = HashSet::default();
        self.by_component
            .values()
            .flatten()
            .filter(|l| seen.insert(l.id))
            .cloned()
            .collect()
    }
}
