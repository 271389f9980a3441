//! A bounded single-producer, single-consumer ring of finished spans.
//!
//! Each thread that finishes spans owns one ring and is its only producer; the collector
//! (holding the drain's lock) is the only consumer. A push is a slot write and a release
//! store: no lock, no read-modify-write, no allocation.
//!
//! The producer and the consumer run on different cores: what each one writes sits on its own
//! cache line, the producer keeps its own copies of the indices (reading the consumer's only
//! when the ring looks full), and the consumer publishes its progress once per batch rather
//! than once per item, so that the two cores do not trade a cache line at every span.

use std::cell::{Cell, UnsafeCell};
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

pub(crate) struct Ring<T> {
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    mask: usize,
    /// Set when the producing thread has exited: the ring can go once drained.
    closed: AtomicBool,
    /// Written by the producer only.
    produced: CacheLine<Produced>,
    /// Next slot to read; written by the consumer only.
    head: CacheLine<AtomicUsize>,
}

struct Produced {
    /// Next slot to write.
    tail: AtomicUsize,
    /// Items refused because the ring was full.
    dropped: AtomicU64,
}

/// Keeps what one core writes off the cache lines the other core writes (two lines: the
/// adjacent-line prefetcher fetches pairs).
#[repr(align(128))]
struct CacheLine<T>(T);

impl<T> std::ops::Deref for CacheLine<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// The producer's own view of a ring: the next slot it writes, and a possibly stale copy of
/// the consumer's `head`, refreshed only when the ring looks full.
#[derive(Default)]
pub(crate) struct Cursor {
    tail: Cell<usize>,
    cached_head: Cell<usize>,
}

// SAFETY: slots are handed from the one producer to the one consumer through the
// release/acquire pair on `tail` (filled) and `head` (free again); no slot is ever accessed
// by both sides at once.
unsafe impl<T: Send> Send for Ring<T> {}
unsafe impl<T: Send> Sync for Ring<T> {}

/// What a push did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    Ok,
    /// Accepted, and another half ring has been pushed since the last wake: the consumer
    /// should be woken. (Counting pushes rather than comparing occupancy cannot skip a wake,
    /// whatever the producer's stale view of `head`.)
    OkWake,
    /// Refused: the ring is full. `push_with` wrote nothing and counted nothing: the caller
    /// decides (see [`Ring::count_dropped`]); `push` dropped the item and counted it.
    Full,
}

impl<T> Ring<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.next_power_of_two().max(2);
        Ring {
            slots: (0..capacity)
                .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
                .collect(),
            mask: capacity - 1,
            closed: AtomicBool::new(false),
            produced: CacheLine(Produced {
                tail: AtomicUsize::new(0),
                dropped: AtomicU64::new(0),
            }),
            head: CacheLine(AtomicUsize::new(0)),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// Pushes an item (dropped and counted when the ring is full). Must only be called by the
    /// ring's one producer, with its cursor.
    #[cfg(test)]
    pub(crate) fn push(&self, item: T, cursor: &Cursor) -> Pushed {
        let mut item = std::mem::ManuallyDrop::new(item);
        let item: *mut T = &mut *item;
        // SAFETY: `write` moves `*item` into the slot; when the ring is full (`write` not
        // run), `*item` is dropped here instead: it is given up either way.
        unsafe {
            let pushed = self.push_with(cursor, |slot| ptr::copy_nonoverlapping(item, slot, 1));
            if pushed == Pushed::Full {
                self.count_dropped();
                ptr::drop_in_place(item);
            }
            pushed
        }
    }

    /// Pushes the item that `write` writes into the free slot it is given. When the ring is
    /// full, `write` is not run and the push is refused ([`Pushed::Full`]). Must only be
    /// called by the ring's one producer, with its cursor.
    ///
    /// # Safety
    /// `write` must leave a valid `T` in the slot.
    #[inline]
    pub(crate) unsafe fn push_with(&self, cursor: &Cursor, write: impl FnOnce(*mut T)) -> Pushed {
        let tail = cursor.tail.get();
        if tail.wrapping_sub(cursor.cached_head.get()) > self.mask {
            return self.push_when_full(cursor, write);
        }
        self.push_at(tail, cursor, write)
    }

    /// The push of a ring that looked full: refreshes the view of `head`, then pushes or
    /// refuses.
    #[cold]
    #[inline(never)]
    unsafe fn push_when_full(&self, cursor: &Cursor, write: impl FnOnce(*mut T)) -> Pushed {
        let tail = cursor.tail.get();
        cursor.cached_head.set(self.head.load(Ordering::Acquire));
        if tail.wrapping_sub(cursor.cached_head.get()) > self.mask {
            return Pushed::Full;
        }
        // SAFETY: passed on from the caller.
        unsafe { self.push_at(tail, cursor, write) }
    }

    /// Writes the item into the free slot at `tail` and publishes it.
    #[inline]
    unsafe fn push_at(&self, tail: usize, cursor: &Cursor, write: impl FnOnce(*mut T)) -> Pushed {
        // SAFETY: `mask` keeps the index inside the slots. The slot at `tail` is free (the
        // consumer has moved past it, checked by the caller) and only this producer writes
        // slots; the caller's `write` fills it.
        write(
            unsafe { self.slots.get_unchecked(tail & self.mask) }
                .get()
                .cast::<T>(),
        );
        let next = tail.wrapping_add(1);
        cursor.tail.set(next);
        self.produced.tail.store(next, Ordering::Release);
        if next & (self.mask >> 1) == 0 {
            Pushed::OkWake
        } else {
            Pushed::Ok
        }
    }

    /// Takes every item pushed so far. Must only be called by the one consumer.
    pub(crate) fn drain(&self, f: impl FnMut(T)) {
        self.drain_iter(|_: &mut T| {}).for_each(f);
    }

    /// Takes the items pushed so far, one at a time, straight out of their slots, after
    /// `settle` has finished each one in its slot. Must only be called by the one consumer.
    pub(crate) fn drain_iter<S: FnMut(&mut T)>(&self, settle: S) -> Drain<'_, T, S> {
        Drain {
            ring: self,
            head: self.head.load(Ordering::Relaxed),
            tail: self.produced.tail.load(Ordering::Acquire),
            settle,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.produced
            .tail
            .load(Ordering::Acquire)
            .wrapping_sub(self.head.load(Ordering::Acquire))
    }

    /// Counts an item the producer could not push. Must only be called by the producer.
    pub(crate) fn count_dropped(&self) {
        // Only the producer writes `dropped`: a load and a store, no RMW.
        let dropped = self.produced.dropped.load(Ordering::Relaxed);
        self.produced.dropped.store(dropped + 1, Ordering::Relaxed);
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.produced.dropped.load(Ordering::Relaxed)
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// Takes the items that were in a ring when it was created; see [`Ring::drain_iter`].
pub(crate) struct Drain<'a, T, S: FnMut(&mut T)> {
    ring: &'a Ring<T>,
    head: usize,
    tail: usize,
    settle: S,
}

impl<T, S: FnMut(&mut T)> Iterator for Drain<'_, T, S> {
    type Item = T;

    #[inline]
    fn next(&mut self) -> Option<T> {
        if self.head == self.tail {
            return None;
        }
        // Hand room back to the producer now and then within a batch (and at the end, on
        // drop), not at every item: each store takes the cache line from the producer. Only
        // slots already taken are handed back.
        if self.head & 63 == 0 {
            self.ring.head.store(self.head, Ordering::Release);
        }
        let at = self.head & self.ring.mask;
        self.head = self.head.wrapping_add(1);
        // SAFETY: `mask` keeps the index inside the slots; slots in head..tail were published
        // by the producer's release store, and this is the one consumer. The item is read
        // straight into the caller's hands, once.
        unsafe {
            let slot = (*self.ring.slots.get_unchecked(at).get()).assume_init_mut();
            (self.settle)(slot);
            Some(ptr::read(slot))
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let len = self.tail.wrapping_sub(self.head);
        (len, Some(len))
    }
}

impl<T, S: FnMut(&mut T)> ExactSizeIterator for Drain<'_, T, S> {}

impl<T, S: FnMut(&mut T)> Drop for Drain<'_, T, S> {
    /// Publishes what was taken, also when the consumer unwinds: a taken item is never
    /// offered again.
    fn drop(&mut self) {
        self.ring.head.store(self.head, Ordering::Release);
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        self.drain(drop);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn fills_drops_and_drains_in_order() {
        let ring = Ring::new(4);
        let cursor = Cursor::default();
        assert_eq!(ring.push(1, &cursor), Pushed::Ok);
        assert_eq!(ring.push(2, &cursor), Pushed::OkWake);
        assert_eq!(ring.push(3, &cursor), Pushed::Ok);
        assert_eq!(ring.push(4, &cursor), Pushed::OkWake);
        assert_eq!(ring.push(5, &cursor), Pushed::Full);
        assert_eq!(ring.dropped(), 1);
        let mut out = vec![];
        ring.drain(|x| out.push(x));
        assert_eq!(out, [1, 2, 3, 4]);
        // The producer's view of head is stale (0) until the ring looks full: then it refreshes.
        assert_eq!(ring.push(6, &cursor), Pushed::Ok);
        ring.drain(|x| out.push(x));
        assert_eq!(out, [1, 2, 3, 4, 6]);
    }

    #[test]
    fn hands_items_across_threads_without_loss() {
        let ring = Arc::new(Ring::new(64));
        let producer = {
            let ring = Arc::clone(&ring);
            std::thread::spawn(move || {
                let cursor = Cursor::default();
                let mut sent = 0u64;
                let mut next = 0u64;
                while sent < 100_000 {
                    match ring.push(next, &cursor) {
                        Pushed::Full => std::thread::yield_now(),
                        _ => {
                            sent += 1;
                            next += 1;
                        }
                    }
                }
            })
        };
        let mut expected = 0u64;
        while expected < 100_000 {
            ring.drain(|x| {
                assert_eq!(x, expected);
                expected += 1;
            });
        }
        producer.join().unwrap();
    }

    #[test]
    fn drops_what_was_never_drained() {
        let item = Arc::new(());
        let ring = Ring::new(8);
        let cursor = Cursor::default();
        ring.push(Arc::clone(&item), &cursor);
        ring.push(Arc::clone(&item), &cursor);
        drop(ring);
        assert_eq!(Arc::strong_count(&item), 1);
    }
}
