//! Entering a context (one moved from another thread, say) without starting a span.

use super::EnteredSpan;
use crate::context::id::random_u64;
use crate::context::SpanContext;
use crate::task::stack::{with_thread_spans, SpanFrame};

impl SpanContext {
    /// Enters this context on the current thread: spans started until the [`EnteredSpan`]
    /// drops are its children. This is how a context moved to another thread is used there.
    ///
    /// ```
    /// let _recorder = lstrace_core::testing::TestRecorder::install();
    /// let parent = lstrace_core::span("parent").start();
    /// let context = parent.context().expect("recording");
    /// std::thread::spawn(move || {
    ///     let _entered = context.enter();
    ///     let _child = lstrace_core::span("on another thread").start();
    /// })
    /// .join()
    /// .unwrap();
    /// ```
    pub fn enter(&self) -> EnteredSpan {
        let frame = self.scope_frame();
        let key = frame.key;
        with_thread_spans(|local| {
            local.stack.push(frame);
            EnteredSpan::entered(key)
        })
        .unwrap_or_else(EnteredSpan::noop)
    }

    /// Runs `f` with this context entered.
    pub fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        let _entered = self.enter();
        f()
    }

    /// A frame that makes this context current without recording anything.
    pub(crate) fn scope_frame(&self) -> SpanFrame {
        SpanFrame::context_only(random_u64(), self.clone())
    }
}
