//! An in-memory recorder for tests: yours and ours.
//!
//! ```
//! use lstrace_core::testing::TestRecorder;
//!
//! let capture = TestRecorder::install().capture();
//! capture.in_scope(|| {
//!     let _outer = lstrace_core::span("outer").with_tag("n", 1).start();
//!     let _inner = lstrace_core::span("inner").start();
//! });
//! assert_eq!(capture.tree(), "outer [n=1]\n  inner\n");
//! ```

pub mod tree;

use crate::context::id::{SpanId, TraceId};
use crate::context::SpanContext;
use crate::record::SpanRecord;
use crate::recorder::{self, AlreadyInstalled, Recorder, Spans};
use crate::span::EnteredSpan;
use crate::task::future::{FutureExt, Instrumented};
use once_cell::sync::OnceCell;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use tree::TreeStyle;

/// Keeps every finished span in memory. Install it once per test process; tests running in
/// parallel each take a [`Capture`] to see only their own spans.
pub struct TestRecorder {
    spans: Mutex<Vec<SpanRecord>>,
    dropped: AtomicU64,
}

static INSTALLED: OnceCell<&'static TestRecorder> = OnceCell::new();

impl fmt::Debug for TestRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let spans = self
            .spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("TestRecorder")
            .field("spans", &spans)
            .field("dropped", &self.dropped.load(Ordering::Relaxed))
            .finish()
    }
}

/// Forwards to the one leaked [`TestRecorder`].
struct Installed(&'static TestRecorder);

impl Recorder for Installed {
    fn record(&self, spans: &mut Spans<'_>) {
        self.0
            .lock()
            .extend(std::iter::from_fn(|| spans.next_owned()));
    }

    fn dropped(&self, count: u64) {
        self.0.dropped.fetch_add(count, Ordering::Relaxed);
    }

    fn wake(&self) {
        // Tests read spans on demand; draining here keeps the per-thread rings from filling.
        recorder::drain();
    }
}

impl TestRecorder {
    /// Installs the test recorder as the process's recorder, or returns the one already
    /// installed.
    ///
    /// # Panics
    /// If a different recorder (a reporter) is installed in this process: a test that mixes
    /// the two would silently see nothing.
    #[must_use]
    pub fn install() -> &'static TestRecorder {
        match Self::try_install() {
            Ok(recorder) => recorder,
            Err(e) => panic!("TestRecorder::install: {e}"),
        }
    }

    /// Like [`TestRecorder::install`], but an error when another recorder is installed.
    ///
    /// # Errors
    /// [`AlreadyInstalled`] when a different recorder is installed.
    pub fn try_install() -> Result<&'static TestRecorder, AlreadyInstalled> {
        INSTALLED
            .get_or_try_init(|| {
                let recorder: &'static TestRecorder = Box::leak(Box::new(TestRecorder {
                    spans: Mutex::new(Vec::new()),
                    dropped: AtomicU64::new(0),
                }));
                recorder::install(Box::new(Installed(recorder)))?;
                Ok(recorder)
            })
            .copied()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<SpanRecord>> {
        self.spans.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every span finished so far in the process.
    #[must_use]
    pub fn spans(&self) -> Vec<SpanRecord> {
        recorder::drain();
        self.lock().clone()
    }

    /// The finished spans of one trace.
    #[must_use]
    pub fn trace(&self, trace_id: TraceId) -> Vec<SpanRecord> {
        recorder::drain();
        self.lock()
            .iter()
            .filter(|s| s.context().trace_id() == trace_id)
            .cloned()
            .collect()
    }

    /// How many spans were dropped before reaching this recorder.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        recorder::drain();
        self.dropped.load(Ordering::Relaxed)
    }

    /// A new capture: spans started inside it belong to a trace of their own.
    #[must_use]
    pub fn capture(&'static self) -> Capture {
        Capture {
            recorder: self,
            context: SpanContext::new(TraceId::random(), SpanId::random(), true),
        }
    }
}

/// A scope whose spans a test can read back, apart from every other test's.
///
/// Spans started inside [`Capture::in_scope`], [`Capture::enter`] or [`Capture::scope`] are
/// placed in a fresh trace under an invisible parent, so they render as roots. A span
/// started with `root` begins a new trace and leaves the capture.
pub struct Capture {
    recorder: &'static TestRecorder,
    context: SpanContext,
}

impl fmt::Debug for Capture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Capture")
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

impl Capture {
    /// The invisible parent's context.
    #[must_use]
    pub fn context(&self) -> &SpanContext {
        &self.context
    }

    /// Enters the capture on this thread until the returned [`EnteredSpan`] drops.
    pub fn enter(&self) -> EnteredSpan {
        self.context.enter()
    }

    /// Runs `f` inside the capture.
    pub fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        self.context.in_scope(f)
    }

    /// Runs a future inside the capture.
    pub fn scope<F: Future>(&self, future: F) -> Instrumented<F> {
        future.in_context(&self.context)
    }

    /// The captured spans that have finished, in the order they finished.
    #[must_use]
    pub fn spans(&self) -> Vec<SpanRecord> {
        self.recorder.trace(self.context.trace_id())
    }

    /// The captured span named `name` (the first to finish, if several).
    #[must_use]
    pub fn span(&self, name: &str) -> Option<SpanRecord> {
        self.spans().into_iter().find(|s| s.name() == name)
    }

    /// The captured spans as a tree of names and tags (see [`tree::render`]).
    #[must_use]
    pub fn tree(&self) -> String {
        self.tree_with(TreeStyle::default())
    }

    /// The captured spans as a tree, with the given style.
    #[must_use]
    pub fn tree_with(&self, style: TreeStyle) -> String {
        tree::render(&self.spans(), style)
    }
}
