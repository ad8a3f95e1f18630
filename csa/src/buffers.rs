//! The CSA's read buffers, kept per thread between a read and the write
//! that gives them back.
//!
//! A read goes into a large buffer ([`CHUNK`]). A large read becomes the
//! message itself, and the next read takes a buffer given back by
//! [`recycle`] (a chunk already written) instead of a new, zero-filled
//! one. A small read (a request, a reply, a chat line) is copied out into
//! a small buffer: one given back earlier if this thread has one of the
//! size, or a new one of a power-of-two capacity. A request-reply round
//! trip used to allocate and free one small buffer, and with 64
//! connections served in a burst glibc's per-thread cache (seven blocks
//! a size) overflowed into its slower bins: about 200 instructions per
//! round trip, against about 80 for taking a kept one and giving it back
//! (`bench callgrind`: 2,778 to 2,651 per round trip in all).
//!
//! A connection that is streaming (its last read filled a chunk) reads
//! several chunks in one vectored read ([`read_chunks`]): over loopback a
//! system call costs more than copying 32 KiB, and bulk echo made 30
//! reads per MB where a server reading 64 KiB at once makes 15.
//!
//! What a thread keeps is bounded whatever it is given: at most
//! [`SPARE_CHUNKS`] large buffers and [`SPARE_SMALL`] small ones per size
//! class. An idle connection holds none.
//!
//! ```
//! // A chunk written is given back, for this thread's next read.
//! let reply: Vec<u8> = b"hello\n".to_vec();
//! csa::recycle(reply);
//! ```

use std::cell::RefCell;
use std::io::{self, IoSliceMut, Read};

use mio::net::TcpStream;

use crate::{CHUNK, READS_PER_STEP};

/// The most large buffers [`recycle`] keeps per thread: enough for the
/// chunks several busy connections have in flight between a read and its
/// write (with one, most large reads took a new, zero-filled buffer), and
/// at most 8 × 64 KiB per thread whatever it is given.
pub(crate) const SPARE_CHUNKS: usize = 8;

/// The smallest small buffer made (a read of fewer bytes still takes one
/// of this capacity; glibc's smallest block holds 24 bytes anyway).
const SMALL_MIN: usize = 16;

/// The small size classes kept: class `k` holds buffers whose capacity is
/// at least `SMALL_MIN << k` and less than twice that, up to 2 KiB. Larger
/// small reads are simply allocated and freed.
const SMALL_CLASSES: usize = 7;

/// The most small buffers kept per class and thread: a Selector's round
/// of notices to 64 connections reads 64 replies before any is written.
/// At most about 256 KiB per thread whatever it is given (64 buffers of
/// under 2 KiB in the largest class, half that in the next, …).
pub(crate) const SPARE_SMALL: usize = 64;

/// A thread's buffers.
pub(crate) struct Spares {
    /// Large buffers: the one reads go into (last), and chunks given back
    /// for the reads after it.
    pub(crate) chunks: Vec<Vec<u8>>,
    /// Small buffers given back, empty, by size class.
    pub(crate) small: [Vec<Vec<u8>>; SMALL_CLASSES],
}

impl Spares {
    // Both `inline(always)`: shared by `read_chunk` and `read_chunks`, a
    // plain `#[inline]` left `read_chunk` 13 instructions a round trip
    // dearer (callgrind ping-pong 2,657 against 2,635).

    /// A buffer of [`CHUNK`] bytes to read into: one kept, or a new one.
    /// A kept buffer is filled from its length only: bytes up to there
    /// are some earlier message's, and are overwritten or cut off after
    /// the read before anyone sees them.
    #[inline(always)]
    fn read_buffer(&mut self) -> Vec<u8> {
        let mut buf = self.chunks.pop().unwrap_or_default();
        if buf.len() < CHUNK {
            buf.resize(CHUNK, 0);
        }
        buf
    }

    /// A small read's bytes, copied out of the buffer they were read into:
    /// into a small buffer of their size class kept, or a new one.
    #[inline(always)]
    fn copy_small(&mut self, bytes: &[u8]) -> Vec<u8> {
        let (class, capacity) = class_for(bytes.len());
        let mut small = class
            .and_then(|k| self.small[k].pop())
            .unwrap_or_else(|| Vec::with_capacity(capacity));
        small.extend_from_slice(bytes);
        small
    }
}

thread_local! {
    /// This thread's buffers.
    pub(crate) static SCRATCH: RefCell<Spares> = const {
        RefCell::new(Spares {
            chunks: Vec::new(),
            small: [const { Vec::new() }; SMALL_CLASSES],
        })
    };
}

/// The class a buffer of capacity `capacity` is kept in, if any.
fn class_of(capacity: usize) -> Option<usize> {
    if capacity < SMALL_MIN {
        return None;
    }
    let class = (capacity / SMALL_MIN).ilog2() as usize;
    (class < SMALL_CLASSES).then_some(class)
}

/// The class a buffer for `len` bytes is taken from (every buffer in it
/// holds `len`), and the capacity of a new one for it.
fn class_for(len: usize) -> (Option<usize>, usize) {
    let capacity = len.max(SMALL_MIN).next_power_of_two();
    (class_of(capacity), capacity)
}

/// Reads one chunk. Small reads are copied out of the shared buffer; a
/// large one takes the buffer itself (no copy), and the next is one given
/// back by [`recycle`] or, if none was, a new one.
pub(crate) fn read_chunk(stream: &TcpStream) -> io::Result<Vec<u8>> {
    SCRATCH.with(|scratch| {
        let mut spares = scratch.borrow_mut();
        let mut buf = spares.read_buffer();
        let n = match (&*stream).read(&mut buf[..CHUNK]) {
            Ok(n) => n,
            Err(e) => {
                spares.chunks.push(buf);
                return Err(e);
            }
        };
        if n >= CHUNK / 4 {
            buf.truncate(n);
            Ok(buf)
        } else if n == 0 {
            // The peer's end (or an empty read): no buffer to make, and
            // none to free when the caller drops it.
            spares.chunks.push(buf);
            Ok(Vec::new())
        } else {
            let small = spares.copy_small(&buf[..n]);
            spares.chunks.push(buf);
            Ok(small)
        }
    })
}

/// Chunks from one vectored read ([`read_chunks`]), oldest first: each
/// holds at most [`CHUNK`] bytes, every one but the last exactly that.
pub(crate) struct Chunks {
    bufs: [Vec<u8>; READS_PER_STEP],
    /// The next to hand out, and how many there are.
    at: usize,
    len: usize,
    /// The bytes read, in all.
    pub(crate) bytes: usize,
}

impl Iterator for Chunks {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        let buf = self.bufs[..self.len].get_mut(self.at)?;
        self.at += 1;
        Some(std::mem::take(buf))
    }
}

/// Reads up to `count` chunks (at most [`READS_PER_STEP`]) in one vectored
/// read: the chunks of a streaming peer, with one system call where
/// [`read_chunk`] makes `count`. As there, a small read (under a quarter
/// of a chunk) is copied out into a small buffer, and the buffers the read
/// did not reach go back to this thread's spares.
pub(crate) fn read_chunks(stream: &TcpStream, count: usize) -> io::Result<Chunks> {
    let count = count.clamp(1, READS_PER_STEP);
    SCRATCH.with(|scratch| {
        let mut spares = scratch.borrow_mut();
        let mut bufs: [Vec<u8>; READS_PER_STEP] = Default::default();
        for buf in &mut bufs[..count] {
            *buf = spares.read_buffer();
        }
        let read = {
            let mut slices = [(); READS_PER_STEP].map(|()| IoSliceMut::new(&mut []));
            for (slice, buf) in slices.iter_mut().zip(bufs.iter_mut()) {
                *slice = IoSliceMut::new(buf);
            }
            (&*stream).read_vectored(&mut slices[..count])
        };
        let n = match read {
            Ok(n) => n,
            Err(e) => {
                spares.chunks.extend(bufs.into_iter().take(count));
                return Err(e);
            }
        };
        let mut chunks = Chunks {
            bufs: Default::default(),
            at: 0,
            len: 0,
            bytes: n,
        };
        let mut bufs = bufs.into_iter().take(count);
        if n < CHUNK / 4 {
            if n > 0 {
                let first = bufs.next().unwrap_or_default();
                let small = spares.copy_small(&first[..n]);
                spares.chunks.push(first);
                chunks.bufs[0] = small;
                chunks.len = 1;
            }
        } else {
            let mut left = n;
            while left > 0 {
                let Some(mut buf) = bufs.next() else { break };
                buf.truncate(left.min(CHUNK));
                left -= buf.len();
                chunks.bufs[chunks.len] = buf;
                chunks.len += 1;
            }
        }
        spares.chunks.extend(bufs);
        Ok(chunks)
    })
}

/// An empty buffer of at least [`CHUNK`] bytes' capacity, for a chunk
/// gathered from pieces (a session's decrypted records): one given back by
/// [`recycle`] if this thread has one, else a new one (not zero-filled).
/// Over TLS no read takes the chunks written back, so without this every
/// chunk was a new allocation of 32 KiB and every one given back beyond
/// [`SPARE_CHUNKS`] a free, and glibc trimmed and grew its heap under
/// them (page faults each time).
pub(crate) fn spare_chunk() -> Vec<u8> {
    let kept = SCRATCH
        .try_with(|scratch| scratch.try_borrow_mut().ok()?.chunks.pop())
        .ok()
        .flatten();
    match kept {
        Some(mut buf) => {
            buf.clear(); // its bytes are an earlier message's
            buf
        }
        None => Vec::with_capacity(CHUNK),
    }
}

/// Gives a buffer back for this thread's next reads, in place of a new
/// one (a large one is allocated and zero-filled: in bulk, a few percent
/// of the server's CPU; a small one is an allocation and a free per
/// message). The CSA gives back every chunk it has written; a component
/// that consumes the CSA's chunks itself (the TLS layer) gives them back
/// when done. Kept only if its capacity is between [`CHUNK`] and twice
/// that (at most 8 of them per thread), or between 16 bytes and 2 KiB (at
/// most 64 of each power of two); otherwise, or beyond those counts, it
/// is simply dropped.
///
/// ```
/// let chunk: Vec<u8> = Vec::with_capacity(csa::CHUNK);
/// csa::recycle(chunk); // kept for a later large read on this thread
/// csa::recycle(vec![0u8; 64]); // kept for a later small one
/// csa::recycle(vec![0u8; 4096]); // neither: simply dropped
/// ```
#[inline]
pub fn recycle(buf: Vec<u8>) {
    let capacity = buf.capacity();
    if (CHUNK..=2 * CHUNK).contains(&capacity) {
        keep(buf, |s| (&mut s.chunks, SPARE_CHUNKS));
    } else if let Some(class) = class_of(capacity) {
        let mut buf = buf;
        buf.clear(); // its bytes are never shown: a read extends it
        keep(buf, move |s| (&mut s.small[class], SPARE_SMALL));
    }
}

/// Keeps `buf` in the list `place` picks, if it holds fewer than its
/// bound; on a thread being torn down, or re-entered, it is dropped.
#[inline(never)]
fn keep(buf: Vec<u8>, place: impl FnOnce(&mut Spares) -> (&mut Vec<Vec<u8>>, usize)) {
    let _ = SCRATCH.try_with(|scratch| {
        if let Ok(mut spares) = scratch.try_borrow_mut() {
            let (list, bound) = place(&mut spares);
            if list.len() < bound {
                list.push(buf);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_buffer_is_kept_in_the_class_whose_every_buffer_holds_its_reads() {
        assert_eq!(class_of(15), None);
        assert_eq!(class_of(16), Some(0));
        assert_eq!(class_of(31), Some(0));
        assert_eq!(class_of(32), Some(1));
        assert_eq!(class_of(2047), Some(6));
        assert_eq!(class_of(2048), None);
        for len in 1..=2048 {
            let (class, capacity) = class_for(len);
            assert!(capacity >= len && capacity < 2 * len.max(SMALL_MIN));
            if let Some(k) = class {
                // Every buffer kept in class k holds at least this many.
                assert!(SMALL_MIN << k >= len, "{len} bytes from class {k}");
                assert_eq!(class_of(capacity), Some(k));
            } else {
                assert!(len > 1024, "{len} bytes have a class");
            }
        }
    }

    #[test]
    fn a_spare_chunk_is_one_given_back_emptied_or_a_new_one() {
        SCRATCH.with(|s| s.borrow_mut().chunks.clear());
        let fresh = spare_chunk();
        assert!(fresh.is_empty() && fresh.capacity() >= CHUNK);
        let mut written = Vec::with_capacity(CHUNK);
        written.extend_from_slice(b"an earlier message");
        let at = written.as_ptr();
        recycle(written);
        let again = spare_chunk();
        assert_eq!(again.as_ptr(), at, "the buffer given back");
        assert!(again.is_empty(), "holding none of its bytes");
        assert_eq!(SCRATCH.with(|s| s.borrow().chunks.len()), 0);
    }

    #[test]
    fn small_buffers_given_back_are_bounded_per_class() {
        let kept = |k: usize| SCRATCH.with(|s| s.borrow().small[k].len());
        for _ in 0..SPARE_SMALL + 5 {
            recycle(Vec::with_capacity(100));
        }
        assert_eq!(kept(class_of(100).unwrap()), SPARE_SMALL);
        recycle(Vec::with_capacity(4096));
        recycle(Vec::with_capacity(8));
        let total: usize = (0..SMALL_CLASSES).map(kept).sum();
        assert_eq!(total, SPARE_SMALL, "too large or too small: dropped");
    }
}
