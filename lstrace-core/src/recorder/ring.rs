//! A bounded single-producer, single-consumer ring of finished spans.
//!
//! [`ring`] makes a ring and hands back its two ends: the [`Producer`], which the thread that
//! finishes spans keeps, and the [`Consumer`], which the registry keeps and uses under the
//! drain's lock. Neither end can be cloned and the ring cannot be reached without them, so a
//! ring has at most one producer and one consumer: the slots are written and read without
//! locks on that ground, and the types, not comments, keep it true. A push is a slot write
//! and a release store: no lock, no read-modify-write, no allocation.
//!
//! The producer and the consumer run on different cores: what each one writes sits on its own
//! cache line, the producer keeps its own copies of the indices (reading the consumer's only
//! when the ring looks full), and the consumer publishes its progress once per batch rather
//! than once per item, so that the two cores do not trade a cache line at every span.

use super::sync::{Arc, AtomicBool, AtomicU64, AtomicUsize, Ordering, UnsafeCell};
use std::mem::MaybeUninit;
use std::ptr;

/// What both ends share. Reached only through a [`Producer`] or a [`Consumer`].
struct Ring<T> {
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    mask: usize,
    /// Set when the producer is dropped: the ring gets no more items, and can go once drained.
    closed: AtomicBool,
    /// Written by the producer only.
    produced: CacheLine<Produced>,
    /// Next slot to read, as far as the producer may know; written by the consumer only.
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

// SAFETY: a slot is written only by the one `Producer` and read only by the one `Consumer`
// (neither can be cloned, and `Ring` is private to this module), and is handed from one to
// the other through the release/acquire pair on `tail` (filled) and on `head` (free again):
// no slot is ever accessed by both at once. The items move between threads, hence `T: Send`.
unsafe impl<T: Send> Send for Ring<T> {}
// SAFETY: as for `Send`: both ends hold the ring through an `Arc`, and what they share
// through `&Ring` is the atomics and the slots whose hand-over is described above.
unsafe impl<T: Send> Sync for Ring<T> {}

/// Makes a ring of at least `capacity` slots (a power of two, at least 2) and returns its two
/// ends.
pub(crate) fn ring<T>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    let capacity = capacity.next_power_of_two().max(2);
    let ring = Arc::new(Ring {
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
    });
    let producer = Producer {
        ring: Arc::clone(&ring),
        tail: 0,
        cached_head: 0,
        wake_mask: (capacity - 1) >> 1,
    };
    (producer, Consumer { ring, head: 0 })
}

/// The producing end of a ring: the only one that writes its slots. Not `Clone`; dropping it
/// closes the ring.
pub(crate) struct Producer<T> {
    ring: Arc<Ring<T>>,
    /// Next slot to write (the producer's own copy of `tail`).
    tail: usize,
    /// A possibly stale copy of the consumer's `head`, refreshed only when the ring looks
    /// full.
    cached_head: usize,
    /// Half the capacity, less one: a push that leaves `tail` a multiple of half the capacity
    /// asks for a wake. Worked out once and kept here: after `write`, the compiler must assume
    /// that the shared ring may have changed (not the producer, held exclusively), and would
    /// load `mask` from it again and shift it.
    wake_mask: usize,
}

/// The consuming end of a ring: the only one that reads its slots. Not `Clone`.
pub(crate) struct Consumer<T> {
    ring: Arc<Ring<T>>,
    /// Next slot to read (the consumer's own copy of `head`).
    head: usize,
}

/// What a push did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    Ok,
    /// Accepted, and another half ring has been pushed since the last wake: the consumer
    /// should be woken. (Counting pushes rather than comparing occupancy cannot skip a wake,
    /// whatever the producer's stale view of `head`.)
    OkWake,
    /// Refused: the ring is full. Nothing was written and nothing counted: the caller decides
    /// (see [`Producer::count_dropped`]).
    Full,
}

impl<T> Producer<T> {
    pub(crate) fn capacity(&self) -> usize {
        self.ring.mask + 1
    }

    /// Pushes `item`, or gives it back when the ring is full.
    #[cfg(test)]
    pub(crate) fn push(&mut self, item: T) -> Result<Pushed, T> {
        let item = std::mem::ManuallyDrop::new(item);
        let from: *const T = &*item;
        // SAFETY: the copy leaves a valid `T` in the slot, and `item` (never dropped) has
        // moved there; when the ring is full the copy is not run and `item` goes back.
        match unsafe { self.push_with(|slot| ptr::copy_nonoverlapping(from, slot, 1)) } {
            Pushed::Full => Err(std::mem::ManuallyDrop::into_inner(item)),
            pushed => Ok(pushed),
        }
    }

    /// Pushes the item that `write` writes into the free slot it is given. When the ring is
    /// full, `write` is not run and the push is refused ([`Pushed::Full`]).
    ///
    /// # Safety
    /// When run, `write` must leave a valid `T` in the slot it is given (whose old contents it
    /// must neither read nor drop): the consumer takes that slot as an initialised `T`.
    #[inline]
    pub(crate) unsafe fn push_with(&mut self, write: impl FnOnce(*mut T)) -> Pushed {
        if self.tail.wrapping_sub(self.cached_head) > self.ring.mask {
            // SAFETY: passed on from the caller.
            return unsafe { self.push_when_full(write) };
        }
        // SAFETY: the slot at `tail` is free: even the stale `cached_head` is past it, and
        // the consumer's `head` only moves forward. `write` is passed on from the caller.
        unsafe { self.push_at(write) }
    }

    /// The push of a ring that looked full: refreshes the view of `head`, then pushes or
    /// refuses.
    ///
    /// # Safety
    /// As for [`Producer::push_with`].
    #[cold]
    #[inline(never)]
    unsafe fn push_when_full(&mut self, write: impl FnOnce(*mut T)) -> Pushed {
        self.cached_head = self.ring.head.load(Ordering::Acquire);
        if self.tail.wrapping_sub(self.cached_head) > self.ring.mask {
            return Pushed::Full;
        }
        // SAFETY: the consumer has moved past the slot at `tail` (the acquire load above
        // also makes its reads of that slot happen before the write). `write` is passed on
        // from the caller.
        unsafe { self.push_at(write) }
    }

    /// Writes the item into the slot at `tail` and publishes it.
    ///
    /// # Safety
    /// The slot at `tail` is free (the consumer has moved past it), and `write` keeps the
    /// promise of [`Producer::push_with`].
    #[inline]
    unsafe fn push_at(&mut self, write: impl FnOnce(*mut T)) -> Pushed {
        let tail = self.tail;
        // SAFETY: `mask` keeps the index inside the slots.
        let slot = unsafe { self.ring.slots.get_unchecked(tail & self.ring.mask) };
        // The slot is free and this is its one producer: nothing else accesses it until the
        // release store below hands it over; `write` fills it (the caller's promise).
        slot.with_mut(|slot| write(slot.cast::<T>()));
        let next = tail.wrapping_add(1);
        self.tail = next;
        self.ring.produced.tail.store(next, Ordering::Release);
        if next & self.wake_mask == 0 {
            Pushed::OkWake
        } else {
            Pushed::Ok
        }
    }

    /// Counts an item the producer could not push.
    pub(crate) fn count_dropped(&mut self) {
        // Only the producer writes `dropped`: a load and a store, no read-modify-write.
        let dropped = &self.ring.produced.dropped;
        dropped.store(dropped.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
}

impl<T> Drop for Producer<T> {
    /// Closes the ring. Release: whoever sees it closed sees every push and drop count
    /// before it.
    fn drop(&mut self) {
        self.ring.closed.store(true, Ordering::Release);
    }
}

impl<T> Consumer<T> {
    /// Takes every item pushed so far.
    #[cfg(test)]
    pub(crate) fn drain(&mut self, f: impl FnMut(T)) {
        self.drain_iter(()).for_each(f);
    }

    /// Takes the items pushed so far, one at a time, out of their slots or lent in them,
    /// after `settle` has finished each one in its slot.
    pub(crate) fn drain_iter<S: Settle<T>>(&mut self, settle: S) -> Drain<'_, T, S> {
        let tail = self.ring.produced.tail.load(Ordering::Acquire);
        Drain {
            head: self.head,
            tail,
            consumer: self,
            settle,
            lent: false,
        }
    }

    /// Items waiting.
    pub(crate) fn len(&self) -> usize {
        self.ring
            .produced
            .tail
            .load(Ordering::Acquire)
            .wrapping_sub(self.head)
    }

    /// Items the producer could not push, so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.ring.produced.dropped.load(Ordering::Relaxed)
    }

    /// True once the producer is gone. Acquire: what [`Consumer::len`] and
    /// [`Consumer::dropped`] say after this is final.
    pub(crate) fn is_closed(&self) -> bool {
        self.ring.closed.load(Ordering::Acquire)
    }
}

/// Finishes an item in its slot as a drain reaches it (spans' raw times become wall-clock
/// times).
pub(crate) trait Settle<T> {
    fn settle(&mut self, item: &mut T);
}

/// Items that need no finishing.
impl<T> Settle<T> for () {
    #[inline(always)]
    fn settle(&mut self, _: &mut T) {}
}

/// How many items the consumer takes between two publications of its progress: each one
/// takes the cache line of `head` from the producer. Small under loom, so that the model
/// reaches a publication in the middle of a batch.
const PUBLISH_EVERY: usize = if cfg!(lstrace_loom) { 2 } else { 64 };

/// Takes the items that were in a ring when it was created; see [`Consumer::drain_iter`].
/// Each item is either moved out ([`Iterator::next`]) or lent in its slot
/// ([`Drain::next_lent`]) until the next call, and then dropped there.
pub(crate) struct Drain<'a, T, S: Settle<T>> {
    consumer: &'a mut Consumer<T>,
    head: usize,
    tail: usize,
    settle: S,
    /// True while the item before `head` is lent: it is still in its slot, to be dropped
    /// there before the slot is handed back to the producer.
    lent: bool,
}

impl<T, S: Settle<T>> Drain<'_, T, S> {
    /// Moves on to the next item and returns its slot, with the item settled in it; `None` at
    /// the end. The item lent before, if any, is dropped first. The caller either reads the
    /// item out or marks it lent.
    #[inline]
    fn next_slot(&mut self) -> Option<*mut T> {
        self.drop_lent();
        let ring = &*self.consumer.ring;
        // Hand room back to the producer now and then within a batch (and at the end, on
        // drop), not at every item. Every slot before `head` is empty by now.
        if self.head.is_multiple_of(PUBLISH_EVERY) {
            ring.head.store(self.head, Ordering::Release);
        }
        if self.head == self.tail {
            return None;
        }
        let at = self.head & ring.mask;
        self.head = self.head.wrapping_add(1);
        // SAFETY: `mask` keeps the index inside the slots.
        let slot = unsafe { ring.slots.get_unchecked(at) };
        // Under loom the pointer outlives `with_mut`'s check, which covers the settling only;
        // the hand-over that makes the later reads sound is the same as for this one.
        let item = slot.with_mut(|slot| slot.cast::<T>());
        // SAFETY: slots in head..tail hold items that the producer published with its release
        // store of `tail` (acquired by `drain_iter`), and it writes none of them again until
        // the consumer hands them back by a store of `head` past them, which for this slot
        // happens only after the item is read out or dropped. This is the one consumer.
        unsafe { self.settle.settle(&mut *item) };
        Some(item)
    }

    /// Drops the item lent last, if it is still lent, in its slot.
    #[inline]
    fn drop_lent(&mut self) {
        if !self.lent {
            return;
        }
        self.lent = false;
        let ring = &*self.consumer.ring;
        let at = self.head.wrapping_sub(1) & ring.mask;
        // SAFETY: `mask` keeps the index inside the slots. A lent item is initialised (it was
        // settled, not read out) and its slot is still the consumer's: `head` has been
        // published only up to before it. Dropped once: `lent` is now false.
        unsafe {
            ring.slots
                .get_unchecked(at)
                .with_mut(|slot| (*slot).assume_init_drop());
        }
    }

    /// The next item, lent in its slot until the next call (or the drain's end), when it is
    /// dropped there.
    #[inline]
    pub(crate) fn next_lent(&mut self) -> Option<&mut T> {
        let item = self.next_slot()?;
        self.lent = true;
        // SAFETY: the slot holds a settled item that only this drain can reach until it is
        // dropped, which the `&mut self` borrow of the result puts after the result's last use.
        Some(unsafe { &mut *item })
    }
}

impl<T, S: Settle<T>> Iterator for Drain<'_, T, S> {
    type Item = T;

    #[inline]
    fn next(&mut self) -> Option<T> {
        let item = self.next_slot()?;
        // SAFETY: the slot holds a settled item, read out once: `head` has moved past it and
        // it is not marked lent, so nothing drops it in the slot.
        Some(unsafe { ptr::read(item) })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let len = self.tail.wrapping_sub(self.head);
        (len, Some(len))
    }
}

impl<T, S: Settle<T>> ExactSizeIterator for Drain<'_, T, S> {}

impl<T, S: Settle<T>> Drop for Drain<'_, T, S> {
    /// Drops the item still lent and publishes what was taken, also when the consumer
    /// unwinds: a taken item is never offered again.
    fn drop(&mut self) {
        self.drop_lent();
        self.consumer.head = self.head;
        self.consumer.ring.head.store(self.head, Ordering::Release);
    }
}

impl<T> Drop for Ring<T> {
    /// Drops the items never taken. Both ends are gone (this is the last `Arc`), and the
    /// `Arc`'s drop orders their last accesses before this.
    fn drop(&mut self) {
        let tail = self.produced.tail.load(Ordering::Relaxed);
        let mut head = self.head.load(Ordering::Relaxed);
        while head != tail {
            self.slots[head & self.mask].with_mut(|slot| {
                // SAFETY: slots in head..tail hold published items that were never taken;
                // nothing else can reach them now, and each is dropped once.
                unsafe { (*slot).assume_init_drop() }
            });
            head = head.wrapping_add(1);
        }
    }
}

// Neither end of a ring can be duplicated, so that a second producer or consumer cannot
// exist: a compile error here if one becomes `Clone` (the trait's two impls then both apply).
// Both can move to another thread.
const _: () = {
    trait AmbiguousIfClone<A> {
        fn check() {}
    }
    impl<T: ?Sized> AmbiguousIfClone<()> for T {}
    struct IsClone;
    impl<T: Clone> AmbiguousIfClone<IsClone> for T {}
    let _ = <Producer<String> as AmbiguousIfClone<_>>::check;
    let _ = <Consumer<String> as AmbiguousIfClone<_>>::check;

    const fn is_send<T: Send>() {}
    is_send::<Producer<String>>();
    is_send::<Consumer<String>>();
};

#[cfg(all(test, not(lstrace_loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn fills_refuses_and_drains_in_order() {
        let (mut producer, mut consumer) = ring(4);
        assert_eq!(producer.push(1), Ok(Pushed::Ok));
        assert_eq!(producer.push(2), Ok(Pushed::OkWake));
        assert_eq!(producer.push(3), Ok(Pushed::Ok));
        assert_eq!(producer.push(4), Ok(Pushed::OkWake));
        assert_eq!(producer.push(5), Err(5));
        producer.count_dropped();
        assert_eq!(consumer.dropped(), 1);
        assert_eq!(consumer.len(), 4);
        let mut out = vec![];
        consumer.drain(|x| out.push(x));
        assert_eq!(out, [1, 2, 3, 4]);
        // The producer's view of head is stale (0) until the ring looks full: then it refreshes.
        assert_eq!(producer.push(6), Ok(Pushed::Ok));
        consumer.drain(|x| out.push(x));
        assert_eq!(out, [1, 2, 3, 4, 6]);
        assert!(!consumer.is_closed());
        drop(producer);
        assert!(consumer.is_closed());
        assert_eq!(consumer.len(), 0);
    }

    #[test]
    fn an_item_left_in_a_drain_is_offered_again() {
        let (mut producer, mut consumer) = ring(8);
        for i in 0..5 {
            producer.push(i).unwrap();
        }
        struct TimesTen;
        impl Settle<i32> for TimesTen {
            fn settle(&mut self, item: &mut i32) {
                *item *= 10;
            }
        }
        let mut drain = consumer.drain_iter(TimesTen);
        assert_eq!(drain.len(), 5);
        assert_eq!(drain.next(), Some(0));
        assert_eq!(drain.next_lent(), Some(&mut 10));
        drop(drain);
        let mut out = vec![];
        consumer.drain(|x| out.push(x));
        assert_eq!(out, [2, 3, 4]);
    }

    #[test]
    fn a_lent_item_is_dropped_in_its_slot_once_before_its_room_is_handed_back() {
        let alive = Arc::new(());
        let count = || Arc::strong_count(&alive) - 1;
        let (mut producer, mut consumer) = ring(4);
        for _ in 0..4 {
            assert!(producer.push(Arc::clone(&alive)).is_ok());
        }
        assert!(
            producer.push(Arc::clone(&alive)).is_err(),
            "the ring is full"
        );
        assert_eq!(count(), 4);

        let mut drain = consumer.drain_iter(());
        assert!(drain.next_lent().is_some());
        assert_eq!(count(), 4, "a lent item stays alive in its slot");
        assert!(drain.next_lent().is_some());
        assert_eq!(count(), 3, "the item lent before is dropped");
        let owned = drain.next();
        assert_eq!(
            count(),
            2,
            "the second lent one is dropped, the third moved out"
        );
        drop(owned);
        drop(drain);
        assert_eq!(
            (count(), consumer.len()),
            (1, 1),
            "the fourth is left for later"
        );

        // Three slots were handed back, no more.
        for _ in 0..3 {
            assert!(producer.push(Arc::clone(&alive)).is_ok());
        }
        assert!(producer.push(Arc::clone(&alive)).is_err());
        assert_eq!(count(), 4);

        // An item still lent when the drain ends is dropped with it.
        let mut drain = consumer.drain_iter(());
        assert!(drain.next_lent().is_some());
        drop(drain);
        assert_eq!((count(), consumer.len()), (3, 3));
        drop((producer, consumer));
        assert_eq!(count(), 0, "the ring drops what it holds");
    }

    #[test]
    fn hands_items_across_threads_without_loss() {
        // Fewer under Miri, which checks every access and runs slowly: still enough to go
        // round the ring many times while the producer waits for room.
        const ITEMS: u64 = if cfg!(miri) { 2_000 } else { 100_000 };
        let (mut producer, mut consumer) = ring(64);
        let producing = std::thread::spawn(move || {
            let mut next = 0u64;
            while next < ITEMS {
                match producer.push(Box::new(next)) {
                    Ok(_) => next += 1,
                    Err(_) => std::thread::yield_now(),
                }
            }
        });
        let mut expected = 0u64;
        while expected < ITEMS {
            // Items moved out and items lent in their slots, in turn.
            let mut drain = consumer.drain_iter(());
            loop {
                let item = if expected.is_multiple_of(2) {
                    drain.next().map(|item| *item)
                } else {
                    drain.next_lent().map(|item| **item)
                };
                let Some(item) = item else { break };
                assert_eq!(item, expected);
                expected += 1;
            }
        }
        producing.join().unwrap();
    }

    #[test]
    fn drops_what_was_never_drained() {
        let item = Arc::new(());
        let (mut producer, consumer) = ring(8);
        producer.push(Arc::clone(&item)).unwrap();
        producer.push(Arc::clone(&item)).unwrap();
        assert_eq!(Arc::strong_count(&item), 3);
        drop(consumer);
        assert_eq!(
            Arc::strong_count(&item),
            3,
            "the producer still holds the ring"
        );
        drop(producer);
        assert_eq!(Arc::strong_count(&item), 1);
    }
}

/// The ring under loom: every interleaving of a producer and a consumer on two threads, up to
/// the preemption bound. Loom's cell reports any slot access that is not ordered after the
/// other side's (a write over an unread item, a read of an unpublished one).
#[cfg(all(test, lstrace_loom))]
mod loom_tests {
    use super::*;
    use loom::thread;

    /// Pushes `count` numbers from 0, waiting while the ring is full.
    fn produce(producer: Producer<Box<usize>>, count: usize) {
        produce_from(producer, 0, count);
    }

    /// Pushes the numbers `from..to`, waiting while the ring is full.
    fn produce_from(mut producer: Producer<Box<usize>>, from: usize, to: usize) {
        for i in from..to {
            let mut item = Box::new(i);
            while let Err(back) = producer.push(item) {
                item = back;
                thread::yield_now();
            }
        }
    }

    #[test]
    fn loom_ring_hands_items_over_in_order_across_threads() {
        loom::model(|| {
            let (producer, mut consumer) = ring(2);
            let producing = thread::spawn(move || produce(producer, 3));
            let mut taken = Vec::new();
            while taken.len() < 3 {
                consumer.drain(|item| taken.push(*item));
                thread::yield_now();
            }
            producing.join().unwrap();
            assert_eq!(taken, [0, 1, 2]);
            assert!(consumer.is_closed());
        });
    }

    /// Fills a ring of four slots, has another thread push the items `4..count` into it,
    /// and takes every item, each moved out or (with `lend`) lent in its slot; returns them
    /// in the order taken.
    fn fill_then_take(count: usize, lend: bool) -> Vec<usize> {
        let (mut producer, mut consumer) = ring(4);
        for i in 0..4 {
            producer.push(Box::new(i)).unwrap();
        }
        let producing = thread::spawn(move || produce_from(producer, 4, count));
        let mut taken = Vec::new();
        while taken.len() < count {
            if lend {
                let mut drain = consumer.drain_iter(());
                while let Some(item) = drain.next_lent() {
                    taken.push(**item);
                }
            } else {
                consumer.drain(|item| taken.push(*item));
            }
            thread::yield_now();
        }
        producing.join().unwrap();
        taken
    }

    #[test]
    fn loom_ring_hands_room_back_within_a_batch() {
        // Four slots and five items: the producer needs room while the consumer is in the
        // middle of a batch, which it hands back (every `PUBLISH_EVERY` items) before it has
        // read the rest.
        loom::model(|| assert_eq!(fill_then_take(5, false), [0, 1, 2, 3, 4]));
    }

    #[test]
    fn loom_ring_hands_back_a_lent_slot_only_after_dropping_its_item() {
        // Four slots full, two more items: the producer writes them into the slots of items
        // 0 and 1 as soon as `head` hands those back, while the consumer lends each item in
        // its slot. Handing back the slot of the item still lent (1, when `head` is published
        // at 2) before dropping it would race with the producer's write there.
        loom::model(|| assert_eq!(fill_then_take(6, true), [0, 1, 2, 3, 4, 5]));
    }

    #[test]
    fn loom_ring_counts_what_a_full_ring_refuses_and_closes_last() {
        loom::model(|| {
            let (mut producer, mut consumer) = ring(2);
            let producing = thread::spawn(move || {
                let mut refused = 0u64;
                for i in 0..3 {
                    if producer.push(Box::new(i)).is_err() {
                        producer.count_dropped();
                        refused += 1;
                    }
                }
                refused
            });
            // A closed ring's count and items are final: what was made is what was taken
            // plus what was refused.
            let mut taken = 0u64;
            loop {
                let closed = consumer.is_closed();
                consumer.drain(|_| taken += 1);
                if closed {
                    break;
                }
                thread::yield_now();
            }
            let refused = producing.join().unwrap();
            assert_eq!(consumer.len(), 0);
            assert_eq!(consumer.dropped(), refused);
            assert_eq!(taken + refused, 3);
        });
    }
}
