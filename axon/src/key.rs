//! [`BoxKey`]: a box's name with its place in its component type's box
//! table remembered, and [`BoxName`], what every by-name call takes.
//!
//! Code that links or reaches the same boxes of many components of one
//! type (ServerCore, for each connection's CSA and handler) finds each box
//! by name once, as a key, and then without comparing a name:
//!
//! ```
//! use axon::{link_boxes, Component, Cx, Handle, Standard, Step};
//!
//! struct Quiet;
//! impl Component for Quiet {
//!     type Boxes = Standard<u8, u8>;
//!     fn main(&mut self, _: &mut Cx<Self::Boxes>) -> Step { Step::Pause }
//! }
//!
//! let first = Handle::new(Quiet);
//! let (outbox, inbox) = (first.box_key("outbox"), first.box_key("inbox"));
//! for _ in 0..3 {
//!     let (a, b) = (Handle::new(Quiet), Handle::new(Quiet));
//!     // Found by their places: `a` and `b` have `first`'s box table.
//!     link_boxes((&a, &outbox), (&b, &inbox)).unwrap();
//!     assert!(a.leads_to("outbox", (&b, "inbox")));
//! }
//! ```

use std::borrow::Cow;
use std::fmt;

use crate::declare::BoxTable;

/// A box's name, with where it sits in the box table of the component it
/// was made from ([`Handle::box_key`](crate::Handle::box_key)).
///
/// Given with any component whose boxes are the same set type (every
/// component of one [`Component`](crate::Component) type made with a
/// [`boxes!`](crate::boxes) set or [`Standard`](crate::Standard)), it
/// finds the box by its place, without comparing a name. Given with any
/// other component, it is looked up by its name. So a key always means
/// what its name means; the place only makes it quicker.
#[derive(Clone)]
pub struct BoxKey {
    name: Cow<'static, str>,
    /// The table it was found in (kept, so its identity cannot be taken
    /// by another table) and the index there.
    place: Option<(BoxTable, u16)>,
}

impl BoxKey {
    /// A key for the box called `name`, with no place: looked up by name
    /// every time, as a `&str` is.
    pub fn new(name: impl Into<Cow<'static, str>>) -> BoxKey {
        BoxKey {
            name: name.into(),
            place: None,
        }
    }

    /// A key for `name` placed in `table`, if that has a box called so.
    pub(crate) fn found_in(name: Cow<'static, str>, table: &BoxTable) -> BoxKey {
        let place = table
            .find_any(&name)
            .and_then(|i| u16::try_from(i).ok())
            .map(|i| (table.clone(), i));
        BoxKey { name, place }
    }

    /// The box's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True if the key was found in a table, and `table` is that one.
    pub(crate) fn placed_in(&self, table: &BoxTable) -> bool {
        self.place.as_ref().is_some_and(|(t, _)| t.same(table))
    }

    /// The look-up by name, for a table of another type: out of line, so
    /// that the usual look-up by place is a comparison and a load wherever
    /// it is inlined (with the name search inlined, its function saved and
    /// restored registers for it: 56 instructions a look-up).
    #[cold]
    #[inline(never)]
    fn find_by_name(&self, table: &BoxTable) -> Option<usize> {
        table.find_any(&self.name)
    }
}

impl fmt::Debug for BoxKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.place {
            Some((_, i)) => write!(f, "BoxKey({:?} at {i})", self.name),
            None => write!(f, "BoxKey({:?})", self.name),
        }
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for &str {}
    impl Sealed for &String {}
    impl Sealed for &std::borrow::Cow<'_, str> {}
    impl Sealed for &super::BoxKey {}
}

/// A box's name as the by-name calls ([`link_boxes`](crate::link_boxes),
/// [`Handle::postbox`](crate::Handle::postbox), …) take it: a `&str` (or
/// `&String`, `&Cow<str>`), or a [`BoxKey`], which finds the box by its
/// remembered place when it can.
pub trait BoxName: sealed::Sealed {
    /// The name itself.
    #[doc(hidden)]
    fn __name(&self) -> &str;
    /// The box's index in `table`, if it has one of this name.
    #[doc(hidden)]
    fn __index(&self, table: &BoxTable) -> Option<usize>;
}

/// The plain names: looked up by name every time.
macro_rules! by_name {
    ($($t:ty),*) => {$(
        impl BoxName for $t {
            fn __name(&self) -> &str {
                self
            }
            fn __index(&self, table: &BoxTable) -> Option<usize> {
                table.find_any(self)
            }
        }
    )*};
}

by_name!(&str, &String, &Cow<'_, str>);

impl BoxName for &BoxKey {
    fn __name(&self) -> &str {
        &self.name
    }
    #[inline]
    fn __index(&self, table: &BoxTable) -> Option<usize> {
        match &self.place {
            Some((t, i)) if t.same(table) => Some(*i as usize),
            _ => self.find_by_name(table),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::declare::{BoxMeta, Direction};

    fn table(names: &[&'static str]) -> BoxTable {
        BoxTable::new(
            names
                .iter()
                .map(|n| BoxMeta::of::<u8>((*n).into(), "".into(), Direction::Inbox))
                .collect(),
        )
    }

    #[test]
    fn a_key_finds_its_box_by_place_in_its_table_and_by_name_in_another() {
        let a = table(&["inbox", "control"]);
        let b = table(&["control", "x", "inbox"]);
        let key = BoxKey::found_in("inbox".into(), &a);
        assert!(key.placed_in(&a) && !key.placed_in(&b));
        assert_eq!((&key).__index(&a), Some(0));
        assert_eq!((&key).__index(&b), Some(2));
        assert_eq!((&key).__index(&table(&["control"])), None);
        // A key made without a table, or for a box it lacks, goes by name.
        let unplaced = BoxKey::found_in("x".into(), &a);
        assert!(!unplaced.placed_in(&a));
        assert_eq!((&unplaced).__index(&b), Some(1));
        assert_eq!((&BoxKey::new("control")).__index(&b), Some(0));
    }
}
