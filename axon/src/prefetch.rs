//! A hint to the CPU to start loading memory that will be read soon.
//!
//! A snapshot walks tens of thousands of components, each a handful of
//! separate allocations: the walk waits on memory, not on instructions.
//! Asking for the next components' memory while this one is read lets
//! those waits overlap (see `snapshot::take`).

#![allow(unsafe_code)]

/// Starts loading the cache line holding `p` into every cache level.
/// Anywhere but x86-64 it does nothing.
#[inline(always)]
pub(crate) fn prefetch<T: ?Sized>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint: it reads nothing into the program and
    // never faults, whatever the address (Intel SDM vol. 2, PREFETCHh), so
    // no pointer can make it unsound. `sse`, its target feature, is part
    // of the x86-64 baseline that every x86-64 target enables.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::prefetch;

    #[test]
    fn prefetching_any_address_changes_nothing() {
        let v: Vec<u64> = (0..1024).collect();
        for i in (0..v.len()).step_by(8) {
            prefetch(&v[i]);
        }
        // Past the end, null and a dangling address are hints too.
        prefetch(v.as_ptr().wrapping_add(1 << 20));
        prefetch(std::ptr::null::<u8>());
        prefetch(std::ptr::NonNull::<u64>::dangling().as_ptr());
        assert_eq!(v.iter().sum::<u64>(), 1023 * 1024 / 2);
    }
}
