//! Zero-initialised arrays backed by transparent huge pages.
//!
//! The session table and its indexes are hundreds of megabytes read at random: with 4 KiB
//! pages nearly every lookup also misses the TLB. Mapping them 2 MiB-aligned with
//! `MADV_HUGEPAGE` (this kernel's THP mode is `madvise`) lets the kernel back them with huge
//! pages at first touch. Untouched zero pages cost nothing, so a table sized for 10M sessions
//! only occupies what it uses, unless `populate` faults it all in up front, as the daemon
//! does: a first touch on the packet path costs a 2 MiB fault (5-20 ms measured in this VM).

use bytemuck::Zeroable;
use core::marker::PhantomData;
use core::ops::Deref;
use core::ptr::NonNull;

const HUGE_PAGE: usize = 2 << 20;

/// A fixed-length array of `T`, zeroed, in its own huge-page-advised mapping.
#[derive(Debug)]
pub struct HugeSlice<T: Zeroable + Sync> {
    map: NonNull<u8>,
    map_len: usize,
    data: NonNull<T>,
    len: usize,
    _owns: PhantomData<T>,
}

// SAFETY: the mapping is owned exclusively by this value; shared access goes through `&[T]`,
// which is sound to share across threads because `T: Sync`.
unsafe impl<T: Zeroable + Sync> Send for HugeSlice<T> {}
// SAFETY: as above; only `&[T]` is handed out.
unsafe impl<T: Zeroable + Sync> Sync for HugeSlice<T> {}

impl<T: Zeroable + Sync> HugeSlice<T> {
    /// `len` zeroed elements. Panics only if the address space is exhausted (as `Vec` would).
    pub fn zeroed(len: usize) -> HugeSlice<T> {
        let bytes = len
            .checked_mul(core::mem::size_of::<T>())
            .expect("size overflows")
            .max(1);
        // Below one huge page there is no TLB to save, and a huge page would be 2 MiB to
        // zero at first touch for a small table (a test's, a fuzz target's): plain pages.
        let huge = bytes >= HUGE_PAGE;
        let map_len = if huge {
            bytes.div_ceil(HUGE_PAGE) * HUGE_PAGE + HUGE_PAGE
        } else {
            bytes
        };
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing touches
        // no existing memory; the result is checked below.
        let map = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        assert!(
            map != libc::MAP_FAILED,
            "mmap of {map_len} bytes failed: {}",
            std::io::Error::last_os_error()
        );
        let map = NonNull::new(map.cast::<u8>()).expect("mmap never returns null on success");
        let offset = if huge {
            map.as_ptr().align_offset(HUGE_PAGE)
        } else {
            0
        };
        // SAFETY: `offset < HUGE_PAGE` and a huge mapping is `bytes + HUGE_PAGE` long or more
        // (a small one starts at offset 0 and is `bytes` long), so the start and `bytes` after
        // it lie inside the mapping.
        let data = unsafe { map.add(offset) };
        if huge {
            // SAFETY: advice on a range of our own mapping; failure only loses the
            // optimisation.
            let _ = unsafe {
                libc::madvise(
                    data.as_ptr().cast(),
                    bytes.div_ceil(HUGE_PAGE) * HUGE_PAGE,
                    libc::MADV_HUGEPAGE,
                )
            };
        }
        HugeSlice {
            map,
            map_len,
            data: data.cast::<T>(),
            len,
            _owns: PhantomData,
        }
    }

    /// Faults every page in now (`MADV_POPULATE_WRITE`, Linux 5.14+), huge pages where the
    /// kernel has them, so that no later first touch stalls the thread that makes it. The
    /// contents stay as they are (zero where untouched). False when the kernel refused (an
    /// older kernel, or no memory for it): pages then fault in at first touch as before.
    pub fn populate(&self) -> bool {
        let bytes = self.len * core::mem::size_of::<T>();
        if bytes == 0 {
            return true;
        }
        // SAFETY: advice on a range inside our own live mapping (`zeroed` reserved a huge one
        // rounded up to whole huge pages, a small one to whole pages); populating changes no
        // byte of it.
        let r = unsafe {
            libc::madvise(
                self.data.as_ptr().cast(),
                if bytes >= HUGE_PAGE {
                    bytes.div_ceil(HUGE_PAGE) * HUGE_PAGE
                } else {
                    self.map_len
                },
                libc::MADV_POPULATE_WRITE,
            )
        };
        r == 0
    }

    /// Bytes of address space reserved (resident memory grows only as elements are touched).
    pub fn mapped_bytes(&self) -> usize {
        self.len * core::mem::size_of::<T>()
    }
}

impl<T: Zeroable + Sync> Deref for HugeSlice<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        // SAFETY: `data` is aligned (2 MiB for a huge mapping, a page for a small one: more
        // than any T here needs; mmap returns page-aligned addresses), points at `len`
        // zero-initialised elements inside our live mapping, and all-zero is a valid T
        // (`bytemuck::Zeroable`, whose derive checks every field). No `&mut` is ever
        // created, so shared references may coexist.
        unsafe { core::slice::from_raw_parts(self.data.as_ptr(), self.len) }
    }
}

impl<T: Zeroable + Sync> Drop for HugeSlice<T> {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping created in `zeroed`; no reference into it outlives
        // `self` (they borrow from it).
        unsafe { libc::munmap(self.map.as_ptr().cast(), self.map_len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::{AtomicU64, Ordering};

    /// A cache line of atomics, shaped like the NAT core's sessions and index buckets.
    #[derive(Zeroable)]
    #[repr(C, align(64))]
    struct Line([AtomicU64; 8]);

    #[test]
    fn zeroed_aligned_and_writable() {
        let s: HugeSlice<Line> = HugeSlice::zeroed(100_000);
        assert_eq!(s.len(), 100_000);
        assert_eq!(s.mapped_bytes(), 100_000 * 64);
        assert_eq!(s.as_ptr() as usize % HUGE_PAGE, 0);
        assert!(s
            .iter()
            .all(|l| l.0.iter().all(|w| w.load(Ordering::Relaxed) == 0)));
        s[99_999].0[7].store(7, Ordering::Relaxed);
        assert_eq!(s[99_999].0[7].load(Ordering::Relaxed), 7);
        let w: HugeSlice<u64> = HugeSlice::zeroed(0);
        assert!(w.is_empty());
        assert!(w.populate());
    }

    /// Populated, the whole array is resident at once and still reads as it was.
    #[test]
    fn populate_faults_everything_in_and_changes_nothing() {
        let s: HugeSlice<Line> = HugeSlice::zeroed(65_536);
        s[3].0[1].store(9, Ordering::Relaxed);
        let before = resident_pages(&s);
        assert!(s.populate());
        let after = resident_pages(&s);
        assert!(before < after, "{before} -> {after} resident pages");
        assert_eq!(after, s.mapped_bytes().div_ceil(4096));
        assert_eq!(s[3].0[1].load(Ordering::Relaxed), 9);
        assert!(s[4..].iter().all(|l| l.0[0].load(Ordering::Relaxed) == 0));
        // Below a huge page: plain pages, populated all the same.
        let small: HugeSlice<Line> = HugeSlice::zeroed(100);
        assert!(small.populate());
        assert_eq!(resident_pages(&small), 2);
    }

    /// Resident 4 KiB pages of the array (mincore).
    fn resident_pages<T: Zeroable + Sync>(s: &HugeSlice<T>) -> usize {
        let pages = s.mapped_bytes().div_ceil(4096);
        let mut vec = vec![0u8; pages];
        // SAFETY: mincore reads page residency of our own mapping into a buffer of one byte
        // per page of the range.
        let r = unsafe { libc::mincore(s.as_ptr() as *mut _, pages * 4096, vec.as_mut_ptr()) };
        assert_eq!(r, 0);
        vec.iter().filter(|&&b| b & 1 == 1).count()
    }
}
