//! Software prefetch. A discarded load stalls retirement until its line arrives, which caps
//! how many misses a batch keeps in flight; the prefetch instruction retires at once.
//! Measured with `cargo run --release -p benches --example lookup_scaling`.

/// Asks the CPU to start fetching the cache line holding `*p` into all cache levels.
#[inline(always)]
pub fn prefetch<T>(p: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint: it never faults, whatever the address, and writes nothing;
    // `p` is a valid reference anyway.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
            (p as *const T).cast::<i8>(),
        )
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
