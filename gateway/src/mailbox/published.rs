//! Read-copy-update for configuration the workers read on every packet (the pipeline's
//! `Tables`): the control thread publishes a whole new value; each worker checks one atomic
//! counter per batch and takes the new value only when it changed. Workers never wait on the
//! control thread, and a worker sees the old value or the new, never a mix.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The current value and a version that changes with every publication.
#[derive(Debug)]
pub struct Published<T> {
    current: Mutex<Arc<T>>,
    version: AtomicU64,
}

impl<T> Published<T> {
    pub fn new(value: T) -> Arc<Published<T>> {
        Arc::new(Published {
            current: Mutex::new(Arc::new(value)),
            version: AtomicU64::new(0),
        })
    }

    /// Replaces the value; readers pick it up at their next `get`.
    pub fn publish(&self, value: T) {
        let value = Arc::new(value);
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = value;
        self.version.fetch_add(1, Ordering::Release);
    }

    /// The current value (for the control thread; workers use a [`Reader`]).
    pub fn load(&self) -> Arc<T> {
        Arc::clone(&self.current.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// A reader for one worker.
    pub fn reader(self: &Arc<Self>) -> Reader<T> {
        let seen = self.version();
        Reader {
            source: Arc::clone(self),
            cached: self.load(),
            seen,
        }
    }
}

/// One worker's view: a cached value, refreshed when the version moves.
#[derive(Debug)]
pub struct Reader<T> {
    source: Arc<Published<T>>,
    cached: Arc<T>,
    seen: u64,
}

impl<T> Reader<T> {
    /// The latest value. One atomic load when nothing changed (call it once per batch); the
    /// lock is taken only right after a publication.
    #[inline]
    pub fn get(&mut self) -> &T {
        let v = self.source.version();
        if v != self.seen {
            self.cached = self.source.load();
            self.seen = v;
        }
        &self.cached
    }

    /// The value as of the last `get` or `changed`.
    pub fn current(&self) -> &Arc<T> {
        &self.cached
    }

    /// The latest value if it changed since the last call (or `get`), else None.
    #[inline]
    pub fn changed(&mut self) -> Option<Arc<T>> {
        let v = self.source.version();
        if v == self.seen {
            return None;
        }
        self.cached = self.source.load();
        self.seen = v;
        Some(Arc::clone(&self.cached))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_see_publications() {
        let p = Published::new(1u32);
        let mut r = p.reader();
        assert_eq!(*r.get(), 1);
        p.publish(2);
        assert_eq!(*r.get(), 2);
        assert_eq!(*p.load(), 2);
    }

    /// Readers on other threads never see a torn value and never go back in time.
    #[test]
    fn concurrent_readers_see_whole_values_in_order() {
        let p = Published::new((0u64, 0u64));
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let mut r = p.reader();
                std::thread::spawn(move || {
                    let mut last = 0;
                    let mut changes = 0;
                    while last < 10_000 {
                        let &(a, b) = r.get();
                        assert_eq!(b, a * 2, "torn value");
                        assert!(a >= last, "went back from {last} to {a}");
                        changes += u32::from(a != last);
                        last = a;
                    }
                    changes
                })
            })
            .collect();
        for i in 1..=10_000u64 {
            p.publish((i, i * 2));
        }
        for r in readers {
            assert!(r.join().unwrap() > 0);
        }
    }
}
