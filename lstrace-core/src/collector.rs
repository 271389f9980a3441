//! Where finished spans go: each thread's ring, the registry of rings, and the one
//! installed [`Recorder`] that drains them.

use crate::record::SpanRecord;
use crate::ring::{Cursor, Pushed, Ring};
use once_cell::sync::OnceCell;
use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

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

/// Per-thread ring capacity: enough for bursts between drains, small enough that a
/// thread's buffer stays well under a megabyte.
pub(crate) const RING_CAPACITY: usize = 512;

const UNINITIALISED: u8 = 0;
const RECORDING: u8 = 1;
const STOPPED: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(UNINITIALISED);
static RECORDER: OnceCell<Box<dyn Recorder>> = OnceCell::new();
static MAX_LOGS_PER_SPAN: AtomicUsize = AtomicUsize::new(500);

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
pub fn stop() {
    STATE.store(STOPPED, Ordering::Release);
}

/// True once [`stop`] was called.
#[must_use]
pub fn is_stopped() -> bool {
    STATE.load(Ordering::Acquire) == STOPPED
}

/// Sets the most logs a span keeps; later logs are dropped and counted on the span.
pub fn set_max_logs_per_span(max: usize) {
    MAX_LOGS_PER_SPAN.store(max, Ordering::Relaxed);
}

pub(crate) fn max_logs_per_span() -> usize {
    MAX_LOGS_PER_SPAN.load(Ordering::Relaxed)
}

struct Entry {
    ring: Arc<Ring<SpanRecord>>,
    dropped_seen: u64,
}

static REGISTRY: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

fn registry() -> MutexGuard<'static, Vec<Entry>> {
    // A panic while holding the lock cannot leave the list inconsistent: keep going.
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Moves every span finished so far, on every thread, into the installed recorder, and tells
/// it how many were dropped on the way. Returns how many spans were moved.
pub fn drain() -> usize {
    let Some(recorder) = installed() else {
        return 0;
    };
    let mut moved = 0;
    let mut dropped = 0;
    let mut entries = registry();
    for entry in entries.iter_mut() {
        let total_dropped = entry.ring.dropped();
        dropped += total_dropped - entry.dropped_seen;
        entry.dropped_seen = total_dropped;
        // Straight out of the ring: each span is copied once, into the recorder's hands, and
        // its raw times converted on the way. Whatever the recorder leaves unread stays in
        // the ring for the next drain.
        let mut spans = entry.ring.drain_iter(SpanRecord::settle_times);
        let count = spans.len();
        if count == 0 {
            continue;
        }
        recorder.record(&mut spans);
        moved += count - spans.len();
    }
    // A thread that has exited produces no more: forget its ring once it is empty.
    entries.retain(|e| !(e.ring.is_closed() && e.ring.len() == 0));
    drop(entries);
    if dropped > 0 {
        recorder.dropped(dropped);
    }
    moved
}

/// Spans waiting in the per-thread rings.
#[must_use]
pub fn pending() -> usize {
    registry().iter().map(|e| e.ring.len()).sum()
}

/// The producing end of this thread's ring.
pub(crate) struct Producer {
    ring: Arc<Ring<SpanRecord>>,
    cursor: Cursor,
}

impl Producer {
    fn register() -> Self {
        let ring = Arc::new(Ring::new(RING_CAPACITY));
        registry().push(Entry {
            ring: Arc::clone(&ring),
            dropped_seen: 0,
        });
        Producer {
            ring,
            cursor: Cursor::default(),
        }
    }

    pub(crate) fn push(&self, span: SpanRecord) {
        let pushed = self.ring.push(span, &self.cursor);
        Self::pushed(pushed);
    }

    /// Pushes the span that `write` writes into a free slot; when the ring is full, `write`
    /// is not run, the span is counted as dropped, and this returns false.
    ///
    /// # Safety
    /// `write` must leave a valid record in the slot.
    #[inline]
    pub(crate) unsafe fn push_with(&self, write: impl FnOnce(*mut SpanRecord)) -> bool {
        // SAFETY: passed on from the caller.
        let pushed = unsafe { self.ring.push_with(&self.cursor, write) };
        Self::pushed(pushed);
        pushed != Pushed::Full
    }

    #[inline]
    fn pushed(pushed: Pushed) {
        if pushed != Pushed::Ok {
            wake();
        }
    }
}

/// Asks the recorder to drain soon: a ring is half full, or full.
#[cold]
fn wake() {
    if let Some(recorder) = installed() {
        recorder.wake();
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.ring.close();
        if let Some(recorder) = installed() {
            recorder.wake();
        }
    }
}

/// Gets (registering on first use) this thread's producer.
#[inline]
pub(crate) fn producer(slot: &mut Option<Producer>) -> &Producer {
    slot.get_or_insert_with(Producer::register)
}

/// A span that could not even reach its thread's ring (the thread is shutting down).
pub(crate) fn lost(count: u64) {
    if let Some(recorder) = installed() {
        recorder.dropped(count);
    }
}
