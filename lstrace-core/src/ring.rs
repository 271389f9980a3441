//! A bounded single-producer, single-consumer ring of finished spans.
//!
//! Each thread that finishes spans owns one ring and is its only producer; the collector
//! (holding the registry lock) is the only consumer. A push is a slot write and a release
//! store: no lock, no read-modify-write, no allocation.

use std::cell::{Cell, UnsafeCell};
use std::mem::{ManuallyDrop, MaybeUninit};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

pub(crate) struct Ring<T> {
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    mask: usize,
    /// Next slot to read; written by the consumer only.
    head: AtomicUsize,
    /// Next slot to write; written by the producer only.
    tail: AtomicUsize,
    /// Items refused because the ring was full; written by the producer only.
    dropped: AtomicU64,
    /// Set when the producing thread has exited: the ring can go once drained.
    closed: AtomicBool,
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
    /// Refused: the ring is full; the item was dropped and counted.
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
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// Pushes an item. Must only be called by the ring's one producer, which keeps
    /// `cached_head` (a possibly stale copy of `head`) so that the common case reads no
    /// cache line the consumer writes.
    pub(crate) fn push(&self, item: T, cached_head: &Cell<usize>) -> Pushed {
        let mut item = ManuallyDrop::new(item);
        // SAFETY: `item` is a valid value that is not used (nor dropped) after this.
        unsafe { self.push_from(&mut *item, cached_head) }
    }

    /// Moves `*item` into the ring (or drops it in place when the ring is full), copying it
    /// once, straight from where it is. Must only be called by the ring's one producer.
    ///
    /// # Safety
    /// `item` points to a valid `T` that the caller gives up: it must not be used or dropped
    /// after this call.
    #[inline]
    pub(crate) unsafe fn push_from(&self, item: *mut T, cached_head: &Cell<usize>) -> Pushed {
        // SAFETY: `write` moves `*item` into the slot; when the ring is full (`write` not
        // run), `*item` is dropped here instead. The caller gave it up either way.
        unsafe {
            let pushed =
                self.push_with(cached_head, |slot| ptr::copy_nonoverlapping(item, slot, 1));
            if pushed == Pushed::Full {
                ptr::drop_in_place(item);
            }
            pushed
        }
    }

    /// Pushes the item that `write` writes into the free slot it is given. When the ring is
    /// full, `write` is not run: the push is refused and counted. Must only be called by the
    /// ring's one producer, which keeps `cached_head` (a possibly stale copy of `head`) so
    /// that the common case reads no cache line the consumer writes.
    ///
    /// # Safety
    /// `write` must leave a valid `T` in the slot.
    #[inline]
    pub(crate) unsafe fn push_with(
        &self,
        cached_head: &Cell<usize>,
        write: impl FnOnce(*mut T),
    ) -> Pushed {
        let tail = self.tail.load(Ordering::Relaxed);
        if tail.wrapping_sub(cached_head.get()) >= self.capacity() {
            cached_head.set(self.head.load(Ordering::Acquire));
            if tail.wrapping_sub(cached_head.get()) >= self.capacity() {
                // Only the producer writes `dropped`: a load and a store, no RMW.
                let dropped = self.dropped.load(Ordering::Relaxed);
                self.dropped.store(dropped + 1, Ordering::Relaxed);
                return Pushed::Full;
            }
        }
        // The slot at `tail` is free (the consumer has moved past it, checked above) and only
        // this producer writes slots; the caller's `write` fills it.
        write(self.slots[tail & self.mask].get().cast::<T>());
        self.tail.store(tail.wrapping_add(1), Ordering::Release);
        if tail.wrapping_add(1) & (self.capacity() / 2 - 1) == 0 {
            Pushed::OkWake
        } else {
            Pushed::Ok
        }
    }

    /// Takes every item pushed so far. Must only be called by the one consumer.
    pub(crate) fn drain(&self, f: impl FnMut(T)) {
        self.drain_iter(|_| {}).for_each(f);
    }

    /// Takes the items pushed so far, one at a time, straight out of their slots, after
    /// `settle` has finished each one in its slot. Must only be called by the one consumer.
    pub(crate) fn drain_iter(&self, settle: fn(&mut T)) -> Drain<'_, T> {
        Drain {
            ring: self,
            head: self.head.load(Ordering::Relaxed),
            tail: self.tail.load(Ordering::Acquire),
            settle,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.tail
            .load(Ordering::Acquire)
            .wrapping_sub(self.head.load(Ordering::Acquire))
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// Takes the items that were in a ring when it was created; see [`Ring::drain_iter`].
pub(crate) struct Drain<'a, T> {
    ring: &'a Ring<T>,
    head: usize,
    tail: usize,
    settle: fn(&mut T),
}

impl<T> Iterator for Drain<'_, T> {
    type Item = T;

    #[inline]
    fn next(&mut self) -> Option<T> {
        if self.head == self.tail {
            return None;
        }
        // SAFETY: slots in head..tail were published by the producer's release store, and
        // this is the one consumer.
        let item = unsafe {
            let slot = (*self.ring.slots[self.head & self.ring.mask].get()).assume_init_mut();
            (self.settle)(slot);
            ptr::read(slot)
        };
        self.head = self.head.wrapping_add(1);
        // Publish each slot as it is taken, so the producer gets room back as early as it can
        // and the slot is accounted for even if the caller unwinds.
        self.ring.head.store(self.head, Ordering::Release);
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let len = self.tail.wrapping_sub(self.head);
        (len, Some(len))
    }
}

impl<T> ExactSizeIterator for Drain<'_, T> {}

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
        let head = Cell::new(0);
        assert_eq!(ring.push(1, &head), Pushed::Ok);
        assert_eq!(ring.push(2, &head), Pushed::OkWake);
        assert_eq!(ring.push(3, &head), Pushed::Ok);
        assert_eq!(ring.push(4, &head), Pushed::OkWake);
        assert_eq!(ring.push(5, &head), Pushed::Full);
        assert_eq!(ring.dropped(), 1);
        let mut out = vec![];
        ring.drain(|x| out.push(x));
        assert_eq!(out, [1, 2, 3, 4]);
        // The producer's view of head is stale (0) until the ring looks full: then it refreshes.
        assert_eq!(ring.push(6, &head), Pushed::Ok);
        ring.drain(|x| out.push(x));
        assert_eq!(out, [1, 2, 3, 4, 6]);
    }

    #[test]
    fn hands_items_across_threads_without_loss() {
        let ring = Arc::new(Ring::new(64));
        let producer = {
            let ring = Arc::clone(&ring);
            std::thread::spawn(move || {
                let head = Cell::new(0);
                let mut sent = 0u64;
                let mut next = 0u64;
                while sent < 100_000 {
                    match ring.push(next, &head) {
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
        let head = Cell::new(0);
        ring.push(Arc::clone(&item), &head);
        ring.push(Arc::clone(&item), &head);
        drop(ring);
        assert_eq!(Arc::strong_count(&item), 1);
    }
}
