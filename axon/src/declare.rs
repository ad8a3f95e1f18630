//! What a component's boxes are called, which way they go, what they carry
//! and what they are for (A1): the declaration, as data.
//!
//! A component made once per connection has a dozen boxes, so their names,
//! descriptions and types are kept once per component *type* in a shared
//! [`BoxTable`], not in each box: a box finds its name through its owner
//! (see `node.rs`).

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Whether a box receives (inbox) or sends (outbox).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// An inbox: messages arrive here and wait to be received.
    Inbox,
    /// An outbox: messages sent from here travel along its linkage.
    Outbox,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Inbox => "inbox",
            Direction::Outbox => "outbox",
        })
    }
}

/// Describes one box of a component: its name, its one-line documentation
/// and the type of message it carries (A1). Returned by
/// [`Handle::boxes`](crate::Handle::boxes) for introspection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoxInfo {
    /// The box name, e.g. `"inbox"` or `"protocolHandlerSignal"`.
    pub name: String,
    /// Whether it is an inbox or an outbox.
    pub direction: Direction,
    /// The one-line description given when the box was declared.
    pub doc: String,
    /// The Rust type name of the messages it carries.
    pub message_type: &'static str,
}

/// One declared box.
#[derive(Clone, Debug)]
pub struct BoxMeta {
    pub(crate) name: Cow<'static, str>,
    pub(crate) doc: Cow<'static, str>,
    pub(crate) direction: Direction,
    pub(crate) type_name: &'static str,
}

impl BoxMeta {
    pub(crate) fn of<T: 'static>(
        name: Cow<'static, str>,
        doc: Cow<'static, str>,
        direction: Direction,
    ) -> BoxMeta {
        BoxMeta {
            name,
            doc,
            direction,
            type_name: std::any::type_name::<T>(),
        }
    }

    pub(crate) fn info(&self) -> BoxInfo {
        BoxInfo {
            name: self.name.to_string(),
            direction: self.direction,
            doc: self.doc.to_string(),
            message_type: self.type_name,
        }
    }
}

/// The boxes of one component type, in declaration order (a box's index is
/// its place here). Cloning it is one reference count.
#[derive(Clone, Default)]
pub struct BoxTable(Arc<Table>);

#[derive(Default)]
pub(crate) struct Table {
    metas: Vec<BoxMeta>,
    /// See [`BoxTable::layout_checked`].
    layout_checked: AtomicBool,
}

impl fmt::Debug for BoxTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.metas.iter().map(|m| (&m.name, m.direction)))
            .finish()
    }
}

impl BoxTable {
    pub(crate) fn new(metas: Vec<BoxMeta>) -> BoxTable {
        BoxTable(Arc::new(Table {
            metas,
            layout_checked: AtomicBool::new(false),
        }))
    }

    pub(crate) fn len(&self) -> usize {
        self.0.metas.len()
    }

    /// True once a unit of this table's box set type has been checked to
    /// find each box's owner from the box's address (`unit::make`).
    pub(crate) fn layout_checked(&self) -> bool {
        self.0.layout_checked.load(Ordering::Acquire)
    }

    pub(crate) fn set_layout_checked(&self) {
        self.0.layout_checked.store(true, Ordering::Release);
    }

    /// True if both are the one table (clones of each other).
    pub(crate) fn same(&self, other: &BoxTable) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    pub(crate) fn get(&self, index: usize) -> Option<&BoxMeta> {
        self.0.metas.get(index)
    }

    /// The entries themselves: shared by every component of one type, so
    /// a reference to them stays in cache where the table's owner may not.
    pub(crate) fn metas(&self) -> &[BoxMeta] {
        &self.0.metas
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &BoxMeta> {
        self.0.metas.iter()
    }

    /// The index of the box called `name` going `direction`. Names are
    /// usually the same string literal where declared and where asked for,
    /// so the pointers are compared over every box before any bytes are.
    pub(crate) fn find(&self, name: &str, direction: Direction) -> Option<usize> {
        let same_ptr = |m: &BoxMeta| {
            m.direction == direction
                && m.name.len() == name.len()
                && std::ptr::eq(m.name.as_ptr(), name.as_ptr())
        };
        if let Some(i) = self.0.metas.iter().position(same_ptr) {
            return Some(i);
        }
        self.0
            .metas
            .iter()
            .position(|m| m.direction == direction && m.name == name)
    }

    /// The index of the box called `name`, either direction.
    pub(crate) fn find_any(&self, name: &str) -> Option<usize> {
        self.0.metas.iter().position(|m| m.name == name)
    }
}

/// Joins doc-comment lines into a one-line description.
pub(crate) fn one_line(lines: &[&str]) -> String {
    lines
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
