//! Where finished spans go: each thread's ring, the lists of rings, and the one
//! installed [`Recorder`] that drains them.

mod drain;
mod limits;
mod producer;
mod registry;
mod ring;
mod sync;

use once_cell::sync::OnceCell;
use std::fmt;
use std::sync::atomic::AtomicU8;
use sync::Ordering;

pub(crate) use drain::pending;
pub use drain::{drain, Spans};
#[cfg(feature = "reporter")]
pub(crate) use limits::set_max_operation_name_len;
pub use limits::{
    baggage_items_dropped, operation_names_truncated, DEFAULT_MAX_BAGGAGE_ITEMS,
    DEFAULT_MAX_LOGS_PER_SPAN, DEFAULT_MAX_OPERATION_NAME_LEN, DEFAULT_MAX_TAGS_PER_SPAN,
};
pub(crate) use limits::{
    count_baggage_item_dropped, count_operation_name_truncated, max_baggage_items,
    max_logs_per_span, max_operation_name_len, max_tags_per_span, set_max_baggage_items,
    set_max_logs_per_span, set_max_tags_per_span,
};
pub(crate) use producer::{lost, push, push_with, Producer};

/// Receives finished spans. One recorder is installed per process: the reporter installed by
/// `lstrace::init`, the in-memory [`TestRecorder`](crate::testing::TestRecorder), or your own.
///
/// Spans wait in per-thread rings until somebody calls [`drain`]; the recorder decides when
/// (periodically, when [`Recorder::wake`] says a ring is half full, on flush).
pub trait Recorder: Send + Sync + 'static {
    /// Takes a batch of finished spans. Called by [`drain`], on the draining thread. The
    /// spans are lent in place ([`Spans::next`]) or moved out ([`Spans::next_owned`]); those
    /// left unread are offered again by the next drain.
    fn record(&self, spans: &mut Spans<'_>);

    /// Spans were dropped before reaching the recorder (a thread's ring was full).
    fn dropped(&self, count: u64);

    /// A thread has pushed another half ring of spans: arrange for [`drain`] to run soon. Called on the
    /// instrumented thread, so it must not block (unparking a thread is fine).
    fn wake(&self);
}

const UNINITIALISED: u8 = 0;
const RECORDING: u8 = 1;
/// Only the reporter stops recording (on close, or when the collector disables it).
#[cfg(feature = "reporter")]
const STOPPED: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(UNINITIALISED);
static RECORDER: OnceCell<Box<dyn Recorder>> = OnceCell::new();

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
