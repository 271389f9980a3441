//! Where finished spans go: each thread's ring, the lists of rings, and the one
//! installed [`Recorder`] that drains them.

mod ring;
mod sync;

use crate::clock::{self, Ticks};
use crate::record::SpanRecord;
use once_cell::sync::OnceCell;
use ring::{Consumer, Pushed};
use std::fmt;
use std::mem::ManuallyDrop;
use std::ptr;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize};
use std::sync::{LazyLock, PoisonError};
use sync::{AtomicBool, Mutex, MutexGuard, Ordering};

/// Receives finished spans. One recorder is installed per process: the reporter installed by
/// `lstrace::init`, the in-memory [`TestRecorder`](crate::testing::TestRecorder), or your own.
///
/// Spans wait in per-thread rings until somebody calls [`drain`]; the recorder decides when
/// (periodically, when [`Recorder::wake`] says a ring is half full, on flush).
pub trait Recorder: Send + Sync + 'static {
    /// Takes a batch of finished spans. Called by [`drain`], on the draining thread.
    fn record(&self, spans: &mut dyn Iterator<Item = SpanRecord>);

    /// Spans were dropped before reaching the recorder (a thread's ring was full).
    fn dropped(&self, count: u64);

    /// A thread has pushed another half ring of spans: arrange for [`drain`] to run soon. Called on the
    /// instrumented thread, so it must not block (unparking a thread is fine).
    fn wake(&self);
}

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

const UNINITIALISED: u8 = 0;
const RECORDING: u8 = 1;
/// Only the reporter stops recording (on close, or when the collector disables it).
#[cfg(feature = "reporter")]
const STOPPED: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(UNINITIALISED);
static RECORDER: OnceCell<Box<dyn Recorder>> = OnceCell::new();
static MAX_LOGS_PER_SPAN: AtomicUsize = AtomicUsize::new(500);
static MAX_TAGS_PER_SPAN: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_TAGS_PER_SPAN);
static MAX_BAGGAGE_ITEMS: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_BAGGAGE_ITEMS);
static MAX_OPERATION_NAME_LEN: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_OPERATION_NAME_LEN);

/// The most tags a span keeps unless configured otherwise.
pub const DEFAULT_MAX_TAGS_PER_SPAN: usize = 1024;

/// The most baggage items a context carries unless configured otherwise: W3C Baggage's
/// limit of list members in one header.
pub const DEFAULT_MAX_BAGGAGE_ITEMS: usize = 180;

/// The longest operation name, in bytes, unless configured otherwise.
pub const DEFAULT_MAX_OPERATION_NAME_LEN: usize = 1024;

/// True while a recorder is installed and recording. This is the one check a traced call
/// makes when no tracer is initialised: a load and a branch.
#[inline(always)]
#[must_use]
pub fn is_enabled() -> bool {
    STATE.load(Ordering::Relaxed) == RECORDING
}

/// The error of a second installation: the first recorder stays in place and keeps working.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlreadyInstalled;

impl fmt::Display for AlreadyInstalled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an lstrace tracer is already installed in this process")
    }
}

impl std::error::Error for AlreadyInstalled {}

/// Installs the process's recorder and starts recording. Fails if one is already installed.
///
/// # Errors
/// [`AlreadyInstalled`] when a recorder was installed before (the first one keeps working).
pub fn install(recorder: Box<dyn Recorder>) -> Result<&'static dyn Recorder, AlreadyInstalled> {
    crate::clock::init();
    let mut fresh = false;
    let installed = RECORDER.get_or_init(|| {
        fresh = true;
        recorder
    });
    if !fresh {
        return Err(AlreadyInstalled);
    }
    STATE.store(RECORDING, Ordering::Release);
    Ok(&**installed)
}

/// The installed recorder, if any.
#[must_use]
pub fn installed() -> Option<&'static dyn Recorder> {
    RECORDER.get().map(|r| &**r)
}

/// Stops recording for good: every span after this is a no-op. Used by `close` and when the
/// collector disables the tracer.
#[cfg(feature = "reporter")]
pub(crate) fn stop() {
    STATE.store(STOPPED, Ordering::Release);
}

/// Sets the most logs a span keeps; later logs are dropped and counted on the span. The
/// tracer sets it from [`Options::max_logs_per_span`](crate::Options::max_logs_per_span).
pub(crate) fn set_max_logs_per_span(max: usize) {
    MAX_LOGS_PER_SPAN.store(max, Ordering::Relaxed);
}

pub(crate) fn max_logs_per_span() -> usize {
    MAX_LOGS_PER_SPAN.load(Ordering::Relaxed)
}

/// Sets the most tags a span keeps; tags with new keys after that are dropped and counted on
/// the span ([`SpanRecord::dropped_tags`]). A tag whose key the span has replaces its value.
pub fn set_max_tags_per_span(max: usize) {
    MAX_TAGS_PER_SPAN.store(max, Ordering::Relaxed);
}

#[inline]
pub(crate) fn max_tags_per_span() -> usize {
    MAX_TAGS_PER_SPAN.load(Ordering::Relaxed)
}

/// Sets the most baggage items a context carries; items with new keys after that are
/// dropped and counted on the context
/// ([`SpanContext::dropped_baggage_items`](crate::SpanContext::dropped_baggage_items)) and
/// in [`baggage_items_dropped`].
pub fn set_max_baggage_items(max: usize) {
    MAX_BAGGAGE_ITEMS.store(max, Ordering::Relaxed);
}

pub(crate) fn max_baggage_items() -> usize {
    MAX_BAGGAGE_ITEMS.load(Ordering::Relaxed)
}

/// Sets the longest operation name, in bytes: longer names are cut on a character boundary
/// as their spans reach the recorder, and counted in [`operation_names_truncated`].
pub fn set_max_operation_name_len(max: usize) {
    MAX_OPERATION_NAME_LEN.store(max, Ordering::Relaxed);
}

pub(crate) fn max_operation_name_len() -> usize {
    MAX_OPERATION_NAME_LEN.load(Ordering::Relaxed)
}

static BAGGAGE_ITEMS_DROPPED: AtomicU64 = AtomicU64::new(0);
static OPERATION_NAMES_TRUNCATED: AtomicU64 = AtomicU64::new(0);

/// How many baggage items with new keys contexts have refused since the process started,
/// because they carried the most items allowed ([`set_max_baggage_items`]). The installed
/// tracer reports them (`baggage.dropped`).
#[must_use]
pub fn baggage_items_dropped() -> u64 {
    BAGGAGE_ITEMS_DROPPED.load(Ordering::Relaxed)
}

/// How many operation names have been cut since the process started, because they were
/// longer than allowed ([`set_max_operation_name_len`]). The installed tracer reports them
/// (`operation_names.truncated`).
#[must_use]
pub fn operation_names_truncated() -> u64 {
    OPERATION_NAMES_TRUNCATED.load(Ordering::Relaxed)
}

pub(crate) fn count_baggage_item_dropped() {
    BAGGAGE_ITEMS_DROPPED.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn count_operation_name_truncated() {
    OPERATION_NAMES_TRUNCATED.fetch_add(1, Ordering::Relaxed);
}

/// The consumers of every thread's ring, for the drain to take their spans.
///
/// A thread registers a ring at its first span (and when its ring grows) and keeps its
/// producer; the registry keeps the consumer, used only under the drain's lock, and forgets
/// it once the producer is gone and nothing is left to take or count.
pub(crate) struct Registry<T> {
    /// Every ring a drain has taken in. Held for a whole drain, which makes drains take turns
    /// (each ring has one consumer, and it lives here).
    taken_in: Mutex<Vec<Entry<T>>>,
    /// Rings registered since the last drain took them in. Held only for moments: a thread
    /// registering its ring must never wait for a drain, which may spend a while in the
    /// recorder.
    new: Mutex<Vec<Entry<T>>>,
    /// True when `new` may hold rings: saves most drains a lock.
    new_waiting: AtomicBool,
}

struct Entry<T> {
    consumer: Consumer<T>,
    /// The ring's drop count when last reported.
    dropped_seen: u64,
}

fn lock<T>(list: &Mutex<Vec<Entry<T>>>) -> MutexGuard<'_, Vec<Entry<T>>> {
    // A panic while holding the lock (in a recorder) cannot leave the list inconsistent.
    list.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T> Registry<T> {
    pub(crate) fn new() -> Self {
        Registry {
            taken_in: Mutex::new(Vec::new()),
            new: Mutex::new(Vec::new()),
            new_waiting: AtomicBool::new(false),
        }
    }

    /// Makes a ring of `capacity`, keeps its consumer, and returns its producer.
    pub(crate) fn register(&self, capacity: usize) -> ring::Producer<T> {
        let (producer, consumer) = ring::ring(capacity);
        lock(&self.new).push(Entry {
            consumer,
            dropped_seen: 0,
        });
        self.new_waiting.store(true, Ordering::Release);
        producer
    }

    /// Runs `take` on the consumer of every ring, one drain at a time, then forgets the rings
    /// whose producer is gone once nothing is left in them to take or count. Returns how many
    /// items the producers dropped since the last drain.
    pub(crate) fn drain(&self, mut take: impl FnMut(&mut Consumer<T>)) -> u64 {
        let mut entries = lock(&self.taken_in);
        // A compare-exchange where a swap would do: loom models a swap that races with a
        // store wrongly (loom issue 254), and this one costs the same.
        if self
            .new_waiting
            .compare_exchange(true, false, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            entries.append(&mut lock(&self.new));
        }
        let mut dropped = 0;
        for entry in entries.iter_mut() {
            let total_dropped = entry.consumer.dropped();
            dropped += total_dropped - entry.dropped_seen;
            entry.dropped_seen = total_dropped;
            take(&mut entry.consumer);
        }
        // Closed first: what the length and the drop count say after that is final.
        entries.retain(|e| {
            !(e.consumer.is_closed()
                && e.consumer.len() == 0
                && e.consumer.dropped() == e.dropped_seen)
        });
        dropped
    }

    /// Items waiting in the rings.
    pub(crate) fn pending(&self) -> usize {
        let taken_in: usize = lock(&self.taken_in).iter().map(|e| e.consumer.len()).sum();
        taken_in
            + lock(&self.new)
                .iter()
                .map(|e| e.consumer.len())
                .sum::<usize>()
    }
}

/// The process's rings of finished spans.
static REGISTRY: LazyLock<Registry<SpanRecord>> = LazyLock::new(Registry::new);

/// Moves every span finished so far, on every thread, into the installed recorder, and tells
/// it how many were dropped on the way. Returns how many spans were moved.
pub fn drain() -> usize {
    let Some(recorder) = installed() else {
        return 0;
    };
    let mut moved = 0;
    let mut timeline = None;
    let dropped = REGISTRY.drain(|consumer| {
        // Straight out of the ring: each span is copied once, into the recorder's hands, and
        // its raw times converted on the way. Whatever the recorder leaves unread stays in
        // the ring for the next drain.
        if consumer.len() == 0 {
            return;
        }
        // The spans' readings become wall-clock times on the line as anchored now (under
        // the drain's lock, so that drains anchor in turn).
        let timeline = timeline.get_or_insert_with(|| {
            clock::reanchor();
            clock::timeline()
        });
        let mut spans = consumer.drain_iter(|span: &mut SpanRecord| span.settle(timeline));
        let count = spans.len();
        recorder.record(&mut spans);
        moved += count - spans.len();
    });
    drop(timeline);
    if dropped > 0 {
        recorder.dropped(dropped);
    }
    moved
}

/// Spans waiting in the per-thread rings.
#[must_use]
pub(crate) fn pending() -> usize {
    REGISTRY.pending()
}

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
/// `write` must leave a valid record in the slot.
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
/// As for [`push_with`].
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
    use crate::task::stack::{Frame, Stamp};

    fn record() -> SpanRecord {
        let context = SpanContext::new(TraceId::random(), SpanId::random(), true);
        let frame = Frame::recording(
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

/// The registry under loom: a thread registers its ring, pushes, and exits while drains run.
#[cfg(all(test, lstrace_loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    #[test]
    fn loom_registry_takes_what_an_exited_thread_left_and_forgets_its_ring() {
        loom::model(|| {
            let registry = Arc::new(Registry::new());
            let producing = thread::spawn({
                let registry = Arc::clone(&registry);
                move || {
                    let mut producer = registry.register(2);
                    let mut refused = 0u64;
                    for i in 0..3u64 {
                        if producer.push(i).is_err() {
                            producer.count_dropped();
                            refused += 1;
                        }
                    }
                    refused
                    // The thread exits: its producer drops and the ring closes.
                }
            });
            let mut taken = Vec::new();
            let mut dropped = registry.drain(|consumer| consumer.drain(|x| taken.push(x)));
            let refused = producing.join().unwrap();
            dropped += registry.drain(|consumer| consumer.drain(|x| taken.push(x)));
            // Whatever the interleaving, each item made was taken (in order) or counted as
            // dropped, once, and the closed ring is gone.
            assert_eq!(dropped, refused);
            assert_eq!(taken.len() as u64 + dropped, 3);
            assert!(taken.windows(2).all(|pair| pair[0] < pair[1]));
            assert_eq!(registry.pending(), 0);
            assert!(lock(&registry.taken_in).is_empty() && lock(&registry.new).is_empty());
        });
    }
}
