//! A component's boxes as one typed value: [`BoxSet`], the [`boxes!`]
//! macro that declares one, [`Standard`] (Kamaelia's four defaults), and
//! [`DynamicBoxes`] for boxes decided at run time.
//!
//! A box set is a struct whose fields are [`Inbox`]es and [`Outbox`]es.
//! Axon makes it when the component's [`Handle`](crate::Handle) is made,
//! and hands it to every step of the body through [`Cx`](crate::Cx), so
//! the body reaches each box as a field: the compiler checks every
//! message type, and no box is looked up while the component runs. The
//! same boxes are found by *name* where names come from outside at run
//! time: [`link`](crate::link), [`Graphline`](crate::Graphline),
//! [`Handle::postbox`](crate::Handle::postbox).

#![allow(unsafe_code)] // BoxesRef: see its SAFETY notes

use crate::sync::Mutex;
use std::any::{Any, TypeId};
use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;
use std::ptr::NonNull;

use crate::control::Control;
use crate::declare::{BoxMeta, BoxTable, Direction};
use crate::error::BoxError;
use crate::node::{make_node, ErasedBox, HoldsBox, Maker, Node, OwnerRef};
use crate::ports::{Inbox, Outbox, Port};
use crate::sync::lock;
use crate::unit::CellRef;
use crate::wake::WakeCell;

/// The boxes of a component (A1), as one struct with a field per box.
///
/// Declare one with [`boxes!`](crate::boxes), or use [`Standard`].
/// The trait's methods are the macro's business; its only public face is
/// the struct's fields.
pub trait BoxSet: Send + Sync + Sized + 'static {
    /// The names, descriptions and types of the boxes, in field order.
    #[doc(hidden)]
    fn __table(dynamic: &Declaration) -> BoxTable;
    /// Makes the boxes of one component, all with `owner`, into the set
    /// that `owner`'s cell will own.
    #[doc(hidden)]
    fn __build(dynamic: &Declaration, owner: &OwnerRef) -> Self;
    /// The `index`th box, erased.
    #[doc(hidden)]
    fn __port(&self, index: usize) -> Option<&dyn ErasedBox>;
    /// Calls `f` on every box, in field order (one pass, where asking
    /// [`__port`](Self::__port) for each index in turn would search from
    /// the first box each time).
    #[doc(hidden)]
    fn __each(&self, f: &mut dyn FnMut(&dyn ErasedBox)) {
        let mut i = 0;
        while let Some(b) = self.__port(i) {
            f(b);
            i += 1;
        }
    }
    /// [`ErasedBox::release`] on every box: as a loop of
    /// [`__each`](Self::__each) here; [`boxes!`](crate::boxes) calls each
    /// box's own, typed (no call through a vtable per box, and the test
    /// of its flags inlined: most boxes lead nowhere and hold nothing).
    #[doc(hidden)]
    fn __release(&self, ended: bool) {
        self.__each(&mut |b| b.release(ended));
    }
    /// [`ErasedBox::discard_all`] on every box, as [`__release`](Self::__release).
    #[doc(hidden)]
    fn __discard(&self) {
        self.__each(&mut |b| b.discard_all());
    }
}

/// The object-safe face of a box set, kept by the component's wake cell
/// for lookups by name.
pub(crate) trait ErasedSet: Send + Sync + 'static {
    fn port(&self, index: usize) -> Option<&dyn ErasedBox>;
    /// Every box, in declaration order.
    fn each(&self, f: &mut dyn FnMut(&dyn ErasedBox));
    /// [`ErasedBox::release`] on every box.
    fn release(&self, ended: bool);
    /// [`ErasedBox::discard_all`] on every box.
    fn discard_all(&self);
    fn as_any(&self) -> &dyn Any;
}

impl<B: BoxSet> ErasedSet for B {
    fn port(&self, index: usize) -> Option<&dyn ErasedBox> {
        self.__port(index)
    }
    fn each(&self, f: &mut dyn FnMut(&dyn ErasedBox)) {
        self.__each(f)
    }
    fn release(&self, ended: bool) {
        self.__release(ended)
    }
    fn discard_all(&self) {
        self.__discard()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A component's box set, typed and shared: what
/// [`Handle::typed_boxes`](crate::Handle::typed_boxes) gives and an
/// [`Endpoint`](crate::Endpoint) holds. It dereferences to the set.
///
/// The boxes are part of their component's one allocation, with its wake
/// cell, which every linkage and [`Postbox`](crate::Postbox) into them
/// counts; this counts it too, so the boxes stay while it lives.
pub struct BoxesRef<B> {
    cell: CellRef,
    boxes: NonNull<B>,
}

// SAFETY: a `BoxesRef` is a shared reference to a `B` kept alive by a
// count on its unit (as an `Arc<B>` is): `Send` and `Sync` when `B` is `Sync` (every
// `BoxSet` is `Send + Sync`).
unsafe impl<B: Sync> Send for BoxesRef<B> {}
// SAFETY: as for `Send`.
unsafe impl<B: Sync> Sync for BoxesRef<B> {}

impl<B: BoxSet> BoxesRef<B> {
    /// The boxes of `cell`'s component, if they are a `B`.
    pub(crate) fn of(cell: &WakeCell) -> Option<Self> {
        let boxes = cell.set().as_any().downcast_ref::<B>()?;
        Some(BoxesRef {
            cell: CellRef::from(cell),
            boxes: NonNull::from(boxes),
        })
    }
}

impl<B> Deref for BoxesRef<B> {
    type Target = B;

    fn deref(&self) -> &B {
        // SAFETY: the set is in `cell`'s unit (its address never
        // changes) and lives as long as the cell, which `self` counts.
        unsafe { self.boxes.as_ref() }
    }
}

impl<B> Clone for BoxesRef<B> {
    fn clone(&self) -> Self {
        BoxesRef {
            cell: self.cell.clone(),
            boxes: self.boxes,
        }
    }
}

impl<B: fmt::Debug> fmt::Debug for BoxesRef<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// Builds the table of a typed box set, refusing duplicate names (a bug in
/// the declaration: a name must lead to one box).
#[doc(hidden)]
pub fn __table(set: &'static str, metas: Vec<BoxMeta>) -> BoxTable {
    for (i, m) in metas.iter().enumerate() {
        if metas[..i].iter().any(|o| o.name == m.name) {
            panic!("box set {set}: two boxes are named {:?}", m.name);
        }
    }
    BoxTable::new(metas)
}

/// Declares a box set: a struct with one field per box (A1).
///
/// Each field is an [`Inbox<T>`](crate::Inbox) or an
/// [`Outbox<T>`](crate::Outbox); its doc comment is the box's one-line
/// description, and its name is the box's name unless `#[name = "..."]`
/// gives Kamaelia's (for names such as `ReadReady` or `_selectorSignal`
/// that are not Rust field names).
///
/// ```
/// use axon::{boxes, Control, Inbox, Outbox};
///
/// boxes! {
///     /// The boxes of a line upper-caser.
///     pub struct ShoutBoxes {
///         /// lines to shout
///         pub inbox: Inbox<String>,
///         /// producerFinished / shutdownMicroprocess
///         pub control: Inbox<Control>,
///         /// the lines in upper case
///         pub outbox: Outbox<String>,
///         /// producerFinished when done
///         pub signal: Outbox<Control>,
///         /// told when a line is too long
///         #[name = "tooLong"]
///         pub too_long: Outbox<usize>,
///     }
/// }
/// ```
///
/// The names, descriptions and types are kept once per set type, not per
/// component, and the boxes are the struct's fields, so a component's
/// boxes are part of the component's one allocation: a box costs 24
/// bytes and its queue exists only while messages wait. The struct is
/// `repr(C)`: a box finds its owner from its place in it.
#[macro_export]
macro_rules! boxes {
    (
        $(#[$smeta:meta])*
        $svis:vis struct $set:ident {
            $(
                $(#[doc = $doc:literal])*
                $(#[name = $bname:literal])?
                $fvis:vis $field:ident : $fty:ty
            ),* $(,)?
        }
    ) => {
        $(#[$smeta])*
        // Its boxes in declaration order, one after another: each finds
        // its owner from its own address and place (see `Port::__make`).
        #[repr(C)]
        $svis struct $set {
            $(
                $(#[doc = $doc])*
                $fvis $field: $fty,
            )*
        }

        impl $crate::BoxSet for $set {
            fn __table(_: &$crate::Declaration) -> $crate::__private::BoxTable {
                static TABLE: ::std::sync::OnceLock<$crate::__private::BoxTable> =
                    ::std::sync::OnceLock::new();
                TABLE
                    .get_or_init(|| {
                        $crate::__private::table(
                            ::core::stringify!($set),
                            ::std::vec![$(
                                <$fty as $crate::__private::Port>::__meta(
                                    $crate::__box_name!($field $(, $bname)?),
                                    $crate::__private::one_line(&[$($doc),*]),
                                )
                            ),*],
                        )
                    })
                    .clone()
            }

            #[allow(unused_assignments, unused_variables)]
            fn __build(
                _: &$crate::Declaration,
                owner: &$crate::__private::OwnerRef,
            ) -> Self {
                let mut index: u16 = 0;
                $set {
                    $(
                        $field: {
                            let port = <$fty as $crate::__private::Port>::__make(owner, index);
                            index += 1;
                            port
                        },
                    )*
                }
            }

            #[allow(unused_assignments, unused_variables, unused_mut)]
            fn __port(&self, wanted: usize) -> ::core::option::Option<&dyn $crate::__private::ErasedBox> {
                let mut index: usize = 0;
                $(
                    if index == wanted {
                        return ::core::option::Option::Some(
                            $crate::__private::Port::__erased(&self.$field),
                        );
                    }
                    index += 1;
                )*
                ::core::option::Option::None
            }

            fn __each(&self, f: &mut dyn FnMut(&dyn $crate::__private::ErasedBox)) {
                $( f($crate::__private::Port::__erased(&self.$field)); )*
            }

            fn __release(&self, ended: bool) {
                $( $crate::__private::ErasedBox::release(
                    $crate::__private::Port::__erased(&self.$field),
                    ended,
                ); )*
            }

            fn __discard(&self) {
                $( $crate::__private::ErasedBox::discard_all(
                    $crate::__private::Port::__erased(&self.$field),
                ); )*
            }
        }

        impl ::core::fmt::Debug for $set {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(::core::stringify!($set))
                    $(.field(::core::stringify!($field), &self.$field))*
                    .finish()
            }
        }
    };
}

/// A box's name: the field's, or the one given with `#[name = "..."]`.
#[doc(hidden)]
#[macro_export]
macro_rules! __box_name {
    ($field:ident) => {
        ::core::stringify!($field)
    };
    ($field:ident, $name:literal) => {
        $name
    };
}

/// Kamaelia's default boxes (A1): inboxes `inbox` (carrying `I`) and
/// `control` (carrying [`Control`]), outboxes `outbox` (carrying `O`) and
/// `signal` (carrying `Control`).
///
/// ```
/// use axon::{Component, Control, Cx, Standard, Step};
///
/// /// Doubles every number.
/// struct Double;
///
/// impl Component for Double {
///     type Boxes = Standard<u32, u32>;
///
///     fn main(&mut self, cx: &mut Cx<Self::Boxes>) -> Step {
///         while let Some(n) = cx.inbox.recv() {
///             // An unbounded destination here; see `NoSpace` for a bounded one.
///             let _ = cx.outbox.send(n * 2);
///         }
///         match cx.control.recv() {
///             Some(c) => {
///                 let _ = cx.signal.send(c);
///                 Step::Done
///             }
///             None => Step::Pause,
///         }
///     }
/// }
/// ```
#[repr(C)] // its boxes in order: see `Port::__make`
pub struct Standard<I, O> {
    /// data to process
    pub inbox: Inbox<I>,
    /// shutdown signalling: producerFinished, shutdownMicroprocess
    pub control: Inbox<Control>,
    /// data produced
    pub outbox: Outbox<O>,
    /// shutdown signalling: producerFinished when done
    pub signal: Outbox<Control>,
}

impl<I: Send + 'static, O: Send + 'static> fmt::Debug for Standard<I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Standard")
            .field("inbox", &self.inbox)
            .field("control", &self.control)
            .field("outbox", &self.outbox)
            .field("signal", &self.signal)
            .finish()
    }
}

impl<I: Send + 'static, O: Send + 'static> BoxSet for Standard<I, O> {
    fn __table(_: &Declaration) -> BoxTable {
        /// One table per message-type pair used in the program (a static
        /// in a generic function is shared by every instance).
        type Made = Vec<((TypeId, TypeId), BoxTable)>;
        static MADE: Mutex<Made> = Mutex::new(Vec::new());
        let key = (TypeId::of::<I>(), TypeId::of::<O>());
        let mut made = lock(&MADE);
        if let Some((_, table)) = made.iter().find(|(k, _)| *k == key) {
            return table.clone();
        }
        let table = BoxTable::new(vec![
            <Inbox<I>>::__meta("inbox", "data to process".into()),
            <Inbox<Control>>::__meta(
                "control",
                "shutdown signalling: producerFinished, shutdownMicroprocess".into(),
            ),
            <Outbox<O>>::__meta("outbox", "data produced".into()),
            <Outbox<Control>>::__meta(
                "signal",
                "shutdown signalling: producerFinished when done".into(),
            ),
        ]);
        made.push((key, table.clone()));
        table
    }

    fn __build(_: &Declaration, owner: &OwnerRef) -> Self {
        Standard {
            inbox: Port::__make(owner, 0),
            control: Port::__make(owner, 1),
            outbox: Port::__make(owner, 2),
            signal: Port::__make(owner, 3),
        }
    }

    fn __port(&self, index: usize) -> Option<&dyn ErasedBox> {
        match index {
            0 => Some(self.inbox.__erased()),
            1 => Some(self.control.__erased()),
            2 => Some(self.outbox.__erased()),
            3 => Some(self.signal.__erased()),
            _ => None,
        }
    }

    fn __each(&self, f: &mut dyn FnMut(&dyn ErasedBox)) {
        f(self.inbox.__erased());
        f(self.control.__erased());
        f(self.outbox.__erased());
        f(self.signal.__erased());
    }

    fn __release(&self, ended: bool) {
        self.inbox.__erased().release(ended);
        self.control.__erased().release(ended);
        self.outbox.__erased().release(ended);
        self.signal.__erased().release(ended);
    }

    fn __discard(&self) {
        self.inbox.__erased().discard_all();
        self.control.__erased().discard_all();
        self.outbox.__erased().discard_all();
        self.signal.__erased().discard_all();
    }
}

/// The highest box index: a component has at most 65,536 boxes (a box's
/// index is 16 bits). Small under test, so the limit is quick to reach.
const MAX_BOXES: usize = if cfg!(test) { 7 } else { u16::MAX as usize };

/// A declaration of boxes made at run time, for [`DynamicBoxes`]: each
/// with a name, a one-line description and a message type.
///
/// ```
/// use axon::{Control, Declaration};
/// let boxes = Declaration::new()
///     .inbox::<String>("inbox", "lines to shout")
///     .inbox::<Control>("control", "producerFinished / shutdownMicroprocess")
///     .outbox::<String>("outbox", "the lines in upper case");
/// assert_eq!(boxes.len(), 3);
/// ```
#[derive(Clone, Default)]
pub struct Declaration {
    boxes: Vec<(BoxMeta, Maker)>,
}

impl fmt::Debug for Declaration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.boxes.iter().map(|(m, _)| (&m.name, m.direction)))
            .finish()
    }
}

impl Declaration {
    /// No boxes at all.
    pub fn new() -> Self {
        Declaration::default()
    }

    /// Declares an inbox carrying messages of type `T`. A later declaration
    /// of the same name replaces the earlier one.
    pub fn inbox<T: Send + 'static>(
        self,
        name: impl Into<Cow<'static, str>>,
        doc: impl Into<Cow<'static, str>>,
    ) -> Self {
        let meta = BoxMeta::of::<T>(name.into(), doc.into(), Direction::Inbox);
        self.with(meta, make_node::<T>)
    }

    /// Declares an outbox carrying messages of type `T`; same replacement
    /// rule as [`inbox`](Self::inbox).
    pub fn outbox<T: Send + 'static>(
        self,
        name: impl Into<Cow<'static, str>>,
        doc: impl Into<Cow<'static, str>>,
    ) -> Self {
        let meta = BoxMeta::of::<T>(name.into(), doc.into(), Direction::Outbox);
        self.with(meta, make_node::<T>)
    }

    /// Declares a box carrying the same message type as `like`.
    pub(crate) fn like(
        self,
        name: impl Into<Cow<'static, str>>,
        doc: &'static str,
        direction: Direction,
        like: &dyn ErasedBox,
    ) -> Self {
        let meta = BoxMeta {
            name: name.into(),
            doc: doc.into(),
            direction,
            type_name: like.message_type().1,
        };
        self.with(meta, like.maker())
    }

    /// The number of declared boxes.
    pub fn len(&self) -> usize {
        self.boxes.len()
    }

    /// True when no box is declared.
    pub fn is_empty(&self) -> bool {
        self.boxes.is_empty()
    }

    /// True if a box of that name is declared.
    pub fn has(&self, name: &str) -> bool {
        self.boxes.iter().any(|(m, _)| m.name == name)
    }

    fn with(mut self, meta: BoxMeta, make: Maker) -> Self {
        self.boxes.retain(|(m, _)| m.name != meta.name);
        if self.boxes.len() > MAX_BOXES {
            // A box's index is 16 bits (boxes are kept small); asking for
            // the box later is a clear `NoSuchBox` error.
            log::error!(
                "box {:?} not declared: a component has at most 65,536 boxes",
                meta.name
            );
            return self;
        }
        self.boxes.push((meta, make));
        self
    }
}

/// Boxes decided at run time (a [`Pipeline`](crate::Pipeline)'s take the
/// types of its ends), found by name: the one box set whose boxes are not
/// fields. An [`Endpoint`](crate::Endpoint) made with
/// [`Endpoint::dynamic`](crate::Endpoint::dynamic) has one.
pub struct DynamicBoxes {
    /// One allocation per box (each keeping its owner, as it is not a
    /// field of the set): the types are known only at run time.
    nodes: Box<[Box<dyn HoldsBox>]>,
    table: BoxTable,
}

impl fmt::Debug for DynamicBoxes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DynamicBoxes({:?})", self.table)
    }
}

impl DynamicBoxes {
    fn find<T: Send + 'static>(
        &self,
        name: &str,
        direction: Direction,
    ) -> Result<&Node<T>, BoxError> {
        let b = self
            .table
            .find(name, direction)
            .and_then(|i| self.nodes.get(i))
            .map(|b| b.erased())
            .ok_or_else(|| BoxError::NoSuchBox {
                component: "(dynamic)".into(),
                name: name.to_owned(),
            })?;
        let carries = b.message_type().1;
        b.as_any()
            .downcast_ref::<Node<T>>()
            .ok_or_else(|| BoxError::WrongType {
                name: name.to_owned(),
                carries,
                asked: std::any::type_name::<T>(),
            })
    }

    /// The inbox called `name`. Errors: no such inbox, or it carries
    /// another type.
    pub fn inbox<T: Send + 'static>(&self, name: &str) -> Result<&Inbox<T>, BoxError> {
        self.find(name, Direction::Inbox).map(Inbox::of_node)
    }

    /// The outbox called `name`. Errors: no such outbox, or it carries
    /// another type.
    pub fn outbox<T: Send + 'static>(&self, name: &str) -> Result<&Outbox<T>, BoxError> {
        self.find(name, Direction::Outbox).map(Outbox::of_node)
    }
}

impl BoxSet for DynamicBoxes {
    fn __table(dynamic: &Declaration) -> BoxTable {
        BoxTable::new(dynamic.boxes.iter().map(|(m, _)| m.clone()).collect())
    }

    fn __build(dynamic: &Declaration, owner: &OwnerRef) -> Self {
        DynamicBoxes {
            nodes: dynamic
                .boxes
                .iter()
                .zip(0..=u16::MAX)
                .map(|((meta, make), index)| make(meta.direction, index, owner))
                .collect(),
            table: owner.table().clone(),
        }
    }

    fn __port(&self, index: usize) -> Option<&dyn ErasedBox> {
        self.nodes.get(index).map(|b| b.erased())
    }

    fn __each(&self, f: &mut dyn FnMut(&dyn ErasedBox)) {
        for b in self.nodes.iter() {
            f(b.erased());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declaration_past_its_box_limit_is_refused_the_rest_not_a_panic() {
        let mut boxes = Declaration::new();
        for i in 0..=MAX_BOXES + 1 {
            boxes = boxes.inbox::<u8>(format!("in{i}"), "");
        }
        assert_eq!(boxes.len(), MAX_BOXES + 1);
    }
}
