//! The producing end of a thread's ring: pushing finished spans, growing the ring, waking
//! the recorder.

use super::installed;
use super::registry::REGISTRY;
use super::ring::{self, Pushed};
use crate::clock::{self, Ticks};
use crate::record::SpanRecord;
use std::mem::ManuallyDrop;
use std::ptr;

/// Largest per-thread ring: 8192 spans of 256 bytes, 2 MiB. A ring starts at
/// [`RING_CAPACITY_START`] and doubles, up to this, while its thread wakes the consumer more
/// often than every [`BUSY_WAKE_INTERVAL_NANOS`]: only a thread that makes millions of spans
/// a second gets this big, and it is the one for which each wake (a system call, and in a VM
/// an interrupt to the other core) matters.
pub(crate) const RING_CAPACITY: usize = 8192;

/// A thread's first ring: 128 KiB, enough for a thread that makes spans at an ordinary rate.
pub(crate) const RING_CAPACITY_START: usize = 512;

/// Wakes closer together than this (a millisecond) mean the ring is small for its thread.
const BUSY_WAKE_INTERVAL_NANOS: u64 = 1_000_000;

/// The producing end of this thread's ring.
pub(crate) struct Producer {
    ring: ring::Producer<SpanRecord>,
    /// When the consumer was last woken for this ring.
    last_wake: Ticks,
}

impl Producer {
    fn register(capacity: usize) -> Self {
        Producer {
            ring: REGISTRY.register(capacity),
            last_wake: clock::now(),
        }
    }
}

impl Drop for Producer {
    /// The ring closes (its producer drops after this): the recorder is woken to drain what is
    /// left.
    fn drop(&mut self) {
        if let Some(recorder) = installed() {
            recorder.wake();
        }
    }
}

/// Pushes a span into this thread's ring (registering the ring on first use); when the ring
/// is full and cannot grow, the span is dropped and counted.
pub(crate) fn push(slot: &mut Option<Producer>, span: SpanRecord) {
    let mut span = ManuallyDrop::new(span);
    let span: *mut SpanRecord = &mut *span;
    // SAFETY: the span is moved into the ring by the copy, or dropped here; either way once.
    unsafe {
        if !push_with(slot, move |dst| ptr::copy_nonoverlapping(span, dst, 1)) {
            ptr::drop_in_place(span);
        }
    }
}

/// Pushes the span that `write` writes into a free slot of this thread's ring (registering
/// the ring on first use). When the ring is full (and cannot grow), `write` is not run, the
/// span is counted as dropped, and this returns false.
///
/// # Safety
/// When run, `write` must leave a valid record in the slot it is given, without reading or
/// dropping the slot's old contents: the consumer takes the slot as an initialised record.
/// `write` runs once when this returns true and not at all when it returns false, so a
/// `write` that moves a record in gives it up only on true.
#[inline]
pub(crate) unsafe fn push_with(
    slot: &mut Option<Producer>,
    write: impl FnOnce(*mut SpanRecord) + Copy,
) -> bool {
    let producer = slot.get_or_insert_with(|| Producer::register(RING_CAPACITY_START));
    // SAFETY: passed on from the caller.
    let pushed = unsafe { producer.ring.push_with(write) };
    if pushed == Pushed::Ok {
        return true;
    }
    // SAFETY: passed on from the caller.
    unsafe { pushed_past_half_or_full(slot, pushed, write) }
}

/// Another half ring was pushed (or the ring is full): asks the recorder to drain soon, and
/// gives a thread that wakes its consumer often a bigger ring. Each wake costs both threads
/// a system call and a context switch, so a busy thread should wake it rarely; a quiet
/// thread keeps a small ring. The span that found the ring full goes into the bigger ring,
/// or is dropped and counted (false) when the ring is as big as rings get.
///
/// # Safety
/// As for [`push_with`], and `pushed` is what the ring's `push_with` returned for this very
/// `write`: it has run unless the push was refused ([`Pushed::Full`]), and must not run again.
#[cold]
unsafe fn pushed_past_half_or_full(
    slot: &mut Option<Producer>,
    pushed: Pushed,
    write: impl FnOnce(*mut SpanRecord) + Copy,
) -> bool {
    if let Some(recorder) = installed() {
        recorder.wake();
    }
    let Some(producer) = slot else {
        return false;
    };
    let now = clock::now();
    let busy = pushed == Pushed::Full
        || clock::nanos_between(producer.last_wake, now) < BUSY_WAKE_INTERVAL_NANOS;
    producer.last_wake = now;
    let capacity = producer.ring.capacity();
    if busy && capacity < RING_CAPACITY {
        // The old ring is closed (by the producer's drop) and retired once drained.
        *slot = Some(Producer::register(capacity * 2));
    }
    if pushed != Pushed::Full {
        return true;
    }
    let Some(producer) = slot else {
        return false;
    };
    // SAFETY: `write` was not run by the refused push; passed on from the caller.
    if unsafe { producer.ring.push_with(write) } == Pushed::Full {
        producer.ring.count_dropped();
        return false;
    }
    true
}

/// A span that could not even reach its thread's ring (the thread is shutting down).
pub(crate) fn lost(count: u64) {
    if let Some(recorder) = installed() {
        recorder.dropped(count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::id::{SpanId, TraceId};
    use crate::context::SpanContext;
    use crate::tag::TagList;
    use crate::task::stack::{SpanFrame, Stamp};

    fn record() -> SpanRecord {
        let context = SpanContext::new(TraceId::random(), SpanId::random(), true);
        let frame = SpanFrame::recording(
            context,
            None,
            "ring-growth".into(),
            TagList::new(),
            Stamp::At(clock::now()),
        );
        frame
            .into_record(clock::now(), crate::task::stack::Ending::Normal)
            .expect("a recording frame has a record")
    }

    #[test]
    fn a_thread_that_fills_its_ring_gets_a_bigger_one_up_to_the_limit() {
        std::thread::spawn(|| {
            let mut slot = None;
            push(&mut slot, record());
            let first = slot.as_ref().map(|p: &Producer| p.ring.capacity());
            assert_eq!(first, Some(RING_CAPACITY_START));
            // Each full ring makes way for one twice its size, to the limit. Other tests in
            // this binary may drain every ring at any moment, which delays a ring's filling
            // but cannot stop it: push until the limit is reached, within a generous bound.
            for _ in 0..64 * RING_CAPACITY {
                push(&mut slot, record());
                if slot.as_ref().map(|p| p.ring.capacity()) == Some(RING_CAPACITY) {
                    break;
                }
            }
            let last = slot.as_ref().map(|p| p.ring.capacity());
            assert_eq!(last, Some(RING_CAPACITY));
        })
        .join()
        .unwrap();
    }
}
