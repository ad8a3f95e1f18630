//! Memory blocks kept for reuse on the thread that gave them up, by size.
//!
//! Two allocations are made and freed over and over on a busy scheduler
//! thread: a box's queue, each time a message arrives in an empty box and
//! the box empties again (three times per request-reply round trip over a
//! CSA), and a component's unit, twice per connection (its CSA and its
//! handler). glibc's per-thread cache keeps seven blocks of a size; a burst
//! of notices to 64 connections, or 16 connections opening and closing at
//! once, overflows it into its slower bins, where an allocation and a free
//! cost about 300 instructions. A block taken from here costs a small
//! fraction of that.
//!
//! Blocks are kept by size class, not by type: whoever gives one back has
//! dropped what it held, so any value of the same size and alignment can
//! be written into it. Class `i` holds blocks of `(i + 1) × 8` bytes,
//! aligned to 8, up to 2 KiB; other layouts are simply allocated and freed
//! by their owners. A thread keeps at most [`PER_CLASS`] blocks of a size
//! and [`MAX_BYTES`] in all, and frees them when it ends.
//!
//! Nothing outside axon sees the spares; what they change is that making
//! and dropping components (or sending into an empty box) on one thread
//! stops going to the allocator once the thread has kept a block:
//!
//! ```
//! use axon::{Component, Cx, Handle, Standard, Step};
//!
//! struct Quiet;
//! impl Component for Quiet {
//!     type Boxes = Standard<u8, u8>;
//!     fn main(&mut self, _: &mut Cx<Self::Boxes>) -> Step { Step::Pause }
//! }
//!
//! // The first component's unit is allocated; when it is freed its block
//! // is kept, and each one after takes it and gives it back.
//! for _ in 0..1_000 {
//!     let quiet = Handle::new(Quiet);
//!     let inbox = quiet.postbox::<u8>("inbox").unwrap();
//!     inbox.send(1).unwrap(); // a queue from the spares, dropped with it
//! }
//! ```

#![allow(unsafe_code)] // blocks without values: see `keep`'s SAFETY contract

use std::alloc::Layout;
use std::cell::Cell;
use std::ptr::{self, NonNull};

/// The alignment of every kept block.
const ALIGN: usize = 8;

/// The number of size classes: blocks of 8, 16, … bytes up to 2 KiB.
const CLASSES: usize = 256;

/// The most blocks of one size a thread keeps: a burst of notices to as
/// many connections (a Selector's round) is served from them. (32 missed
/// half of a 64-connection burst of queues: 3,325 instructions per round
/// trip against 3,115 with this.)
pub(crate) const PER_CLASS: usize = 256;
const _: () = assert!(PER_CLASS <= u16::MAX as usize, "a list's length is a u16");

/// The most bytes a thread keeps, over all sizes. A thread running a
/// server keeps a few sizes: 256 queues of `Vec<u8>` (80 bytes each) are
/// 20 KiB, 256 CSAs about 120 KiB.
pub(crate) const MAX_BYTES: usize = 1 << 20;

/// The size class blocks of `layout` are kept in, if they are kept.
pub(crate) const fn class_of(layout: Layout) -> Option<usize> {
    let size = layout.size();
    if layout.align() == ALIGN && size != 0 && size % ALIGN == 0 && size / ALIGN <= CLASSES {
        Some(size / ALIGN - 1)
    } else {
        None
    }
}

/// The size of class `class`'s blocks.
#[inline]
const fn size(class: usize) -> usize {
    (class + 1) * ALIGN
}

/// The layout of class `class`'s blocks.
fn layout(class: usize) -> Layout {
    // Never fails: the size is a multiple of the (power of two) alignment
    // and far below `isize::MAX`.
    Layout::from_size_align(size(class), ALIGN).expect("a small multiple of a power of two")
}

/// A thread's kept blocks: a list per size class, linked through the
/// blocks themselves (each kept block's first word points to the next),
/// so that taking one and keeping one are a few loads and stores, with no
/// list of pointers to grow and no borrow flag to check.
struct Spares {
    /// The first block of each class's list (null: none).
    heads: [Cell<*mut u8>; CLASSES],
    /// The length of each list.
    counts: [Cell<u16>; CLASSES],
    /// The bytes of all of them.
    bytes: Cell<usize>,
}

impl Drop for Spares {
    fn drop(&mut self) {
        for (class, head) in self.heads.iter().enumerate() {
            let mut block = head.replace(ptr::null_mut());
            while !block.is_null() {
                // SAFETY: every block in class `class`'s list was allocated
                // by the global allocator with exactly this layout, holds
                // no value but the list's link in its first word (written
                // by `keep`), and is in the list once (`keep`'s contract).
                unsafe {
                    let next = block.cast::<*mut u8>().read();
                    std::alloc::dealloc(block, layout(class));
                    block = next;
                }
            }
        }
    }
}

thread_local! {
    static SPARES: Spares = const {
        Spares {
            heads: [const { Cell::new(ptr::null_mut()) }; CLASSES],
            counts: [const { Cell::new(0) }; CLASSES],
            bytes: Cell::new(0),
        }
    };
}

/// A block of class `class` this thread kept, if it has one: memory of
/// that class's layout, holding no value, owned by the caller from now on
/// (to give back with [`keep`], or to free with that layout).
#[inline]
pub(crate) fn take(class: usize) -> Option<NonNull<u8>> {
    SPARES
        .try_with(|spares| {
            let block = NonNull::new(spares.heads[class].get())?;
            // SAFETY: a block in the list holds the link to the next in its
            // first word (`keep` wrote it; blocks are aligned to 8 and at
            // least 8 bytes).
            let next = unsafe { block.cast::<*mut u8>().as_ptr().read() };
            spares.heads[class].set(next);
            spares.counts[class].set(spares.counts[class].get() - 1);
            spares.bytes.set(spares.bytes.get() - size(class));
            Some(block)
        })
        .ok()
        .flatten()
}

/// Keeps `block` for [`take`] on this thread, or frees it if the thread
/// keeps enough of its size (or in all), or is being torn down.
///
/// # Safety
///
/// `block` was allocated by the global allocator with the layout of class
/// `class` (a `Box` of a value whose layout [`class_of`] puts in it, or a
/// block [`take`] returned for it), holds no value (what was in it has
/// been dropped or moved out), and is not used by the caller afterwards.
#[inline]
pub(crate) unsafe fn keep(block: NonNull<u8>, class: usize) {
    let size = size(class);
    let kept = SPARES
        .try_with(|spares| {
            let count = spares.counts[class].get();
            let bytes = spares.bytes.get() + size;
            if usize::from(count) >= PER_CLASS || bytes > MAX_BYTES {
                return false;
            }
            // SAFETY: the block is the caller's to give up, holds no value,
            // and is aligned to 8 with room for a pointer (every class's
            // blocks are): its first word becomes the list's link.
            unsafe {
                block
                    .cast::<*mut u8>()
                    .as_ptr()
                    .write(spares.heads[class].get())
            };
            spares.heads[class].set(block.as_ptr());
            spares.counts[class].set(count + 1);
            spares.bytes.set(bytes);
            true
        })
        .unwrap_or(false);
    if !kept {
        // SAFETY: the caller says the block has this layout, was allocated
        // by the global allocator and holds no value; not kept, so it is
        // freed once, here.
        unsafe { std::alloc::dealloc(block.as_ptr(), layout(class)) };
    }
}

/// The blocks this thread keeps of class `class` (tests).
#[cfg(test)]
pub(crate) fn kept(class: usize) -> usize {
    SPARES.with(|s| usize::from(s.counts[class].get()))
}

/// The bytes this thread keeps in all (tests).
#[cfg(test)]
pub(crate) fn kept_bytes() -> usize {
    SPARES.with(|s| s.bytes.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh block of class `class`, as a `Box` would allocate it.
    fn allocate(class: usize) -> NonNull<u8> {
        // SAFETY: the layout has a non-zero size.
        NonNull::new(unsafe { std::alloc::alloc(layout(class)) }).expect("memory")
    }

    #[test]
    fn layouts_of_eight_byte_alignment_up_to_two_kib_have_a_class() {
        assert_eq!(class_of(Layout::new::<u64>()), Some(0));
        assert_eq!(class_of(Layout::new::<[u64; 3]>()), Some(2));
        assert_eq!(class_of(Layout::new::<[u64; 256]>()), Some(255));
        assert_eq!(class_of(Layout::new::<[u64; 257]>()), None, "over 2 KiB");
        assert_eq!(class_of(Layout::new::<u32>()), None, "another alignment");
        assert_eq!(class_of(Layout::new::<u128>()), None, "another alignment");
        assert_eq!(class_of(Layout::new::<()>()), None, "zero-sized");
        for class in 0..CLASSES {
            assert_eq!(class_of(layout(class)), Some(class));
        }
    }

    #[test]
    fn a_block_given_back_is_taken_again_on_this_thread_only() {
        // Each test has a thread, so its spares are its own.
        let class = 40;
        let block = allocate(class);
        // SAFETY: allocated with this class's layout, holding no value.
        unsafe { keep(block, class) };
        assert_eq!((kept(class), kept_bytes()), (1, 328));
        let elsewhere = std::thread::spawn(move || take(class).is_none());
        assert!(elsewhere.join().unwrap(), "another thread keeps its own");
        assert_eq!(take(class), Some(block));
        assert_eq!((kept(class), kept_bytes()), (0, 0));
        assert_eq!(take(class), None);
        // SAFETY: as above.
        unsafe { keep(block, class) };
    }

    #[test]
    fn blocks_kept_are_taken_again_each_once_the_last_kept_first() {
        for class in [0, 9, CLASSES - 1] {
            let before = kept_bytes();
            let blocks: Vec<_> = (0..5).map(|_| allocate(class)).collect();
            for &b in &blocks {
                // SAFETY: allocated with this class's layout, holding no value.
                unsafe { keep(b, class) };
            }
            assert_eq!(kept(class), 5);
            let again: Vec<_> = std::iter::from_fn(|| take(class)).collect();
            assert_eq!(again, blocks.iter().rev().copied().collect::<Vec<_>>());
            assert_eq!((kept(class), kept_bytes()), (0, before));
            for b in again {
                // SAFETY: as above; freed with the thread.
                unsafe { keep(b, class) };
            }
        }
    }

    #[test]
    fn a_thread_keeps_a_bounded_number_of_blocks_of_a_size_and_of_bytes() {
        let small = 0;
        for _ in 0..PER_CLASS + 10 {
            // SAFETY: a fresh block of this class's layout, holding no value.
            unsafe { keep(allocate(small), small) };
        }
        assert_eq!(kept(small), PER_CLASS, "the rest were freed");
        // Three sizes near 2 KiB, a full class of each: more than the
        // bytes bound allows.
        for large in CLASSES - 3..CLASSES {
            for _ in 0..PER_CLASS {
                // SAFETY: as above.
                unsafe { keep(allocate(large), large) };
            }
        }
        let bytes = kept_bytes();
        assert!(bytes <= MAX_BYTES, "{bytes} bytes kept");
        assert!(bytes > MAX_BYTES - 2048, "kept until the bound: {bytes}");
        assert_eq!(kept(CLASSES - 3), PER_CLASS, "the first size fits");
        assert!(kept(CLASSES - 1) < PER_CLASS, "the last does not");
    }
}
